"""A VM's shared RAM (``host.guest_ram.SharedGuestRam``) as the RTL's DMA port sees it, with a view
of it for the golden model running beside the RTL, so that the two can be compared while a real
guest drives the device.

The lock-step testbench gives the model a copy of memory (``MirroredMemory``); that cannot be done
here, because the guest writes its rings whenever it likes, while the device works. So the model
sees the bytes the RTL saw: between two ``next_round`` calls every byte the RTL's DMA read is
remembered as it was read, and the model reads those bytes (then guest RAM, for bytes the RTL never
read). The model's writes stay in the view; the RTL's go to guest RAM and are remembered too.
``differences`` compares what both wrote (with the values written, not what the guest may have
written over them since), and ``next_round`` forgets both once they were compared.
"""

from virtio_gpio.host.guest_ram import SharedGuestRam
from virtio_gpio.model.memory import DmaFirewall, GuestMemory, Violation

from .mirrored_memory import MODEL_SIDE, RTL_SIDE


class _ModelView(GuestMemory):
    """Guest RAM for the model: its own writes, else what the RTL read, else guest RAM."""

    def __init__(self, ram: "MirroredGuestRam"):
        super().__init__(ram.addr_width)
        self.ram = ram
        self.written: dict[int, int] = {}
        self.firewall = ram.firewall.sibling(MODEL_SIDE)
        self.log_dma = False

    def is_mapped(self, addr: int, size: int) -> bool:
        return self.ram.is_mapped(addr, size)

    def _read(self, addr: int, size: int) -> bytes:
        data = bytearray(self.ram._read(addr, size))
        for i in range(size):
            a = addr + i
            byte = self.written.get(a, self.ram.seen.get(a))
            if byte is not None:
                data[i] = byte
        return bytes(data)

    def _write(self, addr: int, data: bytes) -> None:
        for i, byte in enumerate(data):
            self.written[addr + i] = byte


class MirroredGuestRam(SharedGuestRam):
    """The RTL's memory (the bus agent's ``peek``/``poke``); ``shadow`` is the model's."""

    def __init__(self, addr_width: int):
        super().__init__(addr_width)
        self.firewall = DmaFirewall(RTL_SIDE)
        self.seen: dict[int, int] = {}     # byte -> value, as the RTL last read it this round
        self.written: dict[int, int] = {}  # byte -> value the RTL wrote this round
        self.shadow = _ModelView(self)

    def peek(self, addr: int, size: int) -> bytes:
        data = super().peek(addr, size)
        for i, byte in enumerate(data):
            if addr + i not in self.written:  # a byte read back after writing it is not input
                self.seen[addr + i] = byte
        return data

    def poke(self, addr: int, data: bytes) -> None:
        super().poke(addr, data)
        for i, byte in enumerate(data):
            self.written[addr + i] = byte

    def next_round(self) -> None:
        """Forget what both sides read and wrote (once it has been compared)."""
        self.seen.clear()
        self.written.clear()
        self.shadow.written.clear()

    def violations_by_side(self) -> dict[str, list[Violation]]:
        return {self.firewall.side: self.firewall.violations,
                self.shadow.firewall.side: self.shadow.firewall.violations}

    def differences(self, limit: int = 8) -> list[str]:
        """The bytes one side wrote this round and the other did not write, or wrote otherwise,
        as runs of consecutive addresses (at most ``limit``)."""
        rtl, model = self.written, self.shadow.written
        found: list[str] = []
        run: list[int] = []

        def flush():
            if run:
                def show(side):
                    return "".join(f"{side[a]:02x}" if a in side else "--" for a in run)
                found.append(f"[{run[0]:#x}, +{len(run)}): RTL {show(rtl)} model {show(model)}")
                run.clear()
        for a in sorted(rtl.keys() | model.keys()):
            if rtl.get(a) == model.get(a):
                continue
            if run and a != run[-1] + 1:
                flush()
                if len(found) == limit:
                    break
            run.append(a)
        if len(found) < limit:
            flush()
        return found
