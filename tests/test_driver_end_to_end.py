"""The Linux driver model probes and uses the device model end to end, in every negotiation shape
and both config-read styles, and the ``make sim`` scenario passes."""

import itertools

import pytest

from conftest import make_bench
from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.constants import DeviceStatus, Direction, Feature, IrqType
from virtio_gpio.model.device import VirtioGpioDevice
from virtio_gpio.model.driver.linux_gpio import (
    LINUX_KNOWN_FEATURES, ConfigRead, DriverTimeout, LinuxVirtioGpioDriver,
)
from virtio_gpio.model.memory import GuestMemory
from virtio_gpio.model.transport import ModelTransport
from virtio_gpio.model.layouts import Reg
from virtio_gpio.model.scenario import run_scenario

OPTIONAL = (Feature.GPIO_F_IRQ, Feature.RING_INDIRECT_DESC, Feature.RING_EVENT_IDX)
SHAPES = [frozenset(c) for n in range(4) for c in itertools.combinations(OPTIONAL, n)]


def shape_id(shape):
    return "+".join(sorted(f.name for f in shape)) or "none"


def exercise(b):
    """Every gpio_chip operation, and an interrupt when the irq chip exists."""
    drv, dev = b.driver, b.device
    drv.direction_output(1, 1)
    assert dev.gpio_oe & 2 and dev.gpio_o & 2 and drv.get(1) == 1
    drv.set(1, 0)
    assert not dev.gpio_o & 2 and drv.get_direction(1) is Direction.OUT
    drv.direction_input(2)
    dev.set_input(2, 1)
    assert drv.get(2) == 1 and drv.get_direction(2) is Direction.IN
    drv.free(1)
    assert not dev.gpio_oe & 2
    if drv.irq_lines:
        drv.request_irq(3, IrqType.EDGE_FALLING)
        dev.set_input(3, 1)
        dev.set_input(3, 0)
        drv.poll(lambda: drv.log.events)
        assert drv.log.events == [(3, "VALID")]
        drv.free_irq(3)
    assert drv.log.errors == [] and drv.log.spurious_interrupts == 0
    b.assert_clean_dma()


@pytest.mark.req("GEN-6", "C-2")
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_every_negotiation_shape_works_end_to_end(shape):
    dropped = sum(f.mask for f in OPTIONAL if f not in shape)
    b = make_bench(DeviceConfig(ngpio=8), features=LINUX_KNOWN_FEATURES & ~dropped)
    assert b.device.negotiated == b.config.offered_features & ~dropped
    exercise(b)


@pytest.mark.req("GEN-6", "C-2")
@pytest.mark.parametrize("offer", ["offer_irq", "offer_indirect_desc", "offer_event_idx"])
def test_a_device_that_does_not_offer_a_feature_works_with_linux(offer):
    b = make_bench(DeviceConfig(ngpio=8, **{offer: False}))
    exercise(b)


@pytest.mark.req("DRV-1", "MMIO-15", "GPIO-3")
@pytest.mark.parametrize("style", list(ConfigRead))
def test_both_config_read_styles_see_the_same_config(style):
    b = make_bench(DeviceConfig(ngpio=300, line_names=tuple(f"l{i}" for i in range(300))), config_read=style)
    assert b.driver.ngpio == 300
    assert b.driver.gpio_names_size == b.config.gpio_names_size
    assert b.driver.names == [f"l{i}" for i in range(300)]


@pytest.mark.req("C-1")
def test_64_bit_dma_addresses_above_4_gib():
    b = make_bench(DeviceConfig(ngpio=8, dma_addr_width=64))
    assert all(vq.desc_addr >> 32 and vq.used_addr >> 32 for vq in b.driver.vqs)
    exercise(b)
    assert all(a.addr >> 32 for a in b.memory.dma_log)


@pytest.mark.req("C-1", "C-4", "C-6")
def test_32_bit_device_refuses_rings_above_4_gib():
    config = DeviceConfig(ngpio=8, dma_addr_width=32)
    memory = GuestMemory(64)  # a 64-bit host that puts its rings where the DMA port cannot reach
    device = VirtioGpioDevice(config, memory)
    driver = LinuxVirtioGpioDriver(ModelTransport(device), timeout_steps=20)
    with pytest.raises(DriverTimeout):
        driver.probe()  # Linux does not read Status back after DRIVER_OK: it waits for its first reply
    assert device.read(Reg.STATUS) & DeviceStatus.DEVICE_NEEDS_RESET
    assert "beyond the 32-bit DMA address space" in device.errors[0].reason
    assert memory.dma_log == []


@pytest.mark.req("GEN-8", "MMIO-5")
def test_remove_then_probe_again():
    b = make_bench(DeviceConfig(ngpio=8))
    b.driver.direction_output(0, 1)
    b.driver.remove(requested_lines=[0])
    assert b.driver.log.errors == [] and b.read(Reg.STATUS) == DeviceStatus.ACKNOWLEDGE
    b.driver = LinuxVirtioGpioDriver(b.transport)
    b.driver.probe()
    exercise(b)


@pytest.mark.parametrize("config", [
    None, DeviceConfig(ngpio=8), DeviceConfig(ngpio=3, offer_irq=False, offer_indirect_desc=False,
                                              offer_event_idx=False, dma_addr_width=64)])
def test_the_make_sim_scenario_passes(config):
    lines = []
    result = run_scenario(config, out=lines.append)
    assert result.passed, "\n".join(lines)
    assert result.dma_writes > 0 and result.register_reads > 0
