"""The requestq messages (contract §7; GPIO-1..12). Every reply buffer is pre-filled with 0xAA so
that a byte the device forgot to write shows up (GPIO-1)."""

import pytest

from conftest import make_bench
from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.constants import Direction, Feature, IrqStatus, IrqType, MsgType, ReplyStatus
from virtio_gpio.model.driver.linux_gpio import LINUX_KNOWN_FEATURES, Pending
from virtio_gpio.model.layouts import GpioRequest

OK, ERR = ReplyStatus.OK, ReplyStatus.ERR
FILL = 0xAA
NAMES = ("led0", "", "button", "x")


def send(b, msg_type, gpio, value=0, *, req_len=8, reply_len=2):
    """Queue one request with buffers of the given sizes, run the device, return (used.len, bytes)."""
    mem = b.memory
    req = mem.alloc(max(req_len, 1))
    mem.write(req, GpioRequest.build(dict(type=msg_type, gpio=gpio, value=value)).ljust(req_len, b"\0")[:req_len])
    res = mem.alloc(max(reply_len, 1))
    mem.write(res, bytes([FILL]) * reply_len)
    pending = Pending(gpio, res, reply_len)
    b.driver.vqs[0].add([(req, req_len)] if req_len else [], [(res, reply_len)] if reply_len else [], pending)
    b.driver.kick()
    b.driver.wait(pending)
    b.assert_clean_dma()
    return pending.used_len, mem.read(res, reply_len)


def ok(value=0):
    return 2, bytes([OK, value])


ERR_REPLY = (2, bytes([ERR, 0]))


@pytest.fixture
def b():
    return make_bench(DeviceConfig(ngpio=4, line_names=NAMES))


# -- GET_DIRECTION / SET_DIRECTION ---------------------------------------------------------------

@pytest.mark.req("GPIO-2", "GPIO-11", "C-7")
def test_get_direction_reports_the_reset_direction_per_line():
    b = make_bench(DeviceConfig(ngpio=3, reset_direction=(Direction.IN, Direction.NONE, Direction.IN)),
                   probe=True)
    assert [send(b, MsgType.GET_DIRECTION, g) for g in range(3)] == [ok(Direction.IN), ok(Direction.NONE),
                                                                     ok(Direction.IN)]
    assert b.driver.log.errors == ["get_direction failed on line 1: line 1: direction 0 (-EINVAL)"]


@pytest.mark.req("GPIO-11", "C-7")
@pytest.mark.parametrize("direction", list(Direction))
def test_set_direction_then_get_direction(b, direction):
    assert send(b, MsgType.SET_DIRECTION, 2, direction) == ok(0)
    assert send(b, MsgType.GET_DIRECTION, 2) == ok(direction)
    assert bool(b.device.gpio_oe & 4) is (direction is Direction.OUT)


@pytest.mark.req("C-7")
@pytest.mark.parametrize("value", [3, 4, 0x100, 0xFFFF_FFFF])
def test_set_direction_with_an_undefined_value_is_err_and_changes_nothing(b, value):
    assert send(b, MsgType.SET_DIRECTION, 1, value) == ERR_REPLY
    assert send(b, MsgType.GET_DIRECTION, 1) == ok(Direction.IN)


@pytest.mark.req("GPIO-9", "C-7")
def test_set_direction_none_discards_all_line_state(b):
    drv, dev = b.driver, b.device
    drv.direction_output(1, 1)
    assert dev.gpio_oe & 2 and dev.gpio_o & 2
    send(b, MsgType.SET_DIRECTION, 1, Direction.IN)
    drv.request_irq(1, IrqType.EDGE_RISING)
    dev.set_input(1, 0)
    drv.irq_mask(1)  # Linux masks locally: the buffer stays at the device
    dev.set_input(1, 1)  # an edge is latched; the step that serves SET_DIRECTION NONE comes first
    events_before = len(drv.log.events)
    assert send(b, MsgType.SET_DIRECTION, 1, Direction.NONE) == ok(0)
    line = dev.gpio.lines[1]
    assert (line.direction, line.out_latch, line.irq_type, line.edge_latched, line.held_buffer) == \
        (Direction.NONE, 0, IrqType.NONE, False, None)
    assert not dev.gpio_oe & 2 and not dev.gpio_o & 2
    assert len(drv.log.events) == events_before


@pytest.mark.req("C-7")
def test_set_direction_out_is_refused_while_an_irq_type_is_set(b):
    send(b, MsgType.SET_IRQ_TYPE, 0, IrqType.EDGE_BOTH)
    assert send(b, MsgType.SET_DIRECTION, 0, Direction.OUT) == ERR_REPLY
    assert not b.device.gpio_oe & 1
    send(b, MsgType.SET_IRQ_TYPE, 0, IrqType.NONE)
    assert send(b, MsgType.SET_DIRECTION, 0, Direction.OUT) == ok(0)


# -- SET_VALUE / GET_VALUE -----------------------------------------------------------------------

@pytest.mark.req("GPIO-10", "C-7")
@pytest.mark.parametrize("direction", [Direction.IN, Direction.NONE])
def test_set_value_before_set_direction_out_is_kept_and_driven_later(b, direction):
    send(b, MsgType.SET_DIRECTION, 3, direction)
    assert send(b, MsgType.SET_VALUE, 3, 1) == ok(0)
    assert b.device.gpio_o & 8 and not b.device.gpio_oe & 8  # latched, not driven
    assert send(b, MsgType.SET_DIRECTION, 3, Direction.OUT) == ok(0)
    assert b.device.gpio_o & 8 and b.device.gpio_oe & 8  # driven high, never low in between


@pytest.mark.req("C-7")
@pytest.mark.parametrize("value", [2, 0x100, 0xFFFF_FFFF])
def test_set_value_outside_0_1_is_err_and_changes_nothing(b, value):
    send(b, MsgType.SET_VALUE, 0, 1)
    assert send(b, MsgType.SET_VALUE, 0, value) == ERR_REPLY
    assert b.device.gpio_o & 1


@pytest.mark.req("C-7")
def test_get_value_of_an_output_returns_the_latch_not_the_pin(b):
    b.driver.direction_output(0, 1)
    b.device.set_input(0, 0)
    assert send(b, MsgType.GET_VALUE, 0) == ok(1)


@pytest.mark.req("C-7")
def test_get_value_of_an_input_returns_the_pin(b):
    b.device.set_input(2, 1)
    assert send(b, MsgType.GET_VALUE, 2) == ok(1)
    b.device.set_input(2, 0)
    assert send(b, MsgType.GET_VALUE, 2) == ok(0)


@pytest.mark.req("C-7")
def test_get_value_of_a_line_with_direction_none_is_err(b):
    send(b, MsgType.SET_DIRECTION, 2, Direction.NONE)
    b.device.set_input(2, 1)
    assert send(b, MsgType.GET_VALUE, 2) == ERR_REPLY


# -- SET_IRQ_TYPE --------------------------------------------------------------------------------

@pytest.mark.req("C-7")
@pytest.mark.parametrize("irq_type", list(IrqType))
def test_every_defined_irq_type_is_accepted_on_an_input(b, irq_type):
    assert send(b, MsgType.SET_IRQ_TYPE, 1, irq_type) == ok(0)
    assert b.device.gpio.lines[1].irq_type is irq_type


@pytest.mark.req("C-7")
@pytest.mark.parametrize("value", [5, 6, 7, 9, 0x10, 0xFFFF_FFFF])
def test_undefined_irq_types_are_err(b, value):
    assert send(b, MsgType.SET_IRQ_TYPE, 1, value) == ERR_REPLY
    assert b.device.gpio.lines[1].irq_type is IrqType.NONE


@pytest.mark.req("GPIO-12", "C-7")
def test_set_irq_type_without_f_irq_negotiated_is_err():
    b = make_bench(features=LINUX_KNOWN_FEATURES & ~Feature.GPIO_F_IRQ.mask)
    assert send(b, MsgType.SET_IRQ_TYPE, 0, IrqType.EDGE_RISING) == ERR_REPLY
    assert b.device.gpio.lines[0].irq_type is IrqType.NONE


@pytest.mark.req("C-7")
def test_set_irq_type_on_an_output_is_err(b):
    b.driver.direction_output(2, 0)
    assert send(b, MsgType.SET_IRQ_TYPE, 2, IrqType.LEVEL_HIGH) == ERR_REPLY


@pytest.mark.req("C-7")
def test_set_irq_type_on_a_line_with_direction_none_is_accepted(b):
    send(b, MsgType.SET_DIRECTION, 0, Direction.NONE)
    assert send(b, MsgType.SET_IRQ_TYPE, 0, IrqType.EDGE_FALLING) == ok(0)


@pytest.mark.req("C-7")
def test_the_same_irq_type_twice_is_accepted_and_keeps_the_latch(b):
    send(b, MsgType.SET_IRQ_TYPE, 1, IrqType.EDGE_RISING)
    b.device.set_input(1, 1)
    assert send(b, MsgType.SET_IRQ_TYPE, 1, IrqType.EDGE_RISING) == ok(0)
    assert b.device.gpio.lines[1].edge_latched


@pytest.mark.req("C-7")
def test_a_type_change_without_none_in_between_is_accepted_and_clears_the_latch(b):
    send(b, MsgType.SET_IRQ_TYPE, 1, IrqType.EDGE_RISING)
    b.device.set_input(1, 1)
    assert send(b, MsgType.SET_IRQ_TYPE, 1, IrqType.EDGE_BOTH) == ok(0)
    assert not b.device.gpio.lines[1].edge_latched


# -- requests that cannot be served ------------------------------------------------------------

@pytest.mark.req("C-7")
@pytest.mark.parametrize("msg_type", [MsgType.GET_DIRECTION, MsgType.SET_DIRECTION, MsgType.GET_VALUE,
                                      MsgType.SET_VALUE, MsgType.SET_IRQ_TYPE])
@pytest.mark.parametrize("gpio", [4, 0xFFFF])
def test_a_line_beyond_ngpio_is_err(b, msg_type, gpio):
    assert send(b, msg_type, gpio, 0) == ERR_REPLY


@pytest.mark.req("C-7")
@pytest.mark.parametrize("msg_type", [0, 7, 0x8001, 0xFFFF])
def test_an_unknown_message_type_is_err(b, msg_type):
    assert send(b, msg_type, 0, 0) == ERR_REPLY


@pytest.mark.req("C-7")
@pytest.mark.parametrize("req_len", range(8))
def test_a_request_shorter_than_8_bytes_is_err_with_no_state_change(b, req_len):
    assert send(b, MsgType.SET_VALUE, 0, 1, req_len=req_len) == ERR_REPLY
    assert not b.device.gpio_o & 1


@pytest.mark.req("C-7", "VQ-10")
def test_a_one_byte_reply_buffer_gets_err_and_the_request_has_no_effect(b):
    assert send(b, MsgType.SET_VALUE, 0, 1, reply_len=1) == (1, bytes([ERR]))
    assert not b.device.gpio_o & 1


@pytest.mark.req("C-7")
def test_no_reply_buffer_means_used_len_zero_and_nothing_written(b):
    writes = len(b.memory.device_writes())
    assert send(b, MsgType.SET_VALUE, 0, 1, reply_len=0) == (0, b"")
    assert not b.device.gpio_o & 1
    vq = b.driver.vqs[0]
    new_writes = b.memory.device_writes()[writes:]
    assert new_writes and all(vq.used_addr <= w.addr < vq.used_addr + vq.geometry.used_ring_size
                              for w in new_writes)


@pytest.mark.req("GPIO-1", "C-7")
def test_a_larger_reply_buffer_gets_two_bytes_and_the_rest_untouched(b):
    used_len, data = send(b, MsgType.GET_DIRECTION, 0, reply_len=6)
    assert (used_len, data) == (2, bytes([OK, Direction.IN]) + bytes([FILL]) * 4)


# -- GET_LINE_NAMES ------------------------------------------------------------------------------

@pytest.mark.req("GPIO-5", "GPIO-6", "GPIO-1", "C-7")
def test_get_line_names_returns_the_block(b):
    block = b"led0\0\0button\0x\0"
    assert send(b, MsgType.GET_LINE_NAMES, 0, reply_len=1 + len(block)) == (1 + len(block), bytes([OK]) + block)
    assert b.driver.names == list(NAMES)


@pytest.mark.req("C-7")
def test_get_line_names_ignores_its_gpio_and_value_fields(b):
    block = b"led0\0\0button\0x\0"
    assert send(b, MsgType.GET_LINE_NAMES, 3, 7, reply_len=1 + len(block))[1] == bytes([OK]) + block


@pytest.mark.req("GPIO-4", "C-7")
def test_get_line_names_without_names_is_a_one_byte_err():
    b = make_bench(DeviceConfig(ngpio=4))
    assert b.driver.names is None
    assert send(b, MsgType.GET_LINE_NAMES, 0, reply_len=2) == (1, bytes([ERR, FILL]))


@pytest.mark.req("C-7", "VQ-10")
def test_get_line_names_into_a_short_buffer_is_a_truncated_err(b):
    assert send(b, MsgType.GET_LINE_NAMES, 0, reply_len=5) == (5, bytes([ERR, 0, 0, 0, 0]))


# -- ordering ------------------------------------------------------------------------------------

@pytest.mark.req("GPIO-7", "GPIO-8", "VQ-14", "C-7")
def test_requests_on_one_line_in_one_kick_are_answered_in_order(b):
    drv, mem = b.driver, b.memory
    seq = [(MsgType.SET_DIRECTION, Direction.OUT), (MsgType.SET_VALUE, 1), (MsgType.GET_VALUE, 0),
           (MsgType.SET_VALUE, 0), (MsgType.GET_VALUE, 0)]
    batch = [drv.submit(t, 2, v, req=mem.alloc(8), res=mem.alloc(2), kick=False) for t, v in seq]
    used_idx_before = drv.vqs[0].last_used_idx
    drv.kick()
    drv.wait(*batch)
    assert [drv.finish(p)[1] for p in batch] == [0, 0, 1, 0, 0]
    # the used ring lists the chains in the order they were made available
    vq = drv.vqs[0]
    order = [mem.read_u32(vq.used_addr + vq.geometry.used_elem((used_idx_before + i) % vq.num))
             for i in range(len(seq))]
    assert order == [p.head for p in batch]
    assert b.device.gpio_oe & 4 and not b.device.gpio_o & 4


@pytest.mark.req("GPIO-20", "C-7")
def test_set_irq_type_none_returns_the_held_buffer_before_its_own_reply(b):
    drv = b.driver
    drv.request_irq(3, IrqType.LEVEL_HIGH)
    b.device.step()
    line = b.device.gpio.lines[3]
    assert line.held_buffer is not None
    ev_used_before = b.memory.read_u16(drv.vqs[1].used_addr + 2)
    drv.irq_disable(3)
    drv.irq_bus_sync_unlock(3)
    assert line.held_buffer is None and line.irq_type is IrqType.NONE
    assert b.memory.read_u16(drv.vqs[1].used_addr + 2) == ev_used_before + 1
    assert b.memory.read(drv.irq_lines[3].ires, 1)[0] == IrqStatus.INVALID
