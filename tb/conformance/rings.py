"""Queue bring-up rules, malformed rings, bus errors and reset with work in flight (contract
§4-§6). Every device error must end in DEVICE_NEEDS_RESET with nothing written after the fault;
the scoreboard checks that the RTL's memory, registers and irq line match the model's throughout,
and the firewall that nothing outside the granted buffers was touched."""

import os

from cocotb.task import resume

from virtio_gpio.model.constants import (
    DescFlags, DeviceStatus, Feature, InterruptStatus, IrqType, MsgType, QueueIndex,
)
from virtio_gpio.model.driver.linux_gpio import LINUX_KNOWN_FEATURES, DriverTimeout
from virtio_gpio.model.layouts import (
    DESC_SIZE, GPIO_REQUEST_PACKER, RING_HEADER_SIZE, RING_IDX_OFFSET, Reg,
)
from virtio_gpio.model.memory import AccessKind, BusResponse, Perm

from ..env import DeviceEnv, seeded
from ..requirements import conformance_test

NEXT, WRITE, INDIRECT = int(DescFlags.NEXT), int(DescFlags.WRITE), int(DescFlags.INDIRECT)
TIMEOUT_STEPS = 40
LONG_ENV = "VIRTIO_GPIO_LONG"


def expect_needs_reset(env: DeviceEnv, drv) -> None:
    """DEVICE_NEEDS_RESET is set and a configuration-change interrupt was raised (seen in
    InterruptStatus, or already taken by the driver's interrupt handler)."""
    t = env.transport
    assert t.read(Reg.STATUS) & DeviceStatus.DEVICE_NEEDS_RESET, "no DEVICE_NEEDS_RESET"
    assert (t.read(Reg.INTERRUPT_STATUS) & InterruptStatus.CONFIG_CHANGE
            or drv.log.config_changes), "no configuration-change interrupt"


def hand_chain(env: DeviceEnv, drv, build) -> None:
    """Publish a chain written by ``build(vq, mem, grant)`` on the requestq and notify."""
    vq = drv.vqs[QueueIndex.REQUESTQ]
    mem = env.memory

    def grant(addr, size, perm):
        mem.firewall.grant(addr, size, perm, owner="test")
    head = build(vq, mem, grant)
    vq.publish(head)
    env.transport.write(Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ)


def buffers(mem, grant):
    req = mem.alloc(8, 64)
    mem.write(req, GPIO_REQUEST_PACKER.pack(MsgType.GET_VALUE, 0, 0))
    res = mem.alloc(2, 64)
    grant(req, 8, Perm.READ)
    grant(res, 2, Perm.WRITE)
    return req, res


def table(mem, grant, entries):
    addr = mem.alloc(DESC_SIZE * len(entries), DESC_SIZE)
    for i, (a, n, flags, nxt) in enumerate(entries):
        mem.write(addr + DESC_SIZE * i, a.to_bytes(8, "little") + n.to_bytes(4, "little")
                  + flags.to_bytes(2, "little") + nxt.to_bytes(2, "little"))
    grant(addr, DESC_SIZE * len(entries), Perm.READ)
    return addr


def malformed_chains():
    """(name, build) pairs: each build writes descriptors into the requestq and returns a head."""
    def loop(vq, mem, grant):
        req, res = buffers(mem, grant)
        vq.write_desc(vq.desc_addr, 0, req, 8, NEXT, 1)
        vq.write_desc(vq.desc_addr, 1, req, 8, NEXT, 0)
        return 0

    def next_beyond_num(vq, mem, grant):
        req, _ = buffers(mem, grant)
        vq.write_desc(vq.desc_addr, 0, req, 8, NEXT, vq.num)
        return 0

    def head_beyond_num(vq, mem, grant):
        return vq.num

    def readable_after_writable(vq, mem, grant):
        req, res = buffers(mem, grant)
        vq.write_desc(vq.desc_addr, 0, res, 2, WRITE | NEXT, 1)
        vq.write_desc(vq.desc_addr, 1, req, 8, 0, 0)
        return 0

    def indirect_with_next(vq, mem, grant):
        req, res = buffers(mem, grant)
        t = table(mem, grant, [(req, 8, NEXT, 1), (res, 2, WRITE, 0)])
        vq.write_desc(vq.desc_addr, 0, t, 32, INDIRECT | NEXT, 1)
        return 0

    def nested_indirect(vq, mem, grant):
        req, res = buffers(mem, grant)
        inner = table(mem, grant, [(req, 8, NEXT, 1), (res, 2, WRITE, 0)])
        outer = table(mem, grant, [(inner, 32, INDIRECT, 0)])
        vq.write_desc(vq.desc_addr, 0, outer, 16, INDIRECT, 0)
        return 0

    def indirect_bad_length(vq, mem, grant):
        req, res = buffers(mem, grant)
        t = table(mem, grant, [(req, 8, NEXT, 1), (res, 2, WRITE, 0)])
        vq.write_desc(vq.desc_addr, 0, t, 17, INDIRECT, 0)
        return 0

    def indirect_empty(vq, mem, grant):
        vq.write_desc(vq.desc_addr, 0, mem.alloc(16, 16), 0, INDIRECT, 0)
        return 0

    def indirect_loop(vq, mem, grant):
        req, res = buffers(mem, grant)
        t = table(mem, grant, [(req, 8, NEXT, 1), (req, 8, NEXT, 0)])
        vq.write_desc(vq.desc_addr, 0, t, 32, INDIRECT, 0)
        return 0

    def buffer_beyond_dma_space(vq, mem, grant):
        _, res = buffers(mem, grant)
        vq.write_desc(vq.desc_addr, 0, (1 << 64) - 4, 8, NEXT, 1)
        vq.write_desc(vq.desc_addr, 1, res, 2, WRITE, 0)
        return 0

    def huge_indirect_table_with_loop(vq, mem, grant):
        # The table claims (nearly) 2^28 entries and loops 0 -> 1 -> 0: the walk must stop after
        # QueueNum buffer descriptors, not after the table's length (contract §5).
        req, res = buffers(mem, grant)
        t = table(mem, grant, [(res, 2, WRITE | NEXT, 1), (res, 0, WRITE | NEXT, 0)])
        vq.write_desc(vq.desc_addr, 0, req, 8, NEXT, 1)
        vq.write_desc(vq.desc_addr, 1, t, min(0xFFFF_FFF0, (mem.limit - t) & ~0xF), INDIRECT, 0)
        return 0

    def zero_length_beyond_dma_space(vq, mem, grant):
        # Only a 32-bit DMA space has addresses a descriptor can name and the port cannot reach.
        req, res = buffers(mem, grant)
        vq.write_desc(vq.desc_addr, 0, req, 8, NEXT, 1)
        vq.write_desc(vq.desc_addr, 1, mem.limit, 0, NEXT, 2)
        vq.write_desc(vq.desc_addr, 2, res, 2, WRITE, 0)
        return 0

    return [(f.__name__, f) for f in (loop, next_beyond_num, head_beyond_num,
                                      readable_after_writable, indirect_with_next, nested_indirect,
                                      indirect_bad_length, indirect_empty, indirect_loop,
                                      huge_indirect_table_with_loop, buffer_beyond_dma_space,
                                      zero_length_beyond_dma_space)]


@conformance_test("VQ-2", "VQ-3", "GEN-4", "DRV-11", "DRV-12", "C-5", "C-6")
async def malformed_chains_end_in_device_needs_reset(dut):
    env = await DeviceEnv.start(dut, stall_probability=0.2)
    for name, build in malformed_chains():
        if "indirect" in name and not env.config.offer_indirect_desc:
            continue
        if name == "zero_length_beyond_dma_space" and env.config.dma_addr_width == 64:
            continue
        drv = env.driver(timeout_steps=TIMEOUT_STEPS)

        def scenario():
            drv.probe()
            hand_chain(env, drv, build)
            expect_needs_reset(env, drv)
            # Nothing more happens: a valid request and notifies get no answer.
            p = drv.submit(MsgType.GET_DIRECTION, 0)
            try:
                drv.wait(p)
            except DriverTimeout:
                pass
            else:
                raise AssertionError("the device answered after a device error")
            for vq in drv.vqs:
                vq.release()
        env.dut._log.info("malformed chain: %s", name)
        await env.run(scenario)


@conformance_test("VQ-8", "GEN-4", "C-5", "C-6", needs=("offer_indirect_desc",))
async def a_long_walk_is_awaited_while_an_interrupt_is_pending(dut):
    """The huge looping indirect table on a 128-entry queue, with a completion not yet
    acknowledged: the irq line is already high, so nothing observable changes while the device
    walks the descriptors it holds, and the Status read that follows must wait for it (found by
    the random campaign, where the testbench once read Status too early)."""
    env = await DeviceEnv.start(dut)
    build = dict(malformed_chains())["huge_indirect_table_with_loop"]
    drv = env.driver(queue_size=min(128, env.config.queue_size_max), timeout_steps=TIMEOUT_STEPS)

    def scenario():
        drv.probe()
        drv.submit(MsgType.GET_VALUE, 0)
        t = env.transport
        t.advance()
        assert t.read(Reg.INTERRUPT_STATUS) == InterruptStatus.USED_BUFFER  # left pending
        hand_chain(env, drv, build)
        expect_needs_reset(env, drv)
    await env.run(scenario)


@conformance_test("VQ-13", "DRV-13", "C-5", "C-6")
async def avail_index_jumping_past_queue_size_is_an_error(dut):
    env = await DeviceEnv.start(dut)
    drv = env.driver()

    def scenario():
        drv.probe()
        vq = drv.vqs[QueueIndex.REQUESTQ]
        jump = (vq.avail_idx_shadow + vq.num + 1) & 0xFFFF
        env.memory.write_u16(vq.avail_addr + RING_IDX_OFFSET, jump)
        env.transport.write(Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ)
        expect_needs_reset(env, drv)
    await env.run(scenario)


@conformance_test("GEN-4", "C-6")
async def bus_errors_on_every_kind_of_access(dut):
    """SLVERR or DECERR on the avail ring, the descriptor table, the request, the reply, the used
    ring: each ends in DEVICE_NEEDS_RESET (the firewall would flag any access after it)."""
    env = await DeviceEnv.start(dut, stall_probability=0.1)
    targets = ("avail", "desc", "request", "reply", "used")
    for i, target in enumerate(targets):
        response = (BusResponse.SLVERR, BusResponse.DECERR)[i % 2]
        drv = env.driver(features=LINUX_KNOWN_FEATURES & ~Feature.RING_INDIRECT_DESC.mask, timeout_steps=TIMEOUT_STEPS)

        def scenario():
            drv.probe()
            vq = drv.vqs[QueueIndex.REQUESTQ]
            line = drv.lines[0]
            where = {"avail": (vq.avail_addr, RING_HEADER_SIZE, AccessKind.READ),
                     "desc": (vq.desc_addr, vq.geometry.desc_table_size, AccessKind.READ),
                     "request": (line.req, 8, AccessKind.READ),
                     "reply": (line.res, 2, AccessKind.WRITE),
                     "used": (vq.used_addr, vq.geometry.used_ring_size, AccessKind.WRITE)}[target]
            addr, size, kind = where
            env.memory.inject_error(addr, size, response, kind)
            p = drv.submit(MsgType.GET_DIRECTION, 0)
            try:
                drv.wait(p)
            except DriverTimeout:
                pass
            expect_needs_reset(env, drv)
            env.memory.clear_errors()
            for q in drv.vqs:
                q.release()
        env.dut._log.info("bus error on %s", target)
        await env.run(scenario)


@conformance_test("GEN-4", "DRV-5", "MMIO-13", "C-6")
async def an_error_before_driver_ok_is_announced_when_driver_ok_is_set(dut):
    """A device error before DRIVER_OK sets DEVICE_NEEDS_RESET at once and raises the
    configuration-change interrupt when DRIVER_OK is set; the irq line follows that bit alone."""
    env = await DeviceEnv.start(dut)
    t = env.transport

    def scenario():
        t.write(Reg.STATUS, 0)
        t.write(Reg.STATUS, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER)
        t.write(Reg.DRIVER_FEATURES_SEL, 1)
        t.write(Reg.DRIVER_FEATURES, Feature.VERSION_1.mask >> 32)
        status = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK
        t.write(Reg.STATUS, status)
        t.write(Reg.QUEUE_SEL, QueueIndex.REQUESTQ)
        t.write(Reg.QUEUE_SIZE, 3)  # not a power of two: a device error at QueueReady
        t.write(Reg.QUEUE_READY, 1)
        assert t.read(Reg.STATUS) & DeviceStatus.DEVICE_NEEDS_RESET
        assert t.read(Reg.INTERRUPT_STATUS) == 0, "config interrupt before DRIVER_OK"
        t.write(Reg.STATUS, status | DeviceStatus.DRIVER_OK)
        assert t.read(Reg.INTERRUPT_STATUS) == InterruptStatus.CONFIG_CHANGE
        assert env.transport.irq, "irq low while InterruptStatus is CONFIG_CHANGE"
        t.write(Reg.INTERRUPT_ACK, InterruptStatus.CONFIG_CHANGE)
        assert t.read(Reg.INTERRUPT_STATUS) == 0
        assert not env.transport.irq, "irq high while InterruptStatus is 0"
    await env.run(scenario)


@conformance_test("GEN-1", "MMIO-7", "DRV-9", "C-4")
async def no_ring_access_before_driver_ok_or_queue_ready(dut):
    env = await DeviceEnv.start(dut)
    drv = env.driver()

    def scenario():
        drv.probe()
        t = env.transport
        vq = drv.vqs[QueueIndex.REQUESTQ]
        t.write(Reg.STATUS, 0)  # reset: QueueReady 0, no DRIVER_OK
        start = len(env.memory.dma_log)
        req, res = drv.lines[0].req, drv.lines[0].res
        vq.add([(req, 8)], [(res, 2)], "early")
        t.write(Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ)
        drv.idle()
        assert env.memory.dma_log[start:] == [], "DMA before the queue was set up"
    await env.run(scenario)


MID_DMA_TRIALS = 6


def submit_batch(env: DeviceEnv, drv, count: int) -> list:
    """``count`` GET_DIRECTION requests with buffers of their own, made available, not notified."""
    return [drv.submit(MsgType.GET_DIRECTION, i % env.config.ngpio, req=env.memory.alloc(8, 64),
                       res=env.memory.alloc(2, 64), kick=False) for i in range(count)]


def mid_dma_delays(env: DeviceEnv, salt: str) -> list[int]:
    rng = seeded(env, salt)
    return [rng.randrange(1, 120) for _ in range(MID_DMA_TRIALS)]


def reprobe_and_use(env: DeviceEnv, old_drv) -> None:
    """After the device was reset: forget the old rings, probe again, use a line."""
    for vq in old_drv.vqs:
        vq.release()
    drv = env.driver(timeout_steps=TIMEOUT_STEPS)
    drv.probe()
    assert drv.request(MsgType.GET_DIRECTION, 0) == env.config.reset_directions[0]


async def stop_in_the_middle_of_dma(dut, salt: str, stop: tuple[int, int], after) -> None:
    """Trials of ``interrupt_work``: six requests made available and notified, then the register
    write ``stop`` while memory is slow; ``after(env)`` checks the registers once it is over.
    Each trial ends with a reset and a new probe that must work; most trials must really have
    met a burst on the bus."""
    env = await DeviceEnv.start(dut, stall_probability=0.3, read_latency=30)
    met = []
    for delay in mid_dma_delays(env, salt):
        drv = env.driver(timeout_steps=TIMEOUT_STEPS)

        def scenario():
            drv.probe()
            if env.config.offer_irq:
                drv.request_irq(1, IrqType.EDGE_RISING)  # a held eventq buffer too
            env.transport.write(Reg.QUEUE_SEL, QueueIndex.REQUESTQ)
            submit_batch(env, drv, 6)
            met.append(resume(env.interrupt_work)((Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ), *stop,
                                                  delay_cycles=delay, abandons=True))
            after(env)
            env.transport.write(Reg.STATUS, 0)
            reprobe_and_use(env, drv)
        await env.run(scenario)
    assert sum(met) >= MID_DMA_TRIALS // 2, f"only {sum(met)} of {len(met)} writes met a burst"


@conformance_test("GEN-3", "MMIO-5", "C-4", "C-6")
async def reset_in_the_middle_of_dma_bursts(dut):
    """Status = 0 while a burst is outstanding and memory is slow: no transaction starts after
    the write is answered, no interrupt rises, and what the RTL completed is a prefix of what
    the model completed without the reset."""
    def after(env):
        assert env.transport.read(Reg.STATUS) == 0
    await stop_in_the_middle_of_dma(dut, "reset", (Reg.STATUS, 0), after)


@conformance_test("MMIO-7", "MMIO-10", "DRV-6", "C-4", "C-6")
async def queue_ready_0_in_the_middle_of_dma_bursts(dut):
    """QueueReady = 0 on the requestq while a burst is outstanding: the same rules as a reset,
    for that queue (the eventq keeps its held buffer)."""
    def after(env):
        assert env.transport.read(Reg.QUEUE_READY) == 0
    await stop_in_the_middle_of_dma(dut, "queue-ready", (Reg.QUEUE_READY, 0), after)


@conformance_test("VQ-13", "GPIO-7", "C-5", "C-6")
async def notifies_in_the_middle_of_dma_bursts(dut):
    """A notify while a burst is outstanding, with nothing new and with new buffers published
    meanwhile: the device serves everything exactly as the model does (without EVENT_IDX, so
    that when the device re-reads avail.idx changes no write)."""
    env = await DeviceEnv.start(dut, stall_probability=0.3, read_latency=12)
    features = LINUX_KNOWN_FEATURES & ~Feature.RING_EVENT_IDX.mask
    met = []
    for k, delay in enumerate(mid_dma_delays(env, "notify")):
        drv = env.driver(features=features, timeout_steps=TIMEOUT_STEPS)

        def scenario():
            drv.probe()
            first = submit_batch(env, drv, 4)
            later = []

            def publish_more():
                if k % 2:
                    later.extend(submit_batch(env, drv, 3))
            met.append(resume(env.interrupt_work)((Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ),
                                                  Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ,
                                                  delay_cycles=delay, abandons=False,
                                                  before=publish_more))
            drv.wait(*first, *later)
            for p in first + later:
                drv.finish(p)
            for vq in drv.vqs:
                vq.release()
        await env.run(scenario)
    assert sum(met) >= MID_DMA_TRIALS // 2, f"only {sum(met)} of {len(met)} notifies met a burst"


@conformance_test("VQ-14", "C-5", skip=os.environ.get(LONG_ENV) != "1")
async def index_wrap_after_65536_requests(dut):
    """Free-running 16-bit indices across the 65535 -> 0 wrap, 64 requests per notify. Long: runs
    only with VIRTIO_GPIO_LONG=1."""
    env = await DeviceEnv.start(dut)
    drv = env.driver(queue_size=64)

    def scenario():
        drv.probe()
        for _ in range((1 << 16) // 64 + 2):
            pendings = [drv.submit(MsgType.GET_DIRECTION, i % env.config.ngpio,
                                   req=drv.lines[i % env.config.ngpio].req,
                                   res=env.memory.alloc(2, 2), kick=False) for i in range(64)]
            drv.kick()
            drv.wait(*pendings)
    await env.run(scenario)
