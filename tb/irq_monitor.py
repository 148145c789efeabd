"""Watches the ``irq`` output: how often it rose and when, and waits for it with a timeout.

Why: an interrupt is the device's only unsolicited signal, so tests count its rising edges (one per
notification the driver should see) and wait for it without risking a hang.
"""

from collections.abc import Callable

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, First, RisingEdge


class IrqTimeout(Exception):
    """``irq`` did not go high in time."""


class IrqMonitor:
    """Counts rising edges of ``irq``; ``rise_cycles[k]`` is the clock edge that raised it the k-th
    time, edge 0 being the first after construction (logic sampling ``irq`` at clock edges sees it
    high one edge later).

    It wakes only when ``irq`` changes, not every cycle (a per-cycle coroutine would slow every test
    for a signal that rarely moves): the cycle number comes from the simulation time and the clock
    period, measured over the first two edges, so construct it before releasing reset (a rise in
    those two cycles is not seen). ``irq`` must be a registered output, as the device contract has
    it, so that it changes only at clock edges.
    """

    def __init__(self, dut, clock):
        self._irq, self.clock = dut.irq, clock
        self.rise_cycles: list[int] = []
        self.rise_times: list[float] = []  # the same rises, in simulation time (ns)
        self.on_rise: Callable[[float], None] | None = None  # hears each rise, with its time in ns
        cocotb.start_soon(self._watch())

    @property
    def rises(self) -> int:
        return len(self.rise_cycles)

    @property
    def high(self) -> bool:
        return bool(self._irq.value)

    async def _watch(self) -> None:
        await RisingEdge(self.clock)
        first_edge = get_sim_time()
        await RisingEdge(self.clock)
        period = get_sim_time() - first_edge
        while True:
            await RisingEdge(self._irq)
            self.rise_cycles.append((get_sim_time() - first_edge) // period)
            self.rise_times.append(get_sim_time("ns"))
            if self.on_rise is not None:
                self.on_rise(self.rise_times[-1])

    async def wait_high(self, timeout_cycles: int) -> None:
        """Return once ``irq`` is high; raise ``IrqTimeout`` after ``timeout_cycles`` cycles."""
        if self.high:
            return
        await First(RisingEdge(self._irq), ClockCycles(self.clock, timeout_cycles))
        if not self.high:
            raise IrqTimeout(f"irq stayed low for {timeout_cycles} cycles")
