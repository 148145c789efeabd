"""The host's bridge client (host/bridge_client.py) against fake byte ports: a fake bridge that
answers frames the way the protocol says, and scripted ports for timeouts and malformed replies."""

import pytest

from virtio_gpio.hdl.soc import bridge_protocol as bp
from virtio_gpio.host.bridge_client import BridgeClient, BridgeError

WORD = 4


class FakeBridge:
    """A byte port that behaves like the board: a sparse byte memory (0 where never written), per
    word address error responses, an irq level; logs the accesses it performed."""

    def __init__(self, responses=None, irq=False):
        self.mem = {}
        self.responses = dict(responses or {})
        self.irq = irq
        self.log = []
        self.pending = bytearray()
        self.out = bytearray()

    def word(self, addr):
        return int.from_bytes(bytes(self.mem.get(addr + i, 0) for i in range(WORD)), "little")

    def write(self, data):
        self.pending += data
        while self.pending:
            opcode = self.pending[0]
            if opcode not in set(bp.Opcode):
                self.out += bytes([bp.STATUS_BAD_OPCODE])
                del self.pending[0]
                continue
            n = bp.REQUEST_LENGTH[bp.Opcode(opcode)]
            if len(self.pending) < n:
                return
            frame = bytes(self.pending[:n])
            del self.pending[:n]
            opcode, addr, data = bp.decode_request(frame)
            status = self.responses.get(addr, bp.Status.OKAY)
            if opcode == bp.Opcode.READ:
                self.log.append(("R", addr))
                self.out += bp.encode_reply(opcode, status, self.word(addr))
            elif opcode == bp.Opcode.WRITE:
                self.log.append(("W", addr, data))
                if status == bp.Status.OKAY:
                    for i in range(WORD):
                        self.mem[addr + i] = data >> (8 * i) & 0xFF
                self.out += bp.encode_reply(opcode, status)
            else:
                self.out += bp.encode_reply(opcode, bp.Status.OKAY, self.irq)

    def read(self, n):
        data = bytes(self.out[:n])
        del self.out[:n]
        return data


class ScriptedPort:
    """Records what is written; ``read`` hands out the scripted reply bytes (fewer at the end:
    a timeout)."""

    def __init__(self, reply: bytes):
        self.reply = bytearray(reply)
        self.written = bytearray()

    def write(self, data):
        self.written += data

    def read(self, n):
        data = bytes(self.reply[:n])
        del self.reply[:n]
        return data


def test_wire_bytes_of_each_access():
    port = ScriptedPort(bytes([0, 0x44, 0x33, 0x22, 0x11, 0, 0, 1]))
    client = BridgeClient(port)
    assert client.read32(0x40000010) == 0x11223344
    client.write32(0x8, 0xDEADBEEF)
    assert client.irq() is True
    assert bytes(port.written) == (b"R\x10\x00\x00\x40" + b"W\x08\x00\x00\x00\xEF\xBE\xAD\xDE" + b"I")
    assert port.reply == b""


def test_round_trip_through_a_fake_bridge():
    bridge = FakeBridge(irq=False)
    client = BridgeClient(bridge)
    client.write32(0x100, 0x01234567)
    assert client.read32(0x100) == 0x01234567
    assert client.read32(0x104) == 0
    assert client.irq() is False
    bridge.irq = True
    assert client.irq() is True
    assert bridge.log == [("W", 0x100, 0x01234567), ("R", 0x100), ("R", 0x104)]


@pytest.mark.parametrize("addr, n", [(0x1000, 8), (0x1003, 6), (0x1001, 2), (0x1002, 1), (0x1000, 0)])
def test_read_bytes_uses_aligned_words(addr, n):
    bridge = FakeBridge()
    for a in range(0x1000, 0x1010):
        bridge.mem[a] = a & 0xFF ^ 0xA5
    data = BridgeClient(bridge).read_bytes(addr, n)
    assert data == bytes((a & 0xFF) ^ 0xA5 for a in range(addr, addr + n))
    first, end = addr // WORD * WORD, -(-(addr + n) // WORD) * WORD
    assert bridge.log == [("R", a) for a in range(first, end, WORD)]


@pytest.mark.parametrize("addr, data", [
    (0x2000, bytes(range(1, 9))),  # whole words: no reads
    (0x2001, b"\xAA\xBB"),  # inside one word
    (0x2003, b"\x01\x02\x03\x04\x05\x06"),  # a tail, a whole word, a head
    (0x2002, b""),
])
def test_write_bytes_changes_only_its_bytes_and_reads_only_partial_words(addr, data):
    bridge = FakeBridge()
    before = {a: (a * 7) & 0xFF for a in range(0x1FF8, 0x2018)}
    bridge.mem.update(before)
    BridgeClient(bridge).write_bytes(addr, data)
    expected = dict(before)
    for i, b in enumerate(data):
        expected[addr + i] = b
    assert bridge.mem == expected
    words = range(addr // WORD * WORD, -(-(addr + len(data)) // WORD) * WORD, WORD)
    partial = [a for a in words if a < addr or a + WORD > addr + len(data)]
    assert [e for e in bridge.log if e[0] == "R"] == [("R", a) for a in partial]
    assert [e[1] for e in bridge.log if e[0] == "W"] == list(words)


@pytest.mark.parametrize("status", [bp.Status.SLVERR, bp.Status.DECERR])
def test_error_responses_raise_naming_address_and_response(status):
    bridge = FakeBridge(responses={0x30: status, 0x34: status})
    client = BridgeClient(bridge)
    with pytest.raises(BridgeError, match=f"0x00000030.*{status.name}"):
        client.read32(0x30)
    with pytest.raises(BridgeError, match=f"0x00000034.*{status.name}"):
        client.write32(0x34, 5)
    # The whole error reply was consumed: the next access is in step.
    client.write32(0x38, 0x99)
    assert client.read32(0x38) == 0x99
    with pytest.raises(BridgeError, match=status.name):
        client.write_bytes(0x31, b"\x00")  # the read of read-modify-write fails


@pytest.mark.parametrize("reply", [b"", b"\x00\x11\x22", b"\x00"])
def test_a_short_read_reply_is_a_timeout(reply):
    with pytest.raises(BridgeError, match="timeout"):
        BridgeClient(ScriptedPort(reply)).read32(0)


def test_a_missing_write_or_irq_reply_is_a_timeout():
    with pytest.raises(BridgeError, match="timeout"):
        BridgeClient(ScriptedPort(b"")).write32(0, 0)
    with pytest.raises(BridgeError, match="timeout"):
        BridgeClient(ScriptedPort(b"\x00")).irq()


@pytest.mark.parametrize("status", [0x01, 0x04, 0x52, 0xFE])
def test_an_unknown_status_byte_raises(status):
    assert status not in set(bp.Status)
    with pytest.raises(BridgeError, match=f"unknown status byte 0x{status:02X}"):
        BridgeClient(ScriptedPort(bytes([status, 0, 0, 0, 0]))).read32(0)


def test_a_bad_opcode_reply_raises():
    with pytest.raises(BridgeError, match="did not recognize opcode 0x57"):
        BridgeClient(ScriptedPort(bytes([0xFF]))).write32(0, 0)


def test_an_irq_level_other_than_0_or_1_raises():
    with pytest.raises(BridgeError, match="level byte 0x02"):
        BridgeClient(ScriptedPort(bytes([0, 2]))).irq()


@pytest.mark.parametrize("call", [
    lambda c: c.read32(0x2), lambda c: c.read32(-4), lambda c: c.read32(1 << 32),
    lambda c: c.write32(0x1, 0), lambda c: c.write32(0, 1 << 32), lambda c: c.write32(0, -1),
    lambda c: c.read_bytes(0xFFFF_FFFE, 4), lambda c: c.write_bytes(-1, b"\x00"),
])
def test_arguments_outside_the_protocol_are_rejected_before_sending(call):
    port = ScriptedPort(b"")
    with pytest.raises(ValueError):
        call(BridgeClient(port))
    assert port.written == b""


def test_protocol_helpers_round_trip_and_reject_bad_frames():
    assert bp.decode_request(bp.encode_write(0x12345678, 0x9ABCDEF0)) == (bp.Opcode.WRITE, 0x12345678,
                                                                          0x9ABCDEF0)
    assert bp.decode_request(bp.encode_read(0xFFFFFFFC)) == (bp.Opcode.READ, 0xFFFFFFFC, None)
    assert bp.decode_request(bp.encode_irq()) == (bp.Opcode.IRQ, None, None)
    assert bp.decode_reply(bp.Opcode.READ, bp.encode_reply(bp.Opcode.READ, bp.Status.SLVERR, 0x1234)) \
        == (bp.Status.SLVERR, 0)
    assert bp.encode_reply(bp.Opcode.READ, bp.Status.BAD_OPCODE) == b"\xFF"
    assert [bp.REQUEST_LENGTH[o] for o in bp.Opcode] == [5, 9, 1]
    assert [bp.REPLY_LENGTH[o] for o in bp.Opcode] == [5, 1, 2]
    with pytest.raises(ValueError, match="Unknown opcode"):
        bp.decode_request(b"\x00")
    with pytest.raises(ValueError, match="must be 5 bytes"):
        bp.decode_request(b"R\x00\x00")
    assert len(set(bp.Opcode)) == 3 and 0 not in set(bp.Opcode)
    assert set(bp.Opcode).isdisjoint(set(bp.Status))
