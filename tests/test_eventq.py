"""Interrupt events on the eventq (contract §8; GPIO-13..23). Buffers are queued by hand here, so
each test controls exactly when a line is masked (no buffer) or unmasked (buffer held)."""

import pytest

from conftest import make_bench
from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.constants import Feature, IrqStatus, IrqType, MsgType, QueueIndex
from virtio_gpio.model.driver.linux_gpio import LINUX_KNOWN_FEATURES
from virtio_gpio.model.layouts import IrqRequest, Reg

VALID, INVALID = IrqStatus.VALID, IrqStatus.INVALID


class EventBuffers:
    """Queue eventq buffers by hand and read back what the device returned."""

    def __init__(self, b):
        self.b = b
        self.vq = b.driver.vqs[QueueIndex.EVENTQ]
        self.returned: dict[int, tuple[int, int]] = {}  # head -> (used.len, status byte)
        self.order: list[int] = []

    def post(self, gpio, *, req_len=2, reply_len=1) -> int:
        mem = self.b.memory
        req = mem.alloc(max(req_len, 1))
        mem.write(req, IrqRequest.build(dict(gpio=gpio)).ljust(req_len, b"\0")[:req_len])
        res = mem.alloc(max(reply_len, 1))
        mem.write(res, b"\xAA" * reply_len)
        head = self.vq.add([(req, req_len)] if req_len else [], [(res, reply_len)] if reply_len else [],
                           (res, reply_len))
        self.b.notify(QueueIndex.EVENTQ)
        return head

    def reap(self) -> list[tuple[int, int, int]]:
        """Everything returned since the last call: (head, used.len, status byte or None)."""
        out = []
        while self.vq.more_used():
            slot = self.vq.last_used_idx % self.vq.num
            head = self.b.memory.read_u32(self.vq.used_addr + self.vq.geometry.used_elem(slot))
            (res, reply_len), used_len = self.vq.get_buf()
            out.append((head, used_len, self.b.memory.read(res, 1)[0] if reply_len else None))
        self.b.assert_clean_dma()
        return out


def set_irq_type(b, gpio, irq_type):
    """SET_IRQ_TYPE, reaping only the requestq: the eventq here belongs to EventBuffers."""
    pending = b.driver.submit(MsgType.SET_IRQ_TYPE, gpio, irq_type)
    b.device.step()
    b.driver.reap_requestq()
    assert b.driver.finish(pending)[1] == 0


@pytest.fixture
def b():
    return make_bench(DeviceConfig(ngpio=8))


@pytest.fixture
def ev(b):
    return EventBuffers(b)


def pin(b, gpio, level):
    b.device.set_input(gpio, level)
    b.device.step()


@pytest.mark.req("GPIO-14", "GPIO-15")
def test_no_events_after_probe_whatever_the_pins_do(b, ev):
    writes = len(b.memory.device_writes())
    for level in (1, 0, 1, 0):
        for gpio in range(8):
            pin(b, gpio, level)
    assert ev.reap() == [] and len(b.memory.device_writes()) == writes and not b.device.irq


@pytest.mark.req("GPIO-22", "GPIO-15", "C-8")
def test_a_buffer_for_a_line_with_irq_type_none_comes_back_invalid_at_once(b, ev):
    head = ev.post(2)
    assert ev.reap() == [(head, 1, INVALID)]
    pin(b, 2, 1)
    assert ev.reap() == []


@pytest.mark.req("GPIO-15")
def test_an_enabled_line_without_a_buffer_delivers_nothing(b, ev):
    set_irq_type(b, 1, IrqType.EDGE_BOTH)
    pin(b, 1, 1)
    pin(b, 1, 0)
    assert ev.reap() == []


@pytest.mark.req("GPIO-16", "GPIO-18", "C-8")
@pytest.mark.parametrize("irq_type,before,after", [
    (IrqType.EDGE_RISING, 0, 1), (IrqType.EDGE_FALLING, 1, 0), (IrqType.EDGE_BOTH, 0, 1),
    (IrqType.EDGE_BOTH, 1, 0)])
def test_an_edge_while_masked_is_latched_and_delivered_on_unmask(b, ev, irq_type, before, after):
    pin(b, 4, before)
    set_irq_type(b, 4, irq_type)
    pin(b, 4, after)
    pin(b, 4, before)  # the pulse is over before the buffer arrives
    head = ev.post(4)
    assert ev.reap() == [(head, 1, VALID)]
    assert not b.device.gpio.lines[4].edge_latched  # returning the buffer clears the latch


@pytest.mark.req("GPIO-16", "C-8")
@pytest.mark.parametrize("irq_type,before,after", [(IrqType.EDGE_RISING, 1, 0), (IrqType.EDGE_FALLING, 0, 1)])
def test_an_edge_of_the_other_polarity_is_not_latched(b, ev, irq_type, before, after):
    pin(b, 4, before)
    set_irq_type(b, 4, irq_type)
    pin(b, 4, after)
    ev.post(4)
    assert ev.reap() == []


@pytest.mark.req("GPIO-16", "GPIO-18")
def test_an_edge_while_unmasked_is_delivered_once_and_the_line_is_masked_again(b, ev):
    set_irq_type(b, 0, IrqType.EDGE_RISING)
    head = ev.post(0)
    assert ev.reap() == []
    pin(b, 0, 1)
    assert ev.reap() == [(head, 1, VALID)]
    pin(b, 0, 0)
    pin(b, 0, 1)  # latched again, but no buffer
    assert ev.reap() == []
    head2 = ev.post(0)
    assert ev.reap() == [(head2, 1, VALID)]


@pytest.mark.req("GPIO-17", "C-8")
@pytest.mark.parametrize("irq_type,active", [(IrqType.LEVEL_HIGH, 1), (IrqType.LEVEL_LOW, 0)])
def test_a_level_is_not_latched_while_masked(b, ev, irq_type, active):
    pin(b, 6, 1 - active)
    set_irq_type(b, 6, irq_type)
    pin(b, 6, active)
    pin(b, 6, 1 - active)
    ev.post(6)
    assert ev.reap() == []
    pin(b, 6, active)
    (head, used_len, status), = ev.reap()
    assert (used_len, status) == (1, VALID)


@pytest.mark.req("GPIO-17", "GPIO-23", "C-8")
@pytest.mark.parametrize("irq_type,active", [(IrqType.LEVEL_HIGH, 1), (IrqType.LEVEL_LOW, 0)])
def test_a_level_still_active_on_unmask_is_delivered_at_once_and_again_after_requeue(b, ev, irq_type, active):
    pin(b, 6, active)
    set_irq_type(b, 6, irq_type)
    first = ev.post(6)
    assert ev.reap() == [(first, 1, VALID)]
    second = ev.post(6)  # Linux requeues after its handler; the level is still there
    assert ev.reap() == [(second, 1, VALID)]


@pytest.mark.req("GPIO-23", "C-7")
def test_edge_detection_starts_at_set_irq_type(b, ev):
    pin(b, 3, 1)  # a rising edge before any irq type: not an event
    set_irq_type(b, 3, IrqType.EDGE_RISING)
    ev.post(3)
    assert ev.reap() == []


@pytest.mark.req("GPIO-19", "C-8")
def test_buffers_are_matched_to_lines_by_their_gpio_field(b, ev):
    set_irq_type(b, 3, IrqType.EDGE_RISING)
    set_irq_type(b, 5, IrqType.EDGE_RISING)
    head5 = ev.post(5)
    head3 = ev.post(3)
    pin(b, 5, 1)
    assert ev.reap() == [(head5, 1, VALID)]
    pin(b, 3, 1)
    assert ev.reap() == [(head3, 1, VALID)]


@pytest.mark.req("C-8")
def test_events_on_several_lines_are_all_delivered(b, ev):
    heads = {}
    for gpio in range(8):
        set_irq_type(b, gpio, IrqType.EDGE_BOTH)
        heads[gpio] = ev.post(gpio)
    for gpio in range(8):
        b.device.set_input(gpio, 1)  # all eight change before the device runs
    b.device.step()
    assert sorted(ev.reap()) == sorted((heads[g], 1, VALID) for g in range(8))


@pytest.mark.req("GPIO-20", "C-7", "C-8")
def test_irq_type_none_returns_the_held_buffer_invalid(b, ev):
    set_irq_type(b, 2, IrqType.LEVEL_LOW)
    pin(b, 2, 1)
    head = ev.post(2)
    assert ev.reap() == []
    set_irq_type(b, 2, IrqType.NONE)
    assert ev.reap() == [(head, 1, INVALID)]


@pytest.mark.req("GPIO-21", "C-7")
def test_irq_type_none_discards_a_latched_edge(b, ev):
    set_irq_type(b, 2, IrqType.EDGE_RISING)
    pin(b, 2, 1)  # latched while masked
    set_irq_type(b, 2, IrqType.NONE)
    set_irq_type(b, 2, IrqType.EDGE_RISING)
    ev.post(2)
    assert ev.reap() == []


@pytest.mark.req("C-8", "DRV-17")
def test_a_second_buffer_for_one_line_comes_back_invalid_and_the_first_stays(b, ev):
    set_irq_type(b, 1, IrqType.EDGE_RISING)
    first = ev.post(1)
    second = ev.post(1)
    assert ev.reap() == [(second, 1, INVALID)]
    pin(b, 1, 1)
    assert ev.reap() == [(first, 1, VALID)]


@pytest.mark.req("C-8")
@pytest.mark.parametrize("gpio", [8, 0xFFFF])
def test_a_buffer_for_a_line_beyond_ngpio_comes_back_invalid(b, ev, gpio):
    head = ev.post(gpio)
    assert ev.reap() == [(head, 1, INVALID)]


@pytest.mark.req("C-8")
@pytest.mark.parametrize("req_len,reply_len,expected_len,expected_status", [
    (0, 1, 1, INVALID), (1, 1, 1, INVALID), (1, 3, 1, INVALID), (2, 0, 0, None), (1, 0, 0, None)])
def test_malformed_eventq_buffers_come_back_at_once(b, ev, req_len, reply_len, expected_len, expected_status):
    set_irq_type(b, 0, IrqType.EDGE_RISING)
    head = ev.post(0, req_len=req_len, reply_len=reply_len)
    assert ev.reap() == [(head, expected_len, expected_status)]
    assert b.device.gpio.lines[0].held_buffer is None


@pytest.mark.req("VQ-10", "C-5")
def test_an_event_writes_one_byte_even_into_a_larger_buffer(b, ev):
    set_irq_type(b, 0, IrqType.EDGE_RISING)
    ev.post(0, req_len=4, reply_len=4)
    pin(b, 0, 1)
    (head, used_len, status), = ev.reap()
    res = [w for w in b.memory.device_writes() if w.size == 1][-1]
    assert (used_len, status) == (1, VALID)
    assert b.memory.read(res.addr, 4) == bytes([VALID]) + b"\xAA" * 3


@pytest.mark.req("GPIO-13", "C-4")
def test_without_f_irq_the_eventq_is_never_touched():
    b = make_bench(features=LINUX_KNOWN_FEATURES & ~Feature.GPIO_F_IRQ.mask)
    assert len(b.driver.vqs) == 1
    b.write(Reg.QUEUE_NOTIFY, QueueIndex.EVENTQ)
    b.device.set_input(0, 1)
    reads = len(b.memory.dma_log)
    b.device.step()
    assert len(b.memory.dma_log) == reads


@pytest.mark.req("GEN-3", "MMIO-5", "C-4")
def test_reset_with_eventq_buffers_outstanding_returns_nothing(b, ev):
    for gpio in (1, 2):
        set_irq_type(b, gpio, IrqType.EDGE_RISING)
        ev.post(gpio)
    writes = len(b.memory.device_writes())
    b.write(Reg.STATUS, 0)
    pin(b, 1, 1)
    assert len(b.memory.device_writes()) == writes and not b.device.irq
    assert all(line.held_buffer is None for line in b.device.gpio.lines)


def test_the_linux_irq_flow_requeues_after_each_event(b):
    drv, dev = b.driver, b.device
    drv.request_irq(5, IrqType.EDGE_RISING)
    for n in range(1, 4):
        dev.set_input(5, 1)
        drv.poll(lambda: len(drv.log.events) == n)
        dev.set_input(5, 0)
    assert drv.log.events == [(5, "VALID")] * 3
    dev.step()
    assert drv.irq_lines[5].queued and dev.gpio.lines[5].held_buffer is not None
    drv.free_irq(5)
    drv.poll(lambda: not drv.irq_lines[5].queued)
    assert drv.log.errors == [] and drv.log.spurious_interrupts == 0
