"""Benchmarks of the RTL (cocotb module; run by ``make bench`` through tb/benchmark.py).

Figures, not pass/fail: each test measures cycles around one scenario and appends a JSON record
to the file named by ``VIRTIO_GPIO_BENCH_OUT``. The golden model still runs in lock-step during
the set-up, so a figure is only recorded for behaviour the scoreboard has accepted.

Cycle origins: "notify → irq" counts from the clock edge at which the AXI-Lite manager starts the
QueueNotify write (the write itself takes 2 cycles) to the edge after which ``irq`` is high; "edge →
irq" counts from the edge at which ``gpio_i`` changes (the 2-flop synchronizer is included).
"""

import json
import os
import random
import time

import cocotb
from cocotb.triggers import RisingEdge

from virtio_gpio.model.constants import Feature, IrqType, MsgType, QueueIndex
from virtio_gpio.model.driver.linux_gpio import LINUX_KNOWN_FEATURES
from virtio_gpio.model.layouts import (
    DESC_SIZE, GPIO_REPLY_SIZE, GPIO_REQUEST_SIZE, IRQ_REPLY_SIZE, RING_IDX_OFFSET, USED_ELEM_SIZE,
    Reg, RingIndex,
)

from . import configs
from .env import DeviceEnv

BENCH_OUT_ENV = "VIRTIO_GPIO_BENCH_OUT"
BATCH = 64
TIMEOUT_CYCLES = 100_000
NO_INDIRECT = LINUX_KNOWN_FEATURES & ~Feature.RING_INDIRECT_DESC.mask


def record(**fields) -> None:
    with open(os.environ[BENCH_OUT_ENV], "a") as f:
        f.write(json.dumps(fields) + "\n")


def beats(nbytes: int, bus_bytes: int) -> int:
    return -(-nbytes // bus_bytes)


def request_lower_bound(bus_bytes: int, indirect: bool) -> dict:
    """Bus beats and dependent read round trips one GET_VALUE needs at the least: avail.idx, the
    ring entry, the descriptor(s), the request; the reply, the used element, used.idx (each write
    acknowledged before the next); used_event or avail.flags."""
    idx = RingIndex.sizeof()
    reads = [idx, idx] + ([DESC_SIZE, 2 * DESC_SIZE] if indirect else [2 * DESC_SIZE]) \
        + [GPIO_REQUEST_SIZE, idx]
    writes = [GPIO_REPLY_SIZE, USED_ELEM_SIZE, idx]
    return {"read_beats": sum(beats(n, bus_bytes) for n in reads),
            "write_beats": sum(beats(n, bus_bytes) for n in writes),
            "read_round_trips": len(reads), "write_round_trips": len(writes)}


async def probed(dut, latency: int, features: int = LINUX_KNOWN_FEATURES):
    env = await DeviceEnv.start(dut, read_latency=latency)
    drv = env.driver(features=features)
    await env.run(drv.probe)
    return env, drv


async def notify(env: DeviceEnv) -> int:
    """Write QueueNotify for the requestq (model too); return the cycle the write started."""
    await env.settle()
    start = env.cycles
    await env.regs.write(Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ)
    env.model.write(Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ)
    return start


async def irq_cycle(env: DeviceEnv) -> int:
    await env.irq_monitor.wait_high(TIMEOUT_CYCLES)
    return env.cycles


@cocotb.test()
@cocotb.parametrize(shape=["indirect", "chain"], latency=[1, 10])
async def notify_to_irq_get_value(dut, shape, latency):
    env, drv = await probed(dut, latency, LINUX_KNOWN_FEATURES if shape == "indirect" else NO_INDIRECT)
    indirect = shape == "indirect" and env.config.offer_indirect_desc
    figures = []
    for _ in range(4):
        pending = await env.run(lambda: drv.submit(MsgType.GET_VALUE, 0, kick=False))
        start = await notify(env)
        figures.append(await irq_cycle(env) - start)
        await env.run(lambda: drv.wait(pending))
    record(figure="notify_to_irq", shape="indirect" if indirect else "chain", read_latency=latency,
           cycles=min(figures), samples=figures,
           lower_bound=request_lower_bound(env.config.dma_data_width // 8, indirect))


@cocotb.test()
@cocotb.parametrize(latency=[1, 10])
async def batched_requests(dut, latency):
    env, drv = await probed(dut, latency)
    vq = drv.vqs[QueueIndex.REQUESTQ]
    pendings = await env.run(lambda: [
        drv.submit(MsgType.GET_VALUE, i % env.config.ngpio, req=env.memory.alloc(8, 64),
                   res=env.memory.alloc(2, 64), kick=False) for i in range(BATCH)])
    target = (vq.last_used_idx + BATCH) & 0xFFFF
    start = await notify(env)
    while env.memory.read_u16(vq.used_addr + RING_IDX_OFFSET) != target:
        await RisingEdge(env.clock)
    cycles = env.cycles - start
    await env.run(lambda: drv.wait(*pendings))
    record(figure="batched", read_latency=latency, requests=BATCH, cycles=cycles,
           cycles_per_request=round(cycles / BATCH, 1),
           lower_bound=request_lower_bound(env.config.dma_data_width // 8, vq.indirect))


@cocotb.test(skip=not configs.offers("offer_irq"))
async def pin_edge_to_irq(dut):
    env, drv = await probed(dut, 1)
    figures = []
    for _ in range(4):
        await env.run(lambda: drv.request_irq(0, IrqType.EDGE_RISING))
        await env.settle()
        start = env.cycles
        env.pins.set_line(0, 1)
        env.model.set_input(0, 1)
        figures.append(await irq_cycle(env) - start)
        await env.run(lambda: drv.poll(lambda: drv.log.events))
        await env.run(lambda: drv.free_irq(0))
        await env.set_input(0, 0)
        drv.log.events.clear()
    bus = env.config.dma_data_width // 8
    record(figure="edge_to_irq", cycles=min(figures), samples=figures,
           lower_bound={"synchronizer_cycles": 2, "read_round_trips": 1, "write_round_trips": 3,
                        "write_beats": sum(beats(n, bus) for n in
                                           (IRQ_REPLY_SIZE, USED_ELEM_SIZE, RingIndex.sizeof()))})


BARE_CLOCK_CYCLES = 200_000
WORKLOAD_REQUESTS = 600
WORKLOAD_SEED = 7


@cocotb.test()
async def simulation_speed_bare_clock(dut):
    """The ceiling: the clock alone, with no agent awake, in the same simulator process."""
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    start = time.perf_counter()
    await ClockCycles(dut.clk, BARE_CLOCK_CYCLES)
    seconds = time.perf_counter() - start
    record(figure="speed_bare_clock", cycles=BARE_CLOCK_CYCLES, seconds=round(seconds, 3),
           cycles_per_second=round(BARE_CLOCK_CYCLES / seconds))


@cocotb.test()
async def simulation_speed_random_workload(dut):
    """A fixed random workload with back-pressure, every agent and the lock-step model on:
    batches of 1-16 requests of random types on random lines, with random pin changes."""
    env = await DeviceEnv.start(dut, seed=WORKLOAD_SEED, stall_probability=0.2, read_latency=4)
    drv = env.driver()
    await env.run(drv.probe)
    rng = random.Random(WORKLOAD_SEED)
    n = env.config.ngpio
    start_cycles, start = env.cycles, time.perf_counter()

    def workload():
        sent = 0
        while sent < WORKLOAD_REQUESTS:
            batch = []
            for _ in range(min(rng.randint(1, 16), WORKLOAD_REQUESTS - sent)):
                msg = rng.choice((MsgType.GET_VALUE, MsgType.GET_DIRECTION, MsgType.SET_VALUE))
                batch.append(drv.submit(msg, rng.randrange(n), rng.randint(0, 1),
                                        req=env.memory.alloc(8, 64), res=env.memory.alloc(2, 64),
                                        kick=False))
            sent += len(batch)
            drv.kick()
            drv.wait(*batch)
            if rng.random() < 0.3:
                env.set_input_blocking(rng.randrange(n), rng.randint(0, 1))
    await env.run(workload)
    seconds = time.perf_counter() - start
    cycles = env.cycles - start_cycles
    record(figure="speed_random_workload", requests=WORKLOAD_REQUESTS, cycles=cycles,
           seconds=round(seconds, 3), cycles_per_second=round(cycles / seconds))
