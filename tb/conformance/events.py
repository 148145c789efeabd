"""The eventq: every irq type, edges while masked and unmasked, levels, INVALID returns and the
Linux irq-chip flows (contract §8). Skipped on a device that does not offer F_IRQ."""

from virtio_gpio.model.constants import Feature, IrqType, MsgType, QueueIndex
from virtio_gpio.model.driver.linux_gpio import LINUX_KNOWN_FEATURES
from virtio_gpio.model.layouts import IRQ_REQUEST_SIZE, Reg

from .. import configs
from ..env import DeviceEnv
from ..requirements import conformance_test

NO_IRQ = not configs.offers("offer_irq")

EDGE_TYPES = (IrqType.EDGE_RISING, IrqType.EDGE_FALLING, IrqType.EDGE_BOTH)


async def start_probed(dut, **kwargs):
    env = await DeviceEnv.start(dut, **kwargs)
    drv = env.driver()
    await env.run(drv.probe)
    return env, drv


def pulse(env: DeviceEnv, line: int, levels=(1, 0)) -> None:
    for level in levels:
        env.set_input_blocking(line, level)


def delivered(drv, line: int) -> int:
    return sum(1 for gpio, what in drv.log.events if gpio == line and what == "VALID")


@conformance_test("GPIO-15", "GPIO-16", "GPIO-18", "GPIO-19", "GPIO-23", "C-8", skip=NO_IRQ)
async def edge_types_latch_while_masked_and_deliver_once(dut):
    env, drv = await start_probed(dut, stall_probability=0.2)
    n = env.config.ngpio

    def scenario():
        for k, irq_type in enumerate(EDGE_TYPES):
            line = (3 * k + 1) % n
            drv.request_irq(line, irq_type)
            drv.irq_mask(line)  # masked: the held buffer stays, nothing reaches the handler
            before = delivered(drv, line)
            pulse(env, line)  # a full pulse: rising and falling
            drv.poll(lambda: True)
            drv.irq_unmask(line)  # Linux unmasks: the latched edge is delivered
            drv.poll(lambda: delivered(drv, line) > before or not env.model.gpio.lines[line].held_buffer)
            drv.free_irq(line)
    await env.run(scenario)


@conformance_test("GPIO-15", "GPIO-17", "GPIO-18", "C-8", skip=NO_IRQ)
async def level_types_are_sampled_not_latched(dut):
    env, drv = await start_probed(dut, stall_probability=0.2)

    def scenario():
        for irq_type, active in ((IrqType.LEVEL_HIGH, 1), (IrqType.LEVEL_LOW, 0)):
            line = 2
            env.set_input_blocking(line, 1 - active)
            drv.request_irq(line, irq_type)
            before = delivered(drv, line)
            pulse(env, line, (active, 1 - active))  # active while held: delivered at once
            drv.poll(lambda: delivered(drv, line) > before)
            drv.irq_mask(line)
            count = delivered(drv, line)
            pulse(env, line, (active, 1 - active))  # active only while masked: not latched
            drv.poll(lambda: True)
            assert delivered(drv, line) == count
            drv.irq_unmask(line)
            drv.free_irq(line)
    await env.run(scenario)


@conformance_test("GPIO-14", "GPIO-15", "GPIO-20", "GPIO-21", "GPIO-22", "C-8", skip=NO_IRQ)
async def buffers_go_back_invalid_when_refused_or_disabled(dut):
    env, drv = await start_probed(dut)
    t = env.transport

    def raw_buffer(gpio: int) -> tuple[int, int]:
        ireq = env.memory.alloc(IRQ_REQUEST_SIZE, 64)
        ires = env.memory.alloc(1, 64)
        env.memory.write(ireq, gpio.to_bytes(IRQ_REQUEST_SIZE, "little"))
        env.memory.write(ires, b"\xAA")
        return ireq, ires

    def scenario():
        eventq = drv.vqs[QueueIndex.EVENTQ]
        # A buffer for a line with irq type NONE, for a line beyond ngpio, a short one: INVALID.
        # (The driver files each returned buffer under line 0, whose irq is disabled: ignored.)
        for gpio in (0, env.config.ngpio, 0xFFFF):
            ireq, ires = raw_buffer(gpio)
            eventq.add([(ireq, IRQ_REQUEST_SIZE)], [(ires, 1)], 0)
        ireq, ires = raw_buffer(1)
        eventq.add([(ireq, 1)], [(ires, 1)], 0)
        if eventq.kick_prepare():
            t.write(Reg.QUEUE_NOTIFY, QueueIndex.EVENTQ)
        drv.poll(lambda: True)
        # Toggling pins of lines without an irq type gives no eventq traffic (GPIO-14).
        pulse(env, 0)
        # A latched edge is dropped by SET_IRQ_TYPE NONE, and the held buffer comes back (GPIO-20/21).
        drv.request_irq(4 % env.config.ngpio, IrqType.EDGE_RISING)
        line = 4 % env.config.ngpio
        drv.irq_mask(line)
        pulse(env, line)
        drv.request(MsgType.SET_IRQ_TYPE, line, IrqType.NONE)
        drv.request(MsgType.SET_IRQ_TYPE, line, IrqType.EDGE_RISING)
        drv.poll(lambda: True)
        assert delivered(drv, line) == 0
        drv.free_irq(line)
    await env.run(scenario)


@conformance_test("GPIO-18", "GPIO-19", "C-8", skip=NO_IRQ)
async def events_on_every_line_are_all_delivered(dut):
    env, drv = await start_probed(dut, stall_probability=0.1)
    n = env.config.ngpio

    def scenario():
        for line in range(n):
            drv.request_irq(line, IrqType.EDGE_BOTH)
        for line in reversed(range(n)):
            env.set_input_blocking(line, 1)
        drv.poll(lambda: all(delivered(drv, line) >= 1 for line in range(n)))
        for line in range(n):
            drv.free_irq(line)
    await env.run(scenario)


@conformance_test("GPIO-13", "MMIO-9", "C-2")
async def without_f_irq_the_eventq_is_never_touched(dut):
    env = await DeviceEnv.start(dut)
    drv = env.driver(features=LINUX_KNOWN_FEATURES & ~Feature.GPIO_F_IRQ.mask)

    def scenario():
        drv.probe()
        assert len(drv.vqs) == 1
        t = env.transport
        t.write(Reg.QUEUE_SEL, QueueIndex.EVENTQ)
        assert t.read(Reg.QUEUE_SIZE_MAX) == 0, "an eventq without F_IRQ"
        t.write(Reg.QUEUE_SIZE, 2)
        t.write(Reg.QUEUE_READY, 1)  # ignored: the queue does not exist
        assert t.read(Reg.QUEUE_READY) == 0
        pulse(env, 0)
    await env.run(scenario)
