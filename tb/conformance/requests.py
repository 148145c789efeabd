"""The requestq: every GPIO message with valid and invalid arguments, names, chain shapes,
ordering, batching and notification suppression (contract §5, §7)."""

from virtio_gpio.model.constants import (
    AvailFlags, Direction, Feature, InterruptStatus, MsgType, QueueIndex, ReplyStatus,
)
from virtio_gpio.model.driver.linux_gpio import LINUX_KNOWN_FEATURES, Pending
from virtio_gpio.model.layouts import GPIO_REPLY_SIZE, GPIO_REQUEST_PACKER, GPIO_REQUEST_SIZE, RING_IDX_OFFSET, Reg

from ..env import DeviceEnv, EventBetweenReadAndAck, seeded
from ..requirements import conformance_test

FILL = 0xAA  # pre-fill of reply buffers: a byte the device forgot to write shows up


def reply_of(env: DeviceEnv, drv, msg_type: int, gpio: int, value: int = 0) -> bytes:
    """Send one request and return its raw reply bytes, whatever the status."""
    res = env.memory.alloc(GPIO_REPLY_SIZE, 64)
    env.memory.write(res, bytes([FILL]) * GPIO_REPLY_SIZE)
    pending = drv.submit(msg_type, gpio, value, res=res)
    drv.wait(pending)
    assert pending.used_len == GPIO_REPLY_SIZE
    return env.memory.read(res, GPIO_REPLY_SIZE)


def capacity(drv) -> int:
    """Requests the requestq holds at once (one descriptor each with indirect, else two)."""
    vq = drv.vqs[QueueIndex.REQUESTQ]
    return vq.num if vq.indirect else vq.num // 2


OK = ReplyStatus.OK
ERR = bytes([ReplyStatus.ERR, 0])


@conformance_test("GPIO-1", "GPIO-2", "GPIO-9", "GPIO-10", "GPIO-11", "C-7")
async def every_message_with_valid_and_invalid_arguments(dut):
    env = await DeviceEnv.start(dut, stall_probability=0.2)
    drv = env.driver()
    n = env.config.ngpio
    last = n - 1
    irq = env.config.offer_irq

    def scenario():
        drv.probe()
        r = lambda *a: reply_of(env, drv, *a)  # noqa: E731
        reset_dir = env.config.reset_directions[0]
        assert r(MsgType.GET_DIRECTION, 0) == bytes([OK, reset_dir])
        # SET_VALUE is remembered before the line is an output (GPIO-10), driven once it is.
        assert r(MsgType.SET_VALUE, last, 1) == bytes([OK, 0])
        assert r(MsgType.SET_DIRECTION, last, Direction.OUT) == bytes([OK, 0])
        assert r(MsgType.GET_VALUE, last) == bytes([OK, 1])
        assert r(MsgType.GET_DIRECTION, last) == bytes([OK, Direction.OUT])
        # An input line reads the synchronized pin.
        assert r(MsgType.SET_DIRECTION, 0, Direction.IN) == bytes([OK, 0])
        env.set_input_blocking(0, 1)
        assert r(MsgType.GET_VALUE, 0) == bytes([OK, 1])
        env.set_input_blocking(0, 0)
        assert r(MsgType.GET_VALUE, 0) == bytes([OK, 0])
        # NONE forgets the line (GPIO-9): no output, latch 0, GET_VALUE refused.
        assert r(MsgType.SET_DIRECTION, last, Direction.NONE) == bytes([OK, 0])
        assert r(MsgType.GET_VALUE, last) == ERR
        assert r(MsgType.SET_DIRECTION, last, Direction.OUT) == bytes([OK, 0])
        assert r(MsgType.GET_VALUE, last) == bytes([OK, 0])
        # Invalid arguments: ERR with value 0 and no state change.
        for msg, gpio, value in ((MsgType.GET_DIRECTION, n, 0), (MsgType.SET_VALUE, n, 1),
                                 (MsgType.GET_VALUE, 0xFFFF, 0), (MsgType.SET_DIRECTION, 0, 3),
                                 (MsgType.SET_DIRECTION, 0, 0x100), (MsgType.SET_VALUE, 0, 2),
                                 (MsgType.SET_IRQ_TYPE, 0, 5), (MsgType.SET_IRQ_TYPE, 0, 0x10),
                                 (0, 0, 0), (7, 0, 0), (0xFFFF, 1, 1)):
            assert r(msg, gpio, value) == ERR, (msg, gpio, value)
        assert r(MsgType.SET_IRQ_TYPE, last, 1) == ERR  # an output line takes no irq type
        if irq:
            assert r(MsgType.SET_IRQ_TYPE, 0, 3) == bytes([OK, 0])
            assert r(MsgType.SET_DIRECTION, 0, Direction.OUT) == ERR  # irq type set: no OUT
        assert r(MsgType.GET_DIRECTION, 0) == bytes([OK, Direction.IN])
    await env.run(scenario)
    assert env.pins.output_enables >> (n - 1) & 1


@conformance_test("GPIO-12", "DRV-17", "C-7")
async def set_irq_type_is_refused_without_f_irq(dut):
    env = await DeviceEnv.start(dut)
    drv = env.driver(features=LINUX_KNOWN_FEATURES & ~Feature.GPIO_F_IRQ.mask)

    def scenario():
        drv.probe()
        assert reply_of(env, drv, MsgType.SET_IRQ_TYPE, 0, 1) == ERR
    await env.run(scenario)


@conformance_test("GPIO-1", "GPIO-4", "GPIO-5", "GPIO-6", "C-7")
async def names_reply_and_short_reply_buffers(dut):
    env = await DeviceEnv.start(dut)
    drv = env.driver()
    size = env.config.gpio_names_size

    def scenario():
        drv.probe()
        if size:
            assert drv.names == list(env.config.line_names)
        for space in (0, 1, 2, max(size, 3)):
            res = env.memory.alloc(max(space, 1), 64)
            env.memory.write(res, bytes([FILL]) * max(space, 1))
            p = drv.submit(MsgType.GET_LINE_NAMES, 0, res=res, rxlen=space)
            drv.wait(p)
            expected = 1 + size if space >= 1 + size else space
            assert p.used_len == expected, (space, p.used_len)
        # A GET_VALUE with a 1-byte reply buffer: ERR, used.len 1, no state change.
        res = env.memory.alloc(2, 64)
        p = drv.submit(MsgType.SET_VALUE, 0, 1, res=res, rxlen=1)
        drv.wait(p)
        assert p.used_len == 1 and env.memory.read(res, 1)[0] == ReplyStatus.ERR
    await env.run(scenario)


@conformance_test("GPIO-1", "GPIO-4", "GPIO-7", "VQ-10", "C-7")
async def names_replies_back_to_back_in_one_batch(dut):
    """Two full names replies and a short one in one notify, between GET_VALUEs. A long reply
    leaves the bus quiet between its chunks while the device reads its names; the comparison
    must wait for a device that is still moving data (found by the random campaign, where the
    testbench once called this a mismatch)."""
    env = await DeviceEnv.start(dut)
    drv = env.driver(queue_size=32)
    full = 1 + env.config.gpio_names_size

    def scenario():
        drv.probe()
        batch = []
        for msg, space in ((MsgType.GET_LINE_NAMES, full + 3), (MsgType.GET_VALUE, 2),
                           (MsgType.GET_LINE_NAMES, full), (MsgType.GET_LINE_NAMES, max(full - 3, 1))):
            res = env.memory.alloc(full + 3, 64)
            env.memory.write(res, bytes([FILL]) * (full + 3))
            batch.append(drv.submit(msg, 0, res=res, req=env.memory.alloc(8, 64), rxlen=space,
                                    kick=False))
        drv.kick()
        drv.wait(*batch)
        assert [p.used_len for p in batch] == [full, 2, full, max(full - 3, 1)]
    await env.run(scenario)


@conformance_test("VQ-1", "VQ-2", "VQ-3", "VQ-4", "VQ-10", "C-5")
async def request_and_reply_split_over_many_descriptors(dut):
    """Requests split over 1..8 readable descriptors (some empty) and replies over 1..2
    writable ones, direct and indirect."""
    env = await DeviceEnv.start(dut, stall_probability=0.3, read_latency=3)
    drv = env.driver()
    rng = seeded(env, "split")

    def scenario():
        drv.probe()
        vq = drv.vqs[QueueIndex.REQUESTQ]
        for trial in range(12):
            msg = GPIO_REQUEST_PACKER.pack(MsgType.GET_DIRECTION, trial % env.config.ngpio, 0)
            cuts = sorted(rng.sample(range(1, GPIO_REQUEST_SIZE), rng.randint(0, 5)))
            parts = [msg[a:b] for a, b in zip([0, *cuts], [*cuts, GPIO_REQUEST_SIZE])]
            if rng.random() < 0.3:
                parts.insert(rng.randrange(len(parts) + 1), b"")
            out = []
            for part in parts:
                addr = env.memory.alloc(max(len(part), 1), rng.choice((1, 2, 4, 8)))
                env.memory.write(addr, part)
                out.append((addr, len(part)))
            split = rng.random() < 0.5
            ins = [(env.memory.alloc(1, 1), 1), (env.memory.alloc(1, 1), 1)] if split else \
                  [(env.memory.alloc(GPIO_REPLY_SIZE, rng.choice((1, 2, 4))), GPIO_REPLY_SIZE)]
            for addr, length in ins:
                env.memory.write(addr, bytes([FILL]) * length)
            pending = Pending(trial, ins[0][0], GPIO_REPLY_SIZE)
            vq.add(out, ins, pending)
            drv.kick()
            drv.wait(pending)
            assert pending.used_len == GPIO_REPLY_SIZE
            reply = b"".join(env.memory.read(a, n) for a, n in ins)
            assert reply[0] == ReplyStatus.OK
    await env.run(scenario)


@conformance_test("GPIO-7", "GPIO-8", "VQ-14", "C-7")
async def requests_on_one_line_are_answered_in_order(dut):
    env = await DeviceEnv.start(dut, stall_probability=0.2)
    drv = env.driver()

    def scenario():
        drv.probe()
        drv.direction_output(1, 0)
        rounds = min(4, capacity(drv) // 4)
        sequence = [(MsgType.SET_VALUE, 1), (MsgType.GET_VALUE, 0), (MsgType.SET_VALUE, 0),
                    (MsgType.GET_VALUE, 0)] * rounds
        pendings = []
        for msg, value in sequence:
            req = env.memory.alloc(GPIO_REQUEST_SIZE, 64)
            res = env.memory.alloc(GPIO_REPLY_SIZE, 64)
            pendings.append(drv.submit(msg, 1, value, req=req, res=res, kick=False))
        drv.kick()
        drv.wait(*pendings)
        values = [env.memory.read(p.res, 2)[1] for p in pendings]
        assert values[1::4] == [1] * rounds and values[3::4] == [0] * rounds
    await env.run(scenario)


@conformance_test("VQ-5", "VQ-6", "VQ-7", "VQ-8", "VQ-11", "VQ-12", "VQ-13", "C-5")
async def notification_suppression_and_spurious_notifies(dut):
    """avail.flags NO_INTERRUPT without EVENT_IDX (no interrupt), used_event with it; extra
    notifies do nothing. The scoreboard checks the irq line and every ring byte after each step."""
    env = await DeviceEnv.start(dut)
    for features in (LINUX_KNOWN_FEATURES, LINUX_KNOWN_FEATURES & ~Feature.RING_EVENT_IDX.mask):
        drv = env.driver(features=features)  # its probe resets the device
        event_idx = bool(features & env.config.offered_features & Feature.RING_EVENT_IDX.mask)

        def scenario():
            drv.probe()
            vq = drv.vqs[QueueIndex.REQUESTQ]
            t = env.transport
            for _ in range(3):
                t.write(Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ)  # nothing new in the ring
                t.write(Reg.QUEUE_NOTIFY, 7)  # no such queue
            vq.set_avail_flags(AvailFlags.NO_INTERRUPT)
            rises = env.irq_monitor.rises
            pendings = [drv.submit(MsgType.GET_DIRECTION, i % env.config.ngpio,
                                   req=env.memory.alloc(8, 64), res=env.memory.alloc(2, 64),
                                   kick=False) for i in range(5)]
            drv.kick()
            done = (vq.last_used_idx + len(pendings)) & 0xFFFF
            drv.poll(lambda: env.memory.read_u16(vq.used_addr + RING_IDX_OFFSET) == done)
            if not event_idx:
                assert env.irq_monitor.rises == rises, "interrupt despite NO_INTERRUPT"
            drv.reap_requestq()  # what a polling driver does
            assert all(p.done for p in pendings)
            vq.set_avail_flags(0)
            assert reply_of(env, drv, MsgType.GET_DIRECTION, 0)[0] == OK
        await env.run(scenario)
        if not env.config.offer_event_idx:
            break


@conformance_test("VQ-7", "VQ-8", "C-5", needs=("offer_event_idx",))
async def used_event_ahead_holds_the_interrupt_back_until_used_idx_passes_it(dut):
    """With EVENT_IDX, the driver sets used_event a few completions ahead (as Linux's
    virtqueue_enable_cb_delayed does) and sends requests one at a time, reaping nothing: no
    interrupt until used.idx passes used_event, then exactly one. The driver's own reaping always
    puts used_event at the next completion, so only a driver that moves it ahead can tell a device
    that honours it from one that notifies at every completion."""
    env = await DeviceEnv.start(dut)
    drv = env.driver()
    ahead = 3  # notify once used.idx passes start + 3: at the 4th completion

    def scenario():
        drv.probe()
        vq = drv.vqs[QueueIndex.REQUESTQ]
        assert vq.event_idx, "EVENT_IDX was not negotiated"
        start = vq.last_used_idx
        env.memory.write_u16(vq.avail_addr + vq.geometry.used_event, (start + ahead) & 0xFFFF)
        rises = env.irq_monitor.rises
        pendings = []
        for n in range(1, ahead + 2):
            pendings.append(drv.submit(MsgType.GET_DIRECTION, 0, req=env.memory.alloc(8, 64),
                                       res=env.memory.alloc(2, 64)))
            done = (start + n) & 0xFFFF
            # not the driver's poll: it would take the interrupt and reap
            assert env.transport.advance_until(
                lambda: env.memory.read_u16(vq.used_addr + RING_IDX_OFFSET) == done,
                drv.timeout_steps), f"request {n} not used"
            want = 1 if n == ahead + 1 else 0
            assert env.irq_monitor.rises - rises == want, (
                f"{env.irq_monitor.rises - rises} interrupts after {n} completions with used_event "
                f"{ahead} ahead, not {want}")
        drv.handle_interrupt()
        assert all(p.done for p in pendings)
    await env.run(scenario)


@conformance_test("VQ-14", "GPIO-8", "C-5")
async def batch_of_64_requests_behind_one_notify(dut):
    env = await DeviceEnv.start(dut, stall_probability=0.1)
    drv = env.driver()

    def scenario():
        drv.probe()
        pendings = [drv.submit(MsgType.GET_DIRECTION, i % env.config.ngpio,
                               req=env.memory.alloc(8, 64), res=env.memory.alloc(2, 64), kick=False)
                    for i in range(min(64, capacity(drv)))]
        drv.kick()
        drv.wait(*pendings)
        for p in pendings:
            drv.finish(p)
    await env.run(scenario)




@conformance_test("VQ-9", "VQ-15", "MMIO-4", "MMIO-13", "C-3", "C-5")
async def interrupt_follows_used_idx_and_interrupt_status(dut):
    """Each completion: reply bytes, used element, used.idx, then the interrupt, in that order
    (the environment compares the order of both sides' writes and rises at every step); the line
    is high exactly while InterruptStatus is not 0 (checked at every InterruptStatus read) and
    falls on the ACK of the bits that are set, not before."""
    env = await DeviceEnv.start(dut, stall_probability=0.3, read_latency=4)
    drv = env.driver()
    t = env.transport

    def scenario():
        drv.probe()
        t.write(Reg.INTERRUPT_ACK, t.read(Reg.INTERRUPT_STATUS))
        for k in range(6):
            rises = env.irq_monitor.rises
            p = drv.submit(MsgType.GET_DIRECTION, k % env.config.ngpio, kick=False)
            drv.kick()
            t.advance()
            assert env.irq_monitor.rises == rises + 1, "no interrupt for a completion"
            status = t.read(Reg.INTERRUPT_STATUS)
            assert status == InterruptStatus.USED_BUFFER, f"InterruptStatus {status:#x}"
            t.write(Reg.INTERRUPT_ACK, InterruptStatus.CONFIG_CHANGE)  # not the bit that is set
            assert t.read(Reg.INTERRUPT_STATUS) == status and t.irq, "ACK of a clear bit cleared it"
            t.write(Reg.INTERRUPT_ACK, status)
            assert t.read(Reg.INTERRUPT_STATUS) == 0 and not t.irq
            drv.reap_requestq()
            assert p.done and p.used_len == GPIO_REPLY_SIZE
    await env.run(scenario)


@conformance_test("MMIO-4", "VQ-14", "C-3", "C-5")
async def a_completion_between_interrupt_status_read_and_ack_is_not_lost(dut):
    """A request completes and interrupts; between the driver's InterruptStatus read and its ACK
    the driver makes a second request available and notifies, and the device completes it. The
    ACK clears the bit both completions set; the driver, which reaps after its ACK, has both."""
    env = await DeviceEnv.start(dut, stall_probability=0.2)
    racing = EventBetweenReadAndAck(env)
    drv = env.driver()
    drv.t = racing

    def scenario():
        drv.probe()
        for trial in range(4):
            second = []
            racing.arm(lambda: second.append(drv.submit(MsgType.GET_DIRECTION, 0, kick=True,
                                                        req=env.memory.alloc(8, 64),
                                                        res=env.memory.alloc(2, 64))))
            first = drv.submit(MsgType.GET_DIRECTION, 1 % env.config.ngpio)
            drv.poll(lambda: first.done and second and second[0].done)
            drv.idle()
            assert racing.fired, "the completion did not come between the read and the ACK"
            for p in (first, second[0]):
                assert drv.finish(p)[1] == env.config.reset_directions[p.line]
            assert drv.log.spurious_interrupts == 0
    await env.run(scenario)
