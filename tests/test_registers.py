"""The virtio-mmio register file (contract §3; MMIO-1..15, GPIO-3/4, DRV-1/2)."""

import pytest

from conftest import make_bench
from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.constants import (
    DEFAULT_VENDOR_ID, Feature, InterruptStatus, MsgType, QueueIndex,
)
from virtio_gpio.model.layouts import REGISTERS, Access, Reg


def fresh(config=None):
    return make_bench(config, probe=False)


@pytest.mark.req("MMIO-1", "MMIO-2", "MMIO-3", "C-1")
def test_identity_registers():
    b = fresh(DeviceConfig(vendor_id=0x1234ABCD))
    assert b.read(Reg.MAGIC_VALUE) == 0x74726976
    assert b.read(Reg.VERSION) == 2
    assert b.read(Reg.DEVICE_ID) == 41
    assert b.read(Reg.VENDOR_ID) == 0x1234ABCD
    assert fresh().read(Reg.VENDOR_ID) == DEFAULT_VENDOR_ID == int.from_bytes(b"FPGA", "little")


@pytest.mark.req("GPIO-3", "MMIO-15", "DRV-1", "C-3")
@pytest.mark.parametrize("names", [None, ("a", "bb", "", "d", "e", "f", "g", "h", "i", "j")])
def test_config_space_reads_at_every_width_and_aligned_offset(names):
    cfg = DeviceConfig(ngpio=10, line_names=names)
    size = 0 if names is None else sum(len(n) + 1 for n in names)  # each name and its NUL
    expected = (10).to_bytes(2, "little") + bytes(2) + size.to_bytes(4, "little")
    b = fresh(cfg)
    for width in (1, 2, 4):
        for off in range(0, 8, width):
            assert b.read(Reg.CONFIG + off, width) == int.from_bytes(expected[off:off + width], "little"), (width, off)


@pytest.mark.req("C-3")
def test_config_space_beyond_its_eight_bytes_reads_zero_and_ignores_writes():
    b = fresh()
    for off in (0x108, 0x10C, 0x200, 0xFFC):
        assert b.read(off) == 0
    b.write(Reg.CONFIG, 0xFFFF_FFFF)
    b.write(Reg.CONFIG, 0xFF, 1)
    assert b.read(Reg.CONFIG, 2) == 32


@pytest.mark.req("MMIO-6", "C-3")
def test_config_generation_is_constant_across_reads_and_reset():
    b = make_bench()
    first = b.read(Reg.CONFIG_GENERATION)
    b.driver.set(3, 1)
    b.write(Reg.STATUS, 0)
    assert b.read(Reg.CONFIG_GENERATION) == first == 0


@pytest.mark.req("MMIO-14", "C-3")
@pytest.mark.parametrize("shm_sel", [0, 1, 7, 0xFFFF_FFFF])
def test_shared_memory_registers_read_all_ones_for_every_region(shm_sel):
    b = fresh()
    b.write(Reg.SHM_SEL, shm_sel)
    for reg in (Reg.SHM_LEN_LOW, Reg.SHM_LEN_HIGH, Reg.SHM_BASE_LOW, Reg.SHM_BASE_HIGH):
        assert b.read(reg) == 0xFFFF_FFFF


@pytest.mark.req("DRV-2", "C-3")
def test_write_only_and_unassigned_offsets_read_zero():
    b = fresh()
    b.write(Reg.QUEUE_SIZE, 8)
    b.write(Reg.QUEUE_DESC_LOW, 0x1000)
    write_only = [r.offset for r in REGISTERS if r.access is Access.W]
    assigned = {r.offset for r in REGISTERS}
    unassigned = [o for o in range(0, Reg.CONFIG, 4) if o not in assigned]
    assert unassigned and write_only
    for off in write_only + unassigned + [Reg.QUEUE_RESET]:
        assert b.read(off) == 0, hex(off)


@pytest.mark.req("DRV-2", "C-3")
def test_writes_to_read_only_registers_are_ignored():
    b = fresh()
    for reg in (Reg.MAGIC_VALUE, Reg.VERSION, Reg.DEVICE_ID, Reg.VENDOR_ID, Reg.DEVICE_FEATURES,
                Reg.QUEUE_SIZE_MAX, Reg.INTERRUPT_STATUS, Reg.CONFIG_GENERATION, Reg.SHM_LEN_LOW):
        before = b.read(reg)
        b.write(reg, 0x5A5A_5A5A)
        assert b.read(reg) == before


@pytest.mark.req("DRV-1", "C-3")
@pytest.mark.parametrize("width", [1, 2])
def test_narrow_writes_to_control_registers_are_ignored(width):
    b = fresh()
    b.write(Reg.STATUS, 1, width)
    b.write(Reg.QUEUE_SEL, 1, width)
    assert b.read(Reg.STATUS) == 0
    assert b.device.queue_sel == 0


def test_narrow_reads_return_the_addressed_bytes_of_the_word():
    b = fresh()
    assert b.read(Reg.MAGIC_VALUE, 1) == ord("v")
    assert b.read(Reg.MAGIC_VALUE + 3, 1) == ord("t")
    assert b.read(Reg.MAGIC_VALUE + 2, 2) == int.from_bytes(b"rt", "little")


@pytest.mark.parametrize("offset,size", [(1, 2), (2, 4), (0x1000, 4), (0, 3), (-4, 4)])
def test_malformed_register_accesses_are_refused_by_the_model_api(offset, size):
    with pytest.raises(ValueError, match="naturally aligned"):
        fresh().read(offset, size)


@pytest.mark.req("MMIO-11", "C-2")
def test_device_features_windows():
    b = fresh()
    offered = b.config.offered_features
    for sel, expected in ((0, offered & 0xFFFF_FFFF), (1, offered >> 32), (2, 0), (0xFFFF_FFFF, 0)):
        b.write(Reg.DEVICE_FEATURES_SEL, sel)
        assert b.read(Reg.DEVICE_FEATURES) == expected


@pytest.mark.req("MMIO-9", "GPIO-13", "C-4")
@pytest.mark.parametrize("offer_irq", [True, False])
def test_queue_size_max_per_queue(offer_irq):
    b = fresh(DeviceConfig(queue_size_max=64, offer_irq=offer_irq))
    expected = {0: 64, 1: 64 if offer_irq else 0, 2: 0, 3: 0, 0xFFFF: 0}
    for sel, size in expected.items():
        b.write(Reg.QUEUE_SEL, sel)
        assert b.read(Reg.QUEUE_SIZE_MAX) == size


def configure_queue(b, index, num=8):
    """Point queue ``index`` at valid, mapped rings (enough to make QueueReady = 1 legal)."""
    mem = b.memory
    b.write(Reg.QUEUE_SEL, index)
    b.write(Reg.QUEUE_SIZE, num)
    for low, size, align in ((Reg.QUEUE_DESC_LOW, 16 * num, 16), (Reg.QUEUE_DRIVER_LOW, 6 + 2 * num, 2),
                             (Reg.QUEUE_DEVICE_LOW, 6 + 8 * num, 4)):
        addr = mem.alloc(size, align)
        b.write(low, addr & 0xFFFF_FFFF)
        b.write(low + 4, addr >> 32)


@pytest.mark.req("MMIO-10", "DRV-6", "C-4")
def test_queue_ready_reads_back_and_freezes_the_queue_configuration():
    b = fresh()
    configure_queue(b, QueueIndex.REQUESTQ)
    b.write(Reg.QUEUE_READY, 1)
    assert b.read(Reg.QUEUE_READY) == 1
    q = b.device.queues[0]
    before = (q.num, q.desc_addr, q.driver_addr, q.device_addr)
    b.write(Reg.QUEUE_SIZE, 4)
    b.write(Reg.QUEUE_DESC_LOW, 0x10)
    b.write(Reg.QUEUE_DRIVER_HIGH, 1)
    b.write(Reg.QUEUE_DEVICE_LOW, 0x20)
    assert (q.num, q.desc_addr, q.driver_addr, q.device_addr) == before
    b.write(Reg.QUEUE_READY, 0)
    assert b.read(Reg.QUEUE_READY) == 0  # read back at once, as Linux's teardown expects
    b.write(Reg.QUEUE_SIZE, 4)
    assert q.num == 4
    assert b.device.errors == []


@pytest.mark.req("MMIO-10", "C-4")
def test_queue_ready_of_a_queue_that_does_not_exist_stays_zero():
    b = fresh(DeviceConfig(offer_irq=False))
    for sel in (1, 2):
        b.write(Reg.QUEUE_SEL, sel)
        b.write(Reg.QUEUE_READY, 1)
        assert b.read(Reg.QUEUE_READY) == 0
    assert b.device.errors == []


@pytest.mark.req("MMIO-4", "MMIO-13", "DRV-7", "C-3")
def test_interrupt_ack_clears_only_the_written_defined_bits():
    b = make_bench()
    dev = b.device
    dev.interrupt_status = InterruptStatus.USED_BUFFER | InterruptStatus.CONFIG_CHANGE
    assert dev.irq and b.read(Reg.INTERRUPT_STATUS) == 3
    b.write(Reg.INTERRUPT_ACK, 0xFFFF_FFFC)  # undefined bits only
    assert b.read(Reg.INTERRUPT_STATUS) == 3
    b.write(Reg.INTERRUPT_ACK, InterruptStatus.USED_BUFFER)
    assert b.read(Reg.INTERRUPT_STATUS) == InterruptStatus.CONFIG_CHANGE and dev.irq
    b.write(Reg.INTERRUPT_ACK, InterruptStatus.CONFIG_CHANGE)
    assert b.read(Reg.INTERRUPT_STATUS) == 0 and not dev.irq


@pytest.mark.req("MMIO-4", "MMIO-13", "VQ-15")
def test_a_completed_request_raises_used_buffer_and_nothing_else():
    b = make_bench()
    p = b.driver.submit(MsgType.SET_VALUE, 3, 1)
    assert not b.device.irq
    b.device.step()
    assert b.read(Reg.INTERRUPT_STATUS) == InterruptStatus.USED_BUFFER and b.device.irq
    assert b.read(Reg.STATUS) & 0x40 == 0
    b.driver.handle_interrupt()
    assert p.done and not b.device.irq and b.read(Reg.INTERRUPT_STATUS) == 0


@pytest.mark.req("C-3")
def test_register_side_effects_are_visible_on_the_next_access():
    b = fresh()
    b.write(Reg.STATUS, 1)
    assert b.read(Reg.STATUS) == 1
    b.write(Reg.DEVICE_FEATURES_SEL, 1)
    assert b.read(Reg.DEVICE_FEATURES) == b.config.offered_features >> 32
    assert b.config.offered_features >> 32 & (Feature.VERSION_1.mask >> 32)
