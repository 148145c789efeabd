"""Lock-step comparison of the RTL with the golden model.

Both run the same driver traffic. Whenever the RTL has gone quiet (no DMA for a while), the model
is stepped and the two must agree on everything a driver or a board can observe: the interrupt
line, the pins, and every byte of guest memory (reply bytes, used elements, used.idx,
avail_event). Every register read is compared too. The first disagreement fails the test with both
values, so that the spec can decide which side is wrong.
"""

from virtio_gpio.model.constants import CONFIG_SPACE_OFFSET
from virtio_gpio.model.device import VirtioGpioDevice
from virtio_gpio.model.layouts import Reg

from .mirrored_memory import MirroredMemory


class Mismatch(AssertionError):
    """The RTL and the golden model disagree."""


# The requirements a disagreement breaks, so that a failure names them and not only a signal.
READ_REQUIREMENTS = {
    Reg.MAGIC_VALUE: "MMIO-1", Reg.VERSION: "MMIO-2", Reg.DEVICE_ID: "MMIO-3",
    Reg.DEVICE_FEATURES: "MMIO-11, GEN-5, GEN-7, GEN-10", Reg.QUEUE_SIZE_MAX: "MMIO-9, GPIO-13",
    Reg.QUEUE_READY: "MMIO-10, MMIO-5", Reg.INTERRUPT_STATUS: "MMIO-4, MMIO-5",
    Reg.STATUS: "MMIO-12, GEN-2, GEN-4, GEN-6", Reg.SHM_LEN_LOW: "MMIO-14",
    Reg.SHM_LEN_HIGH: "MMIO-14", Reg.SHM_BASE_LOW: "MMIO-14", Reg.SHM_BASE_HIGH: "MMIO-14",
    Reg.CONFIG_GENERATION: "MMIO-6",
}
CONFIG_REQUIREMENTS = "GPIO-3, MMIO-15"
OTHER_REGISTER_REQUIREMENTS = "C-3"
IRQ_REQUIREMENTS = "MMIO-4, MMIO-13, VQ-5, VQ-7"
PIN_REQUIREMENTS = "GPIO-9, GPIO-10, C-7"
MEMORY_REQUIREMENTS = "GPIO-1, GPIO-2, VQ-10, VQ-14"


class LockstepScoreboard:
    def __init__(self, model: VirtioGpioDevice, memory: MirroredMemory):
        self.model = model
        self.memory = memory

    def check_read(self, offset: int, size: int, rtl: int) -> None:
        expected = self.model.read(offset, size)
        if rtl != expected:
            ids = (CONFIG_REQUIREMENTS if offset >= CONFIG_SPACE_OFFSET
                   else READ_REQUIREMENTS.get(offset & ~3, OTHER_REGISTER_REQUIREMENTS))
            raise Mismatch(f"register read of {size} bytes at {offset:#05x}: RTL {rtl:#x}, "
                           f"model {expected:#x} ({ids})")

    def check_state(self, *, irq: int, gpio_o: int, gpio_oe: int) -> None:
        """Compare what is observable once both sides are quiet."""
        model = self.model
        problems = []
        if irq != model.irq:
            problems.append(f"irq: RTL {irq}, model {int(model.irq)} "
                            f"(model InterruptStatus {int(model.interrupt_status):#x}; "
                            f"{IRQ_REQUIREMENTS})")
        if gpio_oe != model.gpio_oe:
            problems.append(f"gpio_oe: RTL {gpio_oe:#x}, model {model.gpio_oe:#x} ({PIN_REQUIREMENTS})")
        if gpio_o != model.gpio_o:
            problems.append(f"gpio_o: RTL {gpio_o:#x}, model {model.gpio_o:#x} ({PIN_REQUIREMENTS})")
        differences = self.memory.differences()
        if differences:
            problems += [f"memory {d}" for d in differences]
            problems.append(f"(memory: reply bytes, used ring, avail_event; {MEMORY_REQUIREMENTS})")
        if problems:
            errors = "; ".join(e.reason for e in model.errors) or "none"
            raise Mismatch("RTL and model disagree:\n  " + "\n  ".join(problems)
                           + f"\n  (model device errors: {errors})")
