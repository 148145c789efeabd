"""The byte protocol of the UART bus bridge: the one definition shared by the gateware
(``uart_bridge.py``), the host client (``host/bridge_client.py``) and the tests.

Pure Python on purpose: the host client imports it, and the host needs no Amaranth.

A host PC acts as the virtio driver over the board's UART (8N1). It sends frames; the bridge does one
32-bit AXI4-Lite access per frame and answers. All multi-byte fields are little-endian.

====================  ===========================================  ======================================
Request (host->board)  bytes                                       Reply (board->host)
====================  ===========================================  ======================================
READ  (0x52, 'R')     opcode, addr[4]                  (5 bytes)   status, data[4]         (5 bytes)
WRITE (0x57, 'W')     opcode, addr[4], data[4]         (9 bytes)   status                  (1 byte)
IRQ   (0x49, 'I')     opcode                           (1 byte)    status, irq level 0/1   (2 bytes)
anything else         that one byte                                ``STATUS_BAD_OPCODE``   (1 byte)
====================  ===========================================  ======================================

The status byte is the AXI response code of the access (OKAY 0, SLVERR 2, DECERR 3); a READ that
fails still sends 4 data bytes, all 0, so that the reply length never depends on the outcome. WRITE
always writes the full word (all byte strobes set). IRQ always answers OKAY with the level of the
device's interrupt line at the moment the opcode was parsed.

Recovery rules, so that no input can wedge the bridge:

* Frame timeout: once a frame has started, if no further byte arrives on the line for
  ``FRAME_TIMEOUT_BITS`` bit times, the bridge drops the partial frame and sends nothing. A host
  that died (or lost a byte) mid-frame therefore only has to stay quiet that long; the next byte
  starts a new frame. The gap is measured from the stop bit of one byte to the stop bit of the
  next, so a host that sends its frames without pauses never trips it.
* Line errors: a byte with a bad stop bit (or one that arrives while the bridge's receive buffer is
  full) is dropped, together with whatever frame it belonged to and every byte after it, until the
  line has been quiet for ``FRAME_TIMEOUT_BITS`` bit times. Nothing is sent for them: the bridge
  would otherwise risk reading the rest of a damaged frame as new commands.
* An unknown opcode is answered with one ``STATUS_BAD_OPCODE`` byte and nothing else.

The protocol is request/reply: a host should wait for each reply before it sends the next frame.
The bridge buffers ``RX_BUFFER_BYTES`` received bytes, so one further frame may be sent early, but
a host that keeps sending without reading replies will overrun the buffer (a line error, see above).
A bus that never answers stalls the bridge; that is the bus's fault and is not recovered from.
"""

import enum

BITS_PER_BYTE = 10  # 8N1 on the wire: start bit, 8 data bits, stop bit
FRAME_TIMEOUT_BITS = 64  # quiet bit times after which a partial frame is dropped
RX_BUFFER_BYTES = 16  # received bytes the bridge holds while it is busy with an earlier frame

ADDR_BYTES = 4
DATA_BYTES = 4
ADDR_BITS = 8 * ADDR_BYTES
DATA_BITS = 8 * DATA_BYTES
BYTE_ORDER = "little"


class Opcode(enum.IntEnum):
    """First byte of a host->board frame (printable ASCII, so that a serial log is readable)."""
    READ = 0x52  # 'R'
    WRITE = 0x57  # 'W'
    IRQ = 0x49  # 'I'


class Status(enum.IntEnum):
    """First byte of a board->host reply: the AXI response code, or ``BAD_OPCODE``."""
    OKAY = 0b00
    SLVERR = 0b10
    DECERR = 0b11
    BAD_OPCODE = 0xFF


STATUS_OKAY = Status.OKAY
STATUS_SLVERR = Status.SLVERR
STATUS_DECERR = Status.DECERR
STATUS_BAD_OPCODE = Status.BAD_OPCODE

# Bytes of each request frame, opcode included.
REQUEST_LENGTH = {
    Opcode.READ: 1 + ADDR_BYTES,
    Opcode.WRITE: 1 + ADDR_BYTES + DATA_BYTES,
    Opcode.IRQ: 1,
}
# Bytes of each reply, status included.
REPLY_LENGTH = {
    Opcode.READ: 1 + DATA_BYTES,
    Opcode.WRITE: 1,
    Opcode.IRQ: 2,
}
BAD_OPCODE_REPLY_LENGTH = 1
MAX_REQUEST_LENGTH = max(REQUEST_LENGTH.values())
MAX_REPLY_LENGTH = max(REPLY_LENGTH.values())


def _check_word(name: str, value: int, bits: int) -> None:
    if not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise ValueError(f"{name} must be an integer in 0..0x{(1 << bits) - 1:X}, not {value!r}")


def encode_read(addr: int) -> bytes:
    _check_word("Address", addr, ADDR_BITS)
    return bytes([Opcode.READ]) + addr.to_bytes(ADDR_BYTES, BYTE_ORDER)


def encode_write(addr: int, value: int) -> bytes:
    _check_word("Address", addr, ADDR_BITS)
    _check_word("Data", value, DATA_BITS)
    return (bytes([Opcode.WRITE]) + addr.to_bytes(ADDR_BYTES, BYTE_ORDER)
            + value.to_bytes(DATA_BYTES, BYTE_ORDER))


def encode_irq() -> bytes:
    return bytes([Opcode.IRQ])


def decode_request(frame: bytes) -> tuple[Opcode, int | None, int | None]:
    """``(opcode, addr, data)`` of one complete request frame (``None`` where the frame has no such
    field). Raises ValueError for an unknown opcode or a frame of the wrong length."""
    if not frame:
        raise ValueError("Empty frame")
    try:
        opcode = Opcode(frame[0])
    except ValueError:
        raise ValueError(f"Unknown opcode 0x{frame[0]:02X}") from None
    if len(frame) != REQUEST_LENGTH[opcode]:
        raise ValueError(f"{opcode.name} frame must be {REQUEST_LENGTH[opcode]} bytes, not {len(frame)}")
    addr = int.from_bytes(frame[1:1 + ADDR_BYTES], BYTE_ORDER) if opcode != Opcode.IRQ else None
    data = int.from_bytes(frame[1 + ADDR_BYTES:], BYTE_ORDER) if opcode == Opcode.WRITE else None
    return opcode, addr, data


def encode_reply(opcode: Opcode, status: Status, value: int = 0) -> bytes:
    """The reply the bridge sends for a frame with ``opcode``: ``value`` is the read data (READ; sent
    as 0 unless the status is OKAY) or the irq level (IRQ)."""
    status = Status(status)
    if status == Status.BAD_OPCODE:
        return bytes([status])
    opcode = Opcode(opcode)
    if opcode == Opcode.READ:
        _check_word("Data", value, DATA_BITS)
        return bytes([status]) + (value if status == Status.OKAY else 0).to_bytes(DATA_BYTES, BYTE_ORDER)
    if opcode == Opcode.IRQ:
        return bytes([status, int(bool(value))])
    return bytes([status])


def decode_reply(opcode: Opcode, reply: bytes) -> tuple[int, int | None]:
    """``(status byte, value)`` of a complete reply to ``opcode``: the read data (READ), the irq
    level (IRQ) or ``None`` (WRITE). The status byte is returned as is, known or not."""
    opcode = Opcode(opcode)
    if len(reply) != REPLY_LENGTH[opcode]:
        raise ValueError(f"{opcode.name} reply must be {REPLY_LENGTH[opcode]} bytes, not {len(reply)}")
    if opcode == Opcode.READ:
        return reply[0], int.from_bytes(reply[1:], BYTE_ORDER)
    if opcode == Opcode.IRQ:
        return reply[0], reply[1]
    return reply[0], None

