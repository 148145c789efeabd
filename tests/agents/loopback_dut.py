"""DmaLoopback: a small AXI device with the virtio_gpio port contract, used to prove the testbench
agents before the real gateware exists. It is a test fixture, not product gateware: simple first.

Registers (AXI4-Lite, 32-bit):

* SRC, DST (64-bit, as LO/HI words), LEN (bytes), PATTERN: operands.
* CTRL: writing an operation code starts it (ignored while busy):
  COPY copies LEN bytes from SRC to DST over ``m_axi``, one read burst then one write burst at a
  time, bursts of up to 16 beats split at 4 KiB. When SRC and DST have the same offset in a bus word
  it moves whole words (unaligned first beat, partial strobes at both ends); otherwise, or with
  ``CTRL_NARROW``, it moves one byte per beat with 1-byte (narrow) transfers.
  READ_SUM XORs the LEN bytes at SRC into SUM, issuing all its read bursts without waiting for data.
  FILL writes LEN bytes of (PATTERN + beat number) words at DST, issuing all its write bursts without
  waiting; so both keep several bursts outstanding. For these two, SRC/DST must be aligned to a
  16-beat burst and LEN a multiple of one.
* STATUS: BUSY, DONE (write 1 to clear; ``irq`` follows it), ERROR and the first error response.
  COPY stops after the first burst with an error response; READ_SUM and FILL finish their bursts.
* FAULTS: deliberate AXI protocol violations, so the memory agent's checks can be seen to work.
* GPIO_OUT/GPIO_OE drive ``gpio_o``/``gpio_oe``; GPIO_IN reads ``gpio_i``.
* NO_ANSWER never answers a read (until reset); BAD_REG answers reads and writes with SLVERR.
"""

from enum import IntEnum, IntFlag

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.back import verilog
from amaranth.hdl import _ir
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from virtio_gpio.hdl.axi import (
    AXI4LiteSignature, AXI4Signature, BURST_INCR, MAX_BURST_LEN, RESP_OKAY, RESP_SLVERR,
)

REG_ADDR_WIDTH = 12  # the port contract's AXI-Lite window
REG_WIDTH = 32
PAGE_4K = 4096  # AXI: no burst may cross a 4 KiB boundary
BURST_FIXED = 0b00  # the AxBURST code FAULTS.BURST_FIXED puts out instead of INCR


class Reg(IntEnum):
    SRC_LO = 0x00
    SRC_HI = 0x04
    DST_LO = 0x08
    DST_HI = 0x0C
    LEN = 0x10
    CTRL = 0x14
    STATUS = 0x18
    FAULTS = 0x1C
    GPIO_OUT = 0x20
    GPIO_OE = 0x24
    GPIO_IN = 0x28
    SUM_LO = 0x2C
    SUM_HI = 0x30
    PATTERN = 0x34
    NO_ANSWER = 0xFF8
    BAD_REG = 0xFFC


class Op(IntEnum):
    COPY = 1
    READ_SUM = 2
    FILL = 3


OP_BITS = 2
CTRL_NARROW = 1 << OP_BITS


class Status(IntFlag):
    BUSY = 1
    DONE = 2
    ERROR = 4


STATUS_RESP_SHIFT = 4  # STATUS[5:4]: the first error response of the operation (OKAY if none)
RESP_WIDTH = 2         # bits of an AXI xRESP


class Fault(IntFlag):
    WLAST = 1          # WLAST on every beat but the last
    NO_4K_SPLIT = 2    # COPY bursts may cross a 4 KiB boundary
    BURST_FIXED = 4    # AxBURST = FIXED
    SIZE_TOO_BIG = 8   # COPY's word-mode AxSIZE one step wider than the bus
    ARVALID_DROP = 16  # COPY's ARVALID drops every other cycle while ARREADY is low


def _word(reg):
    """Register index of a byte offset (the decoder ignores the low address bits)."""
    return reg >> 2


def _min(a, b):
    return Mux(a < b, a, b)


def _write_bytes(m, reg, wdata, wstrb):
    """Register write honouring the AXI-Lite byte strobes."""
    for lsb in range(0, len(reg), 8):
        with m.If(wstrb[lsb // 8]):
            m.d.sync += reg[lsb:lsb + 8].eq(wdata[lsb:lsb + 8])


class DmaLoopback(wiring.Component):
    def __init__(self, *, addr_width: int = 32, data_width: int = 32, ngpio: int = 8):
        if not 1 <= ngpio <= REG_WIDTH:
            raise ValueError(f"ngpio must be 1..{REG_WIDTH}, not {ngpio}")
        self.addr_width, self.data_width, self.ngpio = addr_width, data_width, ngpio
        super().__init__({
            "s_axil": In(AXI4LiteSignature(addr_width=REG_ADDR_WIDTH, data_width=REG_WIDTH)),
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=data_width)),
            "irq": Out(1),
            "gpio_i": In(ngpio), "gpio_o": Out(ngpio), "gpio_oe": Out(ngpio),
        })

    def elaborate(self, platform):
        m = Module()
        regs = self._registers(m)
        self._engine(m, regs)
        return m

    def _registers(self, m):
        """The AXI-Lite subordinate: one write (AW and W together) and one read at a time."""
        s = self.s_axil
        regs = {name: Signal(width, name=name.lower()) for name, width in [
            ("SRC", 2 * REG_WIDTH), ("DST", 2 * REG_WIDTH), ("LEN", REG_WIDTH), ("PATTERN", REG_WIDTH),
            ("FAULTS", len(Fault)), ("GPIO_OUT", self.ngpio), ("GPIO_OE", self.ngpio)]}
        regs.update(start=Signal(OP_BITS), narrow=Signal(), clear_done=Signal(),
                    status=Signal(REG_WIDTH), sum=Signal(2 * REG_WIDTH))
        m.d.comb += [self.gpio_o.eq(regs["GPIO_OUT"]), self.gpio_oe.eq(regs["GPIO_OE"])]
        writable = {Reg.SRC_LO: regs["SRC"][:REG_WIDTH], Reg.SRC_HI: regs["SRC"][REG_WIDTH:],
                    Reg.DST_LO: regs["DST"][:REG_WIDTH], Reg.DST_HI: regs["DST"][REG_WIDTH:],
                    Reg.LEN: regs["LEN"], Reg.PATTERN: regs["PATTERN"], Reg.FAULTS: regs["FAULTS"],
                    Reg.GPIO_OUT: regs["GPIO_OUT"], Reg.GPIO_OE: regs["GPIO_OE"]}
        readable = writable | {Reg.STATUS: regs["status"], Reg.GPIO_IN: self.gpio_i,
                               Reg.SUM_LO: regs["sum"][:REG_WIDTH], Reg.SUM_HI: regs["sum"][REG_WIDTH:]}

        write = s.awvalid & s.wvalid & ~s.bvalid
        m.d.comb += [s.awready.eq(write), s.wready.eq(write)]
        with m.If(s.bvalid & s.bready):
            m.d.sync += s.bvalid.eq(0)
        with m.If(write):
            m.d.sync += [s.bvalid.eq(1), s.bresp.eq(RESP_OKAY)]
            with m.Switch(s.awaddr[2:]):
                for reg, target in writable.items():
                    with m.Case(_word(reg)):
                        _write_bytes(m, target, s.wdata, s.wstrb)
                with m.Case(_word(Reg.CTRL)):
                    m.d.comb += [regs["start"].eq(Mux(s.wstrb[0], s.wdata[:OP_BITS], 0)),
                                 regs["narrow"].eq((s.wdata & CTRL_NARROW).any())]
                with m.Case(_word(Reg.STATUS)):
                    m.d.comb += regs["clear_done"].eq(s.wstrb[0] & (s.wdata & Status.DONE).any())
                with m.Case(_word(Reg.BAD_REG)):
                    m.d.sync += s.bresp.eq(RESP_SLVERR)

        hung = Signal()  # NO_ANSWER was read: the read channel stays silent until reset
        m.d.comb += s.arready.eq(~s.rvalid & ~hung)
        with m.If(s.rvalid & s.rready):
            m.d.sync += s.rvalid.eq(0)
        with m.If(s.arvalid & s.arready):
            m.d.sync += [s.rvalid.eq(1), s.rresp.eq(RESP_OKAY), s.rdata.eq(0)]
            with m.Switch(s.araddr[2:]):
                for reg, value in readable.items():
                    with m.Case(_word(reg)):
                        m.d.sync += s.rdata.eq(value)
                with m.Case(_word(Reg.NO_ANSWER)):
                    m.d.sync += [s.rvalid.eq(0), hung.eq(1)]
                with m.Case(_word(Reg.BAD_REG)):
                    m.d.sync += s.rresp.eq(RESP_SLVERR)
        return regs

    def _engine(self, m, regs):
        a = self.m_axi
        nbytes = self.data_width // 8
        lg = nbytes.bit_length() - 1  # AxSIZE of a full-width beat
        burst_bytes = MAX_BURST_LEN * nbytes
        burst_shift = burst_bytes.bit_length() - 1   # bytes -> 16-beat bursts
        page_bits = PAGE_4K.bit_length() - 1
        beat_bits = MAX_BURST_LEN.bit_length() - 1
        faults = regs["FAULTS"]

        busy, done, err, resp = Signal(), Signal(), Signal(), Signal(RESP_WIDTH)
        m.d.comb += [self.irq.eq(done),
                     regs["status"].eq(Cat(busy, done, err) | (resp << STATUS_RESP_SHIFT))]
        with m.If(regs["clear_done"]):
            m.d.sync += done.eq(0)

        src, dst = Signal(self.addr_width), Signal(self.addr_width)
        remaining = Signal(REG_WIDTH)
        narrow = Signal()           # this COPY moves one byte per beat
        beats = Signal(range(MAX_BURST_LEN + 1))
        n = Signal(range(burst_bytes + 1))   # bytes in this COPY chunk
        beat = Signal(range(MAX_BURST_LEN))
        toggle = Signal()           # for Fault.ARVALID_DROP
        buf = Array(Signal(self.data_width, name=f"buf{k}") for k in range(MAX_BURST_LEN))
        # READ_SUM / FILL: address-side and data-side counters run independently
        addr_left, data_left, b_left = Signal(REG_WIDTH), Signal(REG_WIDTH), Signal(REG_WIDTH)
        data_count = Signal(REG_WIDTH)

        def fault(flag):
            return (faults & flag).any()

        size = Mux(narrow, 0, Mux(fault(Fault.SIZE_TOO_BIG), lg + 1, lg))
        burst_code = Mux(fault(Fault.BURST_FIXED), BURST_FIXED, BURST_INCR)
        src_lane = (src[:lg] + beat)[:lg]  # byte lane of a narrow beat
        dst_lane = (dst[:lg] + beat)[:lg]

        def note(code):
            """Keep the first error response of the operation."""
            with m.If(code != RESP_OKAY):
                m.d.sync += err.eq(1)
                with m.If(~err):
                    m.d.sync += resp.eq(code)

        def finish():
            m.d.sync += [busy.eq(0), done.eq(1)]
            m.next = "IDLE"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(regs["start"] != 0):
                    m.d.sync += [busy.eq(1), done.eq(0), err.eq(0), resp.eq(RESP_OKAY),
                                 src.eq(regs["SRC"]), dst.eq(regs["DST"]), remaining.eq(regs["LEN"]),
                                 narrow.eq(regs["narrow"] | (regs["SRC"][:lg] != regs["DST"][:lg])),
                                 addr_left.eq(regs["LEN"] >> burst_shift), b_left.eq(regs["LEN"] >> burst_shift),
                                 data_left.eq(regs["LEN"] >> lg), data_count.eq(0)]
                    with m.Switch(regs["start"]):
                        with m.Case(Op.COPY):
                            m.next = "CHUNK"
                        with m.Case(Op.READ_SUM):
                            m.d.sync += regs["sum"].eq(0)
                            m.next = "READ_SUM"
                        with m.Case(Op.FILL):
                            m.next = "FILL"

            with m.State("CHUNK"):
                to_4k = Mux(fault(Fault.NO_4K_SPLIT), burst_bytes, _min(PAGE_4K - src[:page_bits], PAGE_4K - dst[:page_bits]))
                limit = _min(Mux(narrow, MAX_BURST_LEN, burst_bytes - src[:lg]), to_4k)
                chunk = _min(remaining, limit)
                m.d.sync += [n.eq(chunk), beat.eq(0),
                             beats.eq(Mux(narrow, chunk, (src[:lg] + chunk + nbytes - 1) >> lg))]
                with m.If(remaining == 0):
                    finish()
                with m.Else():
                    m.next = "AR"

            with m.State("AR"):
                m.d.sync += toggle.eq(~toggle)
                m.d.comb += [a.arvalid.eq(~(fault(Fault.ARVALID_DROP) & toggle)), a.araddr.eq(src),
                             a.arlen.eq(beats - 1), a.arsize.eq(size), a.arburst.eq(burst_code)]
                with m.If(a.arvalid & a.arready):
                    m.next = "R"

            with m.State("R"):
                m.d.comb += a.rready.eq(1)
                with m.If(a.rvalid):
                    m.d.sync += [buf[beat].eq(Mux(narrow, a.rdata.word_select(src_lane, 8), a.rdata)),
                                 beat.eq(beat + 1)]
                    note(a.rresp)
                    with m.If(a.rlast):
                        m.d.sync += beat.eq(0)
                        m.next = "AW"
                        with m.If(err | (a.rresp != RESP_OKAY)):
                            finish()

            with m.State("AW"):
                m.d.comb += [a.awvalid.eq(1), a.awaddr.eq(dst), a.awlen.eq(beats - 1),
                             a.awsize.eq(size), a.awburst.eq(burst_code)]
                with m.If(a.awready):
                    m.next = "W"

            with m.State("W"):
                last = beat == beats - 1
                lo_lane = Mux(beat == 0, dst[:lg], 0)
                hi_lane = Mux(last, ((dst[:lg] + n - 1) & (nbytes - 1)) + 1, nbytes)
                word_strb = Cat(*[(lo_lane <= j) & (j < hi_lane) for j in range(nbytes)])
                m.d.comb += [a.wvalid.eq(1), a.wlast.eq(last ^ fault(Fault.WLAST)),
                             a.wdata.eq(Mux(narrow, buf[beat][:8].replicate(nbytes), buf[beat])),
                             a.wstrb.eq(Mux(narrow, Const(1, nbytes) << dst_lane, word_strb))]
                with m.If(a.wready):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(last):
                        m.next = "B"

            with m.State("B"):
                m.d.comb += a.bready.eq(1)
                with m.If(a.bvalid):
                    note(a.bresp)
                    m.d.sync += [src.eq(src + n), dst.eq(dst + n), remaining.eq(remaining - n)]
                    m.next = "CHUNK"
                    with m.If(a.bresp != RESP_OKAY):
                        finish()

            with m.State("READ_SUM"):
                m.d.comb += [a.arvalid.eq(addr_left != 0), a.araddr.eq(src), a.arlen.eq(MAX_BURST_LEN - 1),
                             a.arsize.eq(lg), a.arburst.eq(burst_code), a.rready.eq(1)]
                with m.If(a.arvalid & a.arready):
                    m.d.sync += [src.eq(src + burst_bytes), addr_left.eq(addr_left - 1)]
                with m.If(a.rvalid):
                    m.d.sync += [regs["sum"].eq(regs["sum"] ^ a.rdata), data_left.eq(data_left - 1)]
                    note(a.rresp)
                with m.If((data_left == 0) | (a.rvalid & (data_left == 1))):
                    finish()

            with m.State("FILL"):
                pattern = (regs["PATTERN"] + data_count)[:REG_WIDTH]
                m.d.comb += [a.awvalid.eq(addr_left != 0), a.awaddr.eq(dst), a.awlen.eq(MAX_BURST_LEN - 1),
                             a.awsize.eq(lg), a.awburst.eq(burst_code),
                             a.wvalid.eq(data_left != 0), a.wdata.eq(pattern.replicate(nbytes * 8 // REG_WIDTH)),
                             a.wstrb.eq(Const(-1, nbytes)),
                             a.wlast.eq((data_count[:beat_bits] == MAX_BURST_LEN - 1) ^ fault(Fault.WLAST)),
                             a.bready.eq(1)]
                with m.If(a.awvalid & a.awready):
                    m.d.sync += [dst.eq(dst + burst_bytes), addr_left.eq(addr_left - 1)]
                with m.If(a.wvalid & a.wready):
                    m.d.sync += [data_count.eq(data_count + 1), data_left.eq(data_left - 1)]
                with m.If(a.bvalid):
                    m.d.sync += b_left.eq(b_left - 1)
                    note(a.bresp)
                with m.If((b_left == 0) | (a.bvalid & (b_left == 1))):
                    finish()


def to_verilog(dut: DmaLoopback, name: str = "virtio_gpio") -> str:
    """Verilog with the port contract's names: each signature path joined with "_" (Amaranth's own
    default joins with "__"); ``clk`` and ``rst`` come from the implicit sync domain."""
    ports = {}
    for path, member, value in dut.signature.flatten(dut):
        direction = _ir.PortDirection.Input if member.flow == In else _ir.PortDirection.Output
        ports["_".join(map(str, path))] = (value, direction)
    return verilog.convert(dut, name=name, ports=ports, emit_src=False)
