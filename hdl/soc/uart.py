"""An 8N1 UART: ``UartRx`` and ``UartTx``, byte streams on one side, the pin on the other.

Both run from the ``sync`` domain at ``divisor`` clock cycles per bit (clock / baud rate, rounded;
8N1 tolerates a few percent of mismatch). The receiver synchronizes its pin with two flip-flops,
finds the start bit's falling edge, samples every bit in its middle and checks the stop bit.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

DATA_BITS = 8
MIN_DIVISOR = 4  # the receiver needs a few cycles per bit to find the middle of one after the sync


def check_divisor(divisor: int) -> None:
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < MIN_DIVISOR:
        raise ValueError(f"UART divisor (clock cycles per bit) must be an integer >= {MIN_DIVISOR}, "
                         f"not {divisor!r}")


class UartTx(wiring.Component):
    """``data``: bytes to send (taken one at a time, LSB first); ``tx``: the pin, high while idle."""

    def __init__(self, divisor: int):
        check_divisor(divisor)
        self.divisor = divisor
        super().__init__({
            "data": In(stream.Signature(DATA_BITS)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        frame_bits = 1 + DATA_BITS + 1  # start, data, stop
        timer = Signal(range(self.divisor))  # cycles left in the current bit, minus one
        bits = Signal(range(frame_bits + 1))  # bit periods left, the current one included; 0 = idle
        shreg = Signal(DATA_BITS + 1)  # bits still to go after the current one: data, then stop

        bit_end = timer == 0
        # Take the next byte as the stop bit ends, so that back-to-back bytes have no gap.
        m.d.comb += self.data.ready.eq((bits == 0) | ((bits == 1) & bit_end))

        with m.If(bits != 0):
            m.d.sync += timer.eq(timer - 1)
            with m.If(bit_end):
                m.d.sync += [timer.eq(self.divisor - 1), bits.eq(bits - 1)]
                with m.If(bits != 1):
                    m.d.sync += [self.tx.eq(shreg[0]), shreg.eq(shreg >> 1)]
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [
                self.tx.eq(0),  # start bit
                shreg.eq(Cat(self.data.payload, 1)),
                timer.eq(self.divisor - 1),
                bits.eq(frame_bits),
            ]
        return m


class UartRx(wiring.Component):
    """``rx``: the pin (asynchronous; synchronized inside); ``data``: received bytes, each offered
    until taken (a byte that completes while the previous one is still offered replaces it);
    ``framing_error``: one-cycle pulse for a byte whose stop bit was low, which is dropped. After a
    framing error the receiver waits for the line to go high before it looks for a start bit, so a
    break (line held low) counts as one error, not a stream of them."""

    def __init__(self, divisor: int):
        check_divisor(divisor)
        self.divisor = divisor
        super().__init__({
            "rx": In(1),
            "data": Out(stream.Signature(DATA_BITS)),
            "framing_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)  # idle high from reset, so reset is not seen as a start bit
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(self.divisor))
        count = Signal(range(DATA_BITS))
        shreg = Signal(DATA_BITS)

        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    # Half a bit on from the falling edge is the middle of the start bit.
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(self.divisor - 1), count.eq(0)]
                    # A glitch shorter than half a bit is not a start bit.
                    with m.If(rx):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(self.divisor - 1), shreg.eq(Cat(shreg[1:], rx)),
                                 count.eq(count + 1)]
                    with m.If(count == DATA_BITS - 1):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(rx):
                        m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += self.framing_error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(rx):
                    m.next = "IDLE"
        return m
