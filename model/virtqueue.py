"""The device side of one split virtqueue: configuration, chain parsing, used-ring updates and
notification suppression (spec "Split Virtqueues"; device contract §4-§5).

Every ring or buffer access goes through ``GuestMemory.dma_read``/``dma_write``, so it is logged and
checked by the DMA firewall. Anything malformed raises ``RingError``; the device turns that into
DEVICE_NEEDS_RESET (contract §6).
"""

from dataclasses import dataclass, field

from .config import DeviceConfig, is_power_of_two
from .constants import AvailFlags, DescFlags
from .layouts import (
    AVAIL_RING_ALIGN, DESC_PACKER, DESC_SIZE, DESC_TABLE_ALIGN, RING_IDX_OFFSET, USED_ELEM_PACKER,
    USED_RING_ALIGN, RingGeometry, need_event,
)
from .memory import GuestMemory


# Plain ints on the hot path: IntFlag arithmetic costs more than the rest of a descriptor walk.
_NEXT, _WRITE, _INDIRECT = int(DescFlags.NEXT), int(DescFlags.WRITE), int(DescFlags.INDIRECT)
_NO_INTERRUPT = int(AvailFlags.NO_INTERRUPT)


class RingError(Exception):
    """The driver broke a rule of the split ring; the device must stop using its rings."""


@dataclass(frozen=True)
class Segment:
    addr: int
    len: int


@dataclass
class DescriptorChain:
    """A parsed chain: its head index and its readable and writable buffers, in chain order."""

    head: int
    readable: list[Segment] = field(default_factory=list)
    writable: list[Segment] = field(default_factory=list)

    @property
    def readable_len(self) -> int:
        return sum(s.len for s in self.readable)

    @property
    def writable_len(self) -> int:
        return sum(s.len for s in self.writable)


def gather(memory: GuestMemory, segments: list[Segment], size: int) -> bytes:
    """Read the first ``size`` bytes of the byte stream formed by ``segments``, and no more."""
    out = bytearray()
    for seg in segments:
        if len(out) >= size:
            break
        n = min(seg.len, size - len(out))
        if n:
            out += memory.dma_read(seg.addr, n)
    return bytes(out)


def scatter(memory: GuestMemory, segments: list[Segment], data: bytes) -> int:
    """Write ``data`` across ``segments`` in order, as far as they reach; return the bytes written."""
    pos = 0
    for seg in segments:
        if pos >= len(data):
            break
        n = min(seg.len, len(data) - pos)
        if n:
            memory.dma_write(seg.addr, data[pos:pos + n])
            pos += n
    return pos


def _u16(memory: GuestMemory, addr: int) -> int:
    return int.from_bytes(memory.dma_read(addr, 2), "little")


class DeviceVirtqueue:
    """Registers and run-time state of one queue, as the device keeps them."""

    def __init__(self, index: int, memory: GuestMemory, config: DeviceConfig):
        self.index = index
        self.memory = memory
        self.config = config
        self.reset()

    def reset(self) -> None:
        self.num = 0
        self.desc_addr = 0
        self.driver_addr = 0
        self.device_addr = 0
        self.ready = False
        self._restart()

    def _restart(self) -> None:
        self.last_avail_idx = 0
        self.used_idx = 0
        self.avail_event_published: int | None = None
        self.kick_pending = False

    # -- configuration ---------------------------------------------------------------------

    def check_config(self) -> None:
        """Validate QueueNum and the ring addresses when the driver sets QueueReady (contract §4)."""
        if not is_power_of_two(self.num) or self.num > self.config.queue_size_max:
            raise RingError(f"queue {self.index}: QueueNum {self.num} is not a power of two in "
                            f"1..{self.config.queue_size_max}")
        geo = RingGeometry(self.num)
        limit = self.config.dma_addr_limit
        for name, addr, size, align in (
                ("descriptor table", self.desc_addr, geo.desc_table_size, DESC_TABLE_ALIGN),
                ("driver area", self.driver_addr, geo.avail_ring_size, AVAIL_RING_ALIGN),
                ("device area", self.device_addr, geo.used_ring_size, USED_RING_ALIGN)):
            if addr + size > limit:
                raise RingError(f"queue {self.index}: {name} at {addr:#x} is beyond the "
                                f"{self.config.dma_addr_width}-bit DMA address space")
            if addr % align:
                raise RingError(f"queue {self.index}: {name} at {addr:#x} is not {align}-byte aligned")

    def enable(self) -> None:
        self.check_config()
        self.ready = True
        self._restart()
        self.kick_pending = True  # look at the avail ring without waiting for a notify (contract §4)

    def disable(self) -> None:
        self.ready = False
        self._restart()

    @property
    def geometry(self) -> RingGeometry:
        return RingGeometry(self.num)

    # -- avail side ------------------------------------------------------------------------

    def available(self) -> int:
        """Read avail.idx and return how many new chains it announces."""
        avail_idx = _u16(self.memory, self.driver_addr + RING_IDX_OFFSET)
        pending = (avail_idx - self.last_avail_idx) & 0xFFFF
        if pending > self.num:
            raise RingError(f"queue {self.index}: avail.idx {avail_idx} is {pending} entries past "
                            f"the device's {self.last_avail_idx}, more than QueueNum {self.num}")
        return pending

    def pop(self, indirect_allowed: bool) -> DescriptorChain:
        """Take the next available chain and parse it completely."""
        slot = self.last_avail_idx % self.num
        head = _u16(self.memory, self.driver_addr + self.geometry.avail_entry(slot))
        self.last_avail_idx = (self.last_avail_idx + 1) & 0xFFFF
        return self._walk(head, indirect_allowed)

    def _walk(self, head: int, indirect_allowed: bool) -> DescriptorChain:
        q = f"queue {self.index}, chain {head}"
        if head >= self.num:
            raise RingError(f"{q}: head index {head} >= QueueNum {self.num}")
        chain = DescriptorChain(head)
        limit = self.config.dma_addr_limit
        table_addr, table_len = self.desc_addr, self.num
        in_indirect = False
        # Contract §5: at most QueueNum buffer descriptors in all (the pointer to an indirect
        # table is not one), and no more inside a table than it holds; so a walk is bounded.
        index, visited, in_table = head, 0, 0
        while True:
            in_table += 1
            if in_table > table_len:
                where = "indirect table" if in_indirect else "QueueNum"
                raise RingError(f"{q}: longer than the {where} ({table_len} descriptors): a loop?")
            visited += 1
            if visited > self.num:
                raise RingError(f"{q}: more than QueueNum ({self.num}) descriptors in all")
            addr, length, flags, nxt = DESC_PACKER.unpack(
                self.memory.dma_read(table_addr + DESC_SIZE * index, DESC_SIZE))
            if addr >= limit:
                # Whatever its length, even 0 (contract §5).
                raise RingError(f"{q}: descriptor address {addr:#x} is beyond the "
                                f"{self.config.dma_addr_width}-bit DMA space")
            if flags & _INDIRECT:
                if not indirect_allowed:
                    raise RingError(f"{q}: INDIRECT descriptor but RING_INDIRECT_DESC not negotiated")
                if in_indirect:
                    raise RingError(f"{q}: nested indirect descriptor")
                if flags & _NEXT:
                    raise RingError(f"{q}: descriptor has both INDIRECT and NEXT")
                if length == 0 or length % DESC_SIZE:
                    raise RingError(f"{q}: indirect table length {length} is 0 or not a multiple "
                                    f"of {DESC_SIZE}")
                if addr + length > limit:
                    raise RingError(f"{q}: indirect table at {addr:#x} is beyond the DMA space")
                table_addr, table_len = addr, length // DESC_SIZE
                in_indirect, index, in_table = True, 0, 0
                visited -= 1  # the pointer is not a buffer descriptor
                continue
            if addr + length > limit:
                raise RingError(f"{q}: buffer at {addr:#x} (+{length}) is beyond the DMA space")
            if flags & _WRITE:
                chain.writable.append(Segment(addr, length))
            elif chain.writable:
                raise RingError(f"{q}: device-readable descriptor after a device-writable one")
            else:
                chain.readable.append(Segment(addr, length))
            if not flags & _NEXT:
                return chain
            index = nxt
            if index >= table_len:
                where = "indirect table size" if in_indirect else "QueueNum"
                raise RingError(f"{q}: next index {index} >= {where} {table_len}")

    def publish_avail_event(self) -> bool:
        """EVENT_IDX: write avail_event = the next index the device will read, if not yet written.
        Returns True when it wrote, so that the caller re-reads avail.idx (closes the race with a
        driver that added a buffer just before it saw the new avail_event)."""
        if self.avail_event_published == self.last_avail_idx:
            return False
        self.memory.dma_write(self.device_addr + self.geometry.avail_event,
                              self.last_avail_idx.to_bytes(2, "little"))
        self.avail_event_published = self.last_avail_idx
        return True

    # -- used side -------------------------------------------------------------------------

    def push_used(self, head: int, length: int, event_idx: bool) -> bool:
        """Publish one used element and used.idx; return whether the driver wants an interrupt."""
        geo = self.geometry
        slot = self.used_idx % self.num
        self.memory.dma_write(self.device_addr + geo.used_elem(slot), USED_ELEM_PACKER.pack(head, length))
        old = self.used_idx
        self.used_idx = (self.used_idx + 1) & 0xFFFF
        self.memory.dma_write(self.device_addr + RING_IDX_OFFSET, self.used_idx.to_bytes(2, "little"))
        if event_idx:
            used_event = _u16(self.memory, self.driver_addr + geo.used_event)
            return need_event(used_event, self.used_idx, old)
        return not _u16(self.memory, self.driver_addr) & _NO_INTERRUPT
