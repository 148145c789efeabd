"""The UART bus bridge (hdl/soc/uart_bridge.py): the host side is a bit-level UART model driving the
rx pin and decoding the tx pin; the bus side is a recording AXI4-Lite subordinate that can answer
errors and stalls at random (fixed seeds). Replies are predicted from the protocol definition."""

import random

import pytest
from amaranth.back import verilog

from virtio_gpio.hdl.axi import RESP_DECERR, RESP_OKAY, RESP_SLVERR
from virtio_gpio.hdl.soc import bridge_protocol as bp
from virtio_gpio.hdl.soc.uart_bridge import UartBusBridge
from soc_sim import (LiteSubordinate, assert_rejected, idle, receive_bytes, run, send_byte, send_bytes,
                     wait_until)

DIVISOR = 4
BYTE_CYCLES = bp.BITS_PER_BYTE * DIVISOR
TIMEOUT_CYCLES = bp.FRAME_TIMEOUT_BITS * DIVISOR
STALL = 0.3


def bridge_bench(host, *, seed=1, stall=STALL, responses=None, mem=None, irq=0):
    """Run ``host(ctx, dut, replies)`` against a bridge whose bus is a ``LiteSubordinate``; return
    that subordinate (its log and memory) and the reply bytes the host received."""
    dut = UartBusBridge(DIVISOR)
    sub = LiteSubordinate(dut.bus, rng=random.Random(seed), stall=stall, responses=responses)
    sub.mem.update(mem or {})
    replies = []

    async def host_tb(ctx):
        ctx.set(dut.irq, irq)
        await idle(ctx, dut.rx, 2 * BYTE_CYCLES)
        await host(ctx, dut, replies)
        # Nothing more may come: wait out a whole reply's worth of line time.
        settled = len(replies)
        await ctx.tick().repeat((bp.MAX_REPLY_LENGTH + 1) * BYTE_CYCLES)
        assert len(replies) == settled, f"unexpected extra reply bytes {replies[settled:]}"

    async def line_tb(ctx):
        await receive_bytes(ctx, dut.tx, DIVISOR, replies)

    run(dut, host_tb, background=[sub.run, line_tb])
    return sub, bytes(replies)


async def transact(ctx, dut, replies, frame, reply_length):
    """Send one frame and wait for its reply."""
    expected = len(replies) + reply_length
    await send_bytes(ctx, dut.rx, frame, DIVISOR)
    await wait_until(ctx, lambda: len(replies) >= expected, 20 * BYTE_CYCLES, "the reply")


def test_read_replies_status_then_the_word_little_endian():
    async def host(ctx, dut, replies):
        await transact(ctx, dut, replies, bp.encode_read(0x40001000), 5)

    sub, replies = bridge_bench(host, mem={0x40001000: 0x12345678})
    assert sub.log == [("R", 0x40001000)]
    assert replies == bytes([0x00, 0x78, 0x56, 0x34, 0x12])


def test_frames_are_byte_exact():
    assert bp.encode_read(0x40001000) == b"R\x00\x10\x00\x40"
    assert bp.encode_write(0x04, 0xA1B2C3D4) == b"W\x04\x00\x00\x00\xD4\xC3\xB2\xA1"
    assert bp.encode_irq() == b"I"


def test_write_is_one_full_word_access():
    async def host(ctx, dut, replies):
        await transact(ctx, dut, replies, bp.encode_write(0x70, 0xCAFEF00D), 1)

    sub, replies = bridge_bench(host)
    assert sub.log == [("W", 0x70, 0xCAFEF00D, 0b1111)]
    assert sub.mem == {0x70: 0xCAFEF00D}
    assert replies == bytes([RESP_OKAY])


def test_irq_reports_the_line_level_without_a_bus_access():
    async def host(ctx, dut, replies):
        await transact(ctx, dut, replies, bp.encode_irq(), 2)
        ctx.set(dut.irq, 1)
        await transact(ctx, dut, replies, bp.encode_irq(), 2)
        ctx.set(dut.irq, 0)
        await transact(ctx, dut, replies, bp.encode_irq(), 2)

    sub, replies = bridge_bench(host)
    assert sub.log == []
    assert replies == bytes([RESP_OKAY, 0, RESP_OKAY, 1, RESP_OKAY, 0])


def test_error_responses_become_the_status_byte_and_read_data_is_zero():
    async def host(ctx, dut, replies):
        await transact(ctx, dut, replies, bp.encode_read(0x10), 5)
        await transact(ctx, dut, replies, bp.encode_read(0x14), 5)
        await transact(ctx, dut, replies, bp.encode_write(0x10, 0x11111111), 1)
        await transact(ctx, dut, replies, bp.encode_write(0x14, 0x22222222), 1)
        await transact(ctx, dut, replies, bp.encode_read(0x18), 5)

    sub, replies = bridge_bench(host, responses={0x10: RESP_SLVERR, 0x14: RESP_DECERR},
                                mem={0x10: 0x5555AAAA, 0x18: 0x01020304})
    assert replies == (bytes([RESP_SLVERR, 0, 0, 0, 0]) + bytes([RESP_DECERR, 0, 0, 0, 0])
                       + bytes([RESP_SLVERR]) + bytes([RESP_DECERR])
                       + bytes([RESP_OKAY, 0x04, 0x03, 0x02, 0x01]))
    assert sub.mem == {0x10: 0x5555AAAA, 0x18: 0x01020304}  # error writes changed nothing


def test_unknown_opcodes_get_one_bad_opcode_byte_and_nothing_else():
    unknown = [0x00, 0xFF, 0x72, 0x01]  # 0x72 is 'r': opcodes are case-sensitive

    async def host(ctx, dut, replies):
        for opcode in unknown:
            await transact(ctx, dut, replies, bytes([opcode]), 1)
        await transact(ctx, dut, replies, bp.encode_read(0x8), 5)

    sub, replies = bridge_bench(host, mem={0x8: 0x89ABCDEF})
    assert set(unknown).isdisjoint(set(bp.Opcode))
    assert replies == bytes([0xFF] * len(unknown)) + bytes([0, 0xEF, 0xCD, 0xAB, 0x89])
    assert sub.log == [("R", 0x8)]


def test_a_partial_frame_is_dropped_after_the_timeout_and_the_next_frame_works():
    async def host(ctx, dut, replies):
        await send_bytes(ctx, dut.rx, bp.encode_write(0x20, 0x12345678)[:6], DIVISOR)
        await idle(ctx, dut.rx, TIMEOUT_CYCLES + BYTE_CYCLES)
        assert replies == []
        await transact(ctx, dut, replies, bp.encode_read(0x20), 5)

    sub, replies = bridge_bench(host, mem={0x20: 0x0BADF00D})
    assert sub.log == [("R", 0x20)]
    assert replies == bytes([0, 0x0D, 0xF0, 0xAD, 0x0B])


def test_a_pause_shorter_than_the_timeout_keeps_the_frame():
    frame = bp.encode_write(0x24, 0x76543210)
    pause = (bp.FRAME_TIMEOUT_BITS - 2 * bp.BITS_PER_BYTE) * DIVISOR

    async def host(ctx, dut, replies):
        await send_bytes(ctx, dut.rx, frame[:3], DIVISOR)
        await idle(ctx, dut.rx, pause)
        await transact(ctx, dut, replies, frame[3:], 1)

    sub, replies = bridge_bench(host)
    assert sub.log == [("W", 0x24, 0x76543210, 0b1111)]
    assert replies == bytes([RESP_OKAY])


def test_a_framing_error_drops_the_frame_and_the_bytes_after_it_until_the_line_is_quiet():
    frame = bp.encode_write(0x30, 0x57575757)  # its data bytes look like WRITE opcodes

    async def host(ctx, dut, replies):
        await send_bytes(ctx, dut.rx, frame[:2], DIVISOR)
        await send_byte(ctx, dut.rx, frame[2], DIVISOR, stop=0)
        await send_bytes(ctx, dut.rx, frame[3:], DIVISOR)
        await idle(ctx, dut.rx, TIMEOUT_CYCLES + BYTE_CYCLES)
        assert replies == []
        await transact(ctx, dut, replies, bp.encode_irq(), 2)

    sub, replies = bridge_bench(host, irq=1)
    assert sub.log == []
    assert replies == bytes([RESP_OKAY, 1])


def test_back_to_back_frames_without_waiting_for_replies():
    frames = [bp.encode_write(0x100, 0xA0A0A0A0), bp.encode_read(0x100), bp.encode_irq(),
              bytes([0x00]), bp.encode_write(0x104, 0x0000FFFF), bp.encode_read(0x104),
              bp.encode_read(0x108)]

    async def host(ctx, dut, replies):
        await send_bytes(ctx, dut.rx, b"".join(frames), DIVISOR)
        await wait_until(ctx, lambda: len(replies) >= 1 + 5 + 2 + 1 + 1 + 5 + 5,
                         30 * BYTE_CYCLES, "all replies")

    sub, replies = bridge_bench(host, responses={0x108: RESP_DECERR})
    assert sub.log == [("W", 0x100, 0xA0A0A0A0, 0b1111), ("R", 0x100), ("W", 0x104, 0x0000FFFF, 0b1111),
                       ("R", 0x104), ("R", 0x108)]
    assert replies == (bytes([0]) + bytes([0, 0xA0, 0xA0, 0xA0, 0xA0]) + bytes([0, 0]) + bytes([0xFF])
                       + bytes([0]) + bytes([0, 0xFF, 0xFF, 0, 0]) + bytes([RESP_DECERR, 0, 0, 0, 0]))


def test_a_host_that_floods_the_buffer_loses_frames_but_not_the_bridge():
    """IRQ frames are 1 byte in, 2 bytes out: sent back to back they overrun the receive buffer."""
    flood = bp.encode_irq() * (3 * bp.RX_BUFFER_BYTES)
    irq_reply = bp.encode_reply(bp.Opcode.IRQ, bp.Status.OKAY, 1)
    check = bp.encode_read(0x44)

    async def host(ctx, dut, replies):
        await send_bytes(ctx, dut.rx, flood, DIVISOR)
        # Long enough for the replies to what was buffered to go out, and for the timeout.
        await idle(ctx, dut.rx, (bp.RX_BUFFER_BYTES + 2) * len(irq_reply) * BYTE_CYCLES + TIMEOUT_CYCLES)
        before = len(replies)
        assert bp.RX_BUFFER_BYTES <= before // len(irq_reply) < len(flood)
        assert bytes(replies) == irq_reply * (before // len(irq_reply))
        await transact(ctx, dut, replies, check, 5)
        assert bytes(replies[before:]) == bytes([RESP_OKAY, 4, 3, 2, 1])

    bridge_bench(host, mem={0x44: 0x01020304}, irq=1)


def reference_replies(stream: bytes, mem: dict[int, int]) -> bytes:
    """What the protocol says a gapless ``stream`` gets back (irq low, every access OKAY); a
    trailing partial frame gets nothing. Applies the writes to ``mem``."""
    out = b""
    i = 0
    while i < len(stream):
        if stream[i] not in set(bp.Opcode):
            out += bytes([bp.STATUS_BAD_OPCODE])
            i += 1
            continue
        opcode = bp.Opcode(stream[i])
        n = bp.REQUEST_LENGTH[opcode]
        if i + n > len(stream):
            break
        _, addr, data = bp.decode_request(stream[i:i + n])
        if opcode == bp.Opcode.WRITE:
            mem[addr] = data
        out += bp.encode_reply(opcode, bp.Status.OKAY, mem.get(addr, 0) if addr is not None else 0)
        i += n
    return out


@pytest.mark.parametrize("seed", [7, 8])
def test_random_garbage_never_wedges_the_bridge(seed):
    rng = random.Random(seed)
    # Opcodes are made common so that real frames, cut ones and garbage all occur.
    pool = list(bp.Opcode) * 8 + list(range(256))
    garbage = bytes(rng.choice(pool) for _ in range(48))
    check = bp.encode_read(0x0)
    model = {}
    expected = reference_replies(garbage, model) + reference_replies(check, model)

    async def host(ctx, dut, replies):
        await send_bytes(ctx, dut.rx, garbage, DIVISOR)
        await idle(ctx, dut.rx, TIMEOUT_CYCLES + BYTE_CYCLES)
        await send_bytes(ctx, dut.rx, check, DIVISOR)
        await wait_until(ctx, lambda: len(replies) >= len(expected), 40 * BYTE_CYCLES, "replies")

    sub, replies = bridge_bench(host, seed=seed)
    assert replies == expected
    assert sub.mem == {a: v for a, v in model.items()}


def test_divisor_is_checked():
    assert_rejected(lambda: UartBusBridge(2), match="divisor")


def test_converts_to_verilog():
    verilog.convert(UartBusBridge(104))
