"""Simulation helpers for the tests of hdl/soc/: a bit-level 8N1 UART (drives a pin bit by bit and
decodes a pin's samples, written from the 8N1 definition and independent of ``hdl/soc/uart.py``),
AXI4-Lite manager and subordinate models for Amaranth async testbenches, and a check that a
constructor rejects its arguments."""

import gc
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from virtio_gpio.hdl.axi import RESP_OKAY

CLOCK_PERIOD = 1e-6
DATA_BITS = 8
IDLE = 1


def frame_bits(byte: int, *, stop: int = 1) -> list[int]:
    """The line levels of one 8N1 character: start bit 0, data LSB first, stop bit."""
    return [0] + [(byte >> i) & 1 for i in range(DATA_BITS)] + [stop]


async def send_byte(ctx, pin, byte: int, divisor: int, *, stop: int = 1) -> None:
    """Drive ``pin`` through one character, each bit for ``divisor`` cycles; leaves it at the stop
    level."""
    for bit in frame_bits(byte, stop=stop):
        ctx.set(pin, bit)
        await ctx.tick().repeat(divisor)


async def send_bytes(ctx, pin, data: bytes, divisor: int) -> None:
    for byte in data:
        await send_byte(ctx, pin, byte, divisor)


async def idle(ctx, pin, cycles: int) -> None:
    ctx.set(pin, IDLE)
    await ctx.tick().repeat(cycles)


def decode_samples(samples: list[int], divisor: int) -> list[int]:
    """Characters in a per-cycle record of a pin, sampled in the middle of each bit. Raises
    AssertionError for a character whose stop bit is low."""
    out = []
    i = 0
    while i < len(samples):
        if samples[i] == IDLE:
            i += 1
            continue
        mid = i + divisor // 2
        if mid + (DATA_BITS + 1) * divisor >= len(samples):
            break  # a character still going out when the record ends
        bits = [samples[mid + k * divisor] for k in range(DATA_BITS + 2)]
        assert bits[0] == 0, f"start bit at cycle {i} lasted under half a bit"
        assert bits[-1] == 1, f"character starting at cycle {i} has a low stop bit"
        out.append(sum(b << k for k, b in enumerate(bits[1:-1])))
        i = mid + (DATA_BITS + 1) * divisor  # the middle of the stop bit: look for the next edge
    return out


async def record_pin(ctx, pin, samples: list[int]) -> None:
    """Background testbench body: append the pin's level once per cycle, forever."""
    while True:
        samples.append(ctx.get(pin))
        await ctx.tick()


def run(dut, *testbenches, background=()):
    """Simulate ``dut`` until every testbench in ``testbenches`` has returned."""
    sim = Simulator(dut)
    sim.add_clock(CLOCK_PERIOD)
    for tb in testbenches:
        sim.add_testbench(tb)
    for tb in background:
        sim.add_testbench(tb, background=True)
    sim.run()


def assert_rejected(make, match: str) -> None:
    """``make()`` raises ValueError matching ``match``. The component it began to build is never
    elaborated; that is the point, so Amaranth's unused-elaboratable warning is silenced for it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ValueError, match=match):
            make()
        gc.collect()


async def receive_bytes(ctx, pin, divisor: int, out: list[int]) -> None:
    """Background testbench body: decode characters from ``pin`` into ``out`` as they arrive
    (sampling each bit in its middle), forever. A low stop bit fails the test."""
    while True:
        while ctx.get(pin) == IDLE:
            await ctx.tick()
        await ctx.tick().repeat(divisor // 2)  # the middle of the start bit
        assert ctx.get(pin) == 0, "start bit shorter than half a bit"
        byte = 0
        for k in range(DATA_BITS):
            await ctx.tick().repeat(divisor)
            byte |= ctx.get(pin) << k
        await ctx.tick().repeat(divisor)
        assert ctx.get(pin) == 1, f"low stop bit after 0x{byte:02X}"
        out.append(byte)


async def wait_until(ctx, condition, limit: int, what: str) -> None:
    """Tick until ``condition()`` holds; fail after ``limit`` cycles."""
    for _ in range(limit):
        if condition():
            return
        await ctx.tick()
    assert condition(), f"timed out waiting for {what}"


class LiteSubordinate:
    """An AXI4-Lite subordinate in a testbench: a word memory (``mem``, byte address -> word, 0 if
    absent) that records every access in ``log`` as ``("R", addr)`` or ``("W", addr, data, strb)``,
    answers the response in ``responses`` for an address (OKAY otherwise; an error write changes
    nothing and an error read returns ``ERROR_DATA``), and stalls each ready/valid at random with
    probability ``stall``. It also checks the manager's side of the handshake rules: once valid,
    a channel stays valid with the same payload until it is taken."""

    ERROR_DATA = 0xDEADBEEF

    def __init__(self, bus, *, rng, stall: float = 0.0, responses=None):
        self.bus = bus
        self.rng = rng
        self.stall = stall
        self.responses = dict(responses or {})
        self.mem = {}
        self.log = []

    def _go(self) -> int:
        return int(self.rng.random() >= self.stall)

    def _response(self, addr):
        return self.responses.get(addr, RESP_OKAY)

    async def run(self, ctx) -> None:
        bus = self.bus
        mask = (1 << len(bus.wdata)) - 1
        aw = w = None  # accepted write address / (data, strb), waiting for the other
        b = r = None  # pending responses: bresp / (rdata, rresp)
        held = {}  # channel -> payload offered last cycle and not taken
        show_b = show_r = False
        while True:
            ctx.set(bus.arready, int(r is None) & self._go())
            ctx.set(bus.awready, int(aw is None and b is None) & self._go())
            ctx.set(bus.wready, int(w is None and b is None) & self._go())
            # A response, once offered, stays offered until taken (AXI).
            show_b = b is not None and (show_b or self._go())
            show_r = r is not None and (show_r or self._go())
            ctx.set(bus.bvalid, int(show_b))
            ctx.set(bus.bresp, b if show_b else 0)
            ctx.set(bus.rvalid, int(show_r))
            ctx.set(bus.rdata, r[0] if show_r else 0)
            ctx.set(bus.rresp, r[1] if show_r else 0)
            (_, _, arvalid, arready, araddr, awvalid, awready, awaddr, wvalid, wready, wdata, wstrb,
             bready, rready) = await ctx.tick().sample(
                bus.arvalid, bus.arready, bus.araddr, bus.awvalid, bus.awready, bus.awaddr,
                bus.wvalid, bus.wready, bus.wdata, bus.wstrb, bus.bready, bus.rready)
            offered = {"ar": (arvalid, arready, araddr), "aw": (awvalid, awready, awaddr),
                       "w": (wvalid, wready, (wdata, wstrb))}
            for channel, (valid, ready, payload) in offered.items():
                if channel in held:
                    assert valid and payload == held[channel], \
                        f"{channel} changed or dropped before its handshake"
                    del held[channel]
                if valid and not ready:
                    held[channel] = payload
            if show_b and bready:
                b = None
            if show_r and rready:
                r = None
            if arvalid and arready:
                self.log.append(("R", araddr))
                resp = self._response(araddr)
                r = (self.mem.get(araddr, 0) if resp == RESP_OKAY else self.ERROR_DATA, resp)
            if awvalid and awready:
                aw = awaddr
            if wvalid and wready:
                w = (wdata, wstrb)
            if aw is not None and w is not None:
                self.log.append(("W", aw, *w))
                b = self._response(aw)
                if b == RESP_OKAY:
                    strobe_mask = sum(0xFF << (8 * i) for i in range(len(bus.wstrb)) if w[1] >> i & 1)
                    old = self.mem.get(aw, 0)
                    self.mem[aw] = (old & ~strobe_mask | w[0] & strobe_mask) & mask
                aw = w = None


class LiteManager:
    """An AXI4-Lite manager in a testbench: one access at a time, AW and W offered together, each
    valid and ready delayed at random with probability ``stall``."""

    def __init__(self, bus, *, rng, stall: float = 0.0):
        self.bus = bus
        self.rng = rng
        self.stall = stall

    async def _delay(self, ctx):
        while self.rng.random() < self.stall:
            await ctx.tick()

    async def _take(self, ctx, valid, ready, *payload):
        """Hold ``ready`` (randomly) until ``valid``; return the payload at the handshake."""
        while True:
            go = int(self.rng.random() >= self.stall)
            ctx.set(ready, go)
            _, _, v, *values = await ctx.tick().sample(valid, *payload)
            if v and go:
                ctx.set(ready, 0)
                return values

    async def read(self, ctx, addr: int) -> tuple[int, int]:
        """``(rdata, rresp)`` of a read of ``addr``."""
        bus = self.bus
        await self._delay(ctx)
        ctx.set(bus.araddr, addr)
        ctx.set(bus.arvalid, 1)
        while not (await ctx.tick().sample(bus.arready))[2]:
            pass
        ctx.set(bus.arvalid, 0)
        rdata, rresp = await self._take(ctx, bus.rvalid, bus.rready, bus.rdata, bus.rresp)
        return rdata, rresp

    async def write(self, ctx, addr: int, data: int, strb: int | None = None) -> int:
        """``bresp`` of a write of ``data`` to ``addr`` with byte enables ``strb`` (all by default)."""
        bus = self.bus
        await self._delay(ctx)
        ctx.set(bus.awaddr, addr)
        ctx.set(bus.wdata, data)
        ctx.set(bus.wstrb, (1 << len(bus.wstrb)) - 1 if strb is None else strb)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wvalid, 1)
        aw_pending = w_pending = True
        while aw_pending or w_pending:
            _, _, awready, wready = await ctx.tick().sample(bus.awready, bus.wready)
            if aw_pending and awready:
                aw_pending = False
                ctx.set(bus.awvalid, 0)
            if w_pending and wready:
                w_pending = False
                ctx.set(bus.wvalid, 0)
        (bresp,) = await self._take(ctx, bus.bvalid, bus.bready, bus.bresp)
        return bresp
