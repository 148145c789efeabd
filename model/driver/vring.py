"""The driver side of a split virtqueue, as Linux's virtio_ring.c builds and reads it.

What matters to a device is reproduced: the ring layout (descriptor table, avail ring right after it,
used ring at the next 4 KiB boundary), the descriptor free list (so indices stop being consecutive
after churn and a chain's tail keeps a stale ``next``), one indirect table per request when
RING_INDIRECT_DESC is negotiated, kick suppression through avail_event or used.flags, used_event
updates, and the checks Linux makes on every used element. Buffers handed to the device are granted
to it in the DMA firewall and revoked when they come back.
"""

from dataclasses import dataclass, field

from ..constants import DescFlags, UsedFlags
from ..layouts import (
    DESC_PACKER, DESC_SIZE, RING_IDX_OFFSET, USED_ELEM_PACKER, USED_ELEM_SIZE, RingGeometry, need_event,
)
from ..memory import Grant, GuestMemory, Perm

LINUX_PAGE_SIZE = 4096
_NEXT, _WRITE, _INDIRECT = int(DescFlags.NEXT), int(DescFlags.WRITE), int(DescFlags.INDIRECT)


class BrokenRing(Exception):
    """What Linux's BAD_RING() reports; the queue is dead afterwards."""


class RingFull(Exception):
    """virtqueue_add_sgs() returned -ENOSPC."""


@dataclass
class InFlight:
    token: object
    descs_used: int
    grants: list[Grant] = field(default_factory=list)


def align_up(value: int, align: int) -> int:
    return -(-value // align) * align


class DriverVirtqueue:
    def __init__(self, memory: GuestMemory, index: int, num: int, *, indirect: bool, event_idx: bool):
        self.memory = memory
        self.index = index
        self.num = num
        self.indirect = indirect
        self.event_idx = event_idx
        geo = self.geometry = RingGeometry(num)
        used_offset = align_up(geo.desc_table_size + geo.avail_ring_size, LINUX_PAGE_SIZE)
        base = memory.alloc(used_offset + geo.used_ring_size, align=LINUX_PAGE_SIZE)
        self.desc_addr = base
        self.avail_addr = base + geo.desc_table_size
        self.used_addr = base + used_offset
        fw = memory.firewall
        owner = f"vq{index}"
        self.ring_grants = [
            fw.grant(self.desc_addr, geo.desc_table_size, Perm.READ, owner),
            fw.grant(self.avail_addr, geo.avail_ring_size, Perm.READ, owner),
            fw.grant(self.used_addr, geo.used_ring_size, Perm.WRITE, owner),
        ]
        self.free_next = [(i + 1) for i in range(num)]  # Linux's desc_extra[].next
        self.free_head = 0
        self.num_free = num
        self.avail_idx_shadow = 0
        self.num_added = 0
        self.last_used_idx = 0
        self.in_flight: dict[int, InFlight] = {}
        self.broken = False

    # -- adding buffers --------------------------------------------------------------------

    def write_desc(self, table: int, i: int, addr: int, length: int, flags: int, nxt: int) -> None:
        self.memory.write(table + DESC_SIZE * i, DESC_PACKER.pack(addr, length, flags, nxt))

    def add(self, out_bufs: list[tuple[int, int]], in_bufs: list[tuple[int, int]], token) -> int:
        """virtqueue_add_sgs(): device-readable buffers, then device-writable ones. Returns the head."""
        if self.broken:
            raise BrokenRing(f"vq{self.index} is broken")
        total = len(out_bufs) + len(in_bufs)
        assert total > 0
        fw = self.memory.firewall
        owner = f"vq{self.index}"
        sgs = [(a, n, _NEXT) for a, n in out_bufs] + [(a, n, _NEXT | _WRITE) for a, n in in_bufs]
        grants = [fw.grant(a, n, Perm.READ, owner) for a, n in out_bufs if n] + \
                 [fw.grant(a, n, Perm.WRITE, owner) for a, n in in_bufs if n]
        use_indirect = self.indirect and total > 1 and self.num_free > 0
        descs_used = 1 if use_indirect else total
        if self.num_free < descs_used:
            for g in grants:
                fw.revoke(g)
            raise RingFull(f"vq{self.index}: {self.num_free} free descriptors, {descs_used} needed")
        head = self.free_head
        if use_indirect:
            table = self.memory.alloc(DESC_SIZE * total, align=DESC_SIZE)  # kmalloc'd per request
            for i, (a, n, flags) in enumerate(sgs):
                last = i == total - 1
                # every entry's next is i + 1, the tail's included (alloc_indirect_split)
                self.write_desc(table, i, a, n, flags & ~_NEXT if last else flags, i + 1)
            grants.append(fw.grant(table, DESC_SIZE * total, Perm.READ, owner))
            self.write_desc(self.desc_addr, head, table, DESC_SIZE * total, _INDIRECT,
                             self.free_next[head])
            self.free_head = self.free_next[head]
        else:
            self._link_direct(sgs)
        self.num_free -= descs_used
        self.in_flight[head] = InFlight(token, descs_used, grants)
        self.publish(head)
        return head

    def free_indices(self, count: int) -> list[int]:
        """The descriptor indices the next ``count`` direct descriptors will take, in chain order."""
        indices, i = [], self.free_head
        for _ in range(count):
            indices.append(i)
            i = self.free_next[i] if i < self.num else i
        return indices

    def _link_direct(self, descs: list[tuple[int, int, int]]) -> None:
        """Write ``(addr, len, flags)`` descriptors along the free list from its head, linked by
        their ``next`` fields (the tail keeps its stale one), NEXT on all but the last."""
        i = self.free_head
        for k, (addr, length, flags) in enumerate(descs):
            last = k == len(descs) - 1
            self.write_desc(self.desc_addr, i, addr, length,
                            flags & ~_NEXT if last else flags | _NEXT, self.free_next[i])
            i = self.free_next[i]
        self.free_head = i

    def add_chain(self, descs: list[tuple[int, int, int]], token) -> int:
        """Publish a chain of direct descriptors ``(addr, len, flags)`` in the order given, for
        shapes Linux never builds (an INDIRECT pointer after direct ones, zero-length buffers,
        writable buffers over ring memory). NEXT and the links come from the free list, as in
        ``add``; the caller grants the buffers. Returns the head."""
        if self.broken:
            raise BrokenRing(f"vq{self.index} is broken")
        if not 0 < len(descs) <= self.num_free:
            raise RingFull(f"vq{self.index}: {self.num_free} free descriptors, {len(descs)} needed")
        head = self.free_head
        self._link_direct(descs)
        self.num_free -= len(descs)
        self.in_flight[head] = InFlight(token, len(descs))
        self.publish(head)
        return head

    def publish(self, head: int) -> None:
        """Put ``head`` in the next avail slot and advance avail.idx (after the entry, as with wmb)."""
        geo = self.geometry
        self.memory.write_u16(self.avail_addr + geo.avail_entry(self.avail_idx_shadow % self.num), head)
        self.avail_idx_shadow = (self.avail_idx_shadow + 1) & 0xFFFF
        self.memory.write_u16(self.avail_addr + RING_IDX_OFFSET, self.avail_idx_shadow)
        self.num_added += 1

    def kick_prepare(self) -> bool:
        """virtqueue_kick_prepare(): does the device want a notification for what was added?"""
        new = self.avail_idx_shadow
        old = (new - self.num_added) & 0xFFFF
        self.num_added = 0
        if self.event_idx:
            avail_event = self.memory.read_u16(self.used_addr + self.geometry.avail_event)
            return need_event(avail_event, new, old)
        return not self.memory.read_u16(self.used_addr) & UsedFlags.NO_NOTIFY

    # -- reaping ---------------------------------------------------------------------------

    def more_used(self) -> bool:
        return not self.broken and self.last_used_idx != self.memory.read_u16(self.used_addr + RING_IDX_OFFSET)

    def get_buf(self) -> tuple[object, int] | None:
        """virtqueue_get_buf(): the next completed token and used.len, or None."""
        if not self.more_used():
            return None
        slot = self.last_used_idx % self.num
        elem_id, elem_len = USED_ELEM_PACKER.unpack(
            self.memory.read(self.used_addr + self.geometry.used_elem(slot), USED_ELEM_SIZE))
        if elem_id >= self.num:
            self.broken = True
            raise BrokenRing(f"vq{self.index}: id {elem_id} out of range")
        flight = self.in_flight.pop(elem_id, None)
        if flight is None:
            self.broken = True
            raise BrokenRing(f"vq{self.index}: id {elem_id} is not a head!")
        self._detach(elem_id, flight)
        self.last_used_idx = (self.last_used_idx + 1) & 0xFFFF
        if self.event_idx:
            self.memory.write_u16(self.avail_addr + self.geometry.used_event, self.last_used_idx)
        return flight.token, elem_len

    def _detach(self, head: int, flight: InFlight) -> None:
        tail = head
        for _ in range(flight.descs_used - 1):
            tail = self.free_next[tail]
        self.free_next[tail] = self.free_head
        self.free_head = head
        self.num_free += flight.descs_used
        for g in flight.grants:
            self.memory.firewall.revoke(g)

    def set_avail_flags(self, flags: int) -> None:
        self.memory.write_u16(self.avail_addr, flags)

    def release(self) -> None:
        """Forget the queue (del_vqs): revoke the device's access to its rings and buffers."""
        for g in self.ring_grants:
            self.memory.firewall.revoke(g)
        for flight in self.in_flight.values():
            for g in flight.grants:
                self.memory.firewall.revoke(g)
        self.in_flight.clear()
