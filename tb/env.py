"""The test environment: the RTL device with its agents, the golden model beside it, the lock-step
scoreboard, and a transport that lets the model's Linux-like driver drive the RTL unchanged.

The driver model is blocking Python; it runs in a thread bridged into the simulator
(``cocotb.task.bridge``), and each register access it makes resumes the simulation through
``cocotb.task.resume``. Before every access the environment lets the RTL finish its work (the DMA
port has been quiet for ``QUIET_CYCLES``), steps the model, and compares the two.
"""

import os
import random
from typing import Callable, TypeVar

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, RisingEdge

from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.device import VirtioGpioDevice
from virtio_gpio.model.driver.linux_gpio import LinuxVirtioGpioDriver

from . import configs
from .axi_lite_master import AxiLiteMaster
from .axi_memory import AxiMemory
from .gpio_pins import GpioPins
from .irq_monitor import IrqMonitor
from .mirrored_memory import MirroredMemory
from .scoreboard import LockstepScoreboard, Mismatch

CLOCK_PERIOD_NS = 10
RESET_CYCLES = 4
# The engine never pauses this long between DMA commands while it has work, and the pin
# synchronizer settles well within it.
QUIET_CYCLES = 16
# The longest the RTL may take to reach the model's state after the bus went quiet: a chain that
# loops through two descriptors the engine holds is walked up to 32768 times without DMA.
CONVERGENCE_CYCLES = 8 * 32768
SEED_ENV = "VIRTIO_GPIO_SEED"

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


class DeviceEnv:
    def __init__(self, dut, config: DeviceConfig, *, seed: int, read_latency: int,
                 stall_probability: float):
        self.dut = dut
        self.config = config
        self.seed = seed
        self.memory = MirroredMemory(config.dma_addr_width)
        self.model = VirtioGpioDevice(config, self.memory.shadow)
        self.scoreboard = LockstepScoreboard(self.model, self.memory)
        self.clock = dut.clk
        self.regs = AxiLiteMaster(dut, "s_axil", dut.clk)
        self.dma = AxiMemory(dut, "m_axi", dut.clk, self.memory, seed=seed,
                             read_latency=read_latency, stall_probability=stall_probability)
        self.pins = GpioPins(dut, dut.clk)
        self.irq_monitor = IrqMonitor(dut, dut.clk)
        self.transport = RtlTransport(self)
        self.irq_level = False
        self.check = True  # compare with the model (off for figures-only runs such as benchmarks)

    @classmethod
    async def start(cls, dut, config: DeviceConfig | None = None, *, seed: int | None = None,
                    read_latency: int = 1, stall_probability: float = 0.0) -> "DeviceEnv":
        """Clock, reset and agents for the device built from ``config`` (default: the
        configuration the Verilog was built from)."""
        config = config or configs.current()
        if seed is None:
            seed = int(os.environ.get(SEED_ENV, "1"))
        cocotb.start_soon(Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
        env = cls(dut, config, seed=seed, read_latency=read_latency,
                  stall_probability=stall_probability)
        dut.gpio_i.value = 0
        dut.rst.value = 1
        await ClockCycles(dut.clk, RESET_CYCLES)
        dut.rst.value = 0
        await RisingEdge(dut.clk)
        return env

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
        quiet = 0
        while quiet < QUIET_CYCLES:
            await RisingEdge(self.clock)
            quiet = 0 if self._dma_active() else quiet + 1
        self.irq_level = bool(self.dut.irq.value)

    def _compare(self) -> None:
        self.assert_clean()
        self.scoreboard.check_state(irq=int(self.irq_level), gpio_o=self.pins.outputs,
                                    gpio_oe=self.pins.output_enables)

    async def settle(self) -> None:
        """Let the RTL finish what it is doing, step the model, and compare the two.

        A quiet DMA port usually means the device is done; but it may still be working without
        the bus (walking a looping chain through descriptors it already holds), so when the two
        disagree the RTL gets more time, up to ``CONVERGENCE_CYCLES``, before the mismatch counts.
        """
        await self._quiet()
        if not self.check:
            return
        self.model.step()
        deadline = self.cycles + CONVERGENCE_CYCLES
        while True:
            try:
                self._compare()
                return
            except Mismatch:
                if self.cycles >= deadline:
                    raise
            await ClockCycles(self.clock, QUIET_CYCLES * 4)
            await self._quiet()

    def assert_clean(self) -> None:
        """No access outside what the driver granted, no AXI protocol error (contract §5)."""
        violations = self.memory.firewall.violations
        if violations:
            raise Mismatch("DMA outside the granted buffers:\n  " + "\n  ".join(map(str, violations[:8])))
        if self.dma.protocol_errors:
            raise Mismatch("AXI protocol errors:\n  " + "\n  ".join(self.dma.protocol_errors[:8]))

    async def read(self, offset: int, size: int = 4) -> int:
        await self.settle()
        value = await self.regs.read(offset, size)
        if self.check:
            self.scoreboard.check_read(offset, size, value)
        return value

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


def seeded(env: DeviceEnv, salt: str) -> random.Random:
    """A random source for a test's own choices, reproducible from the run's seed."""
    return random.Random(f"{env.seed}:{salt}")
