"""The virtqueue engine: walks split-ring descriptor chains over the DMA port, runs GPIO requests,
holds and returns eventq buffers, and publishes used elements (device contract §4-§8).

One sequential state machine, one chain at a time, in the order the golden model works:
the requestq is drained first (reading avail.idx again until nothing is new), then the eventq, then
due interrupt events, lowest line first. A chain is parsed once, as byte streams (VQ-1): the first
8 (or 2) readable bytes are gathered into the request, and the non-empty writable descriptors that
the longest reply can reach are recorded as it goes (the first in flip-flops, the rest in a small
memory). The reply is scattered over those records only, so it lands where the parse said even if
an earlier reply byte overwrote a descriptor (contract §5). A chain may visit at most QueueNum
buffer descriptors, so its walk is bounded. Every malformation of §5 and every bus error ends in
``device_error`` (§6), after which the engine touches nothing until the device is reset.
"""

from contextlib import contextmanager

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.config import DeviceConfig
from ..model.constants import (
    NUM_QUEUES, DescFlags, AvailFlags, IrqStatus, MsgType, QueueIndex, ReplyStatus,
)
from ..model.layouts import (
    DESC_SIZE, GPIO_REPLY_SIZE, GPIO_REQUEST_SIZE, IRQ_REPLY_SIZE, IRQ_REQUEST_SIZE, RING_IDX_OFFSET,
    USED_ELEM_SIZE, RingGeometry, RingIndex,
)
from .dma import MAX_WRITE_BYTES, DmaCommandSignature
from .gpio_bank import LOOKUP_CYCLES, GpioEventSignature, GpioRequestSignature
from .layouts import Descriptor, GpioRequest, IrqRequest, UsedElement
from .registers import TransportSignature

INDEX_BITS = 16  # ring indices and descriptor indices
TABLE_LEN_BITS = 32 - 4 + 1  # descriptors in an indirect table: le32 len / 16, plus a spare bit
DESCS_PER_FETCH = 2  # one burst brings a descriptor and the one after it (Linux's indirect pair)


class Continuation(enum.Enum, shape=2):
    """What comes after a used element has been published."""
    NEXT_CHAIN = 0  # go on draining the queue
    REPLY = 1  # a released eventq buffer is back: now send the request's reply
    IDLE = 2  # an interrupt event was delivered


class VirtqueueEngine(wiring.Component):
    def __init__(self, config: DeviceConfig):
        self.config = config
        aw = config.dma_addr_width
        super().__init__({
            "transport": In(TransportSignature(aw, config.queue_size_max)),
            "dma": Out(DmaCommandSignature(aw)),
            "gpio_request": Out(GpioRequestSignature()),
            "gpio_event": Out(GpioEventSignature(config.ngpio, aw)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        aw = cfg.dma_addr_width
        tr, dma, gr, ev = self.transport, self.dma, self.gpio_request, self.gpio_event
        names_size = cfg.gpio_names_size
        # Reply lengths never exceed this: lengths of writable descriptors are kept saturated at it,
        # which changes no comparison with a reply length and keeps the counters narrow.
        reply_max = max(GPIO_REPLY_SIZE, 1 + names_size)
        reply_shape = range(reply_max + 1)

        def saturate(length):
            """``min(length, reply_max)`` of a 32-bit descriptor length, narrow."""
            bits = reply_max.bit_length()
            over = (length[bits:] != 0) | (length[:bits] >= reply_max)
            return Mux(over, reply_max, length[:bits])

        # -- per-queue run-time state --------------------------------------------------------
        kick_pending = Signal(NUM_QUEUES)
        last_avail = [Signal(INDEX_BITS, name=f"last_avail{q}") for q in range(NUM_QUEUES)]
        used_idx = [Signal(INDEX_BITS, name=f"used_idx{q}") for q in range(NUM_QUEUES)]
        published = [Signal(INDEX_BITS, name=f"avail_event{q}") for q in range(NUM_QUEUES)]
        published_valid = Signal(NUM_QUEUES)

        q = Signal(range(NUM_QUEUES))  # the queue being drained
        q_last_avail = Cat(last_avail).word_select(q, INDEX_BITS)
        pending = Signal(len(tr.queues[0].num))  # chains announced by avail.idx, not yet taken
        avail_moved = Signal(INDEX_BITS)  # avail.idx - last_avail, as just read

        # -- the chain being parsed ----------------------------------------------------------
        head = Signal(INDEX_BITS)
        table = Signal(aw)
        table_len = Signal(TABLE_LEN_BITS)
        # Buffer descriptors the walk may still visit: QueueNum for the whole chain, the pointer
        # to an indirect table not counted, and no more than that table holds (contract §5).
        budget = Signal(range(cfg.queue_size_max + 2))
        in_indirect = Signal()
        index = Signal(INDEX_BITS)
        index_next = Signal(INDEX_BITS + 1)
        m.d.comb += index_next.eq(index + 1)
        # The descriptor cache is the DMA port's buffer of the last long read: the descriptors at
        # cache_base and (if cache_count is 2) cache_base + 1 = cache_next.
        cache_base = Signal(INDEX_BITS)
        cache_next = Signal(INDEX_BITS + 1)
        cache_count = Signal(range(DESCS_PER_FETCH + 1))
        # Whether `index` is the first or the second cached descriptor: updated wherever either
        # changes, so that FETCH decides from flip-flops, without comparing indices.
        hit_first = Signal()
        hit_second = Signal()
        slot = Signal(range(DESCS_PER_FETCH))  # the cached descriptor being decoded
        desc = data.View(Descriptor, dma.rdata.word_select(slot, Descriptor.size))
        # The request is gathered into the DMA port's short-read buffer (each read lands at `have`).
        request = data.View(GpioRequest, dma.rdata_short[:GpioRequest.size])
        have = Signal(range(GPIO_REQUEST_SIZE + 1))  # request bytes gathered
        gather_len = Signal(range(GPIO_REQUEST_SIZE + 1))  # bytes the next GATHER reads
        writable_seen = Signal()
        wlen = Signal(reply_shape)  # sum of writable lengths, saturating at reply_max
        segment = data.StructLayout({"addr": aw, "len": reply_shape})
        first_w = Signal(data.StructLayout({"valid": 1, "addr": aw, "len": reply_shape}))
        # The writable descriptors after the first, as the walk found them. Each holds at least
        # one byte and is recorded only while the reply might still reach it, so reply_max - 1
        # entries are enough.
        later_count = Signal(range(reply_max))  # recorded so far (the walk), or used (the reply)
        later_w_write = Signal()  # record `later_w_in` at `later_count`
        later_w_in = Signal(segment)
        later_w_out = Signal(segment)  # the record at `later_count`, a cycle after it is set
        if reply_max - 1 > 1:
            m.submodules.later_w = later_w = Memory(shape=segment, depth=reply_max - 1, init=[])
            wr, rd = later_w.write_port(), later_w.read_port()
            m.d.comb += [wr.en.eq(later_w_write), wr.addr.eq(later_count), wr.data.eq(later_w_in),
                         rd.addr.eq(later_count), later_w_out.eq(rd.data)]
        else:  # one record (no names): a register, as a memory would need a 0-bit address
            with m.If(later_w_write):
                m.d.sync += later_w_out.eq(later_w_in)
        need = Mux(q == QueueIndex.EVENTQ, IRQ_REQUEST_SIZE, GPIO_REQUEST_SIZE)
        # The GPIO bank looks at one line: the request's, or the one an eventq buffer is for.
        irq_request = data.View(IrqRequest, dma.rdata_short[:IrqRequest.size])
        # The bank looks the request up from these in LOOKUP_CYCLES; the last request byte
        # arrives with GATHER's `done`, and CHAIN_DONE lies between that and any state that uses
        # the lookup (REQUEST, EVENT_BUFFER).
        m.d.comb += [gr.gpio.eq(Mux(q == QueueIndex.EVENTQ, irq_request.gpio, request.gpio)),
                     gr.type.eq(request.type), gr.value.eq(request.value),
                     gr.irq_negotiated.eq(tr.irq_negotiated)]
        assert LOOKUP_CYCLES <= 2, "GATHER's done cycle and CHAIN_DONE must cover the lookup"

        # -- the reply and the used element to publish ---------------------------------------
        status = Signal(8)
        reply_value = Signal(8)
        reply_len = Signal(reply_shape)
        names = Signal()  # the reply carries the names block
        seg = Signal(data.StructLayout({"addr": aw, "len": reply_shape, "written": reply_shape}))
        pos = Signal(reply_shape)  # reply bytes written
        chunk = Signal(range(MAX_WRITE_BYTES + 1))
        chunk_data = Signal(8 * MAX_WRITE_BYTES)
        fill = Signal(range(MAX_WRITE_BYTES + 1))
        push_q = Signal(range(NUM_QUEUES))
        push_head = Signal(INDEX_BITS)
        push_len = Signal(reply_shape)
        then = Signal(Continuation)
        push_used_idx = Cat(used_idx).word_select(push_q, INDEX_BITS)
        used_next = (push_used_idx + 1)[:INDEX_BITS]

        # -- the DMA command helper ----------------------------------------------------------
        # One address adder for every command: a state first loads its base and offset into
        # op_base/op_off (`staged`), then issues the command at their sum. The carry out also
        # serves the descriptor bounds check.
        op_base = Signal(aw)
        op_off = Signal(32)
        op_sum = Signal(aw + 1)
        m.d.comb += [op_sum.eq(op_base + op_off), dma.addr.eq(op_sum[:aw])]
        staged = Signal()
        issued = Signal()
        abort = Signal()
        # The queues the engine works with. Restarting either abandons the work of a working
        # state; elsewhere it makes no difference, so `abort` does not depend on the state.
        in_use = Signal(NUM_QUEUES)
        m.d.comb += [in_use.eq((1 << q) | (1 << push_q)),
                     abort.eq(tr.reset | ~tr.live | (tr.restart & in_use).any()),
                     dma.abort.eq(abort)]
        # The register file's events arrive a cycle after the write that raises them: what this
        # engine decided in that cycle must not take effect when the event abandons the work
        # (the GPIO request is not run, neither the interrupt nor the device error is raised).

        # The rest of the command, and which one it is, is loaded in the same cycle as the
        # operands, so that the DMA port starts from flip-flops and not from the engine's state
        # decoding.
        op_length = Signal.like(dma.length)
        op_wdata = Signal.like(dma.wdata)
        op_dest = Signal.like(dma.dest)
        op_kind = {"read": Signal(name="op_read"), "write": Signal(name="op_write")}
        m.d.comb += [dma.length.eq(op_length), dma.wdata.eq(op_wdata), dma.dest.eq(op_dest),
                     dma.read.eq(op_kind["read"]), dma.write.eq(op_kind["write"])]

        def dma_op(kind, base, offset, length, wdata=0, dest=0):
            """Start a DMA command at ``base + offset`` once in this state (``base`` None: the
            operands were loaded on the way in); true in the cycle it completes without error.
            An error response is a device error (contract §6). The arguments must not change
            while the state lasts (they are loaded a cycle before the command starts)."""
            with m.If(~staged):
                if base is not None:
                    m.d.sync += [op_base.eq(base), op_off.eq(offset)]
                m.d.sync += [staged.eq(1), op_length.eq(length), op_wdata.eq(wdata),
                             op_dest.eq(dest), op_kind[kind].eq(~abort)]
            with m.Elif(~issued):
                # The command goes out in this cycle (unless `abort` has come up since).
                m.d.sync += [issued.eq(1), op_kind[kind].eq(0)]
            with m.If(dma.done):
                m.d.sync += [issued.eq(0), staged.eq(0)]
                with m.If(dma.error):
                    m.next = "ERROR"
            return dma.done & ~dma.error

        def load_ops(base, offset=0):
            """Load the adder's operands for the next state (its command still takes a cycle to
            stage the rest of it)."""
            m.d.sync += [op_base.eq(base), op_off.eq(offset)]

        @contextmanager
        def working(name):
            """A state in which a device reset, the device leaving the live state or the queue in
            use going away abandons the work (the DMA port lets a burst on the bus finish)."""
            with m.State(name):
                yield
                with m.If(abort):
                    m.next = "ABORT"

        def push(queue, head_, length, continuation):
            """Publish a used element; an eventq status byte at the loaded DMA operands goes
            first if ``length`` is not 0 and ``queue`` is the eventq (its callers load them)."""
            m.d.sync += [push_q.eq(queue), push_head.eq(head_), push_len.eq(length),
                         then.eq(continuation)]

        def return_held_buffer(continuation):
            """Return the held eventq buffer read from the buffer memory in the previous cycle:
            its status byte, then its used element."""
            load_ops(ev.buffer.addr)
            push(QueueIndex.EVENTQ, ev.buffer.head, IRQ_REPLY_SIZE, continuation)
            m.next = "EVENT_STATUS"

        def next_chain():
            with m.If(pending != 0):
                m.next = "POP"
            with m.Else():
                m.next = "AVAIL_IDX"

        def below_table_len(value):
            """``value < table_len`` for a value of at most INDEX_BITS + 1 bits."""
            bits = len(value)
            return (table_len[bits:] != 0) | (value < table_len[:bits])

        def follow_next(d):
            """After descriptor ``d``: the end of the chain, or the next descriptor."""
            with m.If(~d.flags[DescFlags.NEXT.bit_length() - 1]):
                m.next = "CHAIN_DONE"
            with m.Elif(~below_table_len(d.next)):
                m.next = "ERROR"
            with m.Else():
                m.d.sync += [index.eq(d.next),
                             hit_first.eq((cache_count != 0) & (d.next == cache_base)),
                             hit_second.eq((cache_count == DESCS_PER_FETCH) & (d.next == cache_next))]
                m.next = "FETCH"

        def flag(d, f):
            return d.flags[f.bit_length() - 1]

        # DECODE's bounds check, desc.addr + desc.len > dma_addr_limit, comes off the adder
        # loaded by FETCH into a flip-flop, and the state after DECODE acts on it: an error either
        # way, so DECODE's other effects are dropped, and no DMA starts before.
        beyond = Signal()
        after_decode = Signal()

        @contextmanager
        def bounds_checked():
            with m.If(after_decode & beyond):
                m.next = "ERROR"
            with m.Else():
                yield

        # The queue whose configuration the state works with: the one being drained, or in
        # PUSH_* the one a used element goes to (one multiplexer for both). A flip-flop, not a
        # decoding of the state: it differs from `q` only after an eventq status byte, which
        # switches it to the eventq until the used element is published.
        cfg_q = Signal(range(NUM_QUEUES))
        qc = tr.queues[cfg_q]

        with m.FSM() as fsm:
            num_mask = (qc.num - 1)[:len(qc.num)]  # num is a power of two
            geo = RingGeometry(qc.num)

            with m.State("IDLE"):
                m.d.sync += [issued.eq(0), staged.eq(0)]
                ready = Cat(qc_.ready for qc_ in tr.queues)
                eventq_usable = tr.irq_negotiated & ready[QueueIndex.EVENTQ]
                with m.If(tr.live & ~abort):
                    with m.If(kick_pending[QueueIndex.REQUESTQ] & ready[QueueIndex.REQUESTQ]):
                        m.d.sync += [q.eq(QueueIndex.REQUESTQ), cfg_q.eq(QueueIndex.REQUESTQ),
                                     kick_pending[QueueIndex.REQUESTQ].eq(0)]
                        m.next = "AVAIL_IDX"
                    with m.Elif(eventq_usable & kick_pending[QueueIndex.EVENTQ]):
                        m.d.sync += [q.eq(QueueIndex.EVENTQ), cfg_q.eq(QueueIndex.EVENTQ),
                                     kick_pending[QueueIndex.EVENTQ].eq(0)]
                        m.next = "AVAIL_IDX"
                    with m.Elif(eventq_usable & ev.due):
                        m.next = "EVENT_TAKE"

            # -- avail side ------------------------------------------------------------------
            with working("AVAIL_IDX"):
                with m.If(dma_op("read", qc.driver, RING_IDX_OFFSET, RingIndex.sizeof())):
                    # How far avail.idx moved: into a flip-flop, checked in the next state.
                    m.d.sync += avail_moved.eq(dma.rdata_short[:INDEX_BITS] - q_last_avail)
                    m.next = "AVAIL_CHECK"

            with working("AVAIL_CHECK"):
                m.d.sync += pending.eq(avail_moved)  # only used if not more than QueueNum
                with m.If(avail_moved > qc.num):
                    m.next = "ERROR"  # avail.idx moved more than QueueNum ahead
                with m.Elif(avail_moved != 0):
                    m.next = "POP"
                with m.Elif(tr.event_idx_negotiated
                            & ~(published_valid.bit_select(q, 1)
                                & (Cat(published).word_select(q, INDEX_BITS) == q_last_avail))):
                    m.next = "PUBLISH_AVAIL_EVENT"
                with m.Else():
                    m.next = "IDLE"

            with working("PUBLISH_AVAIL_EVENT"):
                # EVENT_IDX: avail_event = the next index the device will read; then look again,
                # in case the driver added a buffer just before it could see the new value.
                with m.If(dma_op("write", qc.device, geo.avail_event, RingIndex.sizeof(),
                                 q_last_avail)):
                    for i in range(NUM_QUEUES):
                        with m.If(q == i):
                            m.d.sync += [published[i].eq(last_avail[i]), published_valid[i].eq(1)]
                    m.next = "AVAIL_IDX"

            with working("POP"):
                with m.If(dma_op("read", qc.driver, geo.avail_entry(q_last_avail & num_mask),
                                 RingIndex.sizeof())):
                    chain_head = dma.rdata_short[:INDEX_BITS]
                    for i in range(NUM_QUEUES):
                        with m.If(q == i):
                            m.d.sync += last_avail[i].eq(q_last_avail + 1)
                    m.d.sync += [
                        pending.eq(pending - 1), head.eq(chain_head), push_q.eq(q),
                        table.eq(qc.desc), table_len.eq(qc.num), budget.eq(qc.num),
                        in_indirect.eq(0), index.eq(chain_head), cache_count.eq(0),
                        hit_first.eq(0), hit_second.eq(0),
                        have.eq(0), writable_seen.eq(0), wlen.eq(0), first_w.eq(0),
                        later_count.eq(0),
                    ]
                    with m.If((chain_head | num_mask) != num_mask):  # >= QueueNum
                        m.next = "ERROR"
                    with m.Else():
                        m.next = "FETCH"

            # -- the descriptor walk -----------------------------------------------------------
            with working("FETCH"), bounds_checked():
                with m.If(budget == 0):
                    m.next = "ERROR"  # longer than the table: a loop
                with m.Elif(hit_first | hit_second):
                    picked = data.View(Descriptor,
                                       dma.rdata.word_select(hit_second, Descriptor.size))
                    m.d.sync += [slot.eq(hit_second), budget.eq(budget - 1)]
                    load_ops(picked.addr[:aw], picked.len)  # for the bounds check
                    m.next = "DECODE"
                with m.Else():
                    two = below_table_len(index_next)
                    with m.If(dma_op("read", table, DESC_SIZE * index,
                                     Mux(two, DESCS_PER_FETCH * DESC_SIZE, DESC_SIZE))):
                        m.d.sync += [cache_base.eq(index), cache_next.eq(index_next),
                                     cache_count.eq(Mux(two, DESCS_PER_FETCH, 1)),
                                     hit_first.eq(1), hit_second.eq(0)]

            with working("DECODE"):
                with m.If(flag(desc, DescFlags.INDIRECT)):
                    bad = (~tr.indirect_negotiated | in_indirect | flag(desc, DescFlags.NEXT)
                           | (desc.len == 0) | (desc.len % DESC_SIZE != 0))
                    with m.If(bad):
                        m.next = "ERROR"
                    with m.Else():
                        entries = desc.len // DESC_SIZE
                        # The pointer gives back the budget it took; the table bounds the rest.
                        left = budget + 1
                        m.d.sync += [table.eq(desc.addr), table_len.eq(entries),
                                     budget.eq(Mux(entries < left, entries, left)), in_indirect.eq(1),
                                     index.eq(0), cache_count.eq(0), hit_first.eq(0),
                                     hit_second.eq(0)]
                        m.next = "FETCH"
                with m.Elif(flag(desc, DescFlags.WRITE)):
                    length = saturate(desc.len)
                    total = wlen + length
                    m.d.sync += [writable_seen.eq(1),
                                 wlen.eq(Mux(total > reply_max, reply_max, total))]
                    with m.If((desc.len != 0) & (wlen < reply_max)):  # a reply may reach it
                        with m.If(~first_w.valid):
                            m.d.sync += [first_w.valid.eq(1), first_w.addr.eq(desc.addr),
                                         first_w.len.eq(length)]
                        with m.Else():
                            m.d.comb += [later_w_write.eq(1), later_w_in.addr.eq(desc.addr),
                                         later_w_in.len.eq(length)]
                            m.d.sync += later_count.eq(later_count + 1)
                    follow_next(desc)
                with m.Elif(writable_seen):
                    m.next = "ERROR"  # a readable descriptor after a writable one
                with m.Elif((desc.len != 0) & (have < need)):
                    # How many request bytes this descriptor gives: GATHER reads them.
                    want = need - have
                    bits = GPIO_REQUEST_SIZE.bit_length()
                    short = (desc.len[bits:] == 0) & (desc.len[:bits] < want)
                    m.d.sync += gather_len.eq(Mux(short, desc.len[:bits], want))
                    m.next = "GATHER"
                with m.Else():
                    follow_next(desc)

            with working("GATHER"), bounds_checked():
                with m.If(dma_op("read", desc.addr, 0, gather_len, dest=have)):
                    m.d.sync += have.eq(have + gather_len)
                    follow_next(desc)

            # What the request's reply will be is prepared into flip-flops here, so that REQUEST
            # decides from them and not from the request bytes.
            names_request = Signal()
            reply_short = Signal()  # the writable bytes cannot hold the reply
            with working("CHAIN_DONE"), bounds_checked():
                is_names = request.type == MsgType.GET_LINE_NAMES
                m.d.sync += [names_request.eq(is_names),
                             reply_short.eq(wlen < Mux(is_names, 1 + names_size, GPIO_REPLY_SIZE))]
                with m.If(q == QueueIndex.REQUESTQ):
                    m.next = "REQUEST"
                with m.Else():
                    m.next = "EVENT_BUFFER"

            # -- requestq: run the request, send the reply -------------------------------------
            with working("REQUEST"):
                m.d.comb += ev.buffer_line.eq(request.gpio)
                m.d.sync += [pos.eq(0), seg.addr.eq(first_w.addr), seg.len.eq(first_w.len),
                             seg.written.eq(0), later_count.eq(0),
                             status.eq(ReplyStatus.ERR), reply_value.eq(0), names.eq(0)]
                m.next = "SCATTER"
                with m.If(have < GPIO_REQUEST_SIZE):
                    m.d.sync += reply_len.eq(Mux(wlen < GPIO_REPLY_SIZE, wlen, GPIO_REPLY_SIZE))
                with m.Elif(reply_short):  # the reply does not fit: what fits, as ERR
                    m.d.sync += reply_len.eq(wlen)
                with m.Elif(names_request):
                    m.d.sync += reply_len.eq(1 + names_size)
                    if names_size:
                        m.d.sync += [status.eq(ReplyStatus.OK), names.eq(1)]
                with m.Else():
                    m.d.comb += gr.execute.eq(~abort)
                    m.d.sync += [reply_len.eq(GPIO_REPLY_SIZE),
                                 status.eq(Mux(gr.ok, ReplyStatus.OK, ReplyStatus.ERR)),
                                 reply_value.eq(gr.reply_value)]
                    with m.If(gr.release):
                        m.next = "RELEASE"

            with working("RELEASE"):
                # The line's held eventq buffer goes back INVALID before the request's reply.
                return_held_buffer(Continuation.REPLY)

            with working("SCATTER"):
                left = (reply_len - pos)[:len(reply_len)]
                n = Mux(left < MAX_WRITE_BYTES, left, MAX_WRITE_BYTES)
                n = Mux(seg.len < n, seg.len, n)
                m.d.sync += [chunk.eq(n), fill.eq(0)]
                with m.If(pos == reply_len):  # left == 0, without the subtraction
                    push(q, head, reply_len, Continuation.NEXT_CHAIN)
                    m.next = "PUSH_ELEM"
                with m.Elif(seg.len == 0):
                    m.next = "SCATTER_NEXT"
                with m.Elif(names if names_size else 0):
                    if names_size:
                        m.next = "NAMES_FILL"
                with m.Else():
                    reply = Cat(status, reply_value)
                    m.d.sync += chunk_data.eq(Mux(pos == 0, reply, Mux(pos == 1, reply_value, 0)))
                    m.next = "SCATTER_WRITE"

            if names_size:
                self._names_fill(m, pos, chunk, chunk_data, fill, status, working)

            with working("SCATTER_WRITE"):
                with m.If(dma_op("write", seg.addr, seg.written, chunk, chunk_data)):
                    m.d.sync += [pos.eq(pos + chunk), seg.written.eq(seg.written + chunk),
                                 seg.len.eq(seg.len - chunk)]
                    m.next = "SCATTER"

            with working("SCATTER_NEXT"):
                # The reply goes on in the next writable descriptor the walk recorded. The read
                # port shows the record at later_count: it has not changed since the state
                # before SCATTER, at least a cycle ago.
                m.d.sync += [seg.addr.eq(later_w_out.addr), seg.len.eq(later_w_out.len),
                             seg.written.eq(0), later_count.eq(later_count + 1)]
                m.next = "SCATTER"

            # -- eventq: hold buffers, deliver events ------------------------------------------
            with working("EVENT_BUFFER"):
                malformed = (have < IRQ_REQUEST_SIZE) | (wlen == 0)
                with m.If(malformed | ~ev.acceptable):
                    push(QueueIndex.EVENTQ, head, Mux(wlen == 0, 0, IRQ_REPLY_SIZE),
                         Continuation.NEXT_CHAIN)
                    with m.If(wlen == 0):
                        m.next = "PUSH_ELEM"  # no writable byte: used.len 0, nothing written
                    with m.Else():
                        load_ops(first_w.addr)
                        m.next = "EVENT_STATUS"
                with m.Else():
                    m.d.comb += [ev.hold.eq(1), ev.hold_buffer.head.eq(head),
                                 ev.hold_buffer.addr.eq(first_w.addr)]
                    next_chain()

            with working("EVENT_TAKE"):
                # The due vector may have changed since IDLE looked (a level went inactive).
                with m.If(ev.due):
                    m.d.comb += [ev.take.eq(1), ev.buffer_line.eq(ev.due_line)]
                    m.next = "EVENT_TAKEN"
                with m.Else():
                    m.next = "IDLE"
            with working("EVENT_TAKEN"):
                return_held_buffer(Continuation.IDLE)  # VALID: an event is delivered

            with working("EVENT_STATUS"):
                # The eventq reply: one status byte, VALID only for a delivered event.
                valid = then == Continuation.IDLE
                m.d.sync += cfg_q.eq(push_q)
                with m.If(dma_op("write", None, None, IRQ_REPLY_SIZE,
                                 Mux(valid, IrqStatus.VALID, IrqStatus.INVALID))):
                    m.next = "PUSH_ELEM"

            # -- used ring -----------------------------------------------------------------------
            with working("PUSH_ELEM"):
                elem = Signal(UsedElement)
                m.d.comb += [elem.id.eq(push_head), elem.len.eq(push_len)]
                with m.If(dma_op("write", qc.device, geo.used_elem(push_used_idx & num_mask),
                                 USED_ELEM_SIZE, elem)):
                    m.next = "PUSH_IDX"
            with working("PUSH_IDX"):
                with m.If(dma_op("write", qc.device, RING_IDX_OFFSET, RingIndex.sizeof(),
                                 used_next)):
                    for i in range(NUM_QUEUES):
                        with m.If(push_q == i):
                            m.d.sync += used_idx[i].eq(used_next)
                    m.next = "PUSH_NOTIFY"
            with working("PUSH_NOTIFY"):
                # Notification suppression: used_event with EVENT_IDX, else avail.flags.
                offset = Mux(tr.event_idx_negotiated, geo.used_event, 0)
                with m.If(dma_op("read", qc.driver, offset, RingIndex.sizeof())):
                    old = (push_used_idx - 1)[:INDEX_BITS]
                    wanted = Mux(tr.event_idx_negotiated, dma.rdata_short[:INDEX_BITS] == old,
                                 ~dma.rdata_short[AvailFlags.NO_INTERRUPT.bit_length() - 1])
                    m.d.comb += tr.used_buffer.eq(wanted & ~abort)
                    m.d.sync += cfg_q.eq(q)
                    with m.Switch(then):
                        with m.Case(Continuation.NEXT_CHAIN):
                            next_chain()
                        with m.Case(Continuation.REPLY):
                            m.next = "SCATTER"
                        with m.Case(Continuation.IDLE):
                            m.next = "IDLE"

            with m.State("ERROR"):
                # Entered from a working state: the work it abandons is that state's.
                m.d.comb += tr.device_error.eq(~abort)
                m.next = "ABORT"
            with m.State("ABORT"):
                m.d.sync += [issued.eq(0), staged.eq(0)]
                with m.If(~dma.busy):
                    m.next = "IDLE"

        beyond_now = op_sum[aw] & (op_sum[:aw] != 0)
        if len(desc.addr) > aw:
            beyond_now |= desc.addr[aw:] != 0
        m.d.sync += [beyond.eq(beyond_now), after_decode.eq(fsm.ongoing("DECODE"))]

        # Queue state follows the register file (after the FSM: these win).
        for i in range(NUM_QUEUES):
            with m.If(tr.reset | tr.restart[i]):
                m.d.sync += [last_avail[i].eq(0), used_idx[i].eq(0), published_valid[i].eq(0),
                             kick_pending[i].eq(0)]
            with m.If(tr.kick[i]):
                m.d.sync += kick_pending[i].eq(1)
        m.d.comb += ev.drop_all.eq(tr.restart[QueueIndex.EVENTQ])
        return m

    def _names_fill(self, m, pos, chunk, chunk_data, fill, status, working):
        """Build a chunk of the names reply from the names ROM, one byte per two cycles (the
        reply is sent once per probe; speed does not matter)."""
        block = self.config.names_block
        m.submodules.names = rom = Memory(shape=8, depth=len(block), init=list(block))
        rd = rom.read_port()
        byte = pos + fill  # reply byte index; byte 0 is the status, byte i >= 1 is block[i - 1]
        m.d.comb += rd.addr.eq(byte - 1)
        with working("NAMES_FILL"):
            with m.If(fill == chunk):
                m.next = "SCATTER_WRITE"
            with m.Else():
                m.next = "NAMES_BYTE"
        with working("NAMES_BYTE"):
            for i in range(MAX_WRITE_BYTES):
                with m.If(fill == i):
                    m.d.sync += chunk_data.word_select(i, 8).eq(Mux(byte == 0, status, rd.data))
            m.d.sync += fill.eq(fill + 1)
            m.next = "NAMES_FILL"
