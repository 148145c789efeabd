"""The DMA port: byte-addressed read and write commands carried out as AXI4 INCR bursts.

The virtqueue engine asks for "read up to 32 bytes at any address" or "write up to 8 bytes at any
address"; this block turns each command into bus-width beats (WSTRB marks exactly the bytes written),
splits a command that crosses a 4 KiB boundary into two bursts (AXI forbids a burst crossing one),
and reports the first error response. One command at a time; one burst at a time on each channel.

``abort`` (device reset, or the queue went away) lets a burst already on the bus finish, as AXI
requires, but starts no further burst of the command; the command then ends with ``done`` and its
result must be dropped.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import AXI4Signature, BURST_INCR, RESP_OKAY

MAX_READ_BYTES = 32  # two descriptors: the Linux indirect table of a GPIO request in one burst
MAX_WRITE_BYTES = 8  # a used element
# A read of at most this many bytes (ring indices, request bytes) lands in `rdata_short` and leaves
# `rdata` alone, so that the engine can keep using the descriptors of the last long read.
SHORT_READ_BYTES = 8
BOUNDARY = 4096  # AXI: no burst crosses a 4 KiB boundary
_SKEW_BIAS = SHORT_READ_BYTES  # >= any `dest`, a multiple of the bus width in bytes


def _beats_needed(width_bytes: int, max_bytes: int) -> int:
    """Beats that cover ``max_bytes`` starting at any byte offset within a bus word."""
    return (width_bytes - 1 + max_bytes + width_bytes - 1) // width_bytes


class DmaCommandSignature(wiring.Signature):
    """The engine's side of the DMA port (engine view: it drives the command)."""

    def __init__(self, addr_width: int):
        super().__init__({
            "read": Out(1),  # start a read of `length` bytes at `addr` (while idle)
            "write": Out(1),  # start a write of `length` bytes of `wdata` at `addr` (while idle)
            "addr": Out(addr_width),
            "length": Out(range(MAX_READ_BYTES + 1)),
            "wdata": Out(8 * MAX_WRITE_BYTES),  # byte 0 goes to `addr`
            # A short read's byte 0 goes to byte `dest` of `rdata_short`; the bytes below `dest`
            # keep their value, so that a request can be gathered from several reads.
            "dest": Out(range(SHORT_READ_BYTES)),
            "abort": Out(1),
            "busy": In(1),
            "done": In(1),  # one-cycle pulse: the command has finished
            "error": In(1),  # with `done`: some beat had a response other than OKAY
            # Byte 0 was read from `addr`; valid from `done` on, until the next read of its kind.
            "rdata": In(8 * MAX_READ_BYTES),  # reads longer than SHORT_READ_BYTES
            "rdata_short": In(8 * SHORT_READ_BYTES),  # reads of at most SHORT_READ_BYTES
        })


class DmaPort(wiring.Component):
    def __init__(self, *, addr_width: int, data_width: int):
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "cmd": In(DmaCommandSignature(addr_width)),
            "bus": Out(AXI4Signature(addr_width=addr_width, data_width=data_width)),
        })

    def elaborate(self, platform):
        m = Module()
        cmd, bus = self.cmd, self.bus
        w = self.data_width // 8  # bytes per beat
        wb = w.bit_length() - 1  # log2(bytes per beat) = AxSIZE
        rd_beats = _beats_needed(w, MAX_READ_BYTES)
        wr_beats = _beats_needed(w, MAX_WRITE_BYTES)

        cur = Signal(self.addr_width)  # address of the next burst (bus-word aligned)
        remaining = Signal(range(rd_beats + 1))  # beats of the command not yet in a burst
        burst_len = Signal(range(rd_beats + 1))  # beats of the current burst
        beat = Signal(range(rd_beats + 1))  # beats of the command done so far
        burst_beat = Signal(range(rd_beats + 1))
        # Read alignment (see _store_beat): byte lane rotation, word skew, first byte written.
        rotate = Signal(wb)
        skew = Signal(range(_SKEW_BIAS // w + 1))
        dest = Signal.like(cmd.dest)
        error = Signal()
        aborted = Signal()
        aw_done = Signal()
        w_done = Signal()

        long = Signal()  # the read goes to `rdata`, not `rdata_short`
        rbuf = Signal(8 * MAX_READ_BYTES)
        sbuf = Signal(8 * SHORT_READ_BYTES)
        # The write beats still to send, the next one in the lowest word: shifting by a word per
        # beat needs no multiplexer by beat number.
        wbuf = Signal(wr_beats * self.data_width)
        wstrb = Signal(wr_beats * w)

        m.d.comb += [cmd.rdata.eq(rbuf), cmd.rdata_short.eq(sbuf)]
        with m.If(cmd.abort & cmd.busy):
            m.d.sync += aborted.eq(1)

        # Beats left in the current 4 KiB page from `cur`.
        to_boundary = Signal(range(BOUNDARY // w + 1))
        m.d.comb += to_boundary.eq((BOUNDARY - cur[:12]) >> wb)
        next_len = Mux(remaining < to_boundary, remaining, to_boundary)

        def start(length):
            """Latch a command: its first bus word, its alignment, and its beats."""
            is_long = length > SHORT_READ_BYTES
            to = Mux(is_long, 0, cmd.dest)
            # Command byte i goes to buffer byte i + to: shift the stream by offset - to, biased
            # to stay positive.
            shift = (cmd.addr[:wb] + _SKEW_BIAS - to).as_unsigned()
            return [
                cur.eq(cmd.addr & ~Const(w - 1, self.addr_width)),
                rotate.eq(shift[:wb]), skew.eq(_SKEW_BIAS // w - (shift >> wb)), dest.eq(to),
                remaining.eq((cmd.addr[:wb] + length + w - 1) >> wb),
                beat.eq(0), error.eq(0), aborted.eq(0), long.eq(is_long),
            ]

        def setup_burst():
            return [burst_len.eq(next_len), burst_beat.eq(0), aw_done.eq(0), w_done.eq(0)]

        def finish_burst(next_state, m=m):
            with m.If((remaining == 0) | aborted | (cmd.abort & cmd.busy)):
                m.next = "DONE"
            with m.Else():
                m.d.sync += setup_burst()
                m.next = next_state

        def first_burst(next_state, m=m):
            # The abandoning event may arrive just after the command was taken.
            with m.If(cmd.abort):
                m.next = "DONE"
            with m.Else():
                m.next = next_state

        with m.FSM():
            with m.State("IDLE"):
                # An abandoned command never starts: `abort` may already be high in the cycle the
                # engine issues it.
                with m.If(cmd.abort):
                    pass
                with m.Elif(cmd.read):
                    m.d.sync += start(cmd.length)
                    m.next = "READ_SETUP"
                with m.Elif(cmd.write):
                    m.d.sync += start(cmd.length)
                    m.d.sync += [
                        wbuf.eq(cmd.wdata << (cmd.addr[:wb] * 8)),
                        wstrb.eq(((1 << cmd.length) - 1) << cmd.addr[:wb]),
                    ]
                    m.next = "WRITE_SETUP"

            with m.State("READ_SETUP"):
                m.d.comb += cmd.busy.eq(1)
                m.d.sync += setup_burst()
                first_burst("AR")
            with m.State("AR"):
                m.d.comb += [
                    cmd.busy.eq(1),
                    bus.arvalid.eq(1), bus.araddr.eq(cur), bus.arlen.eq(burst_len - 1),
                    bus.arsize.eq(wb), bus.arburst.eq(BURST_INCR),
                ]
                with m.If(bus.arready):
                    m.d.sync += [remaining.eq(remaining - burst_len), cur.eq(cur + burst_len * w)]
                    m.next = "R"
            with m.State("R"):
                m.d.comb += [cmd.busy.eq(1), bus.rready.eq(1)]
                with m.If(bus.rvalid):
                    self._store_beat(m, bus.rdata, beat + skew, rotate, dest, long, rbuf, sbuf)
                    m.d.sync += [beat.eq(beat + 1), burst_beat.eq(burst_beat + 1)]
                    with m.If(bus.rresp != RESP_OKAY):
                        m.d.sync += error.eq(1)
                    # The burst ends after the beats asked for; RLAST is the memory's to get right.
                    with m.If(burst_beat == burst_len - 1):
                        finish_burst("AR")

            with m.State("WRITE_SETUP"):
                m.d.comb += cmd.busy.eq(1)
                m.d.sync += setup_burst()
                first_burst("AW_W")
            with m.State("AW_W"):
                # Address and data are offered together; the memory may take them in either order.
                last = burst_beat == burst_len - 1
                m.d.comb += [
                    cmd.busy.eq(1),
                    bus.awvalid.eq(~aw_done), bus.awaddr.eq(cur), bus.awlen.eq(burst_len - 1),
                    bus.awsize.eq(wb), bus.awburst.eq(BURST_INCR),
                    bus.wvalid.eq(~w_done), bus.wlast.eq(last),
                ]
                m.d.comb += [bus.wdata.eq(wbuf[:self.data_width]), bus.wstrb.eq(wstrb[:w])]
                aw_now = aw_done | bus.awready
                w_now = w_done | (bus.wready & last)
                with m.If(bus.awready):
                    m.d.sync += aw_done.eq(1)
                with m.If(bus.wvalid & bus.wready):
                    m.d.sync += [beat.eq(beat + 1), burst_beat.eq(burst_beat + 1),
                                 wbuf.eq(wbuf >> self.data_width), wstrb.eq(wstrb >> w)]
                    with m.If(last):
                        m.d.sync += w_done.eq(1)
                with m.If(aw_now & w_now):
                    m.d.sync += [remaining.eq(remaining - burst_len), cur.eq(cur + burst_len * w)]
                    m.next = "B"
            with m.State("B"):
                m.d.comb += [cmd.busy.eq(1), bus.bready.eq(1)]
                with m.If(bus.bvalid):
                    with m.If(bus.bresp != RESP_OKAY):
                        m.d.sync += error.eq(1)
                    finish_burst("AW_W")

            with m.State("DONE"):
                m.d.comb += [cmd.done.eq(1), cmd.error.eq(error)]
                m.next = "IDLE"
        return m

    def _store_beat(self, m, rdata, beat, rotate, dest, long, rbuf, sbuf):
        """Store a read beat aligned. The beat is rotated by ``rotate`` byte lanes once; then its
        lane j belongs to buffer word ``beat`` (the beat number plus the skew) or, where the
        rotation wrapped around, to word ``beat - 1``. Aligning on the way in costs one rotator of a
        bus word instead of a shifter of the whole buffer on the way out."""
        w = self.data_width // 8
        rotated = Signal(self.data_width)
        m.d.comb += rotated.eq((Cat(rdata, rdata) >> (rotate * 8))[:self.data_width])
        for buf, is_long in ((rbuf, long), (sbuf, ~long)):
            for k in range(len(buf) // self.data_width):
                for j in range(w):
                    # Lane j + rotate is past the end of the bus word (never for lane 0).
                    wrapped = rotate >= w - j if j else 0
                    en = is_long & Mux(wrapped, beat == k + 1, beat == k)
                    if buf is sbuf and k * w + j < SHORT_READ_BYTES - 1:  # any dest <= the last
                        en &= dest <= k * w + j
                    with m.If(en):
                        m.d.sync += buf.word_select(k * w + j, 8).eq(rotated.word_select(j, 8))
