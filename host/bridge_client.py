"""The host side of the UART bus bridge: 32-bit reads and writes of the board's AXI4-Lite bus (the
device's registers, the guest memory) and the device's interrupt line, over any byte port.

``port`` is anything with ``write(bytes)`` and ``read(n) -> bytes`` where a short read means a
timeout; a ``serial.Serial`` opened with a ``timeout`` fits. The protocol is in
``virtio_gpio.hdl.soc.bridge_protocol``. Every failure raises ``BridgeError``. After a timeout the
two ends may disagree about where a frame starts: stay quiet for the bridge's frame timeout and
discard any late reply bytes (e.g. ``Serial.reset_input_buffer()``) before going on.
"""

from ..hdl.soc import bridge_protocol as bp

WORD = bp.DATA_BYTES
WORD_MASK = (1 << bp.DATA_BITS) - 1
KNOWN_STATUS = frozenset(int(s) for s in bp.Status)


class BridgeError(Exception):
    """An access failed: an error response, a timeout, or a reply the bridge never sends."""


class BridgeClient:
    def __init__(self, port):
        self.port = port

    def _transact(self, frame: bytes, opcode: bp.Opcode, what: str) -> int | None:
        """Send ``frame``; return the reply's value once its status is OKAY."""
        self.port.write(frame)
        first = self.port.read(1)
        if len(first) != 1:
            raise BridgeError(f"{what}: no reply (timeout)")
        if first[0] == bp.STATUS_BAD_OPCODE:
            raise BridgeError(f"{what}: the bridge did not recognize opcode 0x{opcode:02X}")
        if first[0] not in KNOWN_STATUS:
            raise BridgeError(f"{what}: unknown status byte 0x{first[0]:02X}")
        # Read the whole reply even for an error status, so that the next frame starts in step.
        rest_length = bp.REPLY_LENGTH[opcode] - 1
        rest = self.port.read(rest_length) if rest_length else b""
        if len(rest) != rest_length:
            raise BridgeError(f"{what}: reply cut short after {1 + len(rest)} of "
                              f"{bp.REPLY_LENGTH[opcode]} bytes (timeout)")
        status, value = bp.decode_reply(opcode, first + rest)
        if status != bp.Status.OKAY:
            raise BridgeError(f"{what}: {bp.Status(status).name} response")
        return value

    @staticmethod
    def _check_addr(addr: int) -> None:
        if not isinstance(addr, int) or not 0 <= addr <= WORD_MASK or addr % WORD:
            raise ValueError(f"Address must be a {WORD}-byte aligned 32-bit address, not {addr!r}")

    def read32(self, addr: int) -> int:
        self._check_addr(addr)
        return self._transact(bp.encode_read(addr), bp.Opcode.READ, f"read of 0x{addr:08X}")

    def write32(self, addr: int, value: int) -> None:
        self._check_addr(addr)
        self._transact(bp.encode_write(addr, value), bp.Opcode.WRITE,
                       f"write of 0x{value:08X} to 0x{addr:08X}")

    def irq(self) -> bool:
        """The level of the device's interrupt line."""
        level = self._transact(bp.encode_irq(), bp.Opcode.IRQ, "irq poll")
        if level not in (0, 1):
            raise BridgeError(f"irq poll: level byte 0x{level:02X} is neither 0 nor 1")
        return bool(level)

    def _words(self, addr: int, n: int) -> range:
        if not isinstance(n, int) or n < 0 or not isinstance(addr, int) or addr < 0 \
                or addr + n > WORD_MASK + 1:
            raise ValueError(f"{n!r} bytes at {addr!r} do not fit in the 32-bit address space")
        first = addr - addr % WORD
        return range(first, addr + n, WORD)

    def read_bytes(self, addr: int, n: int) -> bytes:
        """``n`` bytes from ``addr`` (any alignment), read as whole aligned words."""
        words = self._words(addr, n)
        data = b"".join(self.read32(a).to_bytes(WORD, bp.BYTE_ORDER) for a in words)
        skip = addr - words.start
        return data[skip:skip + n]

    def write_bytes(self, addr: int, data: bytes) -> None:
        """Write ``data`` at ``addr`` (any alignment) as aligned words; a word only partly
        covered is read first and written back with the other bytes unchanged."""
        data = bytes(data)
        for a in self._words(addr, len(data)):
            lo, hi = max(a, addr), min(a + WORD, addr + len(data))
            if hi - lo == WORD:
                word = bytearray(data[lo - addr:hi - addr])
            else:
                word = bytearray(self.read32(a).to_bytes(WORD, bp.BYTE_ORDER))
                word[lo - a:hi - a] = data[lo - addr:hi - addr]
            self.write32(a, int.from_bytes(word, bp.BYTE_ORDER))
