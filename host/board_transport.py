"""The model's driver on a board: ``model.transport.Transport`` over the UART bridge, so that the
Linux driver model (``model/driver``) probes and drives the device in the FPGA (or in a simulation
of the board system) exactly as it drives the golden model.

Guest memory is the board's on-chip RAM: the driver allocates rings and buffers in it from address
0 up (the device's guest-physical view), and every byte it writes or reads goes over the bridge to
``MEMORY_BASE`` + address.
"""

import time

from ..hdl.boards.host_map import MEMORY_BASE, REGISTERS_BASE
from ..model.memory import GuestMemory, MemoryAccessError
from .bridge_client import WORD, BridgeClient

# Nothing to simulate between polls on real hardware; a short pause keeps a polling driver from
# flooding the UART with used-ring reads.
POLL_PAUSE_S = 0.001


class BoardMemory(GuestMemory):
    """Guest memory that lives on the board: allocation and bounds here, the bytes over the
    bridge."""

    def __init__(self, client: BridgeClient, size: int):
        super().__init__(addr_width=32, arena_base=0)
        self.client = client
        self.size = size

    def map(self, addr: int, size: int) -> None:
        if addr < 0 or addr + size > self.size:
            raise MemoryAccessError(f"[{addr:#x}, +{size}) is beyond the board's {self.size} "
                                    f"bytes of guest memory")
        super().map(addr, size)

    def _read(self, addr: int, size: int) -> bytes:
        return self.client.read_bytes(MEMORY_BASE + addr, size)

    def _write(self, addr: int, data: bytes) -> None:
        self.client.write_bytes(MEMORY_BASE + addr, data)


class BridgeTransport:
    """Registers at ``REGISTERS_BASE``, memory at ``MEMORY_BASE``, the interrupt line by the
    bridge's IRQ command."""

    def __init__(self, client: BridgeClient, memory_bytes: int, *, poll_pause: float = POLL_PAUSE_S):
        self.client = client
        self.memory = BoardMemory(client, memory_bytes)
        self.poll_pause = poll_pause

    def read(self, offset: int, size: int = 4) -> int:
        aligned = offset - offset % WORD
        word = self.client.read32(REGISTERS_BASE + aligned)
        # The register window returns the word holding the addressed bytes (docs/ports.md).
        return (word >> (8 * (offset - aligned))) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, value: int, size: int = 4) -> None:
        if size != WORD or offset % WORD:
            raise ValueError(f"the bridge writes whole words; a {size}-byte register write at "
                             f"{offset:#x} cannot be made")
        self.client.write32(REGISTERS_BASE + offset, value)

    @property
    def irq(self) -> bool:
        return self.client.irq()

    def advance(self) -> None:
        if self.poll_pause:
            time.sleep(self.poll_pause)
