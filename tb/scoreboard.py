"""Lock-step comparison of the RTL with the golden model.

Both run the same driver traffic. Whenever the RTL has gone quiet (no DMA for a while), the model
is stepped and the two must agree on everything a driver or a board can observe: the interrupt
line, the pins, and every byte of guest memory (reply bytes, used elements, used.idx,
avail_event). Every register read is compared too. The first disagreement fails the test with both
values, so that the spec can decide which side is wrong.
"""

from virtio_gpio.model.device import VirtioGpioDevice

from .mirrored_memory import MirroredMemory


class Mismatch(AssertionError):
    """The RTL and the golden model disagree."""


class LockstepScoreboard:
    def __init__(self, model: VirtioGpioDevice, memory: MirroredMemory):
        self.model = model
        self.memory = memory

    def check_read(self, offset: int, size: int, rtl: int) -> None:
        expected = self.model.read(offset, size)
        if rtl != expected:
            raise Mismatch(f"register read of {size} bytes at {offset:#05x}: RTL {rtl:#x}, "
                           f"model {expected:#x}")

    def check_state(self, *, irq: int, gpio_o: int, gpio_oe: int) -> None:
        """Compare what is observable once both sides are quiet."""
        model = self.model
        problems = []
        if irq != model.irq:
            problems.append(f"irq: RTL {irq}, model {int(model.irq)} "
                            f"(model InterruptStatus {int(model.interrupt_status):#x})")
        if gpio_oe != model.gpio_oe:
            problems.append(f"gpio_oe: RTL {gpio_oe:#x}, model {model.gpio_oe:#x}")
        if gpio_o != model.gpio_o:
            problems.append(f"gpio_o: RTL {gpio_o:#x}, model {model.gpio_o:#x}")
        problems += [f"memory {d}" for d in self.memory.differences()]
        if problems:
            errors = "; ".join(e.reason for e in model.errors) or "none"
            raise Mismatch("RTL and model disagree:\n  " + "\n  ".join(problems)
                           + f"\n  (model device errors: {errors})")
