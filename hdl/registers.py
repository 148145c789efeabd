"""The virtio-mmio v2 register file on an AXI4-Lite subordinate (device contract §2-§4, §6).

It owns the transport state: Status, feature negotiation, the queue registers, InterruptStatus. The
virtqueue engine gets the negotiated features, each queue's configuration and one-cycle events
(start looking at a queue, restart a queue, device reset), and reports device errors and used-buffer
interrupts back. Every write takes effect in the cycle its handshake completes (its events reach the
engine a cycle later, before its B response), so its side effect is visible on the very next access.
"""

from dataclasses import dataclass, fields

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..model.config import DeviceConfig
from ..model.constants import (
    CONFIG_GENERATION, DEVICE_ID_GPIO, MAGIC_VALUE, MMIO_VERSION, MMIO_WINDOW_SIZE, NUM_QUEUES,
    DeviceStatus, Feature, QueueIndex,
)
from ..model.layouts import (
    AVAIL_RING_ALIGN, CONFIG_SPACE_SIZE, DESC_TABLE_ALIGN, USED_RING_ALIGN, Reg, RingGeometry,
)
from .axi import AXI4LiteSignature, RESP_OKAY

REGISTER_ADDR_WIDTH = (MMIO_WINDOW_SIZE - 1).bit_length()
REGISTER_DATA_WIDTH = 32
ALL_STROBES = 0b1111
DRIVER_STATUS_BITS = (DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.DRIVER_OK
                      | DeviceStatus.FEATURES_OK | DeviceStatus.FAILED)


def queue_num_shape(queue_size_max: int) -> int:
    """Bits of a valid QueueNum: a power of two <= queue_size_max."""
    return queue_size_max.bit_length()


def queue_config_layout(addr_width: int, queue_size_max: int) -> data.StructLayout:
    return data.StructLayout({
        "ready": 1,
        "num": queue_num_shape(queue_size_max),  # valid (a power of two <= queue_size_max) while ready
        "desc": addr_width, "driver": addr_width, "device": addr_width,
    })


class TransportSignature(wiring.Signature):
    """What the register file tells the virtqueue engine (register-file view)."""

    def __init__(self, addr_width: int, queue_size_max: int):
        super().__init__({
            "live": Out(1),  # DRIVER_OK and FEATURES_OK, not FAILED, not DEVICE_NEEDS_RESET
            "irq_negotiated": Out(1), "indirect_negotiated": Out(1), "event_idx_negotiated": Out(1),
            "queues": Out(data.ArrayLayout(queue_config_layout(addr_width, queue_size_max),
                                           NUM_QUEUES)),
            "kick": Out(NUM_QUEUES),  # look at this queue's avail ring (notify, enable, DRIVER_OK)
            "restart": Out(NUM_QUEUES),  # QueueReady changed: forget the queue's run-time state
            "reset": Out(1),  # Status = 0
            "device_error": In(1),  # contract §6
            "used_buffer": In(1),  # raise InterruptStatus bit 0
        })


@dataclass
class _QueueRegisters:
    """Only what the validity check and the engine need is kept of each written value."""
    ready: Signal
    num: Signal  # the bits a valid QueueNum can have...
    num_high: Signal  # ...and whether any bit above those was written
    desc: Signal  # ring addresses, as wide as the DMA port...
    driver: Signal
    device: Signal
    high: Signal  # ...and per part, whether an address bit above the DMA width was written


_RING_PARTS = ("desc", "driver", "device")


class RegisterFile(wiring.Component):
    def __init__(self, config: DeviceConfig):
        self.config = config
        super().__init__({
            "bus": In(AXI4LiteSignature(addr_width=REGISTER_ADDR_WIDTH, data_width=REGISTER_DATA_WIDTH)),
            "engine": Out(TransportSignature(config.dma_addr_width, config.queue_size_max)),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        bus, eng = self.bus, self.engine

        self.status = Signal(8)
        self.interrupt_status = Signal(2)
        self.device_features_sel = Signal(2)  # 0, 1, or 2 for "2 and above"
        self.driver_features_sel = Signal(2)
        self.driver_features = Signal(64)  # only offered bits are kept
        self.unoffered = Signal(2)  # per half: a bit that is not offered was written
        self.bad_select = Signal()  # a non-zero DriverFeatures write with DriverFeaturesSel >= 2
        self.queue_sel = Signal(2)  # 0, 1, or 2 for "no such queue"
        aw = self.config.dma_addr_width
        shapes = (("ready", 1), ("num", queue_num_shape(self.config.queue_size_max)),
                  ("num_high", 1), ("desc", aw), ("driver", aw), ("device", aw),
                  ("high", len(_RING_PARTS)))
        self.queues = [_QueueRegisters(*(Signal(w, name=f"queue{q}_{f}") for f, w in shapes))
                       for q in range(NUM_QUEUES)]
        status, interrupt_status = self.status, self.interrupt_status

        features_ok = self._has(DeviceStatus.FEATURES_OK)
        negotiated = Mux(features_ok, self.driver_features, 0)
        live = (self._has(DeviceStatus.DRIVER_OK) & features_ok
                & ~self._has(DeviceStatus.FAILED) & ~self._has(DeviceStatus.DEVICE_NEEDS_RESET))
        live_prev = Signal()
        m.d.sync += live_prev.eq(live)
        m.d.comb += [
            eng.live.eq(live),
            eng.irq_negotiated.eq(negotiated[Feature.GPIO_F_IRQ]),
            eng.indirect_negotiated.eq(negotiated[Feature.RING_INDIRECT_DESC]),
            eng.event_idx_negotiated.eq(negotiated[Feature.RING_EVENT_IDX]),
            self.irq.eq(interrupt_status != 0),
        ]
        for q, regs in enumerate(self.queues):
            m.d.comb += [eng.queues[q].ready.eq(regs.ready), eng.queues[q].num.eq(regs.num),
                         eng.queues[q].desc.eq(regs.desc), eng.queues[q].driver.eq(regs.driver),
                         eng.queues[q].device.eq(regs.device)]

        # -- reads ---------------------------------------------------------------------------
        rvalid = Signal()
        rdata = Signal(REGISTER_DATA_WIDTH)
        m.d.comb += [bus.arready.eq(~rvalid), bus.rvalid.eq(rvalid), bus.rdata.eq(rdata),
                     bus.rresp.eq(RESP_OKAY)]
        with m.If(rvalid & bus.rready):
            m.d.sync += rvalid.eq(0)
        with m.If(bus.arvalid & ~rvalid):
            m.d.sync += rvalid.eq(1)
            self._read_word(m, bus.araddr, rdata)

        # -- writes --------------------------------------------------------------------------
        # A write takes three cycles, so that no path runs from the bus through the register
        # decoding into the engine: a write on the bus is first only looked at (`w_valid`: the
        # comparisons of its whole value go into flip-flops); the next cycle it is accepted and
        # applied (AXI keeps address and data steady until then), and its events for the engine
        # (kick, restart, reset) go into flip-flops; then the engine has seen them (and, after a
        # reset or QueueReady = 0, given up its DMA), so the B response goes out (`b_pending`).
        bvalid = Signal()
        w_valid = Signal()
        b_pending = Signal()
        accept = w_valid
        m.d.comb += [bus.awready.eq(accept), bus.wready.eq(accept), bus.bvalid.eq(bvalid),
                     bus.bresp.eq(RESP_OKAY)]
        with m.If(bvalid & bus.bready):
            m.d.sync += bvalid.eq(0)
        m.d.sync += [w_valid.eq(bus.awvalid & bus.wvalid & ~bvalid & ~w_valid & ~b_pending),
                     b_pending.eq(accept)]
        with m.If(b_pending):
            m.d.sync += bvalid.eq(1)
        value, offset = bus.wdata, bus.awaddr
        # The value is 0 or 1 (a queue index, a clamped selector, Status = 0); it has bits that
        # are not offered, per half of the features.
        self._value_small = Signal()
        self._value_unoffered = Signal(2)
        offered = self.config.offered_features
        m.d.sync += self._value_small.eq(bus.wdata[1:] == 0)
        for half in range(2):
            not_offered = ~(offered >> (32 * half)) & 0xFFFF_FFFF
            m.d.sync += self._value_unoffered[half].eq((bus.wdata & not_offered) != 0)

        # Events from the engine. A register write in the same cycle is applied after these, so a
        # device reset wins, and an InterruptACK clears only the bits it names.
        queue_error = Signal()  # QueueReady = 1 with a bad queue configuration
        device_error = eng.device_error | queue_error
        with m.If(device_error):
            m.d.sync += status.eq(status | DeviceStatus.DEVICE_NEEDS_RESET)
            with m.If(self._has(DeviceStatus.DRIVER_OK)):
                m.d.sync += interrupt_status[1].eq(1)
        with m.If(eng.used_buffer):
            m.d.sync += interrupt_status[0].eq(1)
        kick = Signal(NUM_QUEUES)
        restart = Signal(NUM_QUEUES)
        self.reset = Signal()  # Status = 0 is written
        kick_out = Signal(NUM_QUEUES)
        m.d.sync += [kick_out.eq(kick), eng.restart.eq(restart), eng.reset.eq(self.reset)]
        # DRIVER_OK (with everything else in place) makes the engine look at every ready queue.
        ready = Cat(regs.ready for regs in self.queues)
        m.d.comb += eng.kick.eq(kick_out | Mux(live & ~live_prev, ready, 0))

        selected = self._selected_queue()
        # The selected queue's configuration is checked one cycle ahead: a write changes it at
        # the earliest three cycles before the next write is applied, so the QueueReady write
        # always sees the check of what it enables.
        config_valid = Signal()
        m.d.sync += config_valid.eq(self._queue_config_valid(selected))
        with m.If(accept & (bus.wstrb == ALL_STROBES) & (offset < Reg.CONFIG)):
            with m.Switch(offset):
                with m.Case(Reg.DEVICE_FEATURES_SEL):
                    m.d.sync += self.device_features_sel.eq(self._clamp2(value))
                with m.Case(Reg.DRIVER_FEATURES_SEL):
                    m.d.sync += self.driver_features_sel.eq(self._clamp2(value))
                with m.Case(Reg.DRIVER_FEATURES):
                    with m.If(~features_ok):  # ignored once accepted (contract §2)
                        self._write_driver_features(m, value)
                with m.Case(Reg.QUEUE_SEL):
                    m.d.sync += self.queue_sel.eq(self._clamp2(value))
                with m.Case(Reg.QUEUE_READY):
                    with m.If(self._queue_exists(self.queue_sel) & (value[0] != selected.ready)):
                        m.d.sync += selected.ready.eq(value[0])
                        m.d.comb += restart.eq(1 << self.queue_sel)
                        with m.If(value[0]):
                            m.d.comb += kick.eq(1 << self.queue_sel)
                            m.d.comb += queue_error.eq(~config_valid)
                with m.Case(Reg.QUEUE_NOTIFY):
                    for q, regs in enumerate(self.queues):
                        with m.If(self._value_small & (value[0] == q) & self._queue_exists(q)
                                  & regs.ready):
                            m.d.comb += kick[q].eq(1)
                with m.Case(Reg.INTERRUPT_ACK):
                    m.d.sync += interrupt_status.eq(interrupt_status & ~value[:2])
                with m.Case(Reg.STATUS):
                    self._write_status(m, value, device_error)
            # Queue configuration: only while the selected queue exists and is not ready.
            with m.If(self._queue_exists(self.queue_sel) & ~selected.ready):
                self._write_queue_config(m, offset, value, selected)
        return m

    # ---------------------------------------------------------------------------------------

    def _value_zero(self, value):
        return self._value_small & ~value[0]

    def _clamp2(self, value):
        """``min(value, 2)`` of the latched write value."""
        return Mux(self._value_small, value[0], 2)

    def _has(self, bit):
        return (self.status & bit) != 0

    def _queue_exists(self, index):
        """The eventq exists while F_IRQ may still be negotiated, or was (GPIO-13, contract §4)."""
        exists = index == QueueIndex.REQUESTQ
        if self.config.offer_irq:
            refused = self._has(DeviceStatus.FEATURES_OK) & ~self.driver_features[Feature.GPIO_F_IRQ]
            exists |= (index == QueueIndex.EVENTQ) & ~refused
        return exists

    def _selected_queue(self) -> _QueueRegisters:
        """The registers of queue 0 or 1 by QueueSel's low bit (callers check that it exists)."""
        q0, q1 = self.queues
        return _QueueRegisters(*(Array([getattr(q0, f.name), getattr(q1, f.name)])[self.queue_sel[0]]
                                 for f in fields(_QueueRegisters)))

    def _read_word(self, m, addr, rdata):
        """Load ``rdata`` with the 32-bit word at ``addr`` (the byte lanes are the manager's to
        pick); write-only and unassigned offsets read 0."""
        cfg = self.config
        offered = cfg.offered_features
        exists = self._queue_exists(self.queue_sel)
        config_space = int.from_bytes(cfg.config_space, "little")
        words = {
            Reg.MAGIC_VALUE: MAGIC_VALUE,
            Reg.VERSION: MMIO_VERSION,
            Reg.DEVICE_ID: DEVICE_ID_GPIO,
            Reg.VENDOR_ID: cfg.vendor_id,
            Reg.DEVICE_FEATURES: Array([offered & 0xFFFF_FFFF, offered >> 32, 0])[self.device_features_sel],
            Reg.QUEUE_SIZE_MAX: Mux(exists, cfg.queue_size_max, 0),
            Reg.QUEUE_READY: exists & self._selected_queue().ready,
            Reg.INTERRUPT_STATUS: self.interrupt_status,
            Reg.STATUS: self.status,
            Reg.CONFIG_GENERATION: CONFIG_GENERATION,
        }
        for reg in (Reg.SHM_LEN_LOW, Reg.SHM_LEN_HIGH, Reg.SHM_BASE_LOW, Reg.SHM_BASE_HIGH):
            words[reg] = 0xFFFF_FFFF  # no shared-memory regions
        for pos in range(0, CONFIG_SPACE_SIZE, 4):
            words[Reg.CONFIG + pos] = (config_space >> (8 * pos)) & 0xFFFF_FFFF
        with m.Switch(addr & ~3):
            for offset, word in words.items():
                with m.Case(offset):
                    m.d.sync += rdata.eq(word)
            with m.Default():
                m.d.sync += rdata.eq(0)

    def _write_driver_features(self, m, value):
        offered = self.config.offered_features
        for half in range(2):
            offered_half = (offered >> (32 * half)) & 0xFFFF_FFFF
            with m.If(self.driver_features_sel == half):
                m.d.sync += [
                    self.driver_features.word_select(half, 32).eq(value & offered_half),
                    self.unoffered[half].eq(self._value_unoffered[half]),
                ]
        with m.If((self.driver_features_sel == 2) & ~self._value_zero(value)):
            m.d.sync += self.bad_select.eq(1)

    def _write_status(self, m, value, device_error):
        status = self.status
        with m.If(self._value_zero(value)):
            self._reset(m)
        with m.Else():
            new = Signal(8, name="status_new")
            m.d.comb += new.eq(value & DRIVER_STATUS_BITS & ~status)
            acceptable = (~self.unoffered.any() & ~self.bad_select
                          & self.driver_features[Feature.VERSION_1])
            with m.If(~acceptable):
                m.d.comb += new[3].eq(0)  # FEATURES_OK refused: the bit reads back 0 (GEN-6)
            needs_reset = self._has(DeviceStatus.DEVICE_NEEDS_RESET) | device_error
            m.d.sync += status.eq(status | new | Mux(device_error, DeviceStatus.DEVICE_NEEDS_RESET, 0))
            # An error found before DRIVER_OK is announced once the driver can hear it (spec 2.1.2).
            with m.If(new[2] & needs_reset):
                m.d.sync += self.interrupt_status[1].eq(1)

    def _reset(self, m):
        m.d.comb += self.reset.eq(1)
        m.d.sync += [s.eq(0) for s in (
            self.status, self.interrupt_status, self.device_features_sel, self.driver_features_sel,
            self.driver_features, self.unoffered, self.bad_select, self.queue_sel)]
        for regs in self.queues:
            m.d.sync += [getattr(regs, f.name).eq(0) for f in fields(_QueueRegisters)]

    def _queue_config_valid(self, q: _QueueRegisters):
        """Contract §4: QueueNum a power of two <= queue_size_max, each ring part aligned and
        inside the DMA address space."""
        qsm = self.config.queue_size_max
        num = q.num
        # With the bits above queue_size_max clear, a power of two is also <= queue_size_max.
        valid = ~q.num_high & (num != 0) & ((num & (num - 1)) == 0)
        geo = RingGeometry(num)  # the model's ring arithmetic, on signals
        largest = RingGeometry(qsm)
        for i, (addr, size, largest_size, align) in enumerate((
                (q.desc, geo.desc_table_size, largest.desc_table_size, DESC_TABLE_ALIGN),
                (q.driver, geo.avail_ring_size, largest.avail_ring_size, AVAIL_RING_ALIGN),
                (q.device, geo.used_ring_size, largest.used_ring_size, USED_RING_ALIGN))):
            # addr + size <= dma_addr_limit, i.e. the bytes above addr (~addr) >= size - 1: the
            # sizes are small, so only their width is compared, the rest just has to be non-zero.
            size_bits = (largest_size - 1).bit_length()
            above = ~addr
            valid &= ((addr[:(align - 1).bit_length()] == 0) & ~q.high[i]
                      & ((above[size_bits:] != 0) | (above[:size_bits] >= size - 1)))
        return valid

    def _write_queue_config(self, m, offset, value, q: _QueueRegisters):
        aw = self.config.dma_addr_width
        with m.Switch(offset):
            with m.Case(Reg.QUEUE_SIZE):
                m.d.sync += [q.num.eq(value), q.num_high.eq(value[len(q.num):] != 0)]
            for i, (field, low, high) in enumerate((
                    ("desc", Reg.QUEUE_DESC_LOW, Reg.QUEUE_DESC_HIGH),
                    ("driver", Reg.QUEUE_DRIVER_LOW, Reg.QUEUE_DRIVER_HIGH),
                    ("device", Reg.QUEUE_DEVICE_LOW, Reg.QUEUE_DEVICE_HIGH))):
                addr = getattr(q, field)
                word = REGISTER_DATA_WIDTH
                with m.Case(low):
                    m.d.sync += addr[:word].eq(value)
                with m.Case(high):
                    if aw > word:
                        m.d.sync += addr[word:].eq(value)
                    else:
                        m.d.sync += q.high[i].eq(value != 0)
