"""Valid descriptor-chain shapes and notification logic of the requestq (device contract §4-§5).

Every expected value below comes from the spec notes or the device contract: GET_VALUE of an OUT line
returns its output latch, of an IN line the pin level; SET_VALUE replies [OK, 0] and sets the latch;
GET_DIRECTION returns the line's direction; used.len is the number of reply bytes written (2); used.id
is the chain's head; the interrupt follows avail.flags (no EVENT_IDX) or need_event() on used_event
(EVENT_IDX). Buffers built by hand are granted in the DMA firewall exactly as a correct device may use
them (readable: READ, writable: WRITE), so a firewall violation means the device touched something it
must not (VQ-2, VQ-3).
"""

import multiprocessing
import random
import struct
from concurrent.futures import ProcessPoolExecutor

import pytest
from hypothesis import given, settings, strategies as st

from conftest import Bench, make_bench
from hand_rings import FILL, indirect_table, readable, requestq, used_idx, writable
from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.constants import (
    AvailFlags, DescFlags, DeviceStatus, Direction, Feature, InterruptStatus, MsgType, QueueIndex,
    ReplyStatus,
)
from virtio_gpio.model.driver.linux_gpio import LINUX_KNOWN_FEATURES
from virtio_gpio.model.driver.vring import DriverVirtqueue
from virtio_gpio.model.layouts import (
    DESC_SIZE, RING_IDX_OFFSET, USED_ELEM_SIZE, GpioRequest, Reg, VirtqDesc, VirtqUsedElem,
)
from virtio_gpio.model.memory import AccessKind, Perm

NGPIO = 8
INDIRECT = Feature.RING_INDIRECT_DESC.mask
EVENT_IDX = Feature.RING_EVENT_IDX.mask
F_IRQ = Feature.GPIO_F_IRQ.mask
NO_INDIRECT = LINUX_KNOWN_FEATURES & ~INDIRECT
NO_EVENT_IDX = LINUX_KNOWN_FEATURES & ~EVENT_IDX
LIVE_STATUS = (DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK
               | DeviceStatus.DRIVER_OK)
NEXT, WRITE, INDIRECT_FLAG = DescFlags.NEXT, DescFlags.WRITE, DescFlags.INDIRECT


# ---------------------------------------------------------------------------------------------
# helpers


def new_bench(features: int = LINUX_KNOWN_FEATURES, **driver_kwargs) -> Bench:
    return make_bench(DeviceConfig(ngpio=NGPIO), features=features, **driver_kwargs)


def used_elem(bench: Bench, vq: DriverVirtqueue, idx: int) -> tuple[int, int]:
    """(id, len) of the used element written for free-running used index ``idx``."""
    raw = bench.memory.read(vq.used_addr + vq.geometry.used_elem(idx % vq.num), VirtqUsedElem.sizeof())
    elem = VirtqUsedElem.parse(raw)
    return elem.id, elem.len


def read_desc(bench: Bench, vq: DriverVirtqueue, index: int):
    return VirtqDesc.parse(bench.memory.read(vq.desc_addr + DESC_SIZE * index, DESC_SIZE))


def avail_entry(bench: Bench, vq: DriverVirtqueue, idx: int) -> int:
    return bench.memory.read_u16(vq.avail_addr + vq.geometry.avail_entry(idx % vq.num))


def avail_event(bench: Bench, vq: DriverVirtqueue) -> int:
    return bench.memory.read_u16(vq.used_addr + vq.geometry.avail_event)


def used_event(bench: Bench, vq: DriverVirtqueue) -> int:
    return bench.memory.read_u16(vq.avail_addr + vq.geometry.used_event)


def set_used_event(bench: Bench, vq: DriverVirtqueue, value: int) -> None:
    bench.memory.write_u16(vq.avail_addr + vq.geometry.used_event, value)


def request_bytes(msg_type: int, gpio: int, value: int = 0) -> bytes:
    return GpioRequest.build(dict(type=msg_type, gpio=gpio, value=value))


def ok(value: int = 0) -> bytes:
    return bytes([ReplyStatus.OK, value])


def device_writes_since(bench: Bench, start: int):
    return [a for a in bench.memory.dma_log[start:] if a.kind is AccessKind.WRITE]


# ---------------------------------------------------------------------------------------------
# VQ-1: a request is a byte stream, however the driver cuts it into descriptors


@st.composite
def chain_layouts(draw):
    """Sizes of the readable descriptors (summing to 8) and of the writable ones (summing to 2),
    with zero-length descriptors inserted anywhere, the middle included."""
    n_req = draw(st.integers(1, 8))
    cuts = sorted(draw(st.sets(st.integers(1, 7), min_size=n_req - 1, max_size=n_req - 1)))
    req_sizes = [b - a for a, b in zip([0, *cuts], [*cuts, 8])]
    rep_sizes = list(draw(st.sampled_from([(2,), (1, 1)])))
    for sizes in (req_sizes, rep_sizes):
        for _ in range(draw(st.integers(0, 2))):
            sizes.insert(draw(st.integers(0, len(sizes))), 0)
    return req_sizes, rep_sizes


@pytest.mark.req("VQ-1", "VQ-2", "VQ-3", "VQ-4", "VQ-10", "VQ-14", "GPIO-1", "C-5", "C-7")
@pytest.mark.parametrize("features", [LINUX_KNOWN_FEATURES, NO_INDIRECT], ids=["indirect", "direct"])
@settings(max_examples=60, deadline=None)
@given(layout=chain_layouts(),
       msg_type=st.sampled_from([MsgType.GET_VALUE, MsgType.SET_VALUE]),
       line=st.integers(0, NGPIO - 1),
       direction=st.sampled_from([Direction.OUT, Direction.IN]),
       level=st.integers(0, 1),
       value=st.integers(0, 1))
def test_request_split_over_descriptors(features, layout, msg_type, line, direction, level, value):
    req_sizes, rep_sizes = layout
    bench = new_bench(features)
    drv, vq = bench.driver, requestq(bench)
    if direction is Direction.OUT:
        drv.direction_output(line, level)  # latch = level, driven
    else:
        drv.direction_input(line)
        bench.device.set_input(line, level)
    other_lines_o = bench.device.gpio_o & ~(1 << line)

    req = request_bytes(msg_type, line, value)
    out_bufs, pos = [], 0
    for size in req_sizes:
        out_bufs.append((readable(bench, req[pos:pos + size], grant=False), size))
        pos += size
    in_bufs = [(writable(bench, size, grant=False), size) for size in rep_sizes]

    old = used_idx(bench, vq)
    head = vq.add(out_bufs, in_bufs, token="split")
    head_desc = read_desc(bench, vq, head)
    # the chain really has the intended form: one indirect table, or direct descriptors
    assert bool(head_desc.flags & INDIRECT_FLAG) == bool(features & INDIRECT)
    if features & INDIRECT:
        assert head_desc.len == DESC_SIZE * (len(req_sizes) + len(rep_sizes))
    bench.notify(QueueIndex.REQUESTQ)

    # GET_VALUE: OUT -> the latch, IN -> the pin; no state change (the latch of an IN line is
    # still its reset value 0). SET_VALUE: [OK, 0], the latch takes the value in any direction.
    if msg_type == MsgType.GET_VALUE:
        expected_reply, expected_latch = ok(level), (level if direction is Direction.OUT else 0)
    else:
        expected_reply, expected_latch = ok(0), value

    assert used_idx(bench, vq) == (old + 1) & 0xFFFF
    assert used_elem(bench, vq, old) == (head, 2)
    reply = b"".join(bench.memory.read(addr, size) for addr, size in in_bufs)
    assert reply == expected_reply
    o = bench.device.gpio_o
    assert o & ~(1 << line) == other_lines_o, "a request changed another line"
    assert (o >> line) & 1 == expected_latch
    assert (bench.device.gpio_oe >> line) & 1 == (direction is Direction.OUT)
    assert bench.read(Reg.INTERRUPT_STATUS) & InterruptStatus.USED_BUFFER
    bench.assert_clean_dma()
    assert vq.get_buf() == ("split", 2)
    assert bench.device.errors == []


@pytest.mark.req("VQ-1", "VQ-3", "C-5", "C-7")
@pytest.mark.parametrize("features", [LINUX_KNOWN_FEATURES, NO_INDIRECT], ids=["indirect", "direct"])
@pytest.mark.parametrize("shape", ["extra-descriptor", "same-buffer"])
def test_trailing_readable_bytes_are_ignored(features, shape):
    """Only the first 8 readable bytes are the request. The trailing bytes here form a SET_VALUE
    that would clear line 2's latch if the device parsed them."""
    bench = new_bench(features)
    bench.driver.direction_output(2, 1)
    vq = requestq(bench)
    req, trailer = request_bytes(MsgType.GET_VALUE, 2), request_bytes(MsgType.SET_VALUE, 2, 0)
    if shape == "extra-descriptor":
        out_bufs = [(readable(bench, req, grant=False), 8), (readable(bench, trailer, grant=False), 8)]
    else:
        out_bufs = [(readable(bench, req + trailer[:4], grant=False), 12)]
    res = writable(bench, 2, grant=False)
    old = used_idx(bench, vq)
    head = vq.add(out_bufs, [(res, 2)], token="trailing")
    bench.notify(QueueIndex.REQUESTQ)
    assert used_elem(bench, vq, old) == (head, 2)
    assert bench.memory.read(res, 2) == ok(1)
    assert (bench.device.gpio_o >> 2) & 1 == 1, "trailing bytes were executed"
    bench.assert_clean_dma()


@pytest.mark.req("VQ-1", "VQ-10", "GPIO-1", "C-5", "C-7")
@pytest.mark.parametrize("features", [LINUX_KNOWN_FEATURES, NO_INDIRECT], ids=["indirect", "direct"])
@pytest.mark.parametrize("in_sizes", [[8], [1, 7], [2, 6], [0, 3, 5], [1, 0, 1, 4]],
                         ids=lambda s: "+".join(map(str, s)))
def test_larger_reply_space(features, in_sizes):
    """Reply space beyond 2 bytes: used.len is still 2 and the bytes after the reply are untouched."""
    bench = new_bench(features)
    bench.driver.direction_output(5, 1)
    vq = requestq(bench)
    req = readable(bench, request_bytes(MsgType.GET_VALUE, 5), grant=False)
    in_bufs = [(writable(bench, size, grant=False), size) for size in in_sizes]
    old = used_idx(bench, vq)
    head = vq.add([(req, 8)], in_bufs, token="big")
    bench.notify(QueueIndex.REQUESTQ)
    assert used_elem(bench, vq, old) == (head, 2)
    stream = b"".join(bench.memory.read(addr, size) for addr, size in in_bufs)
    assert stream == ok(1) + bytes([FILL]) * (sum(in_sizes) - 2)
    bench.assert_clean_dma()


# ---------------------------------------------------------------------------------------------
# VQ-4: indirect shapes written by hand


def _linux_shape(bench, req, rep, pointer_flags):
    table = indirect_table(bench, [(req, 8, NEXT, 1), (rep, 2, WRITE, 2)])  # tail keeps stale next 2
    return [(9, table, 2 * DESC_SIZE, pointer_flags, 0)]


def _mixed_full_request(bench, req, rep, pointer_flags):
    table = indirect_table(bench, [(rep, 2, WRITE, 0)])
    return [(9, req, 8, NEXT, 4), (4, table, DESC_SIZE, pointer_flags, 0)]


def _mixed_split_request(bench, req, rep, pointer_flags):
    """Two direct readable descriptors (3 + 5 bytes), then a table with the reply split 1 + 1."""
    table = indirect_table(bench, [(rep, 1, WRITE | NEXT, 1), (rep + 1, 1, WRITE, 0)])
    return [(9, req, 3, NEXT, 12), (12, req + 3, 5, NEXT, 2), (2, table, 2 * DESC_SIZE, pointer_flags, 0)]


def _mixed_readable_in_table(bench, req, rep, pointer_flags):
    """The request continues inside the table: a device that took the pointer's WRITE flag for a
    writable buffer would see a readable descriptor after a writable one."""
    table = indirect_table(bench, [(req + 4, 4, NEXT, 1), (rep, 2, WRITE, 7)])
    return [(9, req, 4, NEXT, 6), (6, table, 2 * DESC_SIZE, pointer_flags, 0)]


def _table_out_of_order(bench, req, rep, pointer_flags):
    """Entry 0 first, then wherever ``next`` points (0 -> 2 -> 1)."""
    table = indirect_table(bench, [(req, 8, NEXT, 2), (rep + 1, 1, WRITE, 0), (rep, 1, WRITE | NEXT, 1)])
    return [(9, table, 3 * DESC_SIZE, pointer_flags, 0)]


def _direct_stale_next(bench, req, rep, pointer_flags):
    """A direct chain whose tail has no NEXT flag but a `next` of 0xffff (>= QueueNum): ignored."""
    return [(9, req, 8, NEXT, 3), (3, rep, 2, WRITE, 0xFFFF)]


def _direct_writable_then_indirect(bench, req, rep, pointer_flags):
    """Status in a direct writable buffer, value in a writable buffer inside a table after it:
    the table itself is never written."""
    table = indirect_table(bench, [(rep + 1, 1, WRITE, 0)])
    return [(9, req, 8, NEXT, 4), (4, rep, 1, WRITE | NEXT, 6), (6, table, DESC_SIZE, pointer_flags, 0)]


HAND_SHAPES = {
    "direct-writable-then-indirect": _direct_writable_then_indirect,
    "linux": _linux_shape,
    "mixed-full-request": _mixed_full_request,
    "mixed-split-request": _mixed_split_request,
    "mixed-readable-in-table": _mixed_readable_in_table,
    "table-out-of-order": _table_out_of_order,
    "direct-stale-next": _direct_stale_next,
}


SHAPE_PARAMS = [pytest.param(shape, flags, id=f"{shape}-{flag_id}")
                for shape in HAND_SHAPES
                for flags, flag_id in ((INDIRECT_FLAG, "plain"), (INDIRECT_FLAG | WRITE, "write-flag"))
                if shape != "direct-stale-next" or flag_id == "plain"]


@pytest.mark.req("VQ-4", "VQ-1", "VQ-2", "VQ-3", "VQ-14", "C-5", "C-7")
@pytest.mark.parametrize("shape, pointer_flags", SHAPE_PARAMS)
@pytest.mark.parametrize("msg_type", [MsgType.GET_VALUE, MsgType.SET_VALUE], ids=["get", "set"])
def test_hand_written_shapes(shape, pointer_flags, msg_type):
    bench = new_bench()
    bench.driver.direction_output(4, 1)  # line 4: OUT, latch 1
    vq = requestq(bench)
    req = readable(bench, request_bytes(msg_type, 4, 0))  # SET_VALUE clears the latch
    rep = writable(bench, 2)
    for index, addr, length, flags, nxt in HAND_SHAPES[shape](bench, req, rep, pointer_flags):
        vq.write_desc(vq.desc_addr, index, addr, length, flags, nxt)
    old = used_idx(bench, vq)
    vq.publish(9)
    bench.notify(QueueIndex.REQUESTQ)

    assert bench.device.errors == []
    assert bench.read(Reg.STATUS) == LIVE_STATUS
    assert used_idx(bench, vq) == (old + 1) & 0xFFFF
    assert used_elem(bench, vq, old) == (9, 2)
    if msg_type == MsgType.GET_VALUE:
        assert bench.memory.read(rep, 2) == ok(1)
        assert (bench.device.gpio_o >> 4) & 1 == 1
    else:
        assert bench.memory.read(rep, 2) == ok(0)
        assert (bench.device.gpio_o >> 4) & 1 == 0
    assert bench.read(Reg.INTERRUPT_STATUS) == InterruptStatus.USED_BUFFER
    bench.assert_clean_dma()


@pytest.mark.req("VQ-2", "VQ-10", "GPIO-1", "C-5")
def test_reply_follows_the_parse_when_it_overwrites_a_descriptor():
    """The status byte lands on the address of the next (writable) descriptor; the value byte
    still goes where that descriptor pointed when the chain was made available (contract §5)."""
    bench = new_bench()
    vq = requestq(bench)
    req = readable(bench, request_bytes(MsgType.GET_DIRECTION, 4))
    dest = writable(bench, 0x14) + 0x13  # a low address byte that status 0 or 1 changes
    over = vq.desc_addr + DESC_SIZE * 11
    bench.memory.firewall.grant(over, 1, Perm.WRITE, owner="test")
    vq.write_desc(vq.desc_addr, 9, req, 8, NEXT, 10)
    vq.write_desc(vq.desc_addr, 10, over, 1, WRITE | NEXT, 11)
    vq.write_desc(vq.desc_addr, 11, dest, 1, WRITE, 0)
    old = used_idx(bench, vq)
    vq.publish(9)
    bench.notify(QueueIndex.REQUESTQ)

    assert bench.device.errors == []
    assert used_elem(bench, vq, old) == (9, 2)
    assert bench.memory.read(over, 1) == bytes([ReplyStatus.OK])
    assert bench.memory.read(dest, 1) == bytes([Direction.IN])
    bench.assert_clean_dma()


@pytest.mark.req("VQ-1", "VQ-4", "C-5")
@pytest.mark.parametrize("direct", [1, 3])
def test_chain_of_queue_num_buffers_across_an_indirect_table(direct):
    """``direct`` buffer descriptors, then a pointer to a table that brings the chain to exactly
    QueueNum buffers: served (the pointer does not count, contract §5)."""
    bench = new_bench()
    vq = requestq(bench)
    req = readable(bench, request_bytes(MsgType.GET_DIRECTION, 4))
    rep = writable(bench, 2)
    cuts = [0, *range(1, direct), 8]  # the request over `direct` descriptors
    entries = [(rep, 2, WRITE | NEXT, 1)] + [(rep, 0, WRITE | NEXT, i + 2)
                                             for i in range(vq.num - direct - 1)]
    entries[-1] = (entries[-1][0], entries[-1][1], WRITE, 0)
    table = indirect_table(bench, entries)
    for k in range(direct):
        vq.write_desc(vq.desc_addr, k, req + cuts[k], cuts[k + 1] - cuts[k], NEXT, k + 1)
    vq.write_desc(vq.desc_addr, direct, table, DESC_SIZE * len(entries), INDIRECT_FLAG, 0)
    old = used_idx(bench, vq)
    vq.publish(0)
    bench.notify(QueueIndex.REQUESTQ)

    assert direct + len(entries) == vq.num
    assert bench.device.errors == []
    assert used_elem(bench, vq, old) == (0, 2)
    assert bench.memory.read(rep, 2) == ok(Direction.IN)
    bench.assert_clean_dma()


# ---------------------------------------------------------------------------------------------
# Free-list churn: heads are not consecutive, tails carry stale `next` values


@pytest.mark.req("VQ-14", "VQ-1", "C-5", "C-7")
def test_free_list_churn():
    # Without INDIRECT every request takes two descriptors; 16 of them fill the table, so the
    # descriptor 15 (whose free-list `next` is 16 = QueueNum) ends up as a tail too.
    bench = new_bench(NO_INDIRECT, queue_size=16)
    drv, vq = bench.driver, requestq(bench)
    assert vq.num == 16
    for line in range(0, NGPIO, 2):
        drv.direction_output(line, int(line % 4 == 0))  # even lines OUT, odd lines stay IN
    expected_dir = [Direction.OUT if line % 2 == 0 else Direction.IN for line in range(NGPIO)]
    all_heads, stale_tails = [], 0
    for rnd, size in enumerate([3, 8, 5, 1, 7, 8, 2, 6, 4, 8, 8, 5]):
        lines = [(3 * rnd + k) % NGPIO for k in range(size)]
        pending, heads = [], []
        old = used_idx(bench, vq)
        for line in lines:
            msg = MsgType.GET_DIRECTION if (rnd + line) % 2 else MsgType.GET_VALUE
            pending.append((drv.submit(msg, line, kick=False), msg, line))
            heads.append(avail_entry(bench, vq, vq.avail_idx_shadow - 1))
            tail = read_desc(bench, vq, heads[-1]).next
            assert not read_desc(bench, vq, tail).flags & NEXT
            stale_tails += read_desc(bench, vq, tail).next >= vq.num
        drv.kick()
        drv.wait(*(p for p, _, _ in pending))
        assert used_idx(bench, vq) == (old + size) & 0xFFFF
        # contract §7: this core answers requestq chains in order, so used.id follows avail order
        assert [used_elem(bench, vq, old + i) for i in range(size)] == [(h, 2) for h in heads]
        for p, msg, line in pending:
            if msg == MsgType.GET_DIRECTION:
                want = expected_dir[line]
            else:
                want = int(line % 4 == 0) if expected_dir[line] is Direction.OUT else 0
            assert drv.finish(p) == ok(want), f"round {rnd}, line {line}, {msg.name}"
        all_heads.append(heads)
    # the run must really have exercised a permuted free list
    assert any(b != a + 2 for heads in all_heads for a, b in zip(heads, heads[1:]))
    assert stale_tails, "no tail carried a `next` >= QueueNum"
    assert bench.device.errors == []
    bench.assert_clean_dma()


# ---------------------------------------------------------------------------------------------
# Notification suppression


@pytest.mark.req("VQ-5", "VQ-6", "VQ-11", "VQ-15", "MMIO-4", "MMIO-13", "C-3", "C-5")
@pytest.mark.parametrize("avail_flags, used_event_offset, expect_irq", [
    (0, 0, True),
    (0, 5, True),  # a used_event that EVENT_IDX would treat as "not yet": ignored
    (AvailFlags.NO_INTERRUPT, 0, False),  # a used_event that EVENT_IDX would fire on: ignored
    (AvailFlags.NO_INTERRUPT, 5, False),
], ids=["flags0", "flags0-used_event-ahead", "no_interrupt", "no_interrupt-used_event-ahead"])
def test_avail_flags_without_event_idx(avail_flags, used_event_offset, expect_irq):
    bench = new_bench(NO_EVENT_IDX)
    drv, vq = bench.driver, requestq(bench)
    assert bench.read(Reg.INTERRUPT_STATUS) == 0
    old = used_idx(bench, vq)
    vq.set_avail_flags(avail_flags)
    set_used_event(bench, vq, old + used_event_offset)
    pending = drv.submit(MsgType.GET_DIRECTION, 1)
    bench.device.step()
    assert used_idx(bench, vq) == (old + 1) & 0xFFFF, "the buffer must be used either way"
    assert bool(bench.read(Reg.INTERRUPT_STATUS) & InterruptStatus.USED_BUFFER) == expect_irq
    assert bench.device.irq == expect_irq
    assert bench.memory.read_u16(vq.used_addr) in (0, 1)  # VQ-11
    assert vq.get_buf() == (pending, 2)
    assert bench.memory.read(pending.res, 2) == ok(Direction.IN)


@pytest.mark.req("VQ-7", "VQ-8", "VQ-12", "C-2", "C-5")
@pytest.mark.parametrize("batch, offset, avail_flags, expect_irq", [
    # need_event(used_event, new, old) with new = old + batch: true iff (used_event - old) mod 2^16
    # lies in [0, batch).
    (1, 0, 0, True),
    (1, -1, 0, False),
    (1, 1, 0, False),
    (1, 0x8000, 0, False),
    (1, 0, AvailFlags.NO_INTERRUPT, True),  # avail.flags is ignored with EVENT_IDX
    (1, 1, AvailFlags.NO_INTERRUPT, False),
    (3, 0, 0, True),
    (3, 2, 0, True),
    (3, 2, AvailFlags.NO_INTERRUPT, True),
    (3, 3, 0, False),
    (3, -1, 0, False),
    (3, 0x7FFF, 0, False),
])
def test_used_event(batch, offset, avail_flags, expect_irq):
    bench = new_bench()
    drv, vq = bench.driver, requestq(bench)
    assert bench.read(Reg.INTERRUPT_STATUS) == 0
    old = used_idx(bench, vq)
    vq.set_avail_flags(avail_flags)
    pending = [drv.submit(MsgType.GET_DIRECTION, g, kick=False) for g in range(batch)]
    set_used_event(bench, vq, old + offset)
    log_start = len(bench.memory.dma_log)
    bench.notify(QueueIndex.REQUESTQ)
    assert used_idx(bench, vq) == (old + batch) & 0xFFFF
    assert bool(bench.read(Reg.INTERRUPT_STATUS) & InterruptStatus.USED_BUFFER) == expect_irq
    assert bench.device.irq == expect_irq
    # VQ-12: used.flags stays 0, never written
    assert bench.memory.read_u16(vq.used_addr) == 0
    assert not any(a.addr < vq.used_addr + 2 and vq.used_addr < a.addr + a.size
                   for a in device_writes_since(bench, log_start))
    # avail_event: the next avail index the device will read, i.e. everything was consumed
    assert avail_event(bench, vq) == vq.avail_idx_shadow
    for p in pending:
        assert vq.get_buf() == (p, 2)
    bench.assert_clean_dma()


@pytest.mark.req("VQ-12", "C-2", "C-5")
def test_avail_event_tracks_every_kick():
    """The Linux driver kicks only when need_event(avail_event, ...) says so; the device must keep
    avail_event current after every drain or requests stall."""
    bench = new_bench()
    drv, vq = bench.driver, requestq(bench)
    for rnd in range(20):
        pending = [drv.submit(MsgType.GET_DIRECTION, g, kick=False) for g in range(rnd % NGPIO + 1)]
        notifies = bench.transport.register_writes
        drv.kick()
        assert bench.transport.register_writes == notifies + 1, f"round {rnd}: driver did not kick"
        drv.wait(*pending)
        assert avail_event(bench, vq) == vq.avail_idx_shadow
        assert used_event(bench, vq) == used_idx(bench, vq)  # the driver's own bookkeeping
    bench.assert_clean_dma()


# ---------------------------------------------------------------------------------------------
# VQ-14 and index wrap: more than 65536 requests through the Linux driver model

WRAP_NGPIO = 16
WRAP_BATCH = WRAP_NGPIO  # one request per line in flight (gpio-virtio.c has one buffer pair per line)
WRAP_VARIANTS = {
    # Linux's default shape: one indirect descriptor per request; QueueNum = batch, so every kick
    # makes avail.idx move by exactly QueueNum.
    "event_idx+indirect": (LINUX_KNOWN_FEATURES, WRAP_BATCH),
    # Two direct descriptors per request: a batch takes every descriptor of the table.
    "no_event_idx+direct": (LINUX_KNOWN_FEATURES & ~EVENT_IDX & ~INDIRECT, 2 * WRAP_BATCH),
}


def run_wrap(features: int, queue_size: int) -> dict:
    """Batches of WRAP_BATCH requests per kick until used.idx has wrapped; every reply, used element
    and ring index is checked on the way. Runs in a worker process (see ``wrap_runs``)."""
    bench = make_bench(DeviceConfig(ngpio=WRAP_NGPIO), features=features, queue_size=queue_size)
    bench.memory.log_dma = False
    drv, vq, mem, dev = bench.driver, requestq(bench), bench.memory, bench.device
    event_idx = bool(features & EVENT_IDX)
    assert vq.num == queue_size
    for line in range(WRAP_NGPIO):
        drv.direction_output(line, 0)
    latch = [0] * WRAP_NGPIO
    # Make the batch that crosses 65536 straddle it (e.g. 65528 -> 8), not land on 0 exactly.
    while used_idx(bench, vq) % WRAP_BATCH != WRAP_BATCH // 2:
        assert drv.get(0) == 0
    total = used_idx(bench, vq)  # unwrapped count of used entries
    rng = random.Random(features)
    wraps, straddle = 0, None
    while total < 65536 + 4 * WRAP_BATCH:
        before, start = used_idx(bench, vq), vq.avail_idx_shadow
        assert before == total & 0xFFFF
        batch = []
        for line in range(WRAP_NGPIO):
            if rng.getrandbits(1):
                v = rng.getrandbits(1)
                batch.append((drv.submit(MsgType.SET_VALUE, line, v, kick=False), ok(0)))
                latch[line] = v
            else:
                batch.append((drv.submit(MsgType.GET_VALUE, line, kick=False), ok(latch[line])))
        ring = struct.unpack_from(f"<{vq.num}H", mem.read(vq.avail_addr + vq.geometry.avail_entry(0),
                                                          2 * vq.num))
        heads = [ring[(start + i) % vq.num] for i in range(WRAP_BATCH)]
        drv.kick()
        drv.wait(*(p for p, _ in batch))
        after = used_idx(bench, vq)
        assert after == (before + WRAP_BATCH) & 0xFFFF
        if after < before:
            wraps, straddle = wraps + 1, (before, after)
        used = struct.unpack_from(f"<{2 * vq.num}I", mem.read(vq.used_addr + vq.geometry.used_elem(0),
                                                              USED_ELEM_SIZE * vq.num))
        elems = [(used[2 * ((before + i) % vq.num)], used[2 * ((before + i) % vq.num) + 1])
                 for i in range(WRAP_BATCH)]
        assert elems == [(h, 2) for h in heads], f"used ring from used idx {before}"
        for i, (p, want) in enumerate(batch):
            assert mem.read(p.res, 2) == want, f"request {total + i}"
        assert dev.gpio_o == sum(bit << line for line, bit in enumerate(latch))
        if event_idx:
            assert avail_event(bench, vq) == vq.avail_idx_shadow
            assert used_event(bench, vq) == after
        total += WRAP_BATCH
    return dict(total=total, wraps=wraps, straddle=straddle, used_idx=used_idx(bench, vq),
                avail_idx=mem.read_u16(vq.avail_addr + RING_IDX_OFFSET),
                avail_event=avail_event(bench, vq), used_event=used_event(bench, vq),
                status=bench.read(Reg.STATUS), errors=[e.reason for e in dev.errors],
                violations=[str(v) for v in mem.firewall.violations],
                spurious=drv.log.spurious_interrupts)


@pytest.fixture(scope="module")
def wrap_runs():
    """Both wrap variants run at once, in two worker processes. Each needs some 65600 requests at
    roughly 150 us apiece in the model (about 10 s per variant); side by side they cost the suite
    half the wall time on a 2-core machine."""
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("fork")) as pool:
        yield {name: pool.submit(run_wrap, *args) for name, args in WRAP_VARIANTS.items()}


@pytest.mark.req("VQ-14", "VQ-7", "VQ-12", "VQ-5", "C-5", "C-7")
@pytest.mark.parametrize("variant", list(WRAP_VARIANTS))
def test_index_wrap(wrap_runs, variant):
    r = wrap_runs[variant].result()
    assert r["total"] > 65536
    assert r["wraps"] == 1
    before, after = r["straddle"]
    assert before > 65536 - WRAP_BATCH and 0 < after < WRAP_BATCH
    assert r["used_idx"] == r["total"] & 0xFFFF == r["avail_idx"]
    if WRAP_VARIANTS[variant][0] & EVENT_IDX:
        assert r["avail_event"] == r["avail_idx"]
        assert r["used_event"] == r["used_idx"]
    assert r["status"] == LIVE_STATUS
    assert r["errors"] == []
    assert r["violations"] == []
    assert r["spurious"] == 0


# ---------------------------------------------------------------------------------------------
# VQ-13: spurious notifications


@pytest.mark.req("VQ-13", "C-4")
@pytest.mark.parametrize("features", [LINUX_KNOWN_FEATURES, NO_EVENT_IDX], ids=["event_idx", "no_event_idx"])
def test_notify_with_nothing_new(features):
    bench = new_bench(features)
    vq = requestq(bench)
    old = used_idx(bench, vq)
    log_start = len(bench.memory.dma_log)
    for _ in range(3):
        bench.notify(QueueIndex.REQUESTQ)
    # The device may look at avail.idx to find nothing new, but nothing else.
    for access in bench.memory.dma_log[log_start:]:
        assert access.kind is AccessKind.READ, access
        assert vq.avail_addr <= access.addr and access.addr + access.size <= vq.avail_addr + 4, access
    assert used_idx(bench, vq) == old
    assert bench.read(Reg.INTERRUPT_STATUS) == 0
    assert bench.read(Reg.STATUS) == LIVE_STATUS
    assert bench.driver.get_direction(3) == Direction.IN  # still works afterwards


@pytest.mark.req("VQ-13", "MMIO-7", "C-4")
@pytest.mark.parametrize("queue", [2, 5, 0xFFFF])
def test_notify_for_nonexistent_queue(queue):
    bench = new_bench()
    log_start = len(bench.memory.dma_log)
    bench.notify(queue)
    bench.device.step()
    assert bench.memory.dma_log[log_start:] == []
    assert bench.read(Reg.INTERRUPT_STATUS) == 0
    assert bench.read(Reg.STATUS) == LIVE_STATUS
    assert bench.driver.get_direction(3) == Direction.IN


@pytest.mark.req("VQ-13", "MMIO-7", "C-4")
@pytest.mark.parametrize("case", ["eventq-not-negotiated", "eventq-ready-cleared"])
def test_notify_for_queue_not_ready(case):
    if case == "eventq-not-negotiated":
        bench = new_bench(LINUX_KNOWN_FEATURES & ~F_IRQ)
        assert len(bench.driver.vqs) == 1
    else:
        bench = new_bench()
        bench.write(Reg.QUEUE_SEL, QueueIndex.EVENTQ)
        bench.write(Reg.QUEUE_READY, 0)
        assert bench.read(Reg.QUEUE_READY) == 0
        # an eventq buffer (line 0, which does not even have an irq type) sits in the ring
        evq = bench.driver.vqs[QueueIndex.EVENTQ]
        ireq, ires = readable(bench, b"\0\0", grant=False), writable(bench, 1, grant=False)
        evq.add([(ireq, 2)], [(ires, 1)], token=0)
    log_start = len(bench.memory.dma_log)
    bench.notify(QueueIndex.EVENTQ)
    bench.device.step()
    assert bench.memory.dma_log[log_start:] == []
    assert bench.read(Reg.INTERRUPT_STATUS) == 0
    assert bench.read(Reg.STATUS) == LIVE_STATUS
    assert bench.driver.get_direction(3) == Direction.IN


# ---------------------------------------------------------------------------------------------
# MMIO-7 / GEN-1: no ring access before DRIVER_OK and QueueReady, nor after QueueReady = 0

HAND_FEATURES = Feature.VERSION_1.mask | INDIRECT | EVENT_IDX  # no F_IRQ: one queue to set up
HAND_QUEUE_SIZE = 16



def hand_configure_queue(bench: Bench, index: int, features: int) -> DriverVirtqueue:
    vq = DriverVirtqueue(bench.memory, index, HAND_QUEUE_SIZE, indirect=bool(features & INDIRECT),
                         event_idx=bool(features & EVENT_IDX))
    bench.write(Reg.QUEUE_SEL, index)
    bench.write(Reg.QUEUE_SIZE, vq.num)
    for low, addr in ((Reg.QUEUE_DESC_LOW, vq.desc_addr), (Reg.QUEUE_DRIVER_LOW, vq.avail_addr),
                      (Reg.QUEUE_DEVICE_LOW, vq.used_addr)):
        bench.write(low, addr & 0xFFFF_FFFF)
        bench.write(low + 4, addr >> 32)
    return vq


@pytest.mark.req("GEN-1", "MMIO-7", "DRV-9", "C-4")
@pytest.mark.parametrize("order", ["queue_ready-then-driver_ok", "driver_ok-then-queue_ready"])
def test_no_ring_access_before_driver_ok_and_queue_ready(order):
    bench = make_bench(DeviceConfig(ngpio=NGPIO), probe=False)
    assert bench.negotiate(HAND_FEATURES)
    vq = hand_configure_queue(bench, QueueIndex.REQUESTQ, HAND_FEATURES)
    req = readable(bench, request_bytes(MsgType.GET_DIRECTION, 6), grant=False)
    res = writable(bench, 2, grant=False)
    head = vq.add([(req, 8)], [(res, 2)], token="early")

    first, second = ((Reg.QUEUE_READY, 1), (Reg.STATUS, LIVE_STATUS))
    if order == "driver_ok-then-queue_ready":
        first, second = second, first
    bench.write(*first)
    for _ in range(3):
        bench.notify(QueueIndex.REQUESTQ)  # a driver bug, but the device must not react to it
    assert bench.memory.dma_log == []
    assert bench.read(Reg.INTERRUPT_STATUS) == 0

    bench.write(*second)  # now both conditions hold: the device must look without a notify
    bench.device.step()
    assert used_idx(bench, vq) == 1
    assert used_elem(bench, vq, 0) == (head, 2)
    assert bench.memory.read(res, 2) == ok(Direction.IN)
    assert bench.read(Reg.INTERRUPT_STATUS) == InterruptStatus.USED_BUFFER
    bench.assert_clean_dma()


@pytest.mark.req("MMIO-7", "MMIO-10", "DRV-6", "C-4")
def test_no_ring_access_after_queue_ready_cleared():
    bench = new_bench()
    vq = requestq(bench)
    bench.write(Reg.QUEUE_SEL, QueueIndex.REQUESTQ)
    bench.write(Reg.QUEUE_READY, 0)
    assert bench.read(Reg.QUEUE_READY) == 0  # read back at once, as Linux does
    old = used_idx(bench, vq)
    log_start = len(bench.memory.dma_log)
    bench.driver.submit(MsgType.GET_DIRECTION, 1)  # published and notified
    for _ in range(3):
        bench.notify(QueueIndex.REQUESTQ)
    assert bench.memory.dma_log[log_start:] == []
    assert used_idx(bench, vq) == old
    assert bench.read(Reg.INTERRUPT_STATUS) == 0
