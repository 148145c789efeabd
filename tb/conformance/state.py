"""Line state the scoreboard cannot see (contract §4, §7, §8): irq types, latched edges, held
eventq buffers and output latches of lines that are not OUT change neither pins, memory nor the
irq line until a later step exposes them. Each test here makes that later step and asserts on it:
lines armed before a device reset are used again by a new driver, out-of-range requests are sent
while the line they would alias is in each of its states, and irq types change without NONE in
between, each change followed by a pin pattern only the new type reacts to."""

from virtio_gpio.model.constants import (
    Direction, IrqStatus, IrqType, MsgType, QueueIndex, ReplyStatus,
)
from virtio_gpio.model.layouts import (
    GPIO_REPLY_SIZE, GPIO_REQUEST_SIZE, IRQ_REPLY_SIZE, IRQ_REQUEST_SIZE, Reg,
)

from .. import configs
from ..env import DeviceEnv
from ..requirements import conformance_test
from .chains import FILL, capacity, delivered, reply_of, unexpected_errors, used_idx

NO_IRQ = not configs.offers("offer_irq")
OK, ERR = ReplyStatus.OK, ReplyStatus.ERR
ERR_REPLY = bytes([ERR, 0])
SETTLE_STEPS = 4  # advances that let the device do whatever it would (nothing is awaited)

# The inactive pin level of each irq type.
IDLE_LEVEL = {IrqType.EDGE_RISING: 0, IrqType.EDGE_FALLING: 1, IrqType.EDGE_BOTH: 0,
              IrqType.LEVEL_HIGH: 0, IrqType.LEVEL_LOW: 1}


def settle(env: DeviceEnv, drv=None) -> None:
    """Let the device do whatever it would, with nothing to wait for; ``drv`` takes the
    interrupts meanwhile, so that anything the device delivers reaches the driver's log."""
    for _ in range(SETTLE_STEPS):
        env.transport.advance()
        if drv is not None and env.transport.irq:
            drv.handle_interrupt()


def pin_bits(env: DeviceEnv, line: int) -> tuple[int, int]:
    """(gpio_oe, gpio_o) of one line, read from the ports."""
    return env.pins.output_enables >> line & 1, env.pins.outputs >> line & 1


def raw_event_buffers(env: DeviceEnv, drv, gpios: list[int], token: int) -> list[int]:
    """Queue an eventq buffer for each of ``gpios`` behind one notify, filed under driver line
    ``token`` (one whose irq the driver has disabled, so it ignores what comes back); wait until
    all are back and return the status bytes. The driver checks each used.len (an error is logged
    otherwise)."""
    eventq = drv.vqs[QueueIndex.EVENTQ]
    statuses, heads = [], []
    for gpio in gpios:
        ireq = env.memory.alloc(IRQ_REQUEST_SIZE, 64)
        ires = env.memory.alloc(IRQ_REPLY_SIZE, 64)
        env.memory.write(ireq, gpio.to_bytes(IRQ_REQUEST_SIZE, "little"))
        env.memory.write(ires, bytes([FILL]))
        heads.append(eventq.add([(ireq, IRQ_REQUEST_SIZE)], [(ires, IRQ_REPLY_SIZE)], token))
        statuses.append(ires)
    if eventq.kick_prepare():
        env.transport.write(Reg.QUEUE_NOTIFY, QueueIndex.EVENTQ)
    drv.poll(lambda: not any(h in eventq.in_flight for h in heads))  # reaped, used.len checked
    return [env.memory.read(a, 1)[0] for a in statuses]


def event(env: DeviceEnv, line: int, irq_type: IrqType) -> None:
    """Pin moves that make exactly one event of ``irq_type`` on a line whose pin is at the
    type's idle level (a level type's handler puts the pin back)."""
    if irq_type is IrqType.EDGE_BOTH:
        env.set_input_blocking(line, 1 - (env.pins.inputs >> line & 1))
    else:
        env.set_input_blocking(line, 1 - IDLE_LEVEL[irq_type])
        if irq_type.is_edge:
            env.set_input_blocking(line, IDLE_LEVEL[irq_type])


# -- a reset, then every armed line used again ---------------------------------------------------

@conformance_test("GEN-3", "GPIO-14", "GPIO-15", "GPIO-16", "GPIO-18", "GPIO-20", "GPIO-22",
                  "GPIO-23", "C-4", "C-7", "C-8")
async def armed_lines_start_from_their_reset_state_after_a_device_reset(dut):
    """Before the reset: an OUT line at 1, a line that went OUT at 1 and then NONE, an IN line
    with a high pin and its (invisible) output latch set to 1; with F_IRQ, a line of each irq
    type, some holding an eventq buffer, some with an edge latched while no buffer was held.
    Status = 0; pins toggle (no DMA); a new driver probes and uses every line: its reset
    direction, OUT without SET_VALUE drives 0, an eventq buffer comes back INVALID until the type
    is set again, no edge from before the reset (or from before the type) is delivered, and one
    new event is delivered once."""
    env = await DeviceEnv.start(dut, stall_probability=0.1)
    cfg = env.config
    n = cfg.ngpio
    irq = cfg.offer_irq
    roles = ["out", "none", "latch"] + (["rise", "fall", "both", "high", "low"] if irq else [])
    spread = [round(i * (n - 1) / (len(roles) - 1)) for i in range(len(roles))]
    assert len(set(spread)) == len(roles), f"{n} lines are too few for {len(roles)} roles"
    line = dict(zip(roles, spread))
    types = {"rise": IrqType.EDGE_RISING, "fall": IrqType.EDGE_FALLING,
             "both": IrqType.EDGE_BOTH, "high": IrqType.LEVEL_HIGH, "low": IrqType.LEVEL_LOW}
    irq_roles = [r for r in roles if r in types]
    level_lines = {line[r]: IDLE_LEVEL[types[r]] for r in ("high", "low") if r in line}
    drv1 = env.driver()

    def before():
        drv1.probe()
        drv1.direction_output(line["out"], 1)
        drv1.direction_output(line["none"], 1)
        drv1.free(line["none"])
        drv1.direction_input(line["latch"])
        env.set_input_blocking(line["latch"], 1)
        drv1.set(line["latch"], 1)  # remembered, not driven (GPIO-10)
        if irq:
            # No buffer: the edges latch (GPIO-16) and stay latched.
            drv1.request(MsgType.SET_IRQ_TYPE, line["rise"], IrqType.EDGE_RISING)
            env.set_input_blocking(line["rise"], 1)
            drv1.request(MsgType.SET_IRQ_TYPE, line["both"], IrqType.EDGE_BOTH)
            env.set_input_blocking(line["both"], 1)
            env.set_input_blocking(line["both"], 0)
            env.set_input_blocking(line["low"], 1)
            drv1.request(MsgType.SET_IRQ_TYPE, line["low"], IrqType.LEVEL_LOW)
            # Holding a buffer, nothing due.
            env.set_input_blocking(line["fall"], 1)
            drv1.request_irq(line["fall"], IrqType.EDGE_FALLING)
            drv1.request_irq(line["high"], IrqType.LEVEL_HIGH)
            settle(env, drv1)
            assert not drv1.log.events, drv1.log.events
        assert pin_bits(env, line["out"]) == (1, 1)
        t = env.transport
        t.write(Reg.STATUS, 0)
        assert t.read(Reg.STATUS) == 0
        assert (env.pins.output_enables, env.pins.outputs) == (0, 0), "pins driven after reset"
        for vq in drv1.vqs:  # the old driver is gone: nothing of its rings is the device's
            vq.release()
        # Pin activity between reset and the new probe: no DMA at all (GEN-3).
        start = len(env.memory.dma_log)
        for r in roles:
            for level in (1, 0, 1, 0):
                env.set_input_blocking(line[r], level)
        env.set_input_blocking(line["latch"], 1)
        settle(env)
        assert env.memory.dma_log[start:] == [], "DMA after reset"
    await env.run(before)

    def handler(gpio: int) -> None:
        if gpio in level_lines:  # what a level irq's handler does: clear the source
            env.set_input_blocking(gpio, level_lines[gpio])

    drv2 = env.driver(irq_handler=handler)

    def after():
        drv2.probe()
        assert not unexpected_errors(env, drv2), unexpected_errors(env, drv2)
        for r in roles:
            got = reply_of(env, drv2, MsgType.GET_DIRECTION, line[r])
            assert got == bytes([OK, cfg.reset_directions[line[r]]]), f"{r} line {line[r]}: {got.hex()}"
        # An IN line reads its pin; a NONE line is refused (reset direction as configured).
        pin = env.pins.inputs >> line["latch"] & 1
        want = bytes([OK, pin]) if cfg.reset_directions[line["latch"]] is Direction.IN else ERR_REPLY
        assert reply_of(env, drv2, MsgType.GET_VALUE, line["latch"]) == want
        # OUT without SET_VALUE: the output latch was cleared by the reset.
        for r in ("out", "none", "latch"):
            assert reply_of(env, drv2, MsgType.SET_DIRECTION, line[r], Direction.OUT) == bytes([OK, 0])
            assert reply_of(env, drv2, MsgType.GET_VALUE, line[r]) == bytes([OK, 0]), r
            assert pin_bits(env, line[r]) == (1, 0), f"{r} line {line[r]} after OUT: {pin_bits(env, line[r])}"
            assert reply_of(env, drv2, MsgType.SET_DIRECTION, line[r], Direction.IN) == bytes([OK, 0])
        if not irq:
            return
        # Every irq type was dropped: a buffer for each line comes back INVALID at once
        # (GPIO-14, GPIO-22), filed under a line whose irq the driver never enabled.
        statuses = raw_event_buffers(env, drv2, [line[r] for r in irq_roles], line["out"])
        assert statuses == [IrqStatus.INVALID] * len(irq_roles), statuses
        eventq = drv2.vqs[QueueIndex.EVENTQ]
        returned = used_idx(env, eventq)
        for r in irq_roles:
            gpio, irq_type = line[r], types[r]
            # Edges while the type is NONE count for nothing (GPIO-14, GPIO-23).
            for level in (1 - IDLE_LEVEL[irq_type], IDLE_LEVEL[irq_type]):
                env.set_input_blocking(gpio, level)
            drv2.request_irq(gpio, irq_type)
            settle(env, drv2)
            assert delivered(drv2, gpio) == 0, f"{r} line {gpio}: an edge from before delivered"
            assert used_idx(env, eventq) == returned, f"{r} line {gpio}: its buffer came back"
            event(env, gpio, irq_type)
            drv2.poll(lambda: delivered(drv2, gpio) >= 1)
            settle(env, drv2)
            assert delivered(drv2, gpio) == 1, f"{r} line {gpio}: {delivered(drv2, gpio)} deliveries"
            returned += 1
            assert used_idx(env, eventq) == returned
            drv2.free_irq(gpio)
            returned += 1  # its buffer back INVALID (GPIO-20)
            assert used_idx(env, eventq) == returned
        assert not unexpected_errors(env, drv2), unexpected_errors(env, drv2)
    await env.run(after)


# -- out-of-range lines, in every state of the line they would alias ----------------------------

def out_of_range_gpios(n: int, targets: list[int]) -> list[int]:
    """ngpio, ngpio + 1, 2 ngpio, 0x8000, 0xFFFF, and for each target line k the values that
    are k once cut to the width of a line index: k + m * 2^w (m = 1, 2, 3; and up to 0x100,
    0x8000 and 0xFFFF), w = ceil(log2(ngpio))."""
    w = max(1, (n - 1).bit_length())
    period = 1 << w
    values = {n, n + 1, 2 * n, 0x8000, 0xFFFF}
    for k in targets:
        values |= {k + m * period for m in (1, 2, 3)}
        values |= {k + (top & ~(period - 1)) for top in (0x100, 0x8000, 0xFFFF)}
    return sorted(v for v in values if n <= v <= 0xFFFF)


def every_message() -> list[tuple[int, int]]:
    """(type, value) of every message with a line, each value that could change a line."""
    msgs = [(MsgType.GET_DIRECTION, 0), (MsgType.GET_VALUE, 0)]
    msgs += [(MsgType.SET_DIRECTION, d) for d in Direction]
    msgs += [(MsgType.SET_VALUE, v) for v in (0, 1)]
    msgs += [(MsgType.SET_IRQ_TYPE, t) for t in IrqType]
    return msgs


# "latched": irq type EDGE_BOTH, no buffer held, an edge latched; "armed": EDGE_BOTH, a buffer held.
STATES = ("IN", "OUT=1", "OUT=0", "NONE", "latched", "armed")
IRQ_STATES = ("latched", "armed")


@conformance_test("GPIO-2", "GPIO-9", "GPIO-10", "GPIO-11", "GPIO-15", "GPIO-16", "GPIO-18",
                  "GPIO-19", "GPIO-22", "C-7", "C-8")
async def out_of_range_lines_alias_no_real_line_in_any_state(dut):
    """Requests of every type and value for gpio >= ngpio (ngpio, 2 ngpio, 0x8000, 0xFFFF, and
    each value that equals a real line once cut to the line-index width), sent while lines 0, 1
    and ngpio - 1 are IN, OUT at 1, OUT at 0, NONE, and (with F_IRQ) EDGE_BOTH with an edge
    latched and no buffer, and EDGE_BOTH holding a buffer: every one ERR with value 0, and
    afterwards those lines' direction, value, output latch, pins and irq behaviour are what they
    were (the latched edge is delivered once a buffer comes, the held buffer delivers each edge
    once). With F_IRQ, eventq buffers for the same gpio values come back INVALID in both irq
    states: neither taken for the line they alias nor held in place of its buffer."""
    env = await DeviceEnv.start(dut)
    cfg = env.config
    n = cfg.ngpio
    irq = cfg.offer_irq
    targets = sorted({0, 1, n - 1})
    spare = next(line for line in range(n) if line not in targets)  # files raw eventq buffers
    gpios = out_of_range_gpios(n, targets)
    drv = env.driver()

    def batch(requests: list[tuple[int, int, int]]) -> None:
        """Send ``requests`` in full batches behind one notify each; each must be ERR, value 0."""
        cap = capacity(drv)
        for start in range(0, len(requests), cap):
            chunk = requests[start:start + cap]
            pendings = []
            for msg, gpio, value in chunk:
                res = env.memory.alloc(GPIO_REPLY_SIZE, 64)
                env.memory.write(res, bytes([FILL]) * GPIO_REPLY_SIZE)
                pendings.append(drv.submit(msg, gpio, value, req=env.memory.alloc(GPIO_REQUEST_SIZE, 64),
                                           res=res, kick=False))
            drv.kick()
            drv.wait(*pendings)
            for (msg, gpio, value), p in zip(chunk, pendings):
                got = env.memory.read(p.res, GPIO_REPLY_SIZE)
                assert (p.used_len, got) == (GPIO_REPLY_SIZE, ERR_REPLY), \
                    f"{MsgType(msg).name}(gpio {gpio:#x}, value {value}): used.len {p.used_len}, {got.hex()}"

    def latch_edge(k: int) -> None:
        """EDGE_BOTH without a buffer (the driver's irq stays disabled), and a pulse latched."""
        drv.request(MsgType.SET_IRQ_TYPE, k, IrqType.EDGE_BOTH)
        env.set_input_blocking(k, 1)
        env.set_input_blocking(k, 0)

    def enter(state: str) -> None:
        """Put every target line in ``state`` (its pin low)."""
        for k in targets:
            if state == "IN":
                drv.direction_input(k)
            elif state.startswith("OUT"):
                drv.direction_output(k, int(state[-1]))
            elif state == "NONE":
                drv.free(k)
            elif state == "latched":
                drv.direction_input(k)
                latch_edge(k)
            else:
                drv.request_irq(k, IrqType.EDGE_BOTH)

    def leave(state: str) -> None:
        for k in targets:
            if state == "latched":
                drv.request(MsgType.SET_IRQ_TYPE, k, IrqType.NONE)
            elif state == "armed":
                drv.free_irq(k)

    def check(state: str, after: str) -> None:
        """The target lines are exactly as ``state`` left them."""
        direction = {"IN": Direction.IN, "latched": Direction.IN, "armed": Direction.IN,
                     "NONE": Direction.NONE}.get(state, Direction.OUT)
        latch = 1 if state == "OUT=1" else 0
        for k in targets:
            what = f"line {k} {state}, after {after}"
            assert reply_of(env, drv, MsgType.GET_DIRECTION, k) == bytes([OK, direction]), what
            value = {Direction.OUT: bytes([OK, latch]), Direction.IN: bytes([OK, 0]),
                     Direction.NONE: ERR_REPLY}[direction]
            assert reply_of(env, drv, MsgType.GET_VALUE, k) == value, what
            assert pin_bits(env, k) == (int(direction is Direction.OUT), latch), \
                f"{what}: gpio_oe, gpio_o = {pin_bits(env, k)}"
        if state in ("IN", "NONE") and after.startswith("SET_VALUE"):
            # The output latch of a line that is not OUT shows once it is: still 0.
            for k in targets:
                assert reply_of(env, drv, MsgType.SET_DIRECTION, k, Direction.OUT) == bytes([OK, 0])
                assert reply_of(env, drv, MsgType.GET_VALUE, k) == bytes([OK, 0]), \
                    f"line {k} {state}: output latch set by {after}"
                assert pin_bits(env, k) == (1, 0)
                assert reply_of(env, drv, MsgType.SET_DIRECTION, k, direction) == bytes([OK, 0])
        if state == "latched":
            # The edge is still latched: delivered once the line gets a buffer (the same type
            # again keeps it); then back to the state.
            for k in targets:
                want = delivered(drv, k) + 1
                drv.request_irq(k, IrqType.EDGE_BOTH)
                drv.poll(lambda: delivered(drv, k) >= want)
                settle(env, drv)
                assert delivered(drv, k) == want, f"line {k} latched, after {after}: " \
                    f"{delivered(drv, k) - want + 1} deliveries of the latched edge"
                drv.free_irq(k)
                latch_edge(k)
        if state == "armed":
            # Each line still holds its buffer, with EDGE_BOTH: a rising and a falling edge are
            # each delivered exactly once.
            for k in targets:
                for level in (1, 0):
                    want = delivered(drv, k) + 1
                    env.set_input_blocking(k, level)
                    drv.poll(lambda: delivered(drv, k) >= want)
                    settle(env, drv)
                    assert delivered(drv, k) == want, f"line {k} armed, after {after}: " \
                        f"{delivered(drv, k) - want + 1} deliveries of one edge"

    def scenario():
        drv.probe()
        eventq = drv.vqs[QueueIndex.EVENTQ] if irq else None
        for state in STATES:
            if state in IRQ_STATES and not irq:
                continue
            enter(state)
            for msg in (MsgType.GET_DIRECTION, MsgType.GET_VALUE, MsgType.SET_DIRECTION,
                        MsgType.SET_VALUE, MsgType.SET_IRQ_TYPE):
                returned = used_idx(env, eventq) if irq else 0
                batch([(m, gpio, value) for m, value in every_message() if m == msg
                       for gpio in gpios])
                if irq:
                    assert used_idx(env, eventq) == returned, \
                        f"{state}: an eventq buffer came back during the {msg.name} batch"
                check(state, f"{msg.name} to out-of-range lines")
            if state in IRQ_STATES:
                statuses = raw_event_buffers(env, drv, gpios, spare)
                assert statuses == [IrqStatus.INVALID] * len(gpios), \
                    f"eventq buffers for out-of-range lines: {statuses}"
                check(state, "eventq buffers for out-of-range lines")
            leave(state)
        assert not unexpected_errors(env, drv), unexpected_errors(env, drv)
    await env.run(scenario)


# -- irq type changes without NONE in between ----------------------------------------------------

@conformance_test("GPIO-15", "GPIO-16", "GPIO-17", "GPIO-18", "GPIO-23", "C-7", "C-8", skip=NO_IRQ)
async def irq_type_changes_without_none_take_effect_at_once(dut):
    """One line holding its buffer goes EDGE_RISING -> EDGE_FALLING -> LEVEL_HIGH -> EDGE_BOTH ->
    LEVEL_LOW by SET_IRQ_TYPE alone (as Linux's irq_set_type does), each change followed by pin
    moves the old type would react to and the new one not, and by ones only the new type reacts
    to; the held buffer stays held across every change. Between RISING and FALLING, an edge
    latched while no buffer was held is dropped by the change (contract §7)."""
    env = await DeviceEnv.start(dut, stall_probability=0.1)
    gpio = 2 % env.config.ngpio
    level_idle = {}  # the inactive level the handler restores, while a level type is set

    def handler(line: int) -> None:
        if line == gpio and level_idle:
            env.set_input_blocking(line, level_idle["pin"])

    drv = env.driver(irq_handler=handler)

    def scenario():
        drv.probe()
        eventq = drv.vqs[QueueIndex.EVENTQ]
        count = {"events": 0, "returned": 0}

        def expect(moves: list[int], events: int, what: str) -> None:
            """Drive the pin through ``moves``; exactly ``events`` deliveries must follow."""
            want = count["events"] + events
            for level in moves:
                env.set_input_blocking(gpio, level)
            drv.poll(lambda: delivered(drv, gpio) >= want)
            settle(env, drv)
            assert delivered(drv, gpio) == want, \
                f"{what}: {delivered(drv, gpio) - count['events']} deliveries, expected {events}"
            count["events"] = want
            count["returned"] += events
            assert used_idx(env, eventq) == count["returned"], \
                f"{what}: the eventq buffer came back {used_idx(env, eventq) - count['returned']} extra times"

        def change(irq_type: IrqType) -> None:
            level_idle.clear()  # set first: a level type may be active at once
            if irq_type in (IrqType.LEVEL_HIGH, IrqType.LEVEL_LOW):
                level_idle["pin"] = IDLE_LEVEL[irq_type]
            drv.irq_set_type(gpio, irq_type)
            drv.irq_bus_sync_unlock(gpio)  # SET_IRQ_TYPE, reply ignored: check it was accepted
            assert drv.irq_lines[gpio].type is irq_type and not drv.log.errors, drv.log.errors

        env.set_input_blocking(gpio, 0)
        drv.request_irq(gpio, IrqType.EDGE_RISING)
        expect([1], 1, "EDGE_RISING, rising edge")
        expect([0], 0, "EDGE_RISING, falling edge")
        # Masked by the driver: the next event takes the buffer and is dropped (no new buffer);
        # a further rising edge latches with no buffer held.
        drv.irq_mask(gpio)
        env.set_input_blocking(gpio, 1)
        drv.poll(lambda: used_idx(env, eventq) == count["returned"] + 1)
        count["returned"] += 1
        env.set_input_blocking(gpio, 0)
        env.set_input_blocking(gpio, 1)  # latched
        change(IrqType.EDGE_FALLING)  # drops the latched rising edge
        drv.irq_unmask(gpio)  # the buffer again
        expect([], 0, "EDGE_FALLING after EDGE_RISING, a rising edge latched before")
        expect([0], 1, "EDGE_FALLING, falling edge")
        expect([1], 0, "EDGE_FALLING, rising edge")
        expect([0], 1, "EDGE_FALLING, falling edge")
        change(IrqType.LEVEL_HIGH)
        expect([], 0, "LEVEL_HIGH after EDGE_FALLING, pin low")
        expect([1], 1, "LEVEL_HIGH, pin high (the handler drives it low)")
        change(IrqType.EDGE_BOTH)
        expect([], 0, "EDGE_BOTH after LEVEL_HIGH, pin low")
        expect([1], 1, "EDGE_BOTH, rising edge")
        expect([], 0, "EDGE_BOTH, pin held high")
        expect([0], 1, "EDGE_BOTH, falling edge")
        change(IrqType.LEVEL_LOW)  # the pin is low: active at once
        expect([], 1, "LEVEL_LOW after EDGE_BOTH, pin low (the handler drives it high)")
        expect([0, 1], 1, "LEVEL_LOW, low pulse")
        drv.free_irq(gpio)
        assert not unexpected_errors(env, drv), unexpected_errors(env, drv)
    await env.run(scenario)
