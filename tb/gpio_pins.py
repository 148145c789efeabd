"""The GPIO pins seen from the board: the test drives ``gpio_i`` and reads ``gpio_o``/``gpio_oe``.

Why a class for three ports: the input vector is driven as a whole, so setting one line must keep
the others; and a test that waits for an output needs a timeout, not a hang.
"""

from cocotb.triggers import RisingEdge


class GpioTimeout(Exception):
    """The outputs did not reach the expected value in time."""


class GpioPins:
    """``ngpio`` is the width of ``gpio_i``. Input changes take effect immediately (not on a clock
    edge), as an asynchronous pin would; the DUT is the one that must synchronise them."""

    def __init__(self, dut, clock):
        self._i, self._o, self._oe = dut.gpio_i, dut.gpio_o, dut.gpio_oe
        self.clock = clock
        self.ngpio = len(self._i)
        self._inputs = 0
        self._i.value = 0

    def _check_line(self, line: int) -> None:
        if not 0 <= line < self.ngpio:
            raise ValueError(f"line {line} does not exist (ngpio = {self.ngpio})")

    @property
    def inputs(self) -> int:
        """The value being driven onto ``gpio_i``."""
        return self._inputs

    def set_inputs(self, value: int) -> None:
        """Drive the whole input vector."""
        if not 0 <= value < 1 << self.ngpio:
            raise ValueError(f"{value:#x} does not fit in {self.ngpio} lines")
        self._inputs = value
        self._i.value = value

    def set_line(self, line: int, level: int) -> None:
        """Drive one input line high (1) or low (0), keeping the others."""
        self._check_line(line)
        self.set_inputs(self._inputs & ~(1 << line) | (bool(level) << line))

    @property
    def outputs(self) -> int:
        """``gpio_o`` as an int."""
        return self._o.value.to_unsigned()

    @property
    def output_enables(self) -> int:
        """``gpio_oe`` as an int."""
        return self._oe.value.to_unsigned()

    async def wait_outputs(self, value: int, mask: int, timeout_cycles: int) -> None:
        """Wait until ``gpio_o & mask == value``, checked at each rising clock edge."""
        for _ in range(timeout_cycles):
            if self.outputs & mask == value:
                return
            await RisingEdge(self.clock)
        if self.outputs & mask != value:
            raise GpioTimeout(f"gpio_o & {mask:#x} is {self.outputs & mask:#x}, not {value:#x}, "
                              f"after {timeout_cycles} cycles")
