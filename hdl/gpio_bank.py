"""The GPIO bank: per-line state, the requestq messages that change it, and interrupt detection
(device contract §7-§8).

Line state that every line needs at once (direction, output latch, irq type, latched edge, whether
an eventq buffer is held) lives in flip-flops: the pins and the edge detectors look at all lines in
every cycle. Where an eventq buffer goes (its head index and the address of its writable byte) is
only needed when that one line's event is delivered, so it lives in a memory of ``ngpio`` entries,
which grows into block RAM instead of flip-flops on large banks.
"""

from amaranth.hdl import Array, Cat, Module, Mux, Signal
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


# The bank looks a request up in two register stages: its fields are decoded into flip-flops, then
# the addressed line's state is read into flip-flops, so that executing a request starts from
# flip-flops and not from the request bytes through a line multiplexer.
LOOKUP_CYCLES = 2

# The request fields as the first lookup stage keeps them: one flag per message type the bank runs,
# and the value's low bits (every value the bank accepts fits in them) with a flag for "no higher
# bit is set".
_MESSAGES = (MsgType.GET_DIRECTION, MsgType.SET_DIRECTION, MsgType.GET_VALUE, MsgType.SET_VALUE,
             MsgType.SET_IRQ_TYPE)
DecodedRequest = data.StructLayout({
    **{msg.name.lower(): 1 for msg in _MESSAGES},
    "value": IRQ_TYPE_BITS,
    "value_fits": 1,
})


def held_buffer_layout(addr_width: int) -> data.StructLayout:
    """Where a held eventq buffer goes: its chain head and the address of its first writable byte."""
    return data.StructLayout({"head": 16, "addr": addr_width})


class GpioRequestSignature(wiring.Signature):
    """One requestq message, executed in the cycle ``execute`` is high (engine view). ``gpio`` is
    also the line the eventq side asks about: the bank looks at one line at a time. ``type``,
    ``gpio`` and ``value`` must have been steady for LOOKUP_CYCLES cycles when ``execute`` (or
    ``hold``) is raised or ``acceptable`` is looked at."""

    def __init__(self):
        super().__init__({
            "execute": Out(1),
            "type": Out(16), "gpio": Out(16), "value": Out(32),
            "irq_negotiated": Out(1),
            # Results, valid in the cycle of `execute` (`ok`, `reply_value` and `release` are also
            # computed without it):
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
            # The lowest line with a held buffer and a latched edge or active level, as of the
            # previous cycle.
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

        # Lookup stage 1: the request's line as a clamped index and as a one-hot select, and its
        # type and value decoded.
        in_range = Signal()
        index = Signal(line_index(n))
        onehot = Signal(n)
        decoded = Signal(DecodedRequest)
        m.d.sync += [
            in_range.eq(req.gpio < n),
            index.eq(Mux(req.gpio < n, req.gpio, 0)),
            onehot.eq(Cat(req.gpio == i for i in range(n))),
            decoded.value.eq(req.value),
            decoded.value_fits.eq(req.value[IRQ_TYPE_BITS:] == 0),
        ]
        for msg in _MESSAGES:
            m.d.sync += getattr(decoded, msg.name.lower()).eq(req.type == msg)
        # Lookup stage 2: the addressed line's state. Direction, output latch and irq type change
        # only by requests and reset, which the engine never issues within LOOKUP_CYCLES of a
        # lookup; `held` is also cleared by disabling the eventq, so that is applied on the way
        # in. The latched edge is never read from here (a request only clears it), and the pin
        # level is read live.
        addressed = Signal(LineState)
        m.d.sync += addressed.eq(select(index))
        with m.If(ev.drop_all | self.reset):
            m.d.sync += addressed.held.eq(0)
        level = (pin & onehot).any()

        # Held-buffer memory.
        m.submodules.buffers = buffers = Memory(shape=held_buffer_layout(cfg.dma_addr_width),
                                                depth=max(n, 2), init=[])
        wr = buffers.write_port()
        rd = buffers.read_port()
        m.d.comb += [wr.addr.eq(index), wr.data.eq(ev.hold_buffer), wr.en.eq(ev.hold),
                     rd.addr.eq(ev.buffer_line), ev.buffer.eq(rd.data)]

        # Eventq: may a buffer be held for it?
        m.d.comb += ev.acceptable.eq(in_range & (addressed.irq_type != IrqType.NONE)
                                     & ~addressed.held)

        # Requestq: the new state of the addressed line.
        updated, write_back, clear_edge, clear_held = self._execute(m, addressed, decoded,
                                                                    in_range, level)

        # Per-line updates, in priority order (a later assignment wins): the request's write-back,
        # holding and taking eventq buffers, then edge latching, so that an edge seen in the same
        # cycle as another update of its line is not lost.
        due = Signal(n)
        for i, line in enumerate(lines):
            with m.If(write_back & onehot[i]):
                m.d.sync += [line.direction.eq(updated.direction),
                             line.out_latch.eq(updated.out_latch),
                             line.irq_type.eq(updated.irq_type)]
                with m.If(clear_edge):
                    m.d.sync += line.edge_latched.eq(0)
                with m.If(clear_held):
                    m.d.sync += line.held.eq(0)
            with m.If(ev.hold & onehot[i]):
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
            level_i = (line.irq_type[_HIGH] & pin[i]) | (line.irq_type[_LOW] & ~pin[i])
            m.d.comb += due[i].eq(line.held & (line.edge_latched | level_i))

        # Through flip-flops: the engine starts a delivery from them, not from the pins through
        # a priority encoder; the cycle they lag behind is one more synchronizer stage.
        due_line = Signal(line_index(n))
        for i in reversed(range(n)):  # lowest line first
            with m.If(due[i]):
                m.d.comb += due_line.eq(i)
        m.d.sync += [ev.due.eq(due.any()), ev.due_line.eq(due_line)]
        return m

    def _execute(self, m, line, decoded, in_range, level):
        """Run the looked-up request on the addressed line's state: its new direction, output
        latch and irq type, when to store them, and whether its latched edge and held buffer are
        cleared."""
        req = self.request
        direction, d = line.direction, decoded

        def value_is(v):
            return d.value_fits & (d.value == v)

        updated = Signal(LineState)
        ok = Signal()
        reply_value = Signal(8)
        release = Signal()
        clear_edge = Signal()
        clear_held = Signal()
        m.d.comb += [updated.eq(line),
                     req.ok.eq(ok), req.reply_value.eq(Mux(ok, reply_value, 0)),
                     req.release.eq(release & ok & req.execute)]

        valid_direction = value_is(Direction.NONE) | value_is(Direction.OUT) | value_is(Direction.IN)
        valid_irq_type = 0
        for t in IrqType:
            valid_irq_type |= value_is(t)

        with m.If(in_range):
            with m.If(d.get_direction):
                m.d.comb += [ok.eq(1), reply_value.eq(direction)]
            with m.Elif(d.set_direction):
                refused = value_is(Direction.OUT) & (line.irq_type != IrqType.NONE)
                m.d.comb += [ok.eq(valid_direction & ~refused), updated.direction.eq(d.value)]
                with m.If(value_is(Direction.NONE)):  # GPIO-9: forget the line's state
                    m.d.comb += [release.eq(line.held),
                                 updated.out_latch.eq(0), updated.irq_type.eq(IrqType.NONE),
                                 clear_edge.eq(1), clear_held.eq(1)]
            with m.Elif(d.get_value):
                m.d.comb += [ok.eq(direction != Direction.NONE),
                             reply_value.eq(Mux(direction == Direction.OUT, line.out_latch, level))]
            with m.Elif(d.set_value):
                m.d.comb += [ok.eq(value_is(0) | value_is(1)), updated.out_latch.eq(d.value)]
            with m.Elif(d.set_irq_type):
                m.d.comb += [ok.eq(req.irq_negotiated & valid_irq_type
                                   & (direction != Direction.OUT)),
                             updated.irq_type.eq(d.value)]
                with m.If(~value_is(line.irq_type)):
                    m.d.comb += clear_edge.eq(1)
                with m.If(value_is(IrqType.NONE)):
                    m.d.comb += [release.eq(line.held), clear_held.eq(1)]
        return updated, req.execute & ok, clear_edge, clear_held
