"""Device status, reset and feature negotiation (contract §2, §4; GEN-1/2/6/8/9, MMIO-5/12)."""

import pytest
from hypothesis import given, settings, strategies as st

from conftest import make_bench
from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.constants import DeviceStatus as S, Feature, InterruptStatus, MsgType
from virtio_gpio.model.driver.linux_gpio import LINUX_KNOWN_FEATURES, ProbeError
from virtio_gpio.model.layouts import Reg

V1 = Feature.VERSION_1.mask



@pytest.mark.req("MMIO-12", "C-4")
def test_status_bits_accumulate_as_written():
    b = make_bench(probe=False)
    b.write(Reg.STATUS, S.ACKNOWLEDGE)
    b.write(Reg.STATUS, S.DRIVER)  # a driver that forgets to OR keeps what it wrote before
    assert b.read(Reg.STATUS) == S.ACKNOWLEDGE | S.DRIVER


@pytest.mark.req("C-4")
def test_status_bits_the_driver_may_not_set_are_ignored():
    b = make_bench(probe=False)
    b.write(Reg.STATUS, S.ACKNOWLEDGE | S.SUSPEND | S.DEVICE_NEEDS_RESET)
    assert b.read(Reg.STATUS) == S.ACKNOWLEDGE


@pytest.mark.req("GEN-10", "GEN-6", "C-2")
def test_features_ok_refused_without_version_1():
    b = make_bench(probe=False)
    assert not b.negotiate(Feature.GPIO_F_IRQ.mask)
    assert b.read(Reg.STATUS) == S.ACKNOWLEDGE | S.DRIVER


@pytest.mark.req("GEN-6", "DRV-10", "C-2")
@pytest.mark.parametrize("bit", [Feature.RING_PACKED, Feature.IN_ORDER, Feature.NOTIFICATION_DATA,
                                 Feature.RING_RESET, Feature.SR_IOV, Feature.SUSPEND, Feature.ANY_LAYOUT, 63])
def test_features_ok_refused_when_an_unoffered_bit_is_accepted(bit):
    b = make_bench(probe=False)
    assert not b.negotiate(V1 | (1 << int(bit)))


@pytest.mark.req("C-2")
def test_features_ok_refused_when_irq_is_accepted_but_not_offered():
    b = make_bench(DeviceConfig(offer_irq=False), probe=False)
    assert not b.negotiate(V1 | Feature.GPIO_F_IRQ.mask)


@pytest.mark.req("C-2")
def test_driver_features_with_select_two_or_more_must_be_zero():
    b = make_bench(probe=False)
    b.write(Reg.DRIVER_FEATURES_SEL, 2)
    b.write(Reg.DRIVER_FEATURES, 0)
    assert b.negotiate(V1)
    b2 = make_bench(probe=False)
    b2.write(Reg.DRIVER_FEATURES_SEL, 2)
    b2.write(Reg.DRIVER_FEATURES, 1)
    assert not b2.negotiate(V1)


@pytest.mark.req("GEN-6", "C-2")
@settings(max_examples=60, deadline=None)
@given(st.sets(st.sampled_from([Feature.GPIO_F_IRQ, Feature.RING_INDIRECT_DESC, Feature.RING_EVENT_IDX,
                                Feature.ACCESS_PLATFORM, Feature.ORDER_PLATFORM])))
def test_any_offered_subset_with_version_1_is_accepted(subset):
    b = make_bench(probe=False)
    features = V1 | sum(f.mask for f in subset)
    assert b.negotiate(features)
    assert b.device.negotiated == features


@pytest.mark.req("C-2")
def test_feature_writes_after_features_ok_are_ignored():
    b = make_bench(probe=False)
    assert b.negotiate(V1)
    b.write(Reg.DRIVER_FEATURES_SEL, 0)
    b.write(Reg.DRIVER_FEATURES, Feature.GPIO_F_IRQ.mask)
    assert b.device.negotiated == V1


@pytest.mark.req("GEN-8", "GEN-2", "MMIO-5")
def test_renegotiation_after_reset_accepts_the_same_set():
    b = make_bench()
    first = b.device.negotiated
    b.driver.remove()
    b.write(Reg.STATUS, 0)
    assert b.read(Reg.STATUS) == 0
    assert b.negotiate(first)


@pytest.mark.req("GEN-9")
def test_config_is_readable_before_features_ok():
    b = make_bench(DeviceConfig(ngpio=12), probe=False)
    b.write(Reg.STATUS, S.ACKNOWLEDGE)
    assert b.read(Reg.CONFIG, 2) == 12


@pytest.mark.req("MMIO-5", "GEN-2", "GEN-3", "C-4")
def test_reset_returns_every_piece_of_state_to_its_reset_value():
    b = make_bench(DeviceConfig(ngpio=8))
    drv, dev = b.driver, b.device
    drv.direction_output(1, 1)
    drv.set(2, 1)
    drv.request_irq(3, 1)  # EDGE_RISING: holds an eventq buffer
    dev.set_input(3, 1)  # latched edge, delivered and buffer requeued by the driver
    drv.poll(lambda: drv.log.events)
    dev.interrupt_status |= InterruptStatus.USED_BUFFER
    b.write(Reg.DEVICE_FEATURES_SEL, 1)
    writes_before = len(b.memory.device_writes())
    b.write(Reg.STATUS, 0)
    assert b.read(Reg.STATUS) == 0  # the very next access (GEN-2)
    assert b.read(Reg.INTERRUPT_STATUS) == 0 and not dev.irq
    assert dev.device_features_sel == 0 and dev.driver_features == 0 and dev.queue_sel == 0
    for sel in (0, 1):
        b.write(Reg.QUEUE_SEL, sel)
        assert b.read(Reg.QUEUE_READY) == 0
    assert dev.gpio_oe == 0 and dev.gpio_o == 0
    assert all(line.irq_type == 0 and not line.edge_latched and line.held_buffer is None
               for line in dev.gpio.lines)
    b.write(Reg.QUEUE_NOTIFY, 0)
    dev.step()
    assert len(b.memory.device_writes()) == writes_before  # no used entry after reset (GEN-3)


@pytest.mark.req("GEN-1", "C-4")
def test_driver_ok_without_accepted_features_leaves_the_rings_alone():
    b = make_bench(probe=False)
    assert not b.negotiate(Feature.GPIO_F_IRQ.mask)  # refused
    b.write(Reg.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK)
    assert not b.device.live
    b.device.step()
    assert b.memory.dma_log == []


@pytest.mark.req("DRV-8", "C-4")
def test_failed_stops_ring_processing():
    b = make_bench()
    b.write(Reg.STATUS, b.read(Reg.STATUS) | S.FAILED)
    p = b.driver.submit(MsgType.SET_VALUE, 0, 1)
    reads = len(b.memory.dma_log)
    b.notify(0)
    assert len(b.memory.dma_log) == reads and not p.done


@pytest.mark.req("GEN-4", "C-6")
def test_an_error_before_driver_ok_is_announced_when_driver_ok_is_set():
    b = make_bench(probe=False)
    assert b.negotiate(V1)
    b.write(Reg.QUEUE_SEL, 0)
    b.write(Reg.QUEUE_SIZE, 3)  # not a power of two
    b.write(Reg.QUEUE_READY, 1)
    assert b.read(Reg.STATUS) & S.DEVICE_NEEDS_RESET
    assert b.read(Reg.INTERRUPT_STATUS) == 0  # DRIVER_OK not yet set: nobody to tell
    b.write(Reg.STATUS, b.read(Reg.STATUS) | S.DRIVER_OK)
    assert b.read(Reg.INTERRUPT_STATUS) == InterruptStatus.CONFIG_CHANGE and b.device.irq


def test_linux_refuses_a_device_without_version_1_and_sets_failed():
    b = make_bench(probe=False, features=LINUX_KNOWN_FEATURES & ~V1)
    with pytest.raises(ProbeError, match="VERSION_1"):
        b.driver.probe()
    assert b.read(Reg.STATUS) & S.FAILED


@pytest.mark.req("GPIO-13", "MMIO-9", "C-4")
def test_the_eventq_exists_only_when_f_irq_was_negotiated():
    """Before FEATURES_OK the eventq may still be negotiated; once features without F_IRQ are
    accepted, QueueSizeMax(1) reads 0 and QueueReady = 1 on queue 1 is ignored."""
    b = make_bench(probe=False)
    b.write(Reg.QUEUE_SEL, 1)
    assert b.read(Reg.QUEUE_SIZE_MAX) == b.config.queue_size_max
    assert b.negotiate(V1)
    assert b.read(Reg.QUEUE_SIZE_MAX) == 0
    b.write(Reg.QUEUE_SIZE, 2)
    b.write(Reg.QUEUE_READY, 1)
    assert b.read(Reg.QUEUE_READY) == 0
    assert b.read(Reg.STATUS) & S.DEVICE_NEEDS_RESET == 0  # ignored, not a device error
    b.write(Reg.STATUS, 0)
    assert b.negotiate(V1 | Feature.GPIO_F_IRQ.mask)
    b.write(Reg.QUEUE_SEL, 1)
    assert b.read(Reg.QUEUE_SIZE_MAX) == b.config.queue_size_max
