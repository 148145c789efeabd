"""Malformed rings, bad queue configuration, bus errors and reset with requests in flight
(device contract §4-§6).

Every device error must end the same way (contract §6, GEN-4): Status gains DEVICE_NEEDS_RESET
(0x40), InterruptStatus bit 1 is raised once DRIVER_OK is set and the irq line follows it, the device
writes nothing more (no reply, no used element, no used.idx) and makes no DMA access at all until the
driver resets it, the registers keep answering, and a reset followed by a fresh probe brings back a
working device. Buffers built by hand are granted in the DMA firewall exactly as a correct device may
use them, so a violation means the device touched something it must not (for the DMA-width cases:
that it tried to reach the out-of-range address at all).
"""

import pytest

from conftest import Bench, make_bench
from hand_rings import FILL, indirect_table, readable, requestq, used_idx, writable
from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.constants import (
    MAGIC_VALUE, DescFlags, DeviceStatus, Direction, Feature, InterruptStatus, MsgType, QueueIndex,
)
from virtio_gpio.model.driver.linux_gpio import (
    LINUX_KNOWN_FEATURES, DriverTimeout, LinuxVirtioGpioDriver,
)
from virtio_gpio.model.driver.vring import DriverVirtqueue
from virtio_gpio.model.layouts import (
    DESC_SIZE, RING_IDX_OFFSET, USED_ELEM_SIZE, GpioRequest, Reg, VirtqDesc,
)
from virtio_gpio.model.memory import AccessKind, BusResponse

NGPIO = 8
TIMEOUT_STEPS = 50
INDIRECT_F = Feature.RING_INDIRECT_DESC.mask
EVENT_IDX_F = Feature.RING_EVENT_IDX.mask
NO_INDIRECT = LINUX_KNOWN_FEATURES & ~INDIRECT_F
NEXT, WRITE, INDIRECT = DescFlags.NEXT, DescFlags.WRITE, DescFlags.INDIRECT
FOUR_GIB = 1 << 32  # one past the last byte of the default 32-bit DMA address space
LIVE = (DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK
        | DeviceStatus.DRIVER_OK)
LIVE_NEEDS_RESET = LIVE | DeviceStatus.DEVICE_NEEDS_RESET  # 0x4f


# ---------------------------------------------------------------------------------------------
# helpers


def new_bench(features: int = LINUX_KNOWN_FEATURES, **kwargs) -> Bench:
    return make_bench(DeviceConfig(ngpio=NGPIO), features=features, timeout_steps=TIMEOUT_STEPS,
                      **kwargs)


def request(bench: Bench, gpio: int = 3, *, grant: bool = True) -> int:
    """A GET_VALUE request buffer for line ``gpio``."""
    return readable(bench, GpioRequest.build(dict(type=MsgType.GET_VALUE, gpio=gpio, value=0)),
                    grant=grant)


def linux_table(bench: Bench) -> int:
    """The 2-entry table Linux builds for a request: request (NEXT, next 1), reply (WRITE)."""
    return indirect_table(bench, [(request(bench), 8, NEXT, 1), (writable(bench, 2), 2, WRITE, 2)])


def overlaps(access, addr: int, size: int) -> bool:
    return access.addr < addr + size and addr < access.addr + access.size


def assert_needs_reset(bench: Bench) -> None:
    assert bench.read(Reg.STATUS) == LIVE_NEEDS_RESET
    assert bench.read(Reg.INTERRUPT_STATUS) == InterruptStatus.CONFIG_CHANGE
    assert bench.device.irq
    assert bench.read(Reg.MAGIC_VALUE) == MAGIC_VALUE  # the register bus still answers


def assert_dead(bench: Bench) -> None:
    """After a device error: a new, valid request and more notifies cause no DMA at all."""
    log_start = len(bench.memory.dma_log)
    bench.driver.submit(MsgType.GET_DIRECTION, 1)
    for _ in range(3):
        bench.notify(QueueIndex.REQUESTQ)
        bench.notify(QueueIndex.EVENTQ)
    assert bench.memory.dma_log[log_start:] == []
    assert bench.read(Reg.STATUS) & DeviceStatus.DEVICE_NEEDS_RESET


def assert_recovers(bench: Bench, features: int, old_vqs: list[DriverVirtqueue]) -> None:
    """Reset, forget the old rings (their grants go), probe with a new driver, use a line."""
    bench.write(Reg.STATUS, 0)
    assert bench.read(Reg.STATUS) == 0
    assert bench.read(Reg.INTERRUPT_STATUS) == 0 and not bench.device.irq
    for vq in old_vqs:
        vq.release()
    bench.memory.firewall.revoke_owner("test")
    errors_before = len(bench.device.errors)
    driver = LinuxVirtioGpioDriver(bench.transport, features=features, timeout_steps=TIMEOUT_STEPS)
    driver.probe()
    assert bench.read(Reg.STATUS) == LIVE
    driver.direction_output(6, 1)
    assert driver.get(6) == 1
    assert driver.get_direction(6) == Direction.OUT
    assert (bench.device.gpio_o >> 6) & 1 and (bench.device.gpio_oe >> 6) & 1
    assert len(bench.device.errors) == errors_before
    assert driver.log.errors == []
    bench.assert_clean_dma()  # the old rings are no longer granted: any access to them is caught


# ---------------------------------------------------------------------------------------------
# Malformed chains and avail indices (contract §5). Each builder writes its chain by hand into
# the requestq of a probed device and publishes it.


def d(vq, index, addr, length, flags, nxt=0):
    vq.write_desc(vq.desc_addr, index, addr, length, flags, nxt)


def loop_in_desc_table(b, vq):
    rep = writable(b, 2)
    d(vq, 2, request(b), 8, NEXT, 5)
    d(vq, 5, rep, 1, WRITE | NEXT, 6)
    d(vq, 6, rep + 1, 1, WRITE | NEXT, 5)  # 5 -> 6 -> 5 -> ...
    vq.publish(2)


def self_loop(b, vq):
    d(vq, 4, request(b), 8, NEXT, 4)
    vq.publish(4)


def loop_in_indirect_table(b, vq):
    rep = writable(b, 2)
    table = indirect_table(b, [(request(b), 8, NEXT, 1), (rep, 1, WRITE | NEXT, 2),
                               (rep + 1, 1, WRITE | NEXT, 1)])
    d(vq, 3, table, 3 * DESC_SIZE, INDIRECT)
    vq.publish(3)


def next_equal_queue_num(b, vq):
    d(vq, 2, request(b), 8, NEXT, vq.num)
    vq.publish(2)


def next_0xffff(b, vq):
    d(vq, 2, request(b), 8, NEXT, 0xFFFF)
    vq.publish(2)


def head_equal_queue_num(b, vq):
    vq.publish(vq.num)


def head_0xffff(b, vq):
    vq.publish(0xFFFF)


def next_beyond_indirect_table(b, vq):
    table = indirect_table(b, [(request(b), 8, NEXT, 2), (writable(b, 2), 2, WRITE, 0)])
    d(vq, 3, table, 2 * DESC_SIZE, INDIRECT)
    vq.publish(3)


def nested_indirect(b, vq):
    inner = indirect_table(b, [(writable(b, 2), 2, WRITE, 0)])
    table = indirect_table(b, [(request(b), 8, NEXT, 1), (inner, DESC_SIZE, INDIRECT, 0)])
    d(vq, 3, table, 2 * DESC_SIZE, INDIRECT)
    vq.publish(3)


def indirect_with_next(b, vq):
    d(vq, 3, linux_table(b), 2 * DESC_SIZE, INDIRECT | NEXT, 4)
    d(vq, 4, writable(b, 2), 2, WRITE)
    vq.publish(3)


def indirect_len_0(b, vq):
    d(vq, 3, linux_table(b), 0, INDIRECT)
    vq.publish(3)


def indirect_len_24(b, vq):
    d(vq, 3, linux_table(b), 24, INDIRECT)
    vq.publish(3)


def indirect_not_negotiated(b, vq):  # run on a device without RING_INDIRECT_DESC
    d(vq, 3, linux_table(b), 2 * DESC_SIZE, INDIRECT)
    vq.publish(3)


def zero_length_at_4gib(b, vq):
    """A zero-length descriptor is still a descriptor whose address must fit (contract §5)."""
    d(vq, 2, request(b), 8, NEXT, 7)
    d(vq, 7, FOUR_GIB, 0, NEXT, 9)
    d(vq, 9, writable(b, 2), 2, WRITE)
    vq.publish(2)


def huge_indirect_table_with_loop(b, vq):
    """A table that claims 2^28 - 1 entries, looping 0 -> 1 -> 0: cut off after QueueNum
    descriptors, not after the table's length (contract §5)."""
    rep = writable(b, 2)
    table = indirect_table(b, [(rep, 2, WRITE | NEXT, 1), (rep, 0, WRITE | NEXT, 0)])
    d(vq, 2, request(b), 8, NEXT, 3)
    d(vq, 3, table, min(0xFFFF_FFF0, (FOUR_GIB - table) & ~0xF), INDIRECT)
    vq.publish(2)


def more_than_queue_num_across_indirect(b, vq):
    """Two direct descriptors and a table of QueueNum - 1 entries: QueueNum + 1 buffers."""
    req = request(b)
    entries = [(writable(b, 2), 0, WRITE | NEXT, i + 1) for i in range(vq.num - 1)]
    entries[-1] = (entries[-1][0], 2, WRITE, 0)
    d(vq, 2, req, 4, NEXT, 5)
    d(vq, 5, req + 4, 4, NEXT, 6)
    d(vq, 6, indirect_table(b, entries), DESC_SIZE * len(entries), INDIRECT)
    vq.publish(2)


def readable_after_writable(b, vq):
    d(vq, 2, writable(b, 2), 2, WRITE | NEXT, 7)
    d(vq, 7, request(b), 8, 0)
    vq.publish(2)


def readable_after_empty_writable(b, vq):
    d(vq, 2, request(b), 8, NEXT, 7)
    d(vq, 7, writable(b, 2), 0, WRITE | NEXT, 9)
    d(vq, 9, readable(b, bytes(4)), 4, NEXT, 10)
    d(vq, 10, writable(b, 2), 2, WRITE)
    vq.publish(2)


def readable_after_writable_in_table(b, vq):
    table = indirect_table(b, [(writable(b, 2), 2, WRITE | NEXT, 1), (request(b), 8, 0, 0)])
    d(vq, 3, table, 2 * DESC_SIZE, INDIRECT)
    vq.publish(3)


def readable_after_writable_mixed(b, vq):
    table = indirect_table(b, [(request(b), 8, 0, 0)])
    d(vq, 2, writable(b, 2), 2, WRITE | NEXT, 7)
    d(vq, 7, table, DESC_SIZE, INDIRECT)
    vq.publish(2)


def _set_avail_idx(b, vq, value):
    b.memory.write_u16(vq.avail_addr + RING_IDX_OFFSET, value & 0xFFFF)


def avail_idx_jump(b, vq):
    _set_avail_idx(b, vq, vq.avail_idx_shadow + vq.num + 1)


def avail_idx_far_jump(b, vq):
    _set_avail_idx(b, vq, vq.avail_idx_shadow + 0x8000)


def avail_idx_backwards(b, vq):
    _set_avail_idx(b, vq, vq.avail_idx_shadow - 1)


def readable_crosses_4gib(b, vq):
    d(vq, 2, FOUR_GIB - 4, 8, NEXT, 3)
    d(vq, 3, writable(b, 2), 2, WRITE)
    vq.publish(2)


def readable_above_4gib(b, vq):
    d(vq, 2, FOUR_GIB, 8, NEXT, 3)
    d(vq, 3, writable(b, 2), 2, WRITE)
    vq.publish(2)


def writable_above_4gib(b, vq):
    d(vq, 2, request(b), 8, NEXT, 3)
    d(vq, 3, FOUR_GIB + 0x1000, 2, WRITE)
    vq.publish(2)


def writable_in_table_above_4gib(b, vq):
    table = indirect_table(b, [(request(b), 8, NEXT, 1), (FOUR_GIB, 2, WRITE, 0)])
    d(vq, 3, table, 2 * DESC_SIZE, INDIRECT)
    vq.publish(3)


def indirect_table_above_4gib(b, vq):
    d(vq, 3, FOUR_GIB, 2 * DESC_SIZE, INDIRECT)
    vq.publish(3)


def indirect_table_crosses_4gib(b, vq):
    d(vq, 3, FOUR_GIB - DESC_SIZE, 2 * DESC_SIZE, INDIRECT)
    vq.publish(3)


MALFORMED = [
    pytest.param(loop_in_desc_table, LINUX_KNOWN_FEATURES, id="loop-in-desc-table"),
    pytest.param(self_loop, LINUX_KNOWN_FEATURES, id="self-loop"),
    pytest.param(loop_in_indirect_table, LINUX_KNOWN_FEATURES, id="loop-in-indirect-table"),
    pytest.param(next_equal_queue_num, LINUX_KNOWN_FEATURES, id="next-eq-queue-num"),
    pytest.param(next_0xffff, LINUX_KNOWN_FEATURES, id="next-0xffff"),
    pytest.param(head_equal_queue_num, LINUX_KNOWN_FEATURES, id="head-eq-queue-num"),
    pytest.param(head_0xffff, LINUX_KNOWN_FEATURES, id="head-0xffff"),
    pytest.param(next_beyond_indirect_table, LINUX_KNOWN_FEATURES, id="next-beyond-indirect-table"),
    pytest.param(nested_indirect, LINUX_KNOWN_FEATURES, id="nested-indirect"),
    pytest.param(indirect_with_next, LINUX_KNOWN_FEATURES, id="indirect-with-next"),
    pytest.param(indirect_len_0, LINUX_KNOWN_FEATURES, id="indirect-len-0"),
    pytest.param(indirect_len_24, LINUX_KNOWN_FEATURES, id="indirect-len-24"),
    pytest.param(indirect_not_negotiated, NO_INDIRECT, id="indirect-not-negotiated"),
    pytest.param(readable_after_writable, LINUX_KNOWN_FEATURES, id="readable-after-writable"),
    pytest.param(readable_after_empty_writable, LINUX_KNOWN_FEATURES,
                 id="readable-after-empty-writable"),
    pytest.param(readable_after_writable_in_table, LINUX_KNOWN_FEATURES,
                 id="readable-after-writable-in-table"),
    pytest.param(readable_after_writable_mixed, LINUX_KNOWN_FEATURES,
                 id="readable-after-writable-mixed"),
    pytest.param(zero_length_at_4gib, LINUX_KNOWN_FEATURES, id="zero-length-at-4GiB"),
    pytest.param(huge_indirect_table_with_loop, LINUX_KNOWN_FEATURES, id="huge-indirect-table-loop"),
    pytest.param(more_than_queue_num_across_indirect, LINUX_KNOWN_FEATURES,
                 id="queue-num-plus-one-across-indirect"),
    pytest.param(avail_idx_jump, LINUX_KNOWN_FEATURES, id="avail-idx-num+1"),
    pytest.param(avail_idx_jump, LINUX_KNOWN_FEATURES & ~EVENT_IDX_F, id="avail-idx-num+1-no-event-idx"),
    pytest.param(avail_idx_far_jump, LINUX_KNOWN_FEATURES, id="avail-idx-0x8000"),
    pytest.param(avail_idx_backwards, LINUX_KNOWN_FEATURES, id="avail-idx-backwards"),
    pytest.param(readable_crosses_4gib, LINUX_KNOWN_FEATURES, id="readable-crosses-4GiB"),
    pytest.param(readable_above_4gib, LINUX_KNOWN_FEATURES, id="readable-above-4GiB"),
    pytest.param(writable_above_4gib, LINUX_KNOWN_FEATURES, id="writable-above-4GiB"),
    pytest.param(writable_in_table_above_4gib, LINUX_KNOWN_FEATURES, id="writable-in-table-above-4GiB"),
    pytest.param(indirect_table_above_4gib, LINUX_KNOWN_FEATURES, id="indirect-table-above-4GiB"),
    pytest.param(indirect_table_crosses_4gib, LINUX_KNOWN_FEATURES, id="indirect-table-crosses-4GiB"),
]


@pytest.mark.req("VQ-2", "VQ-3", "GEN-4", "DRV-11", "DRV-12", "DRV-13", "MMIO-13", "C-3", "C-5", "C-6")
@pytest.mark.parametrize("build, features", MALFORMED)
def test_malformed_ring_is_a_device_error(build, features):
    bench = new_bench(features)
    vq = requestq(bench)
    assert bench.read(Reg.STATUS) == LIVE and bench.read(Reg.INTERRUPT_STATUS) == 0
    used_before = used_idx(bench, vq)
    build(bench, vq)
    log_start = len(bench.memory.dma_log)
    bench.notify(QueueIndex.REQUESTQ)

    assert_needs_reset(bench)
    assert bench.device.errors, "no device error recorded"
    # The only chain is malformed: no reply bytes, no used element, no used.idx. (avail_event is
    # the one field a device may already have refreshed before it found the fault.)
    avail_event = vq.used_addr + vq.geometry.avail_event
    writes = [a for a in bench.memory.dma_log[log_start:]
              if a.kind is AccessKind.WRITE and not (a.addr == avail_event and a.size == 2)]
    assert writes == []
    assert used_idx(bench, vq) == used_before
    # A chain is cut off after QueueNum buffer descriptors: a loop costs at most that many
    # descriptor reads (plus the pointer and the few avail-ring reads), never an unbounded walk.
    assert len(bench.memory.dma_log) - log_start <= vq.num + 8
    bench.assert_clean_dma()
    assert_dead(bench)
    assert_recovers(bench, features, bench.driver.vqs)


# ---------------------------------------------------------------------------------------------
# Invalid queue configuration at QueueReady = 1 (contract §4)

HAND_FEATURES = (Feature.VERSION_1.mask | Feature.GPIO_F_IRQ.mask | INDIRECT_F | EVENT_IDX_F)
HAND_QUEUE_SIZE = 16

QUEUE_CONFIG_CASES = [
    # (queue, register field, bad value from the valid ring) -- "num", "desc", "driver", "device"
    pytest.param(0, "num", lambda vq, cfg: 0, id="num-0"),
    pytest.param(0, "num", lambda vq, cfg: 3, id="num-3"),
    pytest.param(0, "num", lambda vq, cfg: 12, id="num-12"),
    pytest.param(0, "num", lambda vq, cfg: 2 * cfg.queue_size_max, id="num-above-max"),
    pytest.param(0, "num", lambda vq, cfg: 0x1_0000, id="num-0x10000"),
    pytest.param(0, "desc", lambda vq, cfg: vq.desc_addr + 8, id="desc-misaligned"),
    pytest.param(0, "driver", lambda vq, cfg: vq.avail_addr + 1, id="avail-misaligned"),
    pytest.param(0, "device", lambda vq, cfg: vq.used_addr + 2, id="used-misaligned"),
    pytest.param(0, "desc", lambda vq, cfg: vq.desc_addr | FOUR_GIB, id="desc-above-4GiB"),
    pytest.param(0, "driver", lambda vq, cfg: vq.avail_addr | FOUR_GIB, id="avail-above-4GiB"),
    pytest.param(0, "device", lambda vq, cfg: vq.used_addr | FOUR_GIB, id="used-above-4GiB"),
    pytest.param(0, "desc", lambda vq, cfg: FOUR_GIB - vq.geometry.desc_table_size + DESC_SIZE,
                 id="desc-crosses-4GiB"),
    pytest.param(0, "driver", lambda vq, cfg: FOUR_GIB - 2, id="avail-crosses-4GiB"),
    pytest.param(0, "device", lambda vq, cfg: FOUR_GIB - 4, id="used-crosses-4GiB"),
    pytest.param(1, "num", lambda vq, cfg: 0, id="eventq-num-0"),
    pytest.param(1, "device", lambda vq, cfg: vq.used_addr + 1, id="eventq-used-misaligned"),
]



def write_queue(bench: Bench, index: int, num: int, desc: int, driver: int, device: int) -> None:
    bench.write(Reg.QUEUE_SEL, index)
    bench.write(Reg.QUEUE_SIZE, num)
    for low, addr in ((Reg.QUEUE_DESC_LOW, desc), (Reg.QUEUE_DRIVER_LOW, driver),
                      (Reg.QUEUE_DEVICE_LOW, device)):
        bench.write(low, addr & 0xFFFF_FFFF)
        bench.write(low + 4, addr >> 32)
    bench.write(Reg.QUEUE_READY, 1)


@pytest.mark.req("MMIO-7", "MMIO-10", "DRV-5", "DRV-15", "GEN-1", "GEN-4", "C-4", "C-6")
@pytest.mark.parametrize("bad_queue, field, bad_value", QUEUE_CONFIG_CASES)
def test_invalid_queue_config_at_queue_ready(bad_queue, field, bad_value):
    bench = make_bench(DeviceConfig(ngpio=NGPIO), probe=False)
    assert bench.negotiate(HAND_FEATURES)
    vqs = []
    for index in (QueueIndex.REQUESTQ, QueueIndex.EVENTQ):
        vq = DriverVirtqueue(bench.memory, index, HAND_QUEUE_SIZE, indirect=True, event_idx=True)
        regs = dict(num=vq.num, desc=vq.desc_addr, driver=vq.avail_addr, device=vq.used_addr)
        if index == bad_queue:
            regs[field] = bad_value(vq, bench.config)
        write_queue(bench, index, **regs)
        assert bench.read(Reg.QUEUE_READY) == 1  # reads back what was written (MMIO-10)
        vqs.append(vq)
    status = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK
    assert bench.read(Reg.STATUS) == status | DeviceStatus.DEVICE_NEEDS_RESET
    # no configuration interrupt before DRIVER_OK (contract §6: "if DRIVER_OK is set")
    assert bench.read(Reg.INTERRUPT_STATUS) == 0 and not bench.device.irq

    # a valid request waits in the requestq; DRIVER_OK, then notifies
    req, rep = request(bench, grant=False), writable(bench, 2, grant=False)
    vqs[QueueIndex.REQUESTQ].add([(req, 8)], [(rep, 2)], token="waiting")
    bench.write(Reg.STATUS, bench.read(Reg.STATUS) | DeviceStatus.DRIVER_OK)
    # DEVICE_NEEDS_RESET and DRIVER_OK are now both set: the driver must hear of it (spec 2.1.2,
    # contract §6), or Linux would wait forever on a device that will never answer.
    assert_needs_reset(bench)
    for _ in range(3):
        bench.notify(QueueIndex.REQUESTQ)
        bench.notify(QueueIndex.EVENTQ)
    assert bench.memory.dma_log == []  # neither queue was touched, not even the valid one
    assert bench.memory.read(rep, 2) == bytes([FILL, FILL])
    assert_recovers(bench, LINUX_KNOWN_FEATURES, vqs)


# ---------------------------------------------------------------------------------------------
# Bus errors (contract §6): every DMA transaction of a request, one at a time


def _head_desc(bench, vq):
    head = bench.memory.read_u16(vq.avail_addr + vq.geometry.avail_entry((vq.avail_idx_shadow - 1) % vq.num))
    return VirtqDesc.parse(bench.memory.read(vq.desc_addr + DESC_SIZE * head, DESC_SIZE))


def _slot(vq):
    return (vq.avail_idx_shadow - 1) % vq.num


BUS_TARGETS = {
    # name: (range of the transaction to fail, as (addr, size), from the submitted request; kind)
    "desc-table": (lambda b, vq, line: (vq.desc_addr, vq.geometry.desc_table_size), AccessKind.READ),
    "indirect-table": (lambda b, vq, line: (_head_desc(b, vq).addr, _head_desc(b, vq).len), None),
    "avail-idx": (lambda b, vq, line: (vq.avail_addr + RING_IDX_OFFSET, 2), AccessKind.READ),
    "avail-entry": (lambda b, vq, line: (vq.avail_addr + vq.geometry.avail_entry(_slot(vq)), 2), None),
    "request-buffer": (lambda b, vq, line: (line.req, 8), AccessKind.READ),
    "reply-buffer": (lambda b, vq, line: (line.res, 2), AccessKind.WRITE),
    "used-elem": (lambda b, vq, line: (vq.used_addr + vq.geometry.used_elem(_slot(vq)), USED_ELEM_SIZE),
                  AccessKind.WRITE),
    "used-idx": (lambda b, vq, line: (vq.used_addr + RING_IDX_OFFSET, 2), AccessKind.WRITE),
    "used-ring": (lambda b, vq, line: (vq.used_addr, vq.geometry.used_ring_size), None),
}


@pytest.mark.req("GEN-4", "VQ-9", "MMIO-4", "MMIO-13", "C-3", "C-6")
@pytest.mark.parametrize("response", [BusResponse.SLVERR, BusResponse.DECERR], ids=lambda r: r.value)
@pytest.mark.parametrize("target", list(BUS_TARGETS))
def test_bus_error(target, response):
    bench = new_bench()
    drv, vq = bench.driver, requestq(bench)
    drv.direction_output(3, 1)
    pending = drv.submit(MsgType.GET_VALUE, 3, kick=False)  # in the ring, device not told yet
    where, kind = BUS_TARGETS[target]
    addr, size = where(bench, vq, drv.lines[3])
    bench.memory.inject_error(addr, size, response, kind=kind)
    used_before = used_idx(bench, vq)
    log_start = len(bench.memory.dma_log)
    drv.kick()
    bench.device.step()

    new = bench.memory.dma_log[log_start:]
    failed = [i for i, a in enumerate(new) if a.response is not BusResponse.OKAY]
    assert failed, "the device never reached the failing range, so the request cannot have completed"
    fault = new[failed[0]]
    assert fault.response is response and overlaps(fault, addr, size)
    assert new[failed[0] + 1:] == [], "DMA after the bus error"
    assert_needs_reset(bench)
    assert used_idx(bench, vq) == used_before
    bench.assert_clean_dma()

    # Linux never sees a completion; its interrupt handler sees the configuration change.
    log_len = len(bench.memory.dma_log)
    with pytest.raises(DriverTimeout):
        drv.wait(pending)
    assert not pending.done
    assert drv.log.config_changes == 1
    assert len(bench.memory.dma_log) == log_len
    assert_dead(bench)
    assert_recovers(bench, LINUX_KNOWN_FEATURES, drv.vqs)


# ---------------------------------------------------------------------------------------------
# Reset with requests in flight (GEN-2, GEN-3, MMIO-5, contract §4)


@pytest.mark.req("GEN-2", "GEN-3", "MMIO-5", "MMIO-12", "MMIO-13", "C-4")
def test_reset_with_requests_in_flight():
    bench = new_bench()
    drv, vq = bench.driver, requestq(bench)
    drv.direction_output(5, 1)
    assert (bench.device.gpio_oe >> 5) & 1
    # an un-acknowledged used-buffer interrupt, for the reset to clear
    drv.submit(MsgType.GET_DIRECTION, 0)
    bench.device.step()
    assert bench.read(Reg.INTERRUPT_STATUS) == InterruptStatus.USED_BUFFER and bench.device.irq
    in_flight = [drv.submit(MsgType.GET_VALUE, line) for line in range(1, NGPIO)]  # notified, not run
    used_before = used_idx(bench, vq)
    log_start = len(bench.memory.dma_log)

    bench.write(Reg.STATUS, 0)
    assert bench.read(Reg.STATUS) == 0  # the very next access (GEN-2)
    assert bench.read(Reg.INTERRUPT_STATUS) == 0
    assert not bench.device.irq
    for index in (QueueIndex.REQUESTQ, QueueIndex.EVENTQ):
        bench.write(Reg.QUEUE_SEL, index)
        assert bench.read(Reg.QUEUE_READY) == 0
    assert bench.device.gpio_oe == 0 and bench.device.gpio_o == 0  # line state back to reset
    for _ in range(3):
        bench.notify(QueueIndex.REQUESTQ)
        bench.notify(QueueIndex.EVENTQ)
    assert bench.memory.dma_log[log_start:] == []
    assert used_idx(bench, vq) == used_before
    assert bench.read(Reg.INTERRUPT_STATUS) == 0
    assert not any(p.done for p in in_flight)
    assert_recovers(bench, LINUX_KNOWN_FEATURES, drv.vqs)
