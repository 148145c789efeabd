"""The end-to-end scenario of ``make sim`` for the golden model: the Linux driver model probes the
device model, reads the line names, runs every GPIO operation, takes an interrupt of every irq type,
and resets the device, printing a trace and a summary. Every step checks what it expects, so the
scenario fails loudly when the model breaks."""

import time
from dataclasses import dataclass, field
from typing import Callable

from .config import DeviceConfig
from .constants import DeviceStatus, Direction, IrqType
from .device import VirtioGpioDevice
from .driver.linux_gpio import LinuxVirtioGpioDriver
from .layouts import Reg
from .memory import GuestMemory
from .transport import ModelTransport

# Line names of the demo configuration (an 8-line board: two LEDs, a button, a header).
DEMO_NAMES = ("led0", "led1", "button", "", "hdr_a", "hdr_b", "", "irq_in")


@dataclass
class ScenarioResult:
    steps: list[tuple[str, bool]] = field(default_factory=list)
    register_reads: int = 0
    register_writes: int = 0
    dma_reads: int = 0
    dma_writes: int = 0
    interrupts_delivered: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(ok for _, ok in self.steps)


def run_scenario(config: DeviceConfig | None = None, out: Callable[[str], None] = print) -> ScenarioResult:
    config = config or DeviceConfig(ngpio=len(DEMO_NAMES), line_names=DEMO_NAMES)
    memory = GuestMemory(config.dma_addr_width)
    device = VirtioGpioDevice(config, memory)
    transport = ModelTransport(device)
    driver = LinuxVirtioGpioDriver(transport, trace=lambda m: out(f"    {m}"))
    result = ScenarioResult()
    start = time.perf_counter()

    def step(title: str, action: Callable[[], bool]) -> None:
        out(f"[{len(result.steps) + 1:2}] {title}")
        try:
            ok = bool(action())
        except Exception as e:  # a failing step is reported, and the run goes on to the summary
            out(f"    !! {type(e).__name__}: {e}")
            ok = False
        result.steps.append((title, ok))
        out(f"    -> {'ok' if ok else 'FAILED'}")

    def probe() -> bool:
        driver.probe()
        return device.live and driver.ngpio == config.ngpio

    def names() -> bool:
        expected = list(config.line_names) if config.line_names else None
        return driver.names == expected

    def output_line() -> bool:
        driver.direction_output(0, 1)
        ok = device.gpio_oe & 1 and device.gpio_o & 1 and driver.get(0) == 1
        driver.set(0, 0)
        return bool(ok) and not device.gpio_o & 1 and driver.get_direction(0) is Direction.OUT

    def input_line() -> bool:
        driver.direction_input(2)
        device.set_input(2, 1)
        high = driver.get(2)
        device.set_input(2, 0)
        return high == 1 and driver.get(2) == 0 and driver.get_direction(2) is Direction.IN

    def free_line() -> bool:
        driver.free(0)
        return not device.gpio_oe & 1

    def irq(gpio: int, irq_type: IrqType, before: int, trigger: int) -> Callable[[], bool]:
        def run() -> bool:
            device.set_input(gpio, before)
            driver.direction_input(gpio)
            driver.request_irq(gpio, irq_type)
            seen = len(driver.log.events)
            device.set_input(gpio, trigger)
            driver.poll(lambda: len(driver.log.events) > seen)
            device.set_input(gpio, before)  # level types: release the level before freeing
            driver.free_irq(gpio)
            return driver.log.events[-1] == (gpio, "VALID")
        return run

    def reset() -> bool:
        driver.remove()
        return device.read(Reg.STATUS) == DeviceStatus.ACKNOWLEDGE and not device.irq

    step("probe (virtio_mmio + gpio-virtio order)", probe)
    if config.gpio_names_size:
        step("GET_LINE_NAMES", names)
    step("line 0 as output: SET_VALUE, SET_DIRECTION OUT, GET_VALUE, GET_DIRECTION", output_line)
    step("line 2 as input: SET_DIRECTION IN, GET_VALUE high and low", input_line)
    step("free line 0: SET_DIRECTION NONE", free_line)
    if driver.irq_lines:
        last = config.ngpio - 1
        for irq_type, before, trigger in ((IrqType.EDGE_RISING, 0, 1), (IrqType.EDGE_FALLING, 1, 0),
                                          (IrqType.EDGE_BOTH, 0, 1), (IrqType.LEVEL_HIGH, 0, 1),
                                          (IrqType.LEVEL_LOW, 1, 0)):
            step(f"interrupt {irq_type.name} on line {last}", irq(last, irq_type, before, trigger))
    step("remove: reset and queue teardown", reset)

    result.seconds = time.perf_counter() - start
    result.register_reads, result.register_writes = transport.register_reads, transport.register_writes
    result.dma_reads = len(memory.dma_log) - len(memory.device_writes())
    result.dma_writes = len(memory.device_writes())
    result.interrupts_delivered = len(driver.log.events)
    violations = memory.firewall.violations
    result.steps.append(("DMA firewall: no access outside owned buffers", not violations))
    for v in violations:
        out(f"    !! firewall: {v}")
    return result


def print_summary(result: ScenarioResult, out: Callable[[str], None] = print) -> None:
    width = max(len(title) for title, _ in result.steps)
    out("")
    out(f"{'step':<{width}}  result")
    out(f"{'-' * width}  ------")
    for title, ok in result.steps:
        out(f"{title:<{width}}  {'pass' if ok else 'FAIL'}")
    passed = sum(ok for _, ok in result.steps)
    out("")
    out(f"register accesses: {result.register_reads} reads, {result.register_writes} writes; "
        f"DMA: {result.dma_reads} reads, {result.dma_writes} writes; "
        f"interrupts delivered: {result.interrupts_delivered}; {result.seconds:.2f} s")
    out(f"{passed} passed, {len(result.steps) - passed} failed")
