"""Guest memory as the driver sees it, mirrored into a second copy for the golden model.

The driver model writes rings and buffers into the memory the RTL reads over AXI; the golden model
running beside it needs the same bytes in its own copy, so that each side's DMA writes land in its
own memory and the two can be compared byte for byte. Both copies share the same injected bus
errors and one table of DMA grants (the driver grants through ``memory.firewall``; the model's
firewall sees the same grants), but each side has its own firewall and so its own violations:
``memory.firewall.violations`` holds the RTL's offences only (side ``"RTL"``),
``memory.shadow.firewall.violations`` the model's (side ``"model"``); ``violations_by_side()``
gives both.

The two sides need not read the same bytes: the RTL gathers a request while it walks its chain, the
model only once the whole chain has parsed, so a chain rejected late in its walk has granted
buffers the RTL read and the model did not. That is legal; only an access outside the grants is an
offence.
"""

from virtio_gpio.model.memory import AccessKind, BusResponse, DmaFirewall, GuestMemory, Violation

RTL_SIDE, MODEL_SIDE = "RTL", "model"


class MirroredMemory(GuestMemory):
    """The RTL's memory; ``shadow`` is the golden model's. Driver-side writes go to both."""

    def __init__(self, addr_width: int):
        super().__init__(addr_width)
        self.firewall = DmaFirewall(RTL_SIDE)
        self.shadow = GuestMemory(addr_width)
        self.shadow.firewall = self.firewall.sibling(MODEL_SIDE)

    def violations_by_side(self) -> dict[str, list[Violation]]:
        """Each side's firewall violations so far (the live lists), RTL first."""
        return {self.firewall.side: self.firewall.violations,
                self.shadow.firewall.side: self.shadow.firewall.violations}

    def map(self, addr: int, size: int) -> None:
        super().map(addr, size)
        self.shadow.map(addr, size)

    def write(self, addr: int, data: bytes) -> None:
        super().write(addr, data)
        self.shadow.write(addr, data)

    def inject_error(self, addr: int, size: int, response: BusResponse = BusResponse.SLVERR,
                     kind: AccessKind | None = None) -> None:
        super().inject_error(addr, size, response, kind)
        self.shadow.inject_error(addr, size, response, kind)

    def clear_errors(self) -> None:
        super().clear_errors()
        self.shadow.clear_errors()

    def snapshot_model(self) -> dict[int, bytearray]:
        """A copy of the model's memory, for ``restore_model``."""
        return {page: bytearray(data) for page, data in self.shadow._pages.items()}

    def restore_model(self, snapshot: dict[int, bytearray], writes: list[tuple[int, int]]) -> None:
        """Put the model's memory back to ``snapshot`` and apply ``writes`` ((address, byte)
        pairs): what the model did, cut to what the RTL did before abandoned work stopped."""
        self.shadow._pages = snapshot
        for addr, byte in writes:
            self.shadow.poke(addr, bytes([byte]))

    def differences(self, limit: int = 8) -> list[str]:
        """Byte ranges where the RTL's memory and the model's differ (at most ``limit``)."""
        found = []
        for page, rtl in sorted(self._pages.items()):
            model = self.shadow._pages[page]
            if rtl == model:
                continue
            base = page * self.PAGE
            i = 0
            while i < self.PAGE and len(found) < limit:
                if rtl[i] != model[i]:
                    j = i
                    while j < self.PAGE and rtl[j] != model[j]:
                        j += 1
                    found.append(f"[{base + i:#x}, +{j - i}): RTL {bytes(rtl[i:j]).hex()} "
                                 f"model {bytes(model[i:j]).hex()}")
                    i = j
                i += 1
        return found
