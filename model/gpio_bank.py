"""GPIO semantics: per-line state, the requestq messages and interrupt detection (virtio spec
"GPIO Device"; device contract §7-§8). No memory access happens here: the device reads the request
bytes, calls ``GpioBank.execute`` and writes the reply it gets back."""

from dataclasses import dataclass, field

from .config import DeviceConfig
from .constants import Direction, IrqType, MsgType, ReplyStatus
from .layouts import GPIO_REPLY_SIZE, GPIO_REQUEST_PACKER, GPIO_REQUEST_SIZE, GpioReply
from .virtqueue import DescriptorChain

VALID_IRQ_TYPES = frozenset(t.value for t in IrqType)
VALID_DIRECTIONS = frozenset(d.value for d in Direction)


@dataclass
class GpioLine:
    direction: Direction
    out_latch: int = 0  # driven on the pin only while direction is OUT
    irq_type: IrqType = IrqType.NONE
    edge_latched: bool = False
    held_buffer: DescriptorChain | None = None  # an eventq buffer: the line is unmasked
    pin: int = 0  # the synchronized input level


@dataclass
class Outcome:
    """What a request did: the reply bytes and the eventq buffers it released as INVALID."""

    reply: bytes
    released: list[DescriptorChain] = field(default_factory=list)


def err_reply(length: int) -> bytes:
    """An ERR reply of ``length`` bytes: status ERR and every value byte 0 (contract §7)."""
    return (bytes([ReplyStatus.ERR]) + bytes(max(length - 1, 0)))[:length]


class GpioBank:
    def __init__(self, config: DeviceConfig):
        self.config = config
        self.lines = [GpioLine(d) for d in config.reset_directions]

    def reset(self) -> None:
        """Device reset: every line back to its reset state; pin levels are outside inputs and stay."""
        pins = [line.pin for line in self.lines]
        self.lines = [GpioLine(d, pin=p) for d, p in zip(self.config.reset_directions, pins)]

    # -- pins ------------------------------------------------------------------------------

    def set_pin(self, gpio: int, level: int) -> None:
        """A new synchronized input level; edge types latch the matching transition (GPIO-16)."""
        line = self.lines[gpio]
        old, line.pin = line.pin, 1 if level else 0
        if old == line.pin or not line.irq_type.is_edge:
            return
        rising = line.pin == 1
        if (line.irq_type is IrqType.EDGE_BOTH
                or (rising and line.irq_type is IrqType.EDGE_RISING)
                or (not rising and line.irq_type is IrqType.EDGE_FALLING)):
            line.edge_latched = True

    @property
    def gpio_o(self) -> int:
        return sum(line.out_latch << i for i, line in enumerate(self.lines))

    @property
    def gpio_oe(self) -> int:
        return sum((line.direction is Direction.OUT) << i for i, line in enumerate(self.lines))

    # -- requestq --------------------------------------------------------------------------

    def execute(self, request: bytes, reply_space: int, irq_negotiated: bool) -> Outcome:
        """Carry out one request given its first readable bytes and the writable space for the
        reply. A request that is short, or whose reply does not fit, fails with no state change.
        The full reply is 1 + gpio_names_size bytes for a well-formed GET_LINE_NAMES, otherwise a
        status and a value byte."""
        if len(request) < GPIO_REQUEST_SIZE:
            return Outcome(err_reply(min(GPIO_REPLY_SIZE, reply_space)))
        msg_type, gpio, value = GPIO_REQUEST_PACKER.unpack(request)
        size = (1 + self.config.gpio_names_size if msg_type == MsgType.GET_LINE_NAMES
                else GPIO_REPLY_SIZE)
        if reply_space < size:
            return Outcome(err_reply(reply_space))
        outcome = Outcome(b"")
        if msg_type == MsgType.GET_LINE_NAMES:
            if self.config.gpio_names_size == 0:
                outcome.reply = err_reply(size)
            else:
                outcome.reply = bytes([ReplyStatus.OK]) + self.config.names_block
            return outcome
        value = self._execute_line_request(msg_type, gpio, value, irq_negotiated, outcome)
        outcome.reply = (GpioReply.build(dict(status=ReplyStatus.OK, value=value))
                         if value is not None else err_reply(size))
        return outcome

    def _execute_line_request(self, msg_type: int, gpio: int, value: int, irq_negotiated: bool,
                              outcome: Outcome) -> int | None:
        """Returns the reply value, or None for ERR (in which case no state has changed)."""
        if gpio >= self.config.ngpio:
            return None
        line = self.lines[gpio]
        match msg_type:
            case MsgType.GET_DIRECTION:
                return line.direction
            case MsgType.SET_DIRECTION:
                if value not in VALID_DIRECTIONS:
                    return None
                direction = Direction(value)
                if direction is Direction.OUT and line.irq_type is not IrqType.NONE:
                    return None
                if direction is Direction.NONE:
                    self._deactivate(line, outcome)
                line.direction = direction
                return 0
            case MsgType.GET_VALUE:
                if line.direction is Direction.OUT:
                    return line.out_latch
                if line.direction is Direction.IN:
                    return line.pin
                return None
            case MsgType.SET_VALUE:
                if value not in (0, 1):
                    return None
                line.out_latch = value
                return 0
            case MsgType.SET_IRQ_TYPE:
                if not irq_negotiated or value not in VALID_IRQ_TYPES or line.direction is Direction.OUT:
                    return None
                irq_type = IrqType(value)
                if irq_type is not line.irq_type:
                    line.edge_latched = False
                line.irq_type = irq_type
                if irq_type is IrqType.NONE:
                    self._release(line, outcome)
                return 0
        return None

    def _deactivate(self, line: GpioLine, outcome: Outcome) -> None:
        """SET_DIRECTION NONE discards all state of the line (GPIO-9)."""
        line.out_latch = 0
        line.irq_type = IrqType.NONE
        line.edge_latched = False
        self._release(line, outcome)

    @staticmethod
    def _release(line: GpioLine, outcome: Outcome) -> None:
        if line.held_buffer is not None:
            outcome.released.append(line.held_buffer)
            line.held_buffer = None

    # -- eventq ----------------------------------------------------------------------------

    def refuse_reason(self, gpio: int) -> str | None:
        """Why an eventq buffer for ``gpio`` must go back INVALID at once, or None to keep it."""
        if gpio >= self.config.ngpio:
            return f"gpio {gpio} >= ngpio {self.config.ngpio}"
        line = self.lines[gpio]
        if line.irq_type is IrqType.NONE:
            return f"line {gpio} has irq type NONE"
        if line.held_buffer is not None:
            return f"line {gpio} already holds a buffer"
        return None

    def hold(self, gpio: int, chain: DescriptorChain) -> None:
        self.lines[gpio].held_buffer = chain

    def due_events(self) -> list[tuple[int, DescriptorChain]]:
        """Take every held buffer whose line has a latched edge or an active level (GPIO-15..18),
        lowest line first; those lines are masked again and their edge latches cleared."""
        due = []
        for gpio, line in enumerate(self.lines):
            if line.held_buffer is None:
                continue
            active = (line.edge_latched if line.irq_type.is_edge
                      else line.pin == 1 if line.irq_type is IrqType.LEVEL_HIGH
                      else line.pin == 0 if line.irq_type is IrqType.LEVEL_LOW
                      else False)
            if active:
                due.append((gpio, line.held_buffer))
                line.held_buffer = None
                line.edge_latched = False
        return due
