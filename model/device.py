"""The golden model of the virtio-mmio GPIO device (device contract §1-§8).

Transaction level and deterministic: a test reads and writes registers, changes input pins, and calls
``step()`` to let the device do all the work that is due. Nothing happens between calls, so a test
can state exactly what must have happened after each one.
"""

from collections.abc import Callable
from dataclasses import dataclass

from .config import DeviceConfig
from .constants import (
    CONFIG_GENERATION, CONFIG_SPACE_OFFSET, DEVICE_ID_GPIO, MAGIC_VALUE, MMIO_VERSION,
    MMIO_WINDOW_SIZE, NUM_QUEUES, DeviceStatus, Feature, InterruptStatus, IrqStatus, QueueIndex,
)
from .gpio_bank import GpioBank
from .layouts import GPIO_REQUEST_SIZE, IRQ_REQUEST_SIZE, IrqRequest, Reg
from .memory import BusError, GuestMemory
from .virtqueue import DescriptorChain, DeviceVirtqueue, RingError, gather, scatter

# Status bits the driver may set; the others (SUSPEND, DEVICE_NEEDS_RESET) are the device's or
# belong to features this device never offers, and are ignored when written.
DRIVER_STATUS_BITS = (DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.DRIVER_OK
                      | DeviceStatus.FEATURES_OK | DeviceStatus.FAILED)
INTERRUPT_BITS = InterruptStatus.USED_BUFFER | InterruptStatus.CONFIG_CHANGE
ALL_ONES_32 = 0xFFFF_FFFF
CONTROL_REGISTER_SIZE = 4


@dataclass(frozen=True)
class DeviceErrorRecord:
    reason: str


class VirtioGpioDevice:
    def __init__(self, config: DeviceConfig, memory: GuestMemory):
        self.config = config
        self.memory = memory
        self.gpio = GpioBank(config)
        self.queues = [DeviceVirtqueue(i, memory, config) for i in range(NUM_QUEUES)]
        self.errors: list[DeviceErrorRecord] = []  # every device error, for tests to inspect
        self.on_irq_rise: Callable[[InterruptStatus], None] | None = None
        self._reset()

    # -- reset and status ------------------------------------------------------------------

    def _reset(self) -> None:
        self.status = DeviceStatus(0)
        self.interrupt_status = InterruptStatus(0)
        self.device_features_sel = 0
        self.driver_features_sel = 0
        self.driver_features = 0
        self.driver_features_bad_sel = False  # a non-zero write with DriverFeaturesSel >= 2
        self.queue_sel = 0
        self.shm_sel = 0
        for q in self.queues:
            q.reset()
        self.gpio.reset()

    @property
    def negotiated(self) -> int:
        """The driver's features, meaningful once FEATURES_OK has been accepted."""
        return self.driver_features if self.status & DeviceStatus.FEATURES_OK else 0

    def has(self, feature: Feature) -> bool:
        return bool(self.negotiated & feature.mask)

    def features_acceptable(self) -> bool:
        """Contract §2: any subset of the offered bits that contains VERSION_1."""
        return (not self.driver_features_bad_sel
                and self.driver_features & ~self.config.offered_features == 0
                and bool(self.driver_features & Feature.VERSION_1.mask))

    @property
    def live(self) -> bool:
        """The device touches rings only in this state (GEN-1, contract §4 and §6)."""
        s = self.status
        return (bool(s & DeviceStatus.DRIVER_OK) and bool(s & DeviceStatus.FEATURES_OK)
                and not s & (DeviceStatus.FAILED | DeviceStatus.DEVICE_NEEDS_RESET))

    def _write_status(self, value: int) -> None:
        if value == 0:
            self._reset()
            return
        new = DeviceStatus(value & DRIVER_STATUS_BITS) & ~self.status
        if new & DeviceStatus.FEATURES_OK and not self.features_acceptable():
            new &= ~DeviceStatus.FEATURES_OK  # refused: the bit reads back 0 (GEN-6)
        was_live = self.live
        self.status |= new
        if self.live and not was_live:
            for q in self.queues:
                q.kick_pending = q.ready  # look at the rings without waiting for a notify
        if new & DeviceStatus.DRIVER_OK and self.status & DeviceStatus.DEVICE_NEEDS_RESET:
            # An error found before DRIVER_OK is announced once the driver can hear it (spec 2.1.2).
            self._interrupt(InterruptStatus.CONFIG_CHANGE)

    def device_error(self, reason: str) -> None:
        """Contract §6: DEVICE_NEEDS_RESET, a configuration-change interrupt once DRIVER_OK is set,
        and no further ring access until reset."""
        self.errors.append(DeviceErrorRecord(reason))
        self.status |= DeviceStatus.DEVICE_NEEDS_RESET
        if self.status & DeviceStatus.DRIVER_OK:
            self._interrupt(InterruptStatus.CONFIG_CHANGE)

    def _interrupt(self, bits: InterruptStatus) -> None:
        """Set InterruptStatus bits; ``on_irq_rise`` (if set) hears when the line goes high, with
        the new InterruptStatus, so an observer can place the rise among the DMA writes (VQ-15)."""
        rises = not self.interrupt_status
        self.interrupt_status |= bits
        if rises and self.on_irq_rise is not None:
            self.on_irq_rise(self.interrupt_status)

    @property
    def irq(self) -> bool:
        return self.interrupt_status != 0

    # -- queues ----------------------------------------------------------------------------

    def queue_exists(self, index: int) -> bool:
        """The requestq always; the eventq when F_IRQ is offered, and once features are accepted,
        only if it was negotiated (GPIO-13, contract §4)."""
        if index == QueueIndex.REQUESTQ:
            return True
        return (index == QueueIndex.EVENTQ and self.config.offer_irq
                and (not self.status & DeviceStatus.FEATURES_OK or self.has(Feature.GPIO_F_IRQ)))

    @property
    def _selected_queue(self) -> DeviceVirtqueue | None:
        return self.queues[self.queue_sel] if self.queue_exists(self.queue_sel) else None

    def _write_queue_ready(self, q: DeviceVirtqueue, value: int) -> None:
        ready = bool(value & 1)
        if ready == q.ready:
            return
        if not ready:
            q.disable()
            if q.index == QueueIndex.EVENTQ:
                for line in self.gpio.lines:
                    line.held_buffer = None
            return
        try:
            q.enable()
        except RingError as e:
            q.ready = True  # QueueReady reads back what was written (MMIO-10)
            self.device_error(str(e))

    # -- register interface ----------------------------------------------------------------

    def read(self, offset: int, size: int = 4) -> int:
        """A register read of ``size`` bytes (1, 2 or 4, naturally aligned). As on AXI4-Lite, the
        32-bit word that holds the bytes is read and the lanes are selected from it."""
        self._check_access(offset, size)
        word = self._read_word(offset & ~3)
        return (word >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def _read_word(self, offset: int) -> int:
        if offset >= CONFIG_SPACE_OFFSET:
            cfg = self.config.config_space
            pos = offset - CONFIG_SPACE_OFFSET
            return int.from_bytes(cfg[pos:pos + 4].ljust(4, b"\0"), "little") if pos < len(cfg) else 0
        q = self._selected_queue
        match offset:
            case Reg.MAGIC_VALUE:
                return MAGIC_VALUE
            case Reg.VERSION:
                return MMIO_VERSION
            case Reg.DEVICE_ID:
                return DEVICE_ID_GPIO
            case Reg.VENDOR_ID:
                return self.config.vendor_id
            case Reg.DEVICE_FEATURES:
                sel = self.device_features_sel
                return (self.config.offered_features >> (32 * sel)) & ALL_ONES_32 if sel < 2 else 0
            case Reg.QUEUE_SIZE_MAX:
                return self.config.queue_size_max if q else 0
            case Reg.QUEUE_READY:
                return int(q.ready) if q else 0
            case Reg.INTERRUPT_STATUS:
                return int(self.interrupt_status)
            case Reg.STATUS:
                return int(self.status)
            case Reg.SHM_LEN_LOW | Reg.SHM_LEN_HIGH | Reg.SHM_BASE_LOW | Reg.SHM_BASE_HIGH:
                return ALL_ONES_32  # no shared-memory regions
            case Reg.CONFIG_GENERATION:
                return CONFIG_GENERATION
        return 0  # write-only and unassigned offsets, and QueueReset (RING_RESET is never offered)

    def write(self, offset: int, value: int, size: int = 4) -> None:
        """A register write. Control registers take only full 32-bit writes; anything narrower is
        ignored, as is every write to the read-only config space (contract §3)."""
        self._check_access(offset, size)
        if offset >= CONFIG_SPACE_OFFSET or size != CONTROL_REGISTER_SIZE:
            return
        value &= ALL_ONES_32
        q = self._selected_queue
        configurable = q is not None and not q.ready
        match offset:
            case Reg.DEVICE_FEATURES_SEL:
                self.device_features_sel = value
            case Reg.DRIVER_FEATURES_SEL:
                self.driver_features_sel = value
            case Reg.DRIVER_FEATURES:
                if self.status & DeviceStatus.FEATURES_OK:
                    return  # ignored once accepted (contract §2)
                sel = self.driver_features_sel
                if sel < 2:
                    mask = ALL_ONES_32 << (32 * sel)
                    self.driver_features = (self.driver_features & ~mask) | (value << (32 * sel))
                elif value:
                    self.driver_features_bad_sel = True
            case Reg.QUEUE_SEL:
                self.queue_sel = value
            case Reg.QUEUE_SIZE if configurable:
                q.num = value
            case Reg.QUEUE_DESC_LOW | Reg.QUEUE_DESC_HIGH if configurable:
                q.desc_addr = self._merge_half(q.desc_addr, value, offset == Reg.QUEUE_DESC_HIGH)
            case Reg.QUEUE_DRIVER_LOW | Reg.QUEUE_DRIVER_HIGH if configurable:
                q.driver_addr = self._merge_half(q.driver_addr, value, offset == Reg.QUEUE_DRIVER_HIGH)
            case Reg.QUEUE_DEVICE_LOW | Reg.QUEUE_DEVICE_HIGH if configurable:
                q.device_addr = self._merge_half(q.device_addr, value, offset == Reg.QUEUE_DEVICE_HIGH)
            case Reg.QUEUE_READY if q is not None:
                self._write_queue_ready(q, value)
            case Reg.QUEUE_NOTIFY:
                if self.queue_exists(value) and self.queues[value].ready:
                    self.queues[value].kick_pending = True
            case Reg.INTERRUPT_ACK:
                self.interrupt_status &= ~InterruptStatus(value & INTERRUPT_BITS)
            case Reg.STATUS:
                self._write_status(value)
            case Reg.SHM_SEL:
                self.shm_sel = value

    @staticmethod
    def _merge_half(addr: int, value: int, high: bool) -> int:
        return (addr & ALL_ONES_32) | (value << 32) if high else (addr & ~ALL_ONES_32) | value

    @staticmethod
    def _check_access(offset: int, size: int) -> None:
        if size not in (1, 2, 4) or offset % size or not 0 <= offset < MMIO_WINDOW_SIZE:
            raise ValueError(f"register access of {size} bytes at {offset:#x} is not a naturally "
                             f"aligned 1-, 2- or 4-byte access inside the 4 KiB window")

    # -- pins ------------------------------------------------------------------------------

    def set_input(self, gpio: int, level: int) -> None:
        """Drive input pin ``gpio`` (after the synchronizer: the model has no clock)."""
        if not 0 <= gpio < self.config.ngpio:
            raise ValueError(f"gpio {gpio} is not a line of this device (ngpio {self.config.ngpio})")
        self.gpio.set_pin(gpio, level)

    @property
    def gpio_o(self) -> int:
        """Output latches as a bit vector (bit n = line n); driven only where ``gpio_oe`` is set."""
        return self.gpio.gpio_o

    @property
    def gpio_oe(self) -> int:
        return self.gpio.gpio_oe

    # -- work ------------------------------------------------------------------------------

    def step(self) -> None:
        """Do all work that is due: pending notifications on both queues, then interrupt events."""
        if not self.live:
            return
        try:
            requestq, eventq = self.queues
            if requestq.ready and requestq.kick_pending:
                self._drain(requestq, self._serve_request)
            if self.has(Feature.GPIO_F_IRQ) and eventq.ready:
                if eventq.kick_pending:
                    self._drain(eventq, self._take_event_buffer)
                for _, chain in self.gpio.due_events():
                    self._complete_event(chain, IrqStatus.VALID)
        except (RingError, BusError) as e:
            self.device_error(str(e))

    def _drain(self, q: DeviceVirtqueue, serve) -> None:
        q.kick_pending = False
        indirect = self.has(Feature.RING_INDIRECT_DESC)
        while True:
            pending = q.available()
            if not pending:
                if self.has(Feature.RING_EVENT_IDX) and q.publish_avail_event():
                    continue  # look once more: the driver may have added a buffer meanwhile
                return
            for _ in range(pending):
                serve(q.pop(indirect))

    def _complete(self, q: DeviceVirtqueue, chain: DescriptorChain, reply: bytes) -> None:
        """Reply bytes, then the used element, then used.idx, then maybe the interrupt (VQ-9/15)."""
        written = scatter(self.memory, chain.writable, reply)
        if q.push_used(chain.head, written, self.has(Feature.RING_EVENT_IDX)):
            self._interrupt(InterruptStatus.USED_BUFFER)

    def _serve_request(self, chain: DescriptorChain) -> None:
        request = gather(self.memory, chain.readable, GPIO_REQUEST_SIZE)
        outcome = self.gpio.execute(request, chain.writable_len, self.has(Feature.GPIO_F_IRQ))
        # Eventq buffers released by this request go back before its reply (contract §7 leaves the
        # order open; this way a driver that sees the reply already has its buffer back).
        for released in outcome.released:
            self._complete_event(released, IrqStatus.INVALID)
        self._complete(self.queues[QueueIndex.REQUESTQ], chain, outcome.reply)

    def _take_event_buffer(self, chain: DescriptorChain) -> None:
        if chain.readable_len < IRQ_REQUEST_SIZE or not chain.writable_len:
            self._complete_event(chain, IrqStatus.INVALID)  # malformed: len 1, or 0 with no space
            return
        gpio = IrqRequest.parse(gather(self.memory, chain.readable, IRQ_REQUEST_SIZE)).gpio
        if self.gpio.refuse_reason(gpio) is not None:
            self._complete_event(chain, IrqStatus.INVALID)
        else:
            self.gpio.hold(gpio, chain)

    def _complete_event(self, chain: DescriptorChain, status: IrqStatus) -> None:
        self._complete(self.queues[QueueIndex.EVENTQ], chain, bytes([status]))
