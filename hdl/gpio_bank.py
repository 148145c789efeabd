"""The GPIO bank: per-line state, the requestq messages that change it, and interrupt detection
(device contract §7-§8).

Line state that every line needs at once (direction, output latch, irq type, latched edge, whether
an eventq buffer is held) lives in flip-flops: the pins and the edge detectors look at all lines in
every cycle. Where an eventq buffer goes (its head index and the address of its writable byte) is
only needed when that one line's event is delivered, so it lives in a memory of ``ngpio`` entries,
which grows into block RAM instead of flip-flops on large banks.
"""

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.config import DeviceConfig
from ..model.constants import Direction, IrqType, MsgType

# The irq type value is a set of conditions, one bit each (virtio spec: 1 rising, 2 falling, 4 high,
# 8 low), so the detectors use its bits directly.
IRQ_TYPE_BITS = 4
_RISING, _FALLING, _HIGH, _LOW = 0, 1, 2, 3
assert [IrqType.EDGE_RISING, IrqType.EDGE_FALLING, IrqType.LEVEL_HIGH, IrqType.LEVEL_LOW] == \
    [1 << _RISING, 1 << _FALLING, 1 << _HIGH, 1 << _LOW]

LineState = data.StructLayout({
    "direction": 2,
    "out_latch": 1,
    "irq_type": IRQ_TYPE_BITS,
    "edge_latched": 1,
    "held": 1,  # an eventq buffer is held: the line is unmasked
})


def line_index(ngpio: int) -> range:
    """The shape of a line number (at least one bit: a one-line bank still numbers its line)."""
    return range(max(ngpio, 2))


def held_buffer_layout(addr_width: int) -> data.StructLayout:
    """Where a held eventq buffer goes: its chain head and the address of its first writable byte."""
    return data.StructLayout({"head": 16, "addr": addr_width})


class GpioRequestSignature(wiring.Signature):
    """One requestq message, executed in the cycle ``execute`` is high (engine view). ``gpio`` is
    also the line the eventq side asks about: the bank looks at one line at a time."""

    def __init__(self):
        super().__init__({
            "execute": Out(1),
            "type": Out(16), "gpio": Out(16), "value": Out(32),
            "irq_negotiated": Out(1),
            # Results, valid in the cycle of `execute`:
            "ok": In(1), "reply_value": In(8),
            "release": In(1),  # the line's held eventq buffer must go back INVALID
        })


class GpioEventSignature(wiring.Signature):
    """The eventq side (engine view)."""

    def __init__(self, ngpio: int, addr_width: int):
        super().__init__({
            # A buffer for the request's `gpio` line may be held (gpio < ngpio, irq type not
            # NONE, none held yet).
            "acceptable": In(1),
            "hold": Out(1), "hold_buffer": Out(held_buffer_layout(addr_width)),
            # The lowest line with a held buffer and a latched edge or active level.
            "due": In(1), "due_line": In(line_index(ngpio)),
            "take": Out(1),  # deliver `due_line`: mask it and clear its latched edge
            # Held-buffer memory read (one cycle): by `line` on execute/take, data the next cycle.
            "buffer": In(held_buffer_layout(addr_width)),
            "buffer_line": Out(line_index(ngpio)),
            "drop_all": Out(1),  # the eventq was disabled: no buffer is held any more
        })


class GpioBank(wiring.Component):
    def __init__(self, config: DeviceConfig):
        self.config = config
        n = config.ngpio
        super().__init__({
            "request": In(GpioRequestSignature()),
            "event": In(GpioEventSignature(n, config.dma_addr_width)),
            "reset": In(1),  # device reset (Status = 0): every line back to its reset state
            "gpio_i": In(n), "gpio_o": Out(n), "gpio_oe": Out(n),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        n = cfg.ngpio
        req, ev = self.request, self.event

        lines = [Signal(LineState, name=f"line{i}", init={"direction": d})
                 for i, d in enumerate(cfg.reset_directions)]
        pin = Signal(n)  # synchronized inputs
        pin_prev = Signal(n)
        m.submodules.sync = FFSynchronizer(self.gpio_i, pin, stages=2)
        m.d.sync += pin_prev.eq(pin)

        for i in range(n):
            m.d.comb += [self.gpio_o[i].eq(lines[i].out_latch),
                         self.gpio_oe[i].eq(lines[i].direction == Direction.OUT)]

        def select(index):
            """The state of line ``index`` (which must be < ngpio)."""
            return data.View(LineState, Array(line.as_value() for line in lines)[index])

        # Held-buffer memory.
        m.submodules.buffers = buffers = Memory(shape=held_buffer_layout(cfg.dma_addr_width),
                                                depth=max(n, 2), init=[])
        wr = buffers.write_port()
        rd = buffers.read_port()
        m.d.comb += [wr.addr.eq(req.gpio), wr.data.eq(ev.hold_buffer), wr.en.eq(ev.hold),
                     rd.addr.eq(ev.buffer_line), ev.buffer.eq(rd.data)]

        # The one line the request or the eventq buffer is about.
        in_range = req.gpio < n
        index = Mux(in_range, req.gpio, 0)
        addressed = select(index)

        # Eventq: may a buffer be held for it?
        m.d.comb += ev.acceptable.eq(in_range & (addressed.irq_type != IrqType.NONE)
                                     & ~addressed.held)

        # Requestq: the new state of the addressed line.
        updated, write_back = self._execute(m, addressed, index, in_range, pin)

        # Per-line updates, in priority order (a later assignment wins): the request's write-back,
        # holding and taking eventq buffers, then edge latching, so that an edge seen in the same
        # cycle as another update of its line is not lost.
        due = Signal(n)
        for i, line in enumerate(lines):
            with m.If(write_back & (req.gpio == i)):
                m.d.sync += line.eq(updated)
            with m.If(ev.hold & (req.gpio == i)):
                m.d.sync += line.held.eq(1)
            with m.If(ev.take & (ev.due_line == i)):
                m.d.sync += [line.held.eq(0), line.edge_latched.eq(0)]
            rise = pin[i] & ~pin_prev[i]
            fall = ~pin[i] & pin_prev[i]
            with m.If((rise & line.irq_type[_RISING]) | (fall & line.irq_type[_FALLING])):
                m.d.sync += line.edge_latched.eq(1)
            with m.If(ev.drop_all):
                m.d.sync += line.held.eq(0)
            with m.If(self.reset):
                m.d.sync += line.eq(LineState.const({"direction": cfg.reset_directions[i]}))
            level = (line.irq_type[_HIGH] & pin[i]) | (line.irq_type[_LOW] & ~pin[i])
            m.d.comb += due[i].eq(line.held & (line.edge_latched | level))

        due_line = Signal(line_index(n))
        for i in reversed(range(n)):  # lowest line first
            with m.If(due[i]):
                m.d.comb += due_line.eq(i)
        m.d.comb += [ev.due.eq(due.any()), ev.due_line.eq(due_line)]
        return m

    def _execute(self, m, line, index, in_range, pin):
        """Decode the request; returns the addressed line's new state and when to store it."""
        req = self.request
        level = pin.bit_select(index, 1)
        direction, value = line.direction, req.value

        updated = Signal(LineState)
        ok = Signal()
        reply_value = Signal(8)
        release = Signal()
        m.d.comb += [updated.eq(line),
                     req.ok.eq(ok), req.reply_value.eq(Mux(ok, reply_value, 0)),
                     req.release.eq(release & ok & req.execute)]

        valid_direction = (value == Direction.NONE) | (value == Direction.OUT) | (value == Direction.IN)
        valid_irq_type = 0
        for t in IrqType:
            valid_irq_type |= value == t

        with m.If(in_range):
            with m.Switch(req.type):
                with m.Case(MsgType.GET_DIRECTION):
                    m.d.comb += [ok.eq(1), reply_value.eq(direction)]
                with m.Case(MsgType.SET_DIRECTION):
                    refused = (value == Direction.OUT) & (line.irq_type != IrqType.NONE)
                    m.d.comb += [ok.eq(valid_direction & ~refused), updated.direction.eq(value)]
                    with m.If(value == Direction.NONE):  # GPIO-9: forget the line's state
                        m.d.comb += [release.eq(line.held),
                                     updated.out_latch.eq(0), updated.irq_type.eq(IrqType.NONE),
                                     updated.edge_latched.eq(0), updated.held.eq(0)]
                with m.Case(MsgType.GET_VALUE):
                    m.d.comb += [ok.eq(direction != Direction.NONE),
                                 reply_value.eq(Mux(direction == Direction.OUT, line.out_latch, level))]
                with m.Case(MsgType.SET_VALUE):
                    m.d.comb += [ok.eq(value < 2), updated.out_latch.eq(value)]
                with m.Case(MsgType.SET_IRQ_TYPE):
                    m.d.comb += [ok.eq(req.irq_negotiated & valid_irq_type
                                       & (direction != Direction.OUT)),
                                 updated.irq_type.eq(value)]
                    with m.If(value != line.irq_type):
                        m.d.comb += updated.edge_latched.eq(0)
                    with m.If(value == IrqType.NONE):
                        m.d.comb += [release.eq(line.held), updated.held.eq(0)]
        return updated, req.execute & ok
