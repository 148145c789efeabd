"""The eventq: every irq type, edges while masked and unmasked, levels, INVALID returns and the
Linux irq-chip flows (contract §8). Skipped on a device that does not offer F_IRQ."""

from virtio_gpio.model.constants import Feature, IrqStatus, IrqType, MsgType, QueueIndex
from virtio_gpio.model.driver.linux_gpio import LINUX_KNOWN_FEATURES
from virtio_gpio.model.layouts import IRQ_REQUEST_SIZE, RING_IDX_OFFSET, Reg

from ..env import DeviceEnv, EventBetweenReadAndAck
from ..requirements import conformance_test


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


def enable_without_buffer(drv, line: int, irq_type: IrqType) -> None:
    """SET_IRQ_TYPE alone: the line is enabled but holds no eventq buffer (masked at the device),
    the state in which edges must latch and levels must not (GPIO-16, GPIO-17)."""
    drv.request(MsgType.SET_IRQ_TYPE, line, irq_type)


@conformance_test("GPIO-15", "GPIO-16", "GPIO-18", "GPIO-23", "C-8", needs=("offer_irq",))
async def edge_types_latch_while_masked_and_deliver_once(dut):
    """Edges while the line is enabled and holds no buffer are latched; the buffer that arrives
    later is returned VALID at once, exactly once however many edges came; a line whose type is
    NONE latches nothing."""
    env, drv = await start_probed(dut, stall_probability=0.2)
    n = env.config.ngpio

    def scenario():
        for k, irq_type in enumerate(EDGE_TYPES):
            line = (3 * k + 1) % n
            pulse(env, line)  # type NONE: nothing is latched (GPIO-15)
            enable_without_buffer(drv, line, irq_type)
            pulse(env, line)
            pulse(env, line)  # several edges: one latch
            before = delivered(drv, line)
            drv.request_irq(line, irq_type)  # the same type again (keeps the latch), then the buffer
            drv.poll(lambda: delivered(drv, line) > before)
            drv.idle()
            assert delivered(drv, line) == before + 1, \
                f"{irq_type.name}: {delivered(drv, line) - before} deliveries for one latched edge"
            drv.free_irq(line)
            pulse(env, line)  # type NONE again: the buffer came back INVALID, nothing more
            drv.idle()
            assert delivered(drv, line) == before + 1
    await env.run(scenario)


@conformance_test("GPIO-15", "GPIO-17", "GPIO-18", "C-8", needs=("offer_irq",))
async def level_types_are_sampled_not_latched(dut):
    """An active level while the line holds no buffer is not remembered: a buffer arriving after
    it went inactive stays held; one arriving while it is active comes back VALID."""
    env, drv = await start_probed(dut, stall_probability=0.2)
    line = 2

    def scenario():
        for irq_type, active in ((IrqType.LEVEL_HIGH, 1), (IrqType.LEVEL_LOW, 0)):
            env.set_input_blocking(line, 1 - active)
            enable_without_buffer(drv, line, irq_type)
            pulse(env, line, (active, 1 - active))  # active only while no buffer is held
            before = delivered(drv, line)
            drv.request_irq(line, irq_type)
            drv.idle()
            assert delivered(drv, line) == before, f"{irq_type.name}: a past level was latched"
            # The handler makes the level inactive, as a real one clears its source.
            drv.irq_handler = lambda gpio: env.set_input_blocking(line, 1 - active)
            env.set_input_blocking(line, active)  # active while the buffer is held: delivered
            drv.poll(lambda: delivered(drv, line) > before)
            drv.idle()
            assert delivered(drv, line) == before + 1
            drv.irq_handler = None
            drv.free_irq(line)
    await env.run(scenario)


@conformance_test("GPIO-14", "GPIO-15", "GPIO-20", "GPIO-21", "GPIO-22", "C-8", needs=("offer_irq",))
async def buffers_go_back_invalid_when_refused_or_disabled(dut):
    env, drv = await start_probed(dut)
    t = env.transport
    eventq = drv.vqs[QueueIndex.EVENTQ]

    def raw_buffer(gpio: int) -> tuple[int, int]:
        ireq = env.memory.alloc(IRQ_REQUEST_SIZE, 64)
        ires = env.memory.alloc(1, 64)
        env.memory.write(ireq, gpio.to_bytes(IRQ_REQUEST_SIZE, "little"))
        env.memory.write(ires, b"\xAA")
        return ireq, ires

    def used_idx() -> int:
        return env.memory.read_u16(eventq.used_addr + RING_IDX_OFFSET)

    def scenario():
        # A buffer for a line with irq type NONE, for a line beyond ngpio, a short one: each comes
        # back at once with status INVALID. (The driver files each under line 0, whose irq is
        # disabled, and ignores it.)
        statuses = []
        for gpio, readable in ((0, IRQ_REQUEST_SIZE), (env.config.ngpio, IRQ_REQUEST_SIZE),
                               (0xFFFF, IRQ_REQUEST_SIZE), (1, 1)):
            ireq, ires = raw_buffer(gpio)
            eventq.add([(ireq, readable)], [(ires, 1)], 0)
            statuses.append(ires)
        start = used_idx()
        if eventq.kick_prepare():
            t.write(Reg.QUEUE_NOTIFY, QueueIndex.EVENTQ)
        drv.idle()
        assert (used_idx() - start) & 0xFFFF == len(statuses), "a refused buffer was kept"
        assert all(env.memory.read(ires, 1)[0] == IrqStatus.INVALID for ires in statuses)
        # Toggling pins of lines without an irq type gives no eventq traffic (GPIO-14).
        before = used_idx()
        pulse(env, 0)
        drv.idle()
        assert used_idx() == before
        # SET_IRQ_TYPE NONE drops a latched edge (GPIO-21) ...
        line = 4 % env.config.ngpio
        enable_without_buffer(drv, line, IrqType.EDGE_RISING)
        pulse(env, line)
        drv.request(MsgType.SET_IRQ_TYPE, line, IrqType.NONE)
        drv.request_irq(line, IrqType.EDGE_RISING)
        drv.idle()
        assert delivered(drv, line) == 0, "a latched edge survived SET_IRQ_TYPE NONE"
        # ... and returns the held buffer INVALID (GPIO-20).
        held = drv.irq_lines[line].ires
        before = used_idx()
        drv.free_irq(line)  # SET_IRQ_TYPE NONE
        drv.idle()
        assert (used_idx() - before) & 0xFFFF == 1, "the held buffer did not come back"
        assert env.memory.read(held, 1)[0] == IrqStatus.INVALID
    await env.run(scenario)


@conformance_test("GPIO-18", "GPIO-19", "C-8", needs=("offer_irq",))
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


@conformance_test("MMIO-4", "GPIO-18", "GPIO-19", "C-3", "C-8", needs=("offer_irq",))
async def an_event_between_interrupt_status_read_and_ack_is_not_lost(dut):
    """Line A's event interrupts; between the driver's InterruptStatus read and its ACK, line B's
    edge completes B's buffer. The ACK clears the bit B set too, yet the driver, which reaps the
    used ring after its ACK, gets both events; nothing else is delivered."""
    env = await DeviceEnv.start(dut, stall_probability=0.2)
    racing = EventBetweenReadAndAck(env)
    drv = env.driver()
    drv.t = racing  # the driver's register accesses go through the race
    n = env.config.ngpio

    def scenario():
        drv.probe()
        for trial in range(3):
            a, b = (2 * trial) % n, (2 * trial + 1) % n
            drv.request_irq(a, IrqType.EDGE_RISING)
            drv.request_irq(b, IrqType.EDGE_RISING)
            before_a, before_b = delivered(drv, a), delivered(drv, b)
            racing.arm(lambda: env.set_input_blocking(b, 1))
            env.set_input_blocking(a, 1)
            drv.poll(lambda: delivered(drv, a) > before_a and delivered(drv, b) > before_b)
            drv.idle()
            assert racing.fired, "the event did not come between the read and the ACK"
            assert (delivered(drv, a), delivered(drv, b)) == (before_a + 1, before_b + 1)
            assert drv.log.errors == []
            for line in (a, b):
                drv.free_irq(line)
                env.set_input_blocking(line, 0)
    await env.run(scenario)
