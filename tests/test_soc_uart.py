"""The 8N1 UART of the board builds (hdl/soc/uart.py): every byte value through TX and back through
RX, the TX waveform bit for bit, RX against a bit-level model, framing errors, divisor checks."""

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module

from virtio_gpio.hdl.soc.uart import UartRx, UartTx
from soc_sim import assert_rejected, decode_samples, frame_bits, idle, record_pin, run, send_byte


async def push(ctx, sink, data):
    """Offer each byte of ``data`` on a stream until it is taken."""
    for byte in data:
        ctx.set(sink.valid, 1)
        ctx.set(sink.payload, byte)
        while True:
            _, _, ready = await ctx.tick().sample(sink.ready)
            if ready:
                break
    ctx.set(sink.valid, 0)


async def collect(ctx, source, out, count, limit):
    """Take bytes off a stream until ``count`` have come or ``limit`` cycles have passed."""
    ctx.set(source.ready, 1)
    for _ in range(limit):
        _, _, valid, payload = await ctx.tick().sample(source.valid, source.payload)
        if valid:
            out.append(payload)
            if len(out) == count:
                return


@pytest.mark.parametrize("divisor", [4, 7])
def test_loopback_of_every_byte_value(divisor):
    m = Module()
    m.submodules.tx = tx = UartTx(divisor)
    m.submodules.rx = rx = UartRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    data = list(range(256))
    got = []

    async def sender(ctx):
        await push(ctx, tx.data, data)

    async def receiver(ctx):
        await collect(ctx, rx.data, got, len(data), limit=(len(data) + 2) * 10 * divisor)

    run(m, sender, receiver)
    assert got == data


@pytest.mark.parametrize("divisor", [4, 5])
def test_tx_waveform_is_8n1_with_exact_bit_times(divisor):
    tx = UartTx(divisor)
    data = [0x00, 0xFF, 0xA5, 0x3C]
    samples = []

    async def sender(ctx):
        await ctx.tick().repeat(3)
        await push(ctx, tx.data, data)
        await ctx.tick().repeat(12 * divisor)

    async def recorder(ctx):
        await record_pin(ctx, tx.tx, samples)

    run(tx, sender, background=[recorder])
    start = samples.index(0)
    assert set(samples[:start]) == {1}  # idle high until the first start bit
    expected = [level for byte in data for level in frame_bits(byte) for _ in range(divisor)]
    assert samples[start:start + len(expected)] == expected  # back to back, each bit `divisor` long
    assert set(samples[start + len(expected):]) == {1}
    assert decode_samples(samples, divisor) == data


@pytest.mark.parametrize("divisor", [4, 9])
def test_rx_decodes_a_bit_level_model(divisor):
    rx = UartRx(divisor)
    data = [0x55, 0x01, 0x80, 0xFE]
    got = []

    async def line(ctx):
        await idle(ctx, rx.rx, 5)
        for byte in data:
            await send_byte(ctx, rx.rx, byte, divisor)
        await idle(ctx, rx.rx, 4 * divisor)

    async def receiver(ctx):
        await collect(ctx, rx.data, got, len(data), limit=20 * 10 * divisor)

    run(rx, line, receiver)
    assert got == data


def test_framing_error_is_reported_and_the_byte_dropped():
    divisor = 4
    rx = UartRx(divisor)
    got = []
    errors = []

    async def line(ctx):
        await idle(ctx, rx.rx, 5)
        await send_byte(ctx, rx.rx, 0x5A, divisor, stop=0)
        await idle(ctx, rx.rx, 3 * divisor)
        await send_byte(ctx, rx.rx, 0xC3, divisor)
        await idle(ctx, rx.rx, 3 * divisor)
        await send_byte(ctx, rx.rx, 0x0F, divisor, stop=0)
        # Held low like a break for three characters: still one error.
        await ctx.tick().repeat(30 * divisor)
        await idle(ctx, rx.rx, 3 * divisor)
        await send_byte(ctx, rx.rx, 0x42, divisor)
        await idle(ctx, rx.rx, 3 * divisor)

    async def monitor(ctx):
        ctx.set(rx.data.ready, 1)
        cycle = 0
        while True:
            _, _, valid, payload, error = await ctx.tick().sample(
                rx.data.valid, rx.data.payload, rx.framing_error)
            if valid:
                got.append(payload)
            if error:
                errors.append(cycle)
            cycle += 1

    run(rx, line, background=[monitor])
    assert got == [0xC3, 0x42]
    assert len(errors) == 2


@pytest.mark.parametrize("cls", [UartRx, UartTx])
@pytest.mark.parametrize("divisor", [3, 0, -4, 4.0, True])
def test_divisor_below_four_or_not_an_integer_is_rejected(cls, divisor):
    assert_rejected(lambda: cls(divisor), match=r"divisor .* must be an integer >= 4")


@pytest.mark.parametrize("cls", [UartRx, UartTx])
def test_converts_to_verilog(cls):
    verilog.convert(cls(4))
