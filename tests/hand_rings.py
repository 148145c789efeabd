"""Rings and buffers built by hand, for tests that need chain shapes the driver model never makes.
Every buffer is granted in the DMA firewall with exactly the access a correct device may make."""

from conftest import Bench
from virtio_gpio.model.constants import QueueIndex
from virtio_gpio.model.driver.vring import DriverVirtqueue
from virtio_gpio.model.layouts import DESC_SIZE, RING_IDX_OFFSET, VirtqDesc
from virtio_gpio.model.memory import Perm

FILL = 0xAA  # pre-fill of writable buffers: a byte the device forgot to write shows up


def requestq(bench: Bench) -> DriverVirtqueue:
    return bench.driver.vqs[QueueIndex.REQUESTQ]


def used_idx(bench: Bench, vq: DriverVirtqueue) -> int:
    return bench.memory.read_u16(vq.used_addr + RING_IDX_OFFSET)


def readable(bench: Bench, data: bytes, *, grant: bool = True) -> int:
    """A buffer holding ``data`` that the device may read: granted READ unless ``grant`` is False
    (DriverVirtqueue.add grants what it is given by itself)."""
    addr = bench.memory.alloc(len(data))
    bench.memory.write(addr, data)
    if grant:
        bench.memory.firewall.grant(addr, len(data), Perm.READ, owner="test")
    return addr


def writable(bench: Bench, size: int, *, grant: bool = True) -> int:
    """A buffer that the device may write, pre-filled with FILL: granted WRITE unless ``grant``
    is False."""
    addr = bench.memory.alloc(size)
    bench.memory.write(addr, bytes([FILL]) * size)
    if grant:
        bench.memory.firewall.grant(addr, size, Perm.WRITE, owner="test")
    return addr


def indirect_table(bench: Bench, entries: list[tuple[int, int, int, int]]) -> int:
    """An indirect table of (addr, len, flags, next) entries that the device may read."""
    table = bench.memory.alloc(DESC_SIZE * len(entries), align=DESC_SIZE)
    for i, (addr, length, flags, nxt) in enumerate(entries):
        bench.memory.write(table + DESC_SIZE * i,
                           VirtqDesc.build(dict(addr=addr, len=length, flags=flags, next=nxt)))
    bench.memory.firewall.grant(table, DESC_SIZE * len(entries), Perm.READ, owner="test")
    return table
