"""The UART bus bridge: lets a host PC on the board's USB UART read and write 32-bit words on an
AXI4-Lite bus (the device's registers, the guest memory) and poll the device's interrupt line.

The byte protocol, its timeout and its recovery rules are defined in ``bridge_protocol.py``. Each
frame becomes exactly one AXI4-Lite access (or none, for IRQ) and one reply. Received bytes pass
through a small FIFO so that a host may send its next frame while a reply is still going out.
Malformed input (unknown opcodes, partial frames, framing errors, buffer overruns) is always
recovered from; a bus that never completes a handshake stalls the bridge, which is the bus's fault.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..axi import AXI4LiteSignature, RESP_DECERR, RESP_OKAY, RESP_SLVERR
from .bridge_protocol import (ADDR_BITS, ADDR_BYTES, BAD_OPCODE_REPLY_LENGTH, DATA_BITS, DATA_BYTES,
                              FRAME_TIMEOUT_BITS, MAX_REPLY_LENGTH, REPLY_LENGTH, RX_BUFFER_BYTES,
                              STATUS_BAD_OPCODE, Opcode, Status)
from .uart import DATA_BITS as BYTE_BITS
from .uart import UartRx, UartTx, check_divisor

# The status byte is the AXI response code; the protocol module cannot import axi.py (no Amaranth).
assert (Status.OKAY, Status.SLVERR, Status.DECERR) == (RESP_OKAY, RESP_SLVERR, RESP_DECERR)


class UartBusBridge(wiring.Component):
    """``rx``/``tx``: the UART pins (8N1, ``divisor`` clock cycles per bit); ``irq``: the device's
    interrupt line, reported by the IRQ frame; ``bus``: the AXI4-Lite manager port (32-bit address
    and data)."""

    def __init__(self, divisor: int):
        check_divisor(divisor)
        self.divisor = divisor
        super().__init__({
            "rx": In(1),
            "tx": Out(1, init=1),
            "irq": In(1),
            "bus": Out(AXI4LiteSignature(addr_width=ADDR_BITS, data_width=DATA_BITS)),
        })

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        m.submodules.uart_rx = urx = UartRx(self.divisor)
        m.submodules.uart_tx = utx = UartTx(self.divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]

        # Receive FIFO entries: a byte, or (bit 8 set) a marker for a byte lost to a line error.
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=BYTE_BITS + 1, depth=RX_BUFFER_BYTES)
        entry_byte = fifo.r_data[:BYTE_BITS]
        entry_lost = fifo.r_data[BYTE_BITS]

        # Clock cycles since the last byte (good or bad) came off the line, saturating at the timeout.
        timeout = FRAME_TIMEOUT_BITS * self.divisor
        since_byte = Signal(range(timeout + 1))
        quiet = since_byte == timeout
        with m.If(urx.data.valid | urx.framing_error):
            m.d.sync += since_byte.eq(0)
        with m.Elif(~quiet):
            m.d.sync += since_byte.eq(since_byte + 1)

        # Writing side: the UART is never held off (it cannot be: bytes keep arriving), so a byte that
        # finds the FIFO full is lost; then a marker is queued as soon as there is room, and bytes
        # arriving before that are dropped too (the parser discards them anyway, see DISCARD).
        lost_pending = Signal()
        m.d.comb += urx.data.ready.eq(1)
        with m.If(urx.data.valid):
            with m.If(~lost_pending & fifo.w_rdy):
                m.d.comb += [fifo.w_en.eq(1), fifo.w_data.eq(Cat(urx.data.payload, 0))]
            with m.Else():
                m.d.sync += lost_pending.eq(1)
        with m.Elif(urx.framing_error | lost_pending):
            with m.If(fifo.w_rdy):
                m.d.comb += [fifo.w_en.eq(1), fifo.w_data.eq(Cat(Const(0, BYTE_BITS), 1))]
                m.d.sync += lost_pending.eq(0)
            with m.Else():
                m.d.sync += lost_pending.eq(1)
        line_idle = quiet & ~fifo.r_rdy & ~lost_pending

        # The frame being gathered: address bytes, then data bytes, each little-endian.
        field = Signal(ADDR_BITS + DATA_BITS)
        addr = field[:ADDR_BITS]
        wdata = field[ADDR_BITS:]
        index = Signal(range(ADDR_BYTES + DATA_BYTES))
        last_index = Signal.like(index)
        is_write = Signal()
        aw_done = Signal()
        w_done = Signal()

        # The reply: bytes go out from the low end.
        reply = Signal(BYTE_BITS * MAX_REPLY_LENGTH)
        reply_left = Signal(range(MAX_REPLY_LENGTH + 1))

        def send(status, *data, length):
            """Start a reply: the status byte, then ``data`` (LSB first)."""
            return [reply.eq(Cat(status.as_unsigned(), Const(0, BYTE_BITS - len(status)), *data)),
                    reply_left.eq(length)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += fifo.r_en.eq(1)
                with m.If(fifo.r_rdy):
                    with m.If(entry_lost):
                        m.next = "DISCARD"
                    with m.Else():
                        m.d.sync += index.eq(0)
                        with m.Switch(entry_byte):
                            with m.Case(Opcode.READ):
                                m.d.sync += [is_write.eq(0), last_index.eq(ADDR_BYTES - 1)]
                                m.next = "GATHER"
                            with m.Case(Opcode.WRITE):
                                m.d.sync += [is_write.eq(1),
                                             last_index.eq(ADDR_BYTES + DATA_BYTES - 1)]
                                m.next = "GATHER"
                            with m.Case(Opcode.IRQ):
                                m.d.sync += send(Const(Status.OKAY, 2), self.irq,
                                                 length=REPLY_LENGTH[Opcode.IRQ])
                                m.next = "REPLY"
                            with m.Default():
                                m.d.sync += send(Const(STATUS_BAD_OPCODE, BYTE_BITS),
                                                 length=BAD_OPCODE_REPLY_LENGTH)
                                m.next = "REPLY"

            with m.State("GATHER"):
                m.d.comb += fifo.r_en.eq(1)
                with m.If(fifo.r_rdy):
                    with m.If(entry_lost):
                        m.next = "DISCARD"
                    with m.Else():
                        m.d.sync += [field.word_select(index, BYTE_BITS).eq(entry_byte),
                                     index.eq(index + 1)]
                        with m.If(index == last_index):
                            m.d.sync += [aw_done.eq(0), w_done.eq(0)]
                            with m.If(is_write):
                                m.next = "AW_W"
                            with m.Else():
                                m.next = "AR"
                with m.Elif(line_idle):
                    m.next = "IDLE"  # the host stopped mid-frame: drop it, send nothing

            with m.State("AR"):
                m.d.comb += [bus.arvalid.eq(1), bus.araddr.eq(addr)]
                with m.If(bus.arready):
                    m.next = "R"
            with m.State("R"):
                m.d.comb += bus.rready.eq(1)
                with m.If(bus.rvalid):
                    m.d.sync += send(bus.rresp,
                                     Mux(bus.rresp == RESP_OKAY, bus.rdata, 0),
                                     length=REPLY_LENGTH[Opcode.READ])
                    m.next = "REPLY"

            with m.State("AW_W"):
                # Address and data are offered together; the subordinate may take them in any order.
                m.d.comb += [
                    bus.awvalid.eq(~aw_done), bus.awaddr.eq(addr),
                    bus.wvalid.eq(~w_done), bus.wdata.eq(wdata),
                    bus.wstrb.eq((1 << len(bus.wstrb)) - 1),  # WRITE frames carry whole words
                ]
                with m.If(bus.awready):
                    m.d.sync += aw_done.eq(1)
                with m.If(bus.wready):
                    m.d.sync += w_done.eq(1)
                with m.If((aw_done | bus.awready) & (w_done | bus.wready)):
                    m.next = "B"
            with m.State("B"):
                m.d.comb += bus.bready.eq(1)
                with m.If(bus.bvalid):
                    m.d.sync += send(bus.bresp, length=REPLY_LENGTH[Opcode.WRITE])
                    m.next = "REPLY"

            with m.State("REPLY"):
                m.d.comb += [utx.data.valid.eq(1), utx.data.payload.eq(reply[:BYTE_BITS])]
                with m.If(utx.data.ready):
                    m.d.sync += [reply.eq(reply >> BYTE_BITS), reply_left.eq(reply_left - 1)]
                    with m.If(reply_left == 1):
                        m.next = "IDLE"

            with m.State("DISCARD"):
                # After a line error, drop everything until the line has been quiet for a frame
                # timeout: the rest of a damaged frame must not be read as new commands.
                m.d.comb += fifo.r_en.eq(1)
                with m.If(line_idle):
                    m.next = "IDLE"
        return m
