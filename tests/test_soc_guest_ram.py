"""The guest RAM (hdl/soc/guest_ram.py): DMA bursts with byte strobes against a bytearray model,
the host port, out-of-range bursts (DECERR, nothing written, no wrap-around), unsupported bursts
(SLVERR on every beat, all beats consumed), both ports busy at once, and round-robin fairness."""

import random
import re

import pytest
from amaranth.back import verilog

from virtio_gpio.hdl.axi import BURST_INCR, RESP_DECERR, RESP_OKAY, RESP_SLVERR
from virtio_gpio.hdl.soc.guest_ram import GuestRam
from soc_sim import LiteManager, assert_rejected, run

SIZE = 1024
BURST_FIXED = 0b00
BURST_WRAP = 0b10
MAX_AXI4_BEATS = 256


class DmaManager:
    """An AXI4 burst manager in a testbench: AW and the first W beat offered together, valid and
    ready dropped at random between beats with probability ``stall``."""

    def __init__(self, bus, *, rng, stall=0.0):
        self.bus = bus
        self.rng = rng
        self.stall = stall
        self.word = len(bus.wdata) // 8
        self.full_size = self.word.bit_length() - 1

    def _go(self):
        return self.rng.random() >= self.stall

    async def write(self, ctx, addr, beats, *, burst=BURST_INCR, size=None):
        """Write ``beats`` (list of (data, strb)) as one burst; return (bresp, W handshakes)."""
        bus = self.bus
        ctx.set(bus.awaddr, addr)
        ctx.set(bus.awlen, len(beats) - 1)
        ctx.set(bus.awsize, self.full_size if size is None else size)
        ctx.set(bus.awburst, burst)
        ctx.set(bus.awvalid, 1)
        aw_pending = True
        sent = 0
        shown = False
        while aw_pending or sent < len(beats):
            if sent < len(beats) and not shown:
                shown = self._go()
                data, strb = beats[sent]
                ctx.set(bus.wdata, data)
                ctx.set(bus.wstrb, strb)
                ctx.set(bus.wlast, sent == len(beats) - 1)
            ctx.set(bus.wvalid, int(shown))
            _, _, awready, wready = await ctx.tick().sample(bus.awready, bus.wready)
            if aw_pending and awready:
                aw_pending = False
                ctx.set(bus.awvalid, 0)
            if shown and wready:
                sent += 1
                shown = False
        ctx.set(bus.wvalid, 0)
        while True:
            go = self._go()
            ctx.set(bus.bready, int(go))
            _, _, bvalid, bresp = await ctx.tick().sample(bus.bvalid, bus.bresp)
            if bvalid and go:
                ctx.set(bus.bready, 0)
                return bresp

    async def read(self, ctx, addr, length, *, burst=BURST_INCR, size=None):
        """Read a burst of ``length`` beats; return [(data, resp, last)], one per R handshake up
        to and including the first with RLAST (so a missing or early RLAST shows)."""
        bus = self.bus
        ctx.set(bus.araddr, addr)
        ctx.set(bus.arlen, length - 1)
        ctx.set(bus.arsize, self.full_size if size is None else size)
        ctx.set(bus.arburst, burst)
        ctx.set(bus.arvalid, 1)
        while not (await ctx.tick().sample(bus.arready))[2]:
            pass
        ctx.set(bus.arvalid, 0)
        beats = []
        while True:
            go = self._go()
            ctx.set(bus.rready, int(go))
            _, _, rvalid, rdata, rresp, rlast = await ctx.tick().sample(
                bus.rvalid, bus.rdata, bus.rresp, bus.rlast)
            if rvalid and go:
                beats.append((rdata, rresp, rlast))
                if rlast or len(beats) > length:
                    ctx.set(bus.rready, 0)
                    return beats


class Model:
    """The RAM as bytes, written by strobe."""

    def __init__(self, size, word):
        self.bytes = bytearray(size)
        self.word = word

    def write(self, addr, data, strb):
        base = addr - addr % self.word
        for i in range(self.word):
            if strb >> i & 1:
                self.bytes[base + i] = data >> (8 * i) & 0xFF

    def read(self, addr):
        base = addr - addr % self.word
        return int.from_bytes(self.bytes[base:base + self.word], "little")


def bench(*bodies, data_width=32, seed=5, stall=0.3):
    """Run each ``body(ctx, dma, host, model)`` as its own testbench on one GuestRam."""
    dut = GuestRam(SIZE, data_width=data_width)
    rng = random.Random(seed)
    dma = DmaManager(dut.dma, rng=rng, stall=stall)
    host = LiteManager(dut.host, rng=rng, stall=stall)
    model = Model(SIZE, data_width // 8)

    def testbench(body):
        async def tb(ctx):
            await body(ctx, dma, host, model)
        return tb

    run(dut, *map(testbench, bodies))
    return model


async def dump(ctx, host, model):
    """Every word of the RAM, read through the host port, equals the model."""
    for addr in range(0, SIZE, model.word):
        assert await host.read(ctx, addr) == (model.read(addr), RESP_OKAY), hex(addr)


@pytest.mark.parametrize("data_width", [32, 64])
def test_dma_bursts_with_strobes_read_back_through_both_ports(data_width):
    word = data_width // 8
    rng = random.Random(11)
    bursts = [(0x000, 1), (0x010, 4), (0x100, 16), (0x3FC - 3 * word, 4), (0x0, SIZE // word)]
    bursts = [(addr - addr % word, n) for addr, n in bursts if n <= MAX_AXI4_BEATS]

    async def body(ctx, dma, host, model):
        for addr, n in bursts:
            beats = [(rng.getrandbits(data_width), rng.getrandbits(word)) for _ in range(n)]
            beats[0] = (beats[0][0], (1 << word) - 1)  # at least one full word per burst
            assert await dma.write(ctx, addr, beats) == RESP_OKAY
            for i, (data, strb) in enumerate(beats):
                model.write(addr + i * word, data, strb)
            got = await dma.read(ctx, addr, n)
            assert got == [(model.read(addr + i * word), RESP_OKAY, i == n - 1) for i in range(n)]
        await dump(ctx, host, model)

    bench(body, data_width=data_width)


def test_host_port_writes_with_strobes_and_dma_sees_them():
    async def body(ctx, dma, host, model):
        assert await host.write(ctx, 0x40, 0x11223344) == RESP_OKAY
        assert await host.write(ctx, 0x40, 0xAABBCCDD, 0b1010) == RESP_OKAY
        assert await host.write(ctx, 0x3FC, 0xFFFFFFFF, 0b0001) == RESP_OKAY
        assert await host.read(ctx, 0x40) == (0xAA22CC44, RESP_OKAY)
        assert await dma.read(ctx, 0x3F8, 2) == [(0, RESP_OKAY, False), (0xFF, RESP_OKAY, True)]
        assert await dma.read(ctx, 0x40, 1) == [(0xAA22CC44, RESP_OKAY, True)]

    bench(body)


@pytest.mark.parametrize("addr, n", [
    (SIZE - 4, 2),  # starts inside, its second beat is past the end
    (SIZE, 1),  # would wrap to 0 if the address were cut to the RAM's width
    (SIZE + 0x40, 4),
    (0x8000_0000, 1),
    (SIZE - 16, 16),
])
def test_out_of_range_bursts_get_decerr_and_write_nothing(addr, n):
    async def body(ctx, dma, host, model):
        # Fill the RAM with a pattern first, so that a stray write would show.
        for a in range(0, SIZE, 4):
            value = (a * 0x01010101 + 0x5A) & 0xFFFFFFFF
            assert await dma.write(ctx, a, [(value, 0xF)]) == RESP_OKAY
            model.write(a, value, 0xF)
        assert await dma.write(ctx, addr, [(0xFFFFFFFF, 0xF)] * n) == RESP_DECERR
        assert await dma.read(ctx, addr, n) == [(0, RESP_DECERR, i == n - 1) for i in range(n)]
        await dump(ctx, host, model)

    bench(body, stall=0.1)


@pytest.mark.parametrize("burst, size", [(BURST_FIXED, 2), (BURST_WRAP, 2), (0b11, 2), (BURST_INCR, 1),
                                         (BURST_INCR, 0), (BURST_INCR, 3)])
def test_unsupported_bursts_get_slverr_on_every_beat_and_write_nothing(burst, size):
    n = 4

    async def body(ctx, dma, host, model):
        assert await dma.write(ctx, 0x20, [(0xFFFFFFFF, 0xF)] * n, burst=burst, size=size) == RESP_SLVERR
        assert await dma.read(ctx, 0x20, n, burst=burst, size=size) == \
            [(0, RESP_SLVERR, i == n - 1) for i in range(n)]
        # All its beats were consumed: the next burst is understood normally.
        assert await dma.write(ctx, 0x24, [(0x12345678, 0xF)]) == RESP_OKAY
        model.write(0x24, 0x12345678, 0xF)
        await dump(ctx, host, model)

    bench(body)


def test_both_ports_busy_at_once_each_get_their_data():
    rng = random.Random(21)
    dma_region, host_region = range(0, SIZE // 2, 64), range(SIZE // 2, SIZE, 4)
    host_values = {a: rng.getrandbits(32) for a in host_region}

    async def dma_side(ctx, dma, host, model):
        for addr in dma_region:
            beats = [(rng.getrandbits(32), 0xF) for _ in range(16)]
            assert await dma.write(ctx, addr, beats) == RESP_OKAY
            assert await dma.read(ctx, addr, 16) == [(d, RESP_OKAY, i == 15) for i, (d, _) in enumerate(beats)]
            for i, (d, s) in enumerate(beats):
                model.write(addr + 4 * i, d, s)

    async def host_side(ctx, dma, host, model):
        for addr, value in host_values.items():
            assert await host.write(ctx, addr, value) == RESP_OKAY
            model.write(addr, value, 0xF)
        for addr, value in host_values.items():
            assert await host.read(ctx, addr) == (value, RESP_OKAY)

    model = bench(dma_side, host_side)
    assert all(model.read(a) == v for a, v in host_values.items())


def test_round_robin_neither_port_starves():
    """Both ports request back to back with no pauses; each completed transaction is logged. Every
    host transaction comes within a few DMA bursts of the previous one, and the other way round."""
    log = []
    done = {"host": False, "dma": False}
    count = 12

    async def dma_side(ctx, dma, host, model):
        i = 0
        while not done["host"] or i < count:
            if i % 2:
                await dma.read(ctx, 0x0, 16)
            else:
                await dma.write(ctx, 0x0, [(i, 0xF)] * 16)
            log.append("D")
            i += 1
        done["dma"] = True

    async def host_side(ctx, dma, host, model):
        i = 0
        while not done["dma"] or i < count:
            if i % 2:
                await host.read(ctx, 0x200)
            else:
                await host.write(ctx, 0x200, i)
            log.append("H")
            i += 1
            if i >= count:
                done["host"] = True

    bench(dma_side, host_side, stall=0.0)
    trace = "".join(log)
    # One host request waits at most for a DMA write and a DMA read (and the other host request,
    # which this manager never has at the same time); likewise for a DMA request.
    assert "DDD" not in trace and "HHH" not in trace, trace
    assert trace.count("D") >= count and trace.count("H") >= count


@pytest.mark.parametrize("size", [0, 32, 48, 1000, 1025])
def test_size_must_be_a_power_of_two_of_at_least_64(size):
    assert_rejected(lambda: GuestRam(size), match="power of two >= 64")


def test_dma_address_must_reach_the_whole_ram():
    assert_rejected(lambda: GuestRam(4096, addr_width=8), match="cannot reach")


@pytest.mark.parametrize("data_width", [32, 64])
def test_converts_to_verilog_with_one_memory_array(data_width):
    """One array of the whole RAM, so that synthesis can map it to block RAM."""
    text = verilog.convert(GuestRam(2048, data_width=data_width), emit_src=False)
    arrays = re.findall(r"^\s*reg \[(\d+):0\] \w+ \[(\d+):0\];", text, re.M)
    assert arrays == [(str(data_width - 1), str(2048 // (data_width // 8) - 1))]
