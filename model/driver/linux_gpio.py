"""A model of what Linux does to a virtio-mmio GPIO device: virtio_mmio.c (probe, features, queue
set-up, interrupt handler), virtio.c (status steps) and gpio-virtio.c (requests and the irq chip),
in the order and shapes the kernel uses (spec notes §3).

It talks to the device only through a ``Transport``. Requests are synchronous as in Linux: the call
returns when the reply is back; ``submit``/``wait`` expose the asynchronous half for tests that keep
many requests in flight.
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Callable

from ..constants import (
    DEVICE_ID_GPIO, MAGIC_VALUE, MMIO_VERSION, DeviceStatus, Direction, Feature, InterruptStatus,
    IrqStatus, IrqType, MsgType, QueueIndex, ReplyStatus,
)
from ..layouts import (
    GPIO_REPLY_SIZE, GPIO_REQUEST_PACKER, GPIO_REQUEST_SIZE, IRQ_REPLY_SIZE, IRQ_REQUEST_SIZE,
    GpioConfig, IrqRequest, Reg,
)
from ..transport import Transport
from .vring import BrokenRing, DriverVirtqueue

# Feature bits the Linux ring and transport code keep when the device offers them (vring_transport_features
# plus the GPIO driver's feature table).
LINUX_KNOWN_FEATURES = (Feature.GPIO_F_IRQ.mask | Feature.RING_INDIRECT_DESC.mask
                        | Feature.RING_EVENT_IDX.mask | Feature.VERSION_1.mask
                        | Feature.ACCESS_PLATFORM.mask | Feature.RING_PACKED.mask
                        | Feature.ORDER_PLATFORM.mask | Feature.NOTIFICATION_DATA.mask)

DEFAULT_TIMEOUT_STEPS = 10_000


def negotiate_features(t: Transport, features: int) -> bool:
    """virtio.c's status steps up to FEATURES_OK, register by register, with Linux's
    read-modify-write of Status; returns whether the device accepted FEATURES_OK. For tests that
    negotiate a feature set of their own instead of probing."""
    for bit in (DeviceStatus.ACKNOWLEDGE, DeviceStatus.DRIVER):
        t.write(Reg.STATUS, t.read(Reg.STATUS) | bit)
    for sel in (1, 0):
        t.write(Reg.DRIVER_FEATURES_SEL, sel)
        t.write(Reg.DRIVER_FEATURES, (features >> (32 * sel)) & 0xFFFF_FFFF)
    t.write(Reg.STATUS, t.read(Reg.STATUS) | DeviceStatus.FEATURES_OK)
    return bool(t.read(Reg.STATUS) & DeviceStatus.FEATURES_OK)


class ConfigRead(Enum):
    MODERN = "modern"  # readl gpio_names_size, readw ngpio (Linux since mid-2025, and stable)
    BYTEWISE = "bytewise"  # ConfigGeneration, 8 x readb, ConfigGeneration (Linux 5.15 .. mid-2025)


class ProbeError(Exception):
    pass


class GpioError(Exception):
    """A request failed as gpio-virtio.c would report it (-EINVAL)."""


class DriverTimeout(Exception):
    """The device did not answer within the step budget (Linux would wait forever)."""


@dataclass
class LineBuffers:
    """Per-line request and reply buffers, pre-allocated as in ``struct virtio_gpio_line``."""

    req: int
    res: int


@dataclass
class IrqLine:
    """``struct vgpio_irq_line``: the irq chip's view of one line."""

    ireq: int
    ires: int
    type: IrqType = IrqType.NONE
    disabled: bool = True
    masked: bool = True
    queued: bool = False
    update_pending: bool = False
    queue_pending: bool = False


@dataclass
class Pending:
    """A request in flight: completed once the device returns its chain."""

    line: int
    res: int
    rxlen: int
    head: int = -1  # the chain's head descriptor, for tests that look at the used ring
    done: bool = False
    used_len: int = 0


@dataclass
class DriverLog:
    events: list[tuple[int, str]] = field(default_factory=list)  # (line, "VALID") per handled irq
    invalid: list[int] = field(default_factory=list)  # lines whose eventq buffer came back INVALID
    spurious_interrupts: int = 0  # interrupts with nothing to do (Linux: IRQ_NONE)
    config_changes: int = 0
    errors: list[str] = field(default_factory=list)  # dev_err() lines


class LinuxVirtioGpioDriver:
    def __init__(self, transport: Transport, *, features: int = LINUX_KNOWN_FEATURES,
                 config_read: ConfigRead = ConfigRead.MODERN, queue_size: int | None = None,
                 timeout_steps: int = DEFAULT_TIMEOUT_STEPS,
                 trace: Callable[[str], None] | None = None,
                 irq_handler: Callable[[int], None] | None = None):
        self.t = transport
        self.mem = transport.memory
        self.wanted_features = features & LINUX_KNOWN_FEATURES
        self.config_read = config_read
        self.queue_size = queue_size  # cap on QueueNumMax (Linux halves the size when short of memory)
        self.timeout_steps = timeout_steps
        self.trace = trace or (lambda msg: None)
        self.irq_handler = irq_handler  # called with the line number for each delivered interrupt
        self.log = DriverLog()
        self.features = 0
        self.ngpio = 0
        self.gpio_names_size = 0
        self.names: list[str] | None = None
        self.vqs: list[DriverVirtqueue] = []
        self.lines: list[LineBuffers] = []
        self.irq_lines: list[IrqLine] = []

    # -- status helpers (virtio.c) ---------------------------------------------------------

    def _add_status(self, bit: DeviceStatus) -> None:
        self.t.write(Reg.STATUS, self.t.read(Reg.STATUS) | bit)

    def has(self, feature: Feature) -> bool:
        return bool(self.features & feature.mask)

    # -- probe -----------------------------------------------------------------------------

    def probe(self) -> None:
        t = self.t
        magic = t.read(Reg.MAGIC_VALUE)
        if magic != MAGIC_VALUE:
            raise ProbeError(f"wrong magic value {magic:#010x}")
        version = t.read(Reg.VERSION)
        if version != MMIO_VERSION:
            raise ProbeError(f"version {version} not supported (this model drives v2 only)")
        device_id = t.read(Reg.DEVICE_ID)
        if device_id != DEVICE_ID_GPIO:
            raise ProbeError(f"device ID {device_id} is not GPIO ({DEVICE_ID_GPIO})")
        vendor = t.read(Reg.VENDOR_ID)
        self.trace(f"probe: virtio-mmio v{version}, device {device_id}, vendor {vendor:#010x}")
        t.write(Reg.STATUS, 0)  # register_virtio_device: reset, no read-back
        self._add_status(DeviceStatus.ACKNOWLEDGE)
        self._add_status(DeviceStatus.DRIVER)
        t.write(Reg.DEVICE_FEATURES_SEL, 1)
        offered = t.read(Reg.DEVICE_FEATURES) << 32
        t.write(Reg.DEVICE_FEATURES_SEL, 0)
        offered |= t.read(Reg.DEVICE_FEATURES)
        self.features = offered & self.wanted_features
        if not self.has(Feature.VERSION_1):
            self._add_status(DeviceStatus.FAILED)
            raise ProbeError("New virtio-mmio devices (version 2) must provide VIRTIO_F_VERSION_1")
        t.write(Reg.DRIVER_FEATURES_SEL, 1)
        t.write(Reg.DRIVER_FEATURES, self.features >> 32)
        t.write(Reg.DRIVER_FEATURES_SEL, 0)
        t.write(Reg.DRIVER_FEATURES, self.features & 0xFFFF_FFFF)
        self._add_status(DeviceStatus.FEATURES_OK)
        if not t.read(Reg.STATUS) & DeviceStatus.FEATURES_OK:
            self._add_status(DeviceStatus.FAILED)
            raise ProbeError("device refuses features")
        self.trace(f"probe: offered {offered:#x}, negotiated {self.features:#x}")
        self._read_config()
        self._setup_queues()
        self._add_status(DeviceStatus.DRIVER_OK)  # virtio_device_ready() inside the GPIO probe
        self.lines = [LineBuffers(self.mem.alloc(GPIO_REQUEST_SIZE, 64),
                                  self.mem.alloc(GPIO_REPLY_SIZE, 64)) for _ in range(self.ngpio)]
        if self.has(Feature.GPIO_F_IRQ):
            self.irq_lines = [IrqLine(self.mem.alloc(IRQ_REQUEST_SIZE, 64),
                                      self.mem.alloc(IRQ_REPLY_SIZE, 64)) for _ in range(self.ngpio)]
        self.names = self._get_names()
        # gpiochip_add_data() asks every line for its direction; errors are only warnings.
        for line in range(self.ngpio):
            try:
                self.get_direction(line)
            except GpioError as e:
                self.log.errors.append(f"get_direction failed on line {line}: {e}")

    def _read_config(self) -> None:
        t = self.t
        if self.config_read is ConfigRead.MODERN:
            self.gpio_names_size = t.read(Reg.CONFIG + 4, 4)
            self.ngpio = t.read(Reg.CONFIG + 0, 2)
        else:
            while True:
                before = t.read(Reg.CONFIG_GENERATION)
                raw = bytes(t.read(Reg.CONFIG + i, 1) for i in range(GpioConfig.sizeof()))
                if t.read(Reg.CONFIG_GENERATION) == before:
                    break
            cfg = GpioConfig.parse(raw)
            self.ngpio, self.gpio_names_size = cfg.ngpio, cfg.gpio_names_size
        self.trace(f"config: ngpio {self.ngpio}, gpio_names_size {self.gpio_names_size}")
        if self.ngpio == 0:
            raise ProbeError("Number of GPIOs can't be zero")

    def _setup_queues(self) -> None:
        t = self.t
        count = 2 if self.has(Feature.GPIO_F_IRQ) else 1
        for index in range(count):
            t.write(Reg.QUEUE_SEL, index)
            if t.read(Reg.QUEUE_READY):
                raise ProbeError(f"queue {index} already set up")
            num_max = t.read(Reg.QUEUE_SIZE_MAX)
            if num_max == 0:
                raise ProbeError(f"queue {index} does not exist")
            if num_max & (num_max - 1):
                raise ProbeError(f"Bad virtqueue length {num_max}")
            num = min(num_max, self.queue_size) if self.queue_size else num_max
            vq = DriverVirtqueue(self.mem, index, num, indirect=self.has(Feature.RING_INDIRECT_DESC),
                                 event_idx=self.has(Feature.RING_EVENT_IDX))
            t.write(Reg.QUEUE_SIZE, num)
            for low, addr in ((Reg.QUEUE_DESC_LOW, vq.desc_addr), (Reg.QUEUE_DRIVER_LOW, vq.avail_addr),
                              (Reg.QUEUE_DEVICE_LOW, vq.used_addr)):
                t.write(low, addr & 0xFFFF_FFFF)
                t.write(low + 4, addr >> 32)
            t.write(Reg.QUEUE_READY, 1)
            self.vqs.append(vq)
            self.trace(f"queue {index}: {num} entries, desc {vq.desc_addr:#x}, "
                       f"avail {vq.avail_addr:#x}, used {vq.used_addr:#x}")

    # -- interrupt handling (vm_interrupt) -------------------------------------------------

    def handle_interrupt(self) -> None:
        status = self.t.read(Reg.INTERRUPT_STATUS)
        self.t.write(Reg.INTERRUPT_ACK, status)
        handled = False
        if status & InterruptStatus.CONFIG_CHANGE:
            self.log.config_changes += 1
            handled = True
        if status & InterruptStatus.USED_BUFFER:
            for vq in self.vqs:
                if vq.more_used():
                    handled = True
                    self.reap_requestq() if vq.index == QueueIndex.REQUESTQ else self.reap_eventq()
        if not handled:
            self.log.spurious_interrupts += 1

    def reap_requestq(self) -> None:
        vq = self.vqs[QueueIndex.REQUESTQ]
        while (got := vq.get_buf()) is not None:
            pending, length = got
            pending.done, pending.used_len = True, length

    def reap_eventq(self) -> None:
        vq = self.vqs[QueueIndex.EVENTQ]
        while (got := vq.get_buf()) is not None:
            gpio, length = got
            if length != IRQ_REPLY_SIZE:
                self.log.errors.append(f"irq with incorrect length ({length} : {IRQ_REPLY_SIZE})")
                continue
            irq_line = self.irq_lines[gpio]
            irq_line.queued = False
            status = self.mem.read(irq_line.ires, 1)[0]
            if status == IrqStatus.INVALID:
                self.log.invalid.append(gpio)
            if irq_line.masked or irq_line.disabled:
                continue
            if status == IrqStatus.INVALID:
                self._irq_prepare(gpio)
                continue
            if status != IrqStatus.VALID:
                self.log.errors.append(f"line {gpio}: irq status {status}")
                continue
            # handle_level_irq: mask, run the handler, unmask (which queues the buffer again)
            self.irq_mask(gpio)
            self.log.events.append((gpio, "VALID"))
            self.trace(f"irq: line {gpio}")
            if self.irq_handler:
                self.irq_handler(gpio)
            self.irq_unmask(gpio)

    def idle(self, steps: int = 3) -> None:
        """Let the device run for ``steps`` steps with nothing to wait for, taking interrupts as
        they come: what a test does before it asserts that something did not happen."""
        for _ in range(steps):
            self.t.advance()
            if self.t.irq:
                self.handle_interrupt()

    def poll(self, until: Callable[[], bool]) -> None:
        """Let the device run and take interrupts until ``until()`` holds."""
        for _ in range(self.timeout_steps):
            if until():
                return
            self.t.advance()
            if self.t.irq:
                self.handle_interrupt()
        if not until():
            raise DriverTimeout(f"no completion after {self.timeout_steps} steps")

    # -- requests (virtio_gpio_req) --------------------------------------------------------

    def _kick(self, vq: DriverVirtqueue) -> None:
        if vq.kick_prepare():
            self.t.write(Reg.QUEUE_NOTIFY, vq.index)

    def submit(self, msg_type: int, gpio: int, value: int = 0, *, req: int | None = None,
               res: int | None = None, rxlen: int = GPIO_REPLY_SIZE, kick: bool = True) -> Pending:
        """Queue one request without waiting for it. Linux uses line ``gpio``'s own buffers, one
        request per line at a time; tests that queue several on one line pass buffers of their own."""
        line = self.lines[gpio] if gpio < len(self.lines) else self._scratch_line(gpio)
        req = line.req if req is None else req
        res = line.res if res is None else res
        self.mem.write(req, GPIO_REQUEST_PACKER.pack(msg_type, gpio, value))
        pending = Pending(gpio, res, rxlen)
        pending.head = self.vqs[QueueIndex.REQUESTQ].add([(req, GPIO_REQUEST_SIZE)], [(res, rxlen)], pending)
        if kick:
            self._kick(self.vqs[QueueIndex.REQUESTQ])
        return pending

    def _scratch_line(self, gpio: int) -> LineBuffers:
        # Linux never sends gpio >= ngpio; tests that do get fresh buffers for it.
        return LineBuffers(self.mem.alloc(GPIO_REQUEST_SIZE, 64), self.mem.alloc(GPIO_REPLY_SIZE, 64))

    def kick(self) -> None:
        self._kick(self.vqs[QueueIndex.REQUESTQ])

    def wait(self, *pending: Pending) -> None:
        self.poll(lambda: all(p.done for p in pending))

    def finish(self, pending: Pending) -> bytes:
        """The reply bytes of a completed request, checked as gpio-virtio.c checks them."""
        reply = self.mem.read(pending.res, pending.rxlen)
        if reply[0] != ReplyStatus.OK:
            raise GpioError(f"GPIO request failed: {pending.line}")
        if pending.used_len != pending.rxlen:
            raise GpioError(f"GPIO operation returned incorrect len ({pending.rxlen} : {pending.used_len})")
        return reply

    def request(self, msg_type: int, gpio: int, value: int = 0) -> int:
        pending = self.submit(msg_type, gpio, value)
        self.wait(pending)
        reply = self.finish(pending)
        self.trace(f"request {MsgType(msg_type).name}(gpio {gpio}, value {value}) -> {reply[1]}")
        return reply[1]

    def _get_names(self) -> list[str] | None:
        if not self.gpio_names_size:
            return None
        rxlen = 1 + self.gpio_names_size
        res = self.mem.alloc(rxlen, 64)
        pending = self.submit(MsgType.GET_LINE_NAMES, 0, 0, res=res, rxlen=rxlen)
        self.wait(pending)
        try:
            block = bytearray(self.finish(pending)[1:])
        except GpioError as e:
            self.log.errors.append(f"Failed to get GPIO names: {e}")
            return None
        block[-1] = 0  # Linux terminates the block instead of checking it
        names, pos = [], 0
        for i in range(self.ngpio):
            end = block.find(b"\0", pos)
            if end < 0:
                self.log.errors.append(f"gpio_names block is too short ({i})")
                return None
            names.append(block[pos:end].decode("ascii", "replace"))
            pos = end + 1
        self.trace(f"names: {names}")
        return names

    # -- gpio_chip operations --------------------------------------------------------------

    def get_direction(self, gpio: int) -> Direction:
        direction = self.request(MsgType.GET_DIRECTION, gpio)
        if direction not in (Direction.IN, Direction.OUT):
            raise GpioError(f"line {gpio}: direction {direction} (-EINVAL)")
        return Direction(direction)

    def direction_input(self, gpio: int) -> None:
        self.request(MsgType.SET_DIRECTION, gpio, Direction.IN)

    def direction_output(self, gpio: int, value: int) -> None:
        self.request(MsgType.SET_VALUE, gpio, value)
        self.request(MsgType.SET_DIRECTION, gpio, Direction.OUT)

    def get(self, gpio: int) -> int:
        return self.request(MsgType.GET_VALUE, gpio)

    def set(self, gpio: int, value: int) -> None:
        self.request(MsgType.SET_VALUE, gpio, value)

    def free(self, gpio: int) -> None:
        self.request(MsgType.SET_DIRECTION, gpio, Direction.NONE)

    # -- irq chip --------------------------------------------------------------------------

    def _irq_prepare(self, gpio: int) -> None:
        irq_line = self.irq_lines[gpio]
        if irq_line.queued or irq_line.masked or irq_line.disabled:
            self.log.errors.append(f"WARN: irq_prepare on line {gpio} queued/masked/disabled")
            return
        self.mem.write(irq_line.ireq, IrqRequest.build(dict(gpio=gpio)))
        vq = self.vqs[QueueIndex.EVENTQ]
        vq.add([(irq_line.ireq, IRQ_REQUEST_SIZE)], [(irq_line.ires, IRQ_REPLY_SIZE)], gpio)
        irq_line.queued = True
        self._kick(vq)

    def irq_set_type(self, gpio: int, irq_type: IrqType) -> None:
        self.irq_lines[gpio].type = irq_type
        self.irq_lines[gpio].update_pending = True

    def irq_enable(self, gpio: int) -> None:
        irq_line = self.irq_lines[gpio]
        irq_line.disabled = irq_line.masked = False
        irq_line.queue_pending = irq_line.update_pending = True

    def irq_disable(self, gpio: int) -> None:
        irq_line = self.irq_lines[gpio]
        irq_line.disabled = irq_line.masked = True
        irq_line.queue_pending = False
        irq_line.update_pending = True

    def irq_mask(self, gpio: int) -> None:
        self.irq_lines[gpio].masked = True

    def irq_unmask(self, gpio: int) -> None:
        self.irq_lines[gpio].masked = False
        self._irq_prepare(gpio)

    def irq_bus_sync_unlock(self, gpio: int) -> None:
        """Send what set_type/enable/disable recorded: SET_IRQ_TYPE (reply ignored), then the
        eventq buffer if the line was just enabled."""
        irq_line = self.irq_lines[gpio]
        if not irq_line.update_pending:
            return
        irq_line.update_pending = False
        irq_type = IrqType.NONE if irq_line.disabled else irq_line.type
        try:
            self.request(MsgType.SET_IRQ_TYPE, gpio, irq_type)
        except GpioError as e:
            self.log.errors.append(str(e))
        if irq_line.queue_pending:
            irq_line.queue_pending = False
            self._irq_prepare(gpio)

    def request_irq(self, gpio: int, irq_type: IrqType) -> None:
        """request_irq(): the irq core's set_type and enable under one bus lock."""
        self.irq_set_type(gpio, irq_type)
        self.irq_enable(gpio)
        self.irq_bus_sync_unlock(gpio)

    def free_irq(self, gpio: int) -> None:
        self.irq_disable(gpio)
        self.irq_bus_sync_unlock(gpio)

    # -- removal ---------------------------------------------------------------------------

    def remove(self, requested_lines: list[int] = ()) -> None:
        """gpiochip_remove (SET_DIRECTION NONE per requested line), reset, queue teardown."""
        for gpio in requested_lines:
            self.free(gpio)
        t = self.t
        t.write(Reg.STATUS, 0)
        for vq in self.vqs:
            t.write(Reg.QUEUE_SEL, vq.index)
            t.write(Reg.QUEUE_READY, 0)
            if t.read(Reg.QUEUE_READY):
                self.log.errors.append(f"WARN: queue {vq.index} still ready after reset")
            vq.release()
        if t.read(Reg.STATUS):
            self.log.errors.append("WARN: status not 0 after reset")
        self.vqs.clear()
        self._add_status(DeviceStatus.ACKNOWLEDGE)  # the core re-adds ACKNOWLEDGE after removal


__all__ = ["LinuxVirtioGpioDriver", "ConfigRead", "ProbeError", "GpioError", "DriverTimeout",
           "BrokenRing", "LINUX_KNOWN_FEATURES", "negotiate_features"]
