"""The AXI4-Lite address decoder (hdl/soc/axi_lite_decoder.py): routing with offsets, responses
passed back, DECERR outside every window without touching a port, reads and writes taking turns,
and the checks on the window list. Both sides are randomly stalling testbench models."""

import random

import pytest
from amaranth.back import verilog

from virtio_gpio.hdl.axi import AXI4LiteSignature, RESP_DECERR, RESP_OKAY, RESP_SLVERR
from virtio_gpio.hdl.soc.axi_lite_decoder import AxiLiteDecoder, check_windows
from soc_sim import LiteManager, LiteSubordinate, assert_rejected, run

REGS = ("regs", 0x0000_0000, 0x1000)
RAM = ("ram", 0x1000_0000, 0x0400)
ROM = ("rom", 0x2000_0000, 0x0010_0000)
WINDOWS = [REGS, RAM, ROM]


def bench(*bodies, seed=3, stall=0.3, responses=None):
    """Run each ``body(ctx, manager)`` (as its own testbench, side by side) against a decoder of
    WINDOWS, one ``LiteSubordinate`` per window (``responses``: window name -> {offset: resp});
    return the subordinates by name."""
    dut = AxiLiteDecoder(32, 32, WINDOWS)
    rng = random.Random(seed)
    subs = {name: LiteSubordinate(getattr(dut, name), rng=rng, stall=stall,
                                  responses=(responses or {}).get(name))
            for name, _, _ in WINDOWS}
    manager = LiteManager(dut.bus, rng=rng, stall=stall)

    def testbench(body):
        async def tb(ctx):
            await body(ctx, manager)
        return tb

    run(dut, *map(testbench, bodies), background=[s.run for s in subs.values()])
    return subs


def test_manager_ports_carry_the_offset_width_of_their_window_and_it_converts_to_verilog():
    dut = AxiLiteDecoder(32, 32, WINDOWS)
    assert dut.signature.members["bus"].signature == AXI4LiteSignature(addr_width=32, data_width=32).flip()
    assert dut.signature.members["regs"].signature == AXI4LiteSignature(addr_width=12, data_width=32)
    assert dut.signature.members["ram"].signature == AXI4LiteSignature(addr_width=10, data_width=32)
    assert dut.signature.members["rom"].signature == AXI4LiteSignature(addr_width=20, data_width=32)
    verilog.convert(dut)


def test_accesses_reach_the_right_window_at_their_offset():
    results = []

    async def body(ctx, bus):
        results.append(await bus.write(ctx, 0x0000_0070, 0x11112222))
        results.append(await bus.write(ctx, 0x1000_03FC, 0x33334444, 0b0110))
        results.append(await bus.write(ctx, 0x200F_FFF0, 0x55556666))
        results.append(await bus.read(ctx, 0x0000_0070))
        results.append(await bus.read(ctx, 0x1000_03FC))
        results.append(await bus.read(ctx, 0x200F_FFF0))
        results.append(await bus.read(ctx, 0x2000_0000))

    subs = bench(body)
    assert subs["regs"].log == [("W", 0x070, 0x11112222, 0b1111), ("R", 0x070)]
    assert subs["ram"].log == [("W", 0x3FC, 0x33334444, 0b0110), ("R", 0x3FC)]
    assert subs["rom"].log == [("W", 0xFFFF0, 0x55556666, 0b1111), ("R", 0xFFFF0), ("R", 0x0)]
    assert results == [RESP_OKAY] * 3 + [(0x11112222, RESP_OKAY), (0x00334400, RESP_OKAY),
                                         (0x55556666, RESP_OKAY), (0, RESP_OKAY)]


def test_error_responses_of_a_window_are_passed_back():
    results = []

    async def body(ctx, bus):
        results.append(await bus.read(ctx, 0x1000_0008))
        results.append(await bus.write(ctx, 0x0000_0004, 1))

    bench(body, responses={"ram": {0x8: RESP_SLVERR}, "regs": {0x4: RESP_DECERR}})
    assert results == [(LiteSubordinate.ERROR_DATA, RESP_SLVERR), RESP_DECERR]


@pytest.mark.parametrize("addr", [0x0000_1000, 0x1000_0400, 0x0FFF_FFFC, 0x2010_0000, 0xFFFF_FFFC])
def test_outside_every_window_is_decerr_and_touches_no_port(addr):
    results = []

    async def body(ctx, bus):
        results.append(await bus.write(ctx, addr, 0xFFFFFFFF))
        results.append(await bus.read(ctx, addr))
        results.append(await bus.read(ctx, 0x1000_0000))  # and the decoder still works

    subs = bench(body)
    assert results[:2] == [RESP_DECERR, (0, RESP_DECERR)]
    assert results[2] == (0, RESP_OKAY)
    assert subs["regs"].log == [] and subs["rom"].log == []
    assert subs["ram"].log == [("R", 0)]


def test_concurrent_reads_and_writes_take_turns():
    order = []
    count = 12

    # Two testbenches on the one bus: AXI's read and write channels are independent.
    async def writer(ctx, bus):
        for i in range(count):
            assert await bus.write(ctx, 0x4 * i, i) == RESP_OKAY
            order.append("W")

    async def reader(ctx, bus):
        for i in range(count):
            assert await bus.read(ctx, 0x1000_0000 + 4 * i) == (0, RESP_OKAY)
            order.append("R")

    bench(writer, reader, stall=0.0)
    assert sorted(order) == ["R"] * count + ["W"] * count
    # With both always waiting, neither gets two turns in a row (bar the last few).
    runs = "".join(order[:-2])
    assert "RRR" not in runs and "WWW" not in runs


@pytest.mark.parametrize("windows, match", [
    ([("a", 0x0, 0x1000), ("b", 0x800, 0x800)], "overlaps window 'a'"),
    ([("a", 0x100, 0x1000)], "not aligned to its size"),
    ([("a", 0x0, 0x300)], "power of two"),
    ([("a", 0x0, 0x2)], "at least 4 bytes"),
    ([("a", 0xFFFF_F000, 0x2000)], "not aligned"),
    ([("a", 0x0, 0x1000), ("a", 0x1000, 0x1000)], "used twice"),
    ([("bus", 0x0, 0x1000)], "identifier other than 'bus'"),
    ([("not a name", 0x0, 0x1000)], "identifier"),
    ([("a", 0x0)], r"must be \(name, base, size\)"),
    ([], "At least one window"),
])
def test_bad_windows_are_rejected(windows, match):
    assert_rejected(lambda: AxiLiteDecoder(32, 32, windows), match=match)


def test_a_window_past_the_address_space_is_rejected():
    assert_rejected(lambda: AxiLiteDecoder(16, 32, [("a", 0x1_0000, 0x1_0000)]), match="does not fit")


def test_windows_may_be_a_dict():
    windows = check_windows(32, 32, {"regs": (0x0, 0x1000), "ram": (0x8000, 0x8000)})
    assert [(w.name, w.base, w.size) for w in windows] == [("regs", 0, 0x1000), ("ram", 0x8000, 0x8000)]
