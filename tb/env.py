"""The test environment: the RTL device with its agents, the golden model beside it, the lock-step
scoreboard, and a transport that lets the model's Linux-like driver drive the RTL unchanged.

The driver model is blocking Python; it runs in a thread bridged into the simulator
(``cocotb.task.bridge``), and each register access it makes resumes the simulation through
``cocotb.task.resume``. Before every access the environment lets the RTL finish its work (the DMA
port has been quiet for ``QUIET_CYCLES``), steps the model, and compares the two: state
(scoreboard) and the order of writes and interrupt rises (``OrderTrace``). ``interrupt_work``
makes a register access in the middle of the device's DMA instead, and checks what the contract
allows afterwards.
"""

import os
import random
from typing import Awaitable, Callable, TypeVar

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, RisingEdge, Timer

from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.device import VirtioGpioDevice
from virtio_gpio.model.driver.linux_gpio import LinuxVirtioGpioDriver
from virtio_gpio.model.layouts import Reg

from . import configs
from .axi_lite_master import AxiLiteMaster
from .axi_memory import AxiMemory
from .gpio_pins import GpioPins
from .irq_monitor import IrqMonitor
from .mirrored_memory import MirroredMemory
from .order_trace import OrderTrace
from .scoreboard import LockstepScoreboard, Mismatch

CLOCK_PERIOD_NS = 10
RESET_CYCLES = 4
# The engine never pauses this long between DMA commands while it has work, and the pin
# synchronizer settles well within it.
QUIET_CYCLES = 16
# The RTL may still be working when its bus has gone quiet: it walks descriptors it holds without
# DMA (a loop through two cached descriptors), or builds the next chunk of a long reply. The
# contract bounds a chain to QueueNum buffer descriptors, and the engine takes at most this many
# cycles for a cached one, so the RTL must reach the model's state within
# WALK_CYCLES_PER_DESCRIPTOR * queue_size_max cycles of quiet; the count starts again whenever the
# RTL moves data, since a device that is still transferring is not stuck.
WALK_CYCLES_PER_DESCRIPTOR = 4
# A DMA port that never goes quiet (a device looping over its rings) fails the test after this.
BUSY_LIMIT_CYCLES = 1_000_000
SEED_ENV = "VIRTIO_GPIO_SEED"
# Seeds other than 1 add random back-pressure: a stall probability and a read latency at least
# as high as the test's own, drawn from these.
BACKPRESSURE_STALLS = (0.0, 0.1, 0.25, 0.5)
BACKPRESSURE_LATENCIES = (1, 2, 5, 12)

T = TypeVar("T")


class RtlTransport:
    """``model.transport.Transport`` for the RTL, called from the driver's thread."""

    def __init__(self, env: "DeviceEnv"):
        self.env = env
        self.memory = env.memory

    def read(self, offset: int, size: int = 4) -> int:
        return resume(self.env.read)(offset, size)

    def write(self, offset: int, value: int, size: int = 4) -> None:
        resume(self.env.write)(offset, value, size)

    @property
    def irq(self) -> bool:
        return self.env.irq_level

    def advance(self) -> None:
        resume(self.env.settle)()

    def advance_until(self, done: Callable[[], bool], steps: int) -> bool:
        """Let the device run, at most ``steps`` settles, until ``done()``, with no interrupt
        taken by anyone (what the driver's ``poll`` would do); whether ``done()`` held."""
        for _ in range(steps):
            if done():
                return True
            self.advance()
        return done()


class DeviceEnv:
    def __init__(self, dut, config: DeviceConfig, *, seed: int, read_latency: int,
                 stall_probability: float, memory: MirroredMemory | None = None):
        self.dut = dut
        self.config = config
        self.seed = seed
        # the RTL's memory, whose ``shadow`` is the model's (MirroredMemory's interface)
        self.memory = memory if memory is not None else MirroredMemory(config.dma_addr_width)
        self.model = VirtioGpioDevice(config, self.memory.shadow)
        self.scoreboard = LockstepScoreboard(self.model, self.memory)
        self.clock = dut.clk
        self.regs = AxiLiteMaster(dut, "s_axil", dut.clk)
        self.dma = AxiMemory(dut, "m_axi", dut.clk, self.memory, seed=seed, reset=dut.rst,
                             read_latency=read_latency, stall_probability=stall_probability)
        self.pins = GpioPins(dut, dut.clk)
        self.irq_monitor = IrqMonitor(dut, dut.clk)
        self.trace = OrderTrace(self.memory.shadow)
        self.dma.on_write_acked = self.trace.rtl_write_acked
        self.irq_monitor.on_rise = self.trace.rtl_irq_rise
        self.model.on_irq_rise = self.trace.model_irq_rise
        self.convergence_cycles = WALK_CYCLES_PER_DESCRIPTOR * config.queue_size_max + 4 * QUIET_CYCLES
        self.transport = RtlTransport(self)
        self.irq_level = False
        self.check = True  # compare with the model (off for figures-only runs such as benchmarks)

    @classmethod
    async def start(cls, dut, config: DeviceConfig | None = None, *, seed: int | None = None,
                    read_latency: int = 1, stall_probability: float = 0.0,
                    memory: MirroredMemory | None = None) -> "DeviceEnv":
        """Clock, reset and agents for the device built from ``config`` (default: the
        configuration the Verilog was built from); ``memory``: the guest RAM (default: a fresh
        ``MirroredMemory``)."""
        config = config or configs.current()
        if seed is None:
            seed = int(os.environ.get(SEED_ENV, "1"))
        if seed != 1:
            rng = random.Random(f"{seed}:backpressure")
            stall_probability = max(stall_probability, rng.choice(BACKPRESSURE_STALLS))
            read_latency = max(read_latency, rng.choice(BACKPRESSURE_LATENCIES))
        dut._log.info("seed %d: stall probability %.2f, read latency %d", seed, stall_probability,
                      read_latency)
        cocotb.start_soon(Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
        env = cls(dut, config, seed=seed, read_latency=read_latency,
                  stall_probability=stall_probability, memory=memory)
        dut.gpio_i.value = 0
        dut.rst.value = 1
        await ClockCycles(dut.clk, RESET_CYCLES)
        dut.rst.value = 0
        await RisingEdge(dut.clk)
        return env

    async def wait_cycles(self, n: int) -> None:
        """``n`` rising edges of the clock, ending at the n-th one. ``ClockCycles`` wakes Python at
        every edge; one timer to the middle of the last cycle, then that edge, costs two
        wake-ups and never lands on an edge itself, where the order against the edge is open."""
        if n < 1:
            return
        if n > 2:
            await Timer((n - 1) * CLOCK_PERIOD_NS + CLOCK_PERIOD_NS // 2, "ns")
        elif n == 2:
            await RisingEdge(self.clock)
        await RisingEdge(self.clock)

    @property
    def cycles(self) -> int:
        return int(get_sim_time("ns")) // CLOCK_PERIOD_NS

    def driver(self, **kwargs) -> LinuxVirtioGpioDriver:
        return LinuxVirtioGpioDriver(self.transport, **kwargs)

    async def run(self, fn: Callable[[], T]) -> T:
        """Run blocking driver code (which may use the transport) inside the simulation."""
        return await bridge(fn)()

    # -- lock-step --------------------------------------------------------------------------

    def _dma_active(self) -> bool:
        d = self.dut
        return bool(self.dma.busy or d.m_axi_arvalid.value or d.m_axi_awvalid.value
                    or d.m_axi_wvalid.value)

    async def _quiet(self) -> None:
        """At least QUIET_CYCLES cycles, until the DMA port has been idle for that long. The memory
        agent keeps the last cycle it saw a VALID or a pending burst, so this sleeps in chunks
        instead of waking on every edge (one cycle of margin: at a shared edge either wakes first)."""
        await self.wait_cycles(QUIET_CYCLES)
        limit = self.dma.cycle + BUSY_LIMIT_CYCLES
        while (idle := self.dma.cycle - self.dma.last_activity_cycle) <= QUIET_CYCLES:
            if self.dma.cycle > limit:
                raise Mismatch(f"the DMA port has not been quiet for {QUIET_CYCLES} cycles in "
                               f"{BUSY_LIMIT_CYCLES} cycles: the device does not stop (C-5)")
            await self.wait_cycles(QUIET_CYCLES + 1 - idle)
        self.irq_level = bool(self.dut.irq.value)

    async def _converge(self, check: Callable[[], Awaitable[T]]) -> T:
        """``await check()`` until it stops raising ``Mismatch``: the RTL gets
        ``convergence_cycles`` from its last DMA activity to reach the model's state."""
        deadline = self.cycles + self.convergence_cycles
        moved = self.dma.last_activity_cycle
        while True:
            try:
                return await check()
            except Mismatch:
                if self.dma.last_activity_cycle != moved:
                    moved = self.dma.last_activity_cycle
                    deadline = self.cycles + self.convergence_cycles
                elif self.cycles >= deadline:
                    raise
            await self.wait_cycles(QUIET_CYCLES)
            await self._quiet()

    def _compare(self) -> None:
        self.assert_clean()
        self.scoreboard.check_state(irq=int(self.irq_level), gpio_o=self.pins.outputs,
                                    gpio_oe=self.pins.output_enables)

    async def settle(self) -> None:
        """Let the RTL finish what it is doing, step the model, and compare the two.

        A quiet DMA port usually means the device is done; but it may still be working without
        the bus (walking a looping chain through descriptors it already holds), so when the two
        disagree the RTL gets the contract's bound (``convergence_cycles``, counted from its last
        DMA activity) before the mismatch counts. Then the order of both sides' writes and
        interrupt rises must agree too.
        """
        await self._quiet()
        if not self.check:
            return
        self.model.step()

        async def compare():
            self._compare()
        await self._converge(compare)
        problem = self.trace.compare()
        if problem:
            raise Mismatch(f"{problem} (VQ-9, VQ-15, MMIO-4)")

    def assert_clean(self) -> None:
        """No access outside what the driver granted, no AXI protocol error (contract §5)."""
        violations = [v for side in self.memory.violations_by_side().values() for v in side]
        if violations:
            raise Mismatch("DMA outside the granted buffers (VQ-2, VQ-3, C-5):\n  "
                           + "\n  ".join(map(str, violations[:8])))
        if self.dma.protocol_errors:
            raise Mismatch("AXI protocol errors:\n  " + "\n  ".join(self.dma.protocol_errors[:8]))

    async def read(self, offset: int, size: int = 4) -> int:
        """Read a register and compare it with the model. A quiet bus does not mean the RTL is
        done (it may be walking descriptors it holds, with every observable the same as the
        model's so far), so a value that differs is read again (reads have no side effects)
        within the same bound as ``settle``."""
        await self.settle()

        async def read_and_compare():
            value = await self.regs.read(offset, size)
            if offset == Reg.INTERRUPT_STATUS and bool(value) != bool(self.dut.irq.value):
                # The line follows the register in every cycle; nothing changed since the read,
                # so this is never retried (an AssertionError, not a Mismatch).
                raise AssertionError(f"irq is {int(self.dut.irq.value)} while InterruptStatus "
                                     f"reads {value:#x} (MMIO-13)")
            if self.check:
                self.scoreboard.check_read(offset, size, value)
            return value
        return await self._converge(read_and_compare)

    async def write(self, offset: int, value: int, size: int = 4) -> None:
        await self.settle()
        await self.regs.write(offset, value, size)
        if self.check:
            self.model.write(offset, value, size)

    async def set_input(self, line: int, level: int) -> None:
        """Drive one input pin on both sides, then let the device react."""
        await self.settle()
        self.pins.set_line(line, level)
        self.model.set_input(line, level)
        await self.settle()

    def set_input_blocking(self, line: int, level: int) -> None:
        """``set_input`` for driver-thread code."""
        resume(self.set_input)(line, level)

    # -- register accesses in the middle of DMA (contract §6) --------------------------------

    async def interrupt_work(self, start: tuple[int, int], offset: int, value: int, *,
                             delay_cycles: int, abandons: bool,
                             before: Callable[[], None] | None = None) -> bool:
        """Write ``start`` (offset, value; say a notify) and, ``delay_cycles`` later and once a
        burst is on the bus, write ``offset``/``value`` without waiting for the device (``before``,
        if given, runs just before that write: say, the driver publishing more buffers).

        The model runs the work of ``start`` to its end before it sees the second write. If that
        write does not abandon work (a notify), the RTL must do exactly what the model did. If it
        does (Status = 0, QueueReady = 0): no DMA transaction starts after its B response, no
        interrupt rises after it, and what the RTL wrote is a prefix of what the model wrote; the
        model's memory is then brought to that prefix and the comparison goes on from there.
        Returns whether the write met a burst on the bus."""
        await self.settle()
        snapshot = self.memory.snapshot_model()
        interrupt_status = self.model.interrupt_status
        await self.regs.write(*start)
        self.model.write(*start)
        self.model.step()
        await ClockCycles(self.clock, delay_cycles)
        for _ in range(4 * delay_cycles + 64):
            if self._dma_active():
                break
            await RisingEdge(self.clock)
        mid_burst = self._dma_active()
        if before is not None:
            before()
        await self.regs.write(offset, value)
        written = get_sim_time("ns")
        await self._quiet()
        if not abandons:
            self.model.write(offset, value)
            await self.settle()
            return mid_burst
        late = [t for t in self.dma.starts if t > written]
        if late:
            raise Mismatch(f"{len(late)} DMA transaction(s) started after the write of {value:#x} "
                           f"at {offset:#05x} was answered, the first at {late[0]:.0f} ns (GEN-3, C-6)")
        rises = [t for t in self.irq_monitor.rise_times if t > written]
        if rises:
            raise Mismatch(f"irq rose after the write of {value:#x} at {offset:#05x} (GEN-3, C-6)")
        problem, writes, raised = self.trace.compare_prefix()
        if problem:
            raise Mismatch(f"{problem} (C-6)")
        self.memory.restore_model(snapshot, writes)
        self.model.interrupt_status = interrupt_status | raised
        self.model.write(offset, value)
        self._compare()
        return mid_burst


class EventBetweenReadAndAck:
    """A transport for the driver model that, once armed, runs a device event right after the
    driver's next InterruptStatus read, before its ACK: an interleaving lock-step never makes by
    itself, since every access otherwise waits for the device to settle first."""

    def __init__(self, env: DeviceEnv):
        self.inner = env.transport
        self.memory = self.inner.memory
        self._event: Callable[[], None] | None = None
        self.fired = False

    def arm(self, event: Callable[[], None]) -> None:
        self._event, self.fired = event, False

    def read(self, offset: int, size: int = 4) -> int:
        value = self.inner.read(offset, size)
        if offset == Reg.INTERRUPT_STATUS and value and self._event is not None:
            event, self._event = self._event, None
            event()
            self.fired = True
        return value

    def write(self, offset: int, value: int, size: int = 4) -> None:
        self.inner.write(offset, value, size)

    @property
    def irq(self) -> bool:
        return self.inner.irq

    def advance(self) -> None:
        self.inner.advance()


def seeded(env: DeviceEnv, salt: str) -> random.Random:
    """A random source for a test's own choices, reproducible from the run's seed."""
    return random.Random(f"{env.seed}:{salt}")
