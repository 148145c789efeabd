"""The narrow interface between the driver model and a device: register access, guest memory, the
interrupt line and the passing of time. The golden model implements it here; the cocotb testbench
implements it for the RTL (blocking calls bridged into the simulator), so the same driver code drives
both."""

from typing import Protocol

from .device import VirtioGpioDevice
from .memory import GuestMemory


class Transport(Protocol):
    memory: GuestMemory

    def read(self, offset: int, size: int = 4) -> int:
        """A register read of 1, 2 or 4 bytes at a naturally aligned offset of the 4 KiB window."""

    def write(self, offset: int, value: int, size: int = 4) -> None:
        """A register write."""

    @property
    def irq(self) -> bool:
        """The level of the device's interrupt line."""

    def advance(self) -> None:
        """Let the device work for a while (the model: one ``step``; RTL: some clock cycles)."""


class ModelTransport:
    """The golden model behind the transport interface, with a count of register accesses."""

    def __init__(self, device: VirtioGpioDevice):
        self.device = device
        self.memory = device.memory
        self.register_reads = 0
        self.register_writes = 0

    def read(self, offset: int, size: int = 4) -> int:
        self.register_reads += 1
        return self.device.read(offset, size)

    def write(self, offset: int, value: int, size: int = 4) -> None:
        self.register_writes += 1
        self.device.write(offset, value, size)

    @property
    def irq(self) -> bool:
        return self.device.irq

    def advance(self) -> None:
        self.device.step()
