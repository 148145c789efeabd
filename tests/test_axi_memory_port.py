"""The AXI rules of the memory agent (``tb/axi_memory.py``'s ``MemoryPort``), without a simulator:
beat addresses, strobes, W/AW pairing, error responses, the firewall and protocol reports. The
cocotb side (timing, stalls) is proven in simulation by test_tb_agents.py."""

import pytest

from virtio_gpio.hdl.axi import BURST_INCR
from virtio_gpio.model.memory import AccessKind, BusResponse, DmaAccess, GuestMemory, Perm
from virtio_gpio.tb.axi_memory import PAGE_4K, Burst, MemoryPort

WORD = 4  # bytes: a 32-bit data bus
FULL = 2  # AxSIZE of a 4-byte beat
BURST_FIXED = 0b00


@pytest.fixture
def mem():
    m = GuestMemory()
    m.map(0x1000, 3 * PAGE_4K)
    m.write(0x1000, bytes(range(256)) * (3 * PAGE_4K // 256))
    return m


def make_port(mem, **kwargs):
    reports = []
    return MemoryPort(mem, WORD, report=reports.append, **kwargs), reports


def test_beats_of_an_unaligned_burst_start_at_its_address_then_run_aligned():
    burst = Burst(0x1003, 3, 4, BusResponse.OKAY)
    assert [burst.beat_range(i) for i in range(3)] == [(0x1003, 0x1004), (0x1004, 0x1008), (0x1008, 0x100C)]
    narrow = Burst(0x1003, 2, 2, BusResponse.OKAY)
    assert [narrow.beat_range(i) for i in range(2)] == [(0x1003, 0x1004), (0x1004, 0x1006)]


def test_read_beats_carry_their_bytes_in_their_lanes_and_are_logged_per_beat(mem):
    port, reports = make_port(mem)
    burst = port.burst(AccessKind.READ, 0x1003, 1, FULL, BURST_INCR)
    assert port.read_beat(burst, 0) == 0x03 << 24
    assert port.read_beat(burst, 1) == 0x07060504
    narrow = port.burst(AccessKind.READ, 0x1102, 0, 0, BURST_INCR)  # one byte, lane 2
    assert port.read_beat(narrow, 0) == 0x02 << 16
    assert [(a.addr, a.size) for a in mem.dma_log] == [(0x1003, 1), (0x1004, 4), (0x1102, 1)]
    assert reports == []


def test_only_strobed_bytes_are_written_one_access_per_run(mem):
    port, reports = make_port(mem)
    before = mem.read(0x1000, 8)
    port.write_address(port.burst(AccessKind.WRITE, 0x1000, 1, FULL, BURST_INCR))
    port.write_data(0xAABBCCDD, 0b1101, False)  # runs: byte 0, bytes 2..3
    port.write_data(0x11223344, 0b0000, True)   # writes nothing
    assert mem.read(0x1000, 8) == bytes([0xDD, before[1], 0xBB, 0xAA]) + before[4:]
    assert [(a.kind, a.addr, a.size) for a in mem.dma_log] == [(AccessKind.WRITE, 0x1000, 1),
                                                               (AccessKind.WRITE, 0x1002, 2)]
    assert list(port.responses) == [BusResponse.OKAY] and reports == []


def test_w_beats_may_come_before_their_aw(mem):
    port, reports = make_port(mem)
    port.write_data(0x01020304, 0b1111, False)
    port.write_data(0x05060708, 0b1111, True)
    assert mem.dma_log == [] and not port.responses
    port.write_address(port.burst(AccessKind.WRITE, 0x1010, 1, FULL, BURST_INCR))
    assert mem.read(0x1010, 8) == bytes([4, 3, 2, 1, 8, 7, 6, 5])
    assert list(port.responses) == [BusResponse.OKAY] and reports == []


def test_strobes_outside_the_active_lanes_are_reported_and_not_written(mem):
    port, reports = make_port(mem)
    before = mem.read(0x1020, 4)
    port.write_address(port.burst(AccessKind.WRITE, 0x1022, 0, FULL, BURST_INCR))  # lanes 2..3 active
    port.write_data(0xFFFFFFFF, 0b1111, True)
    assert mem.read(0x1020, 4) == before[:2] + b"\xff\xff"
    assert len(reports) == 1 and "outside the beat's lanes" in reports[0]


@pytest.mark.parametrize("wlast_on, beats_sent", [(0, 1), (None, 3)])
def test_a_write_burst_ends_at_wlast_or_at_awlen_whichever_first(mem, wlast_on, beats_sent):
    port, reports = make_port(mem)
    port.write_address(port.burst(AccessKind.WRITE, 0x1000, 2, FULL, BURST_INCR))
    for beat in range(beats_sent):
        port.write_data(0, 0b1111, beat == wlast_on)
    assert list(port.responses) == [BusResponse.OKAY] and not port.writes
    assert len(reports) == 1 and "WLAST" in reports[0]


def test_erroring_bursts_answer_their_error_and_write_nothing(mem):
    port, reports = make_port(mem)
    mem.inject_error(0x1005, 1, BusResponse.SLVERR, AccessKind.WRITE)
    before = mem.read(0x1000, 8)
    port.write_address(port.burst(AccessKind.WRITE, 0x1000, 1, FULL, BURST_INCR))
    port.write_data(0xFFFFFFFF, 0b1111, False)
    port.write_data(0xFFFFFFFF, 0b1111, True)
    assert mem.read(0x1000, 8) == before and list(port.responses) == [BusResponse.SLVERR]
    assert [a.response for a in mem.dma_log] == [BusResponse.SLVERR] * 2

    unmapped = port.burst(AccessKind.READ, 0x1000 + 3 * PAGE_4K, 1, FULL, BURST_INCR)  # the page after
    assert unmapped.response is BusResponse.DECERR
    assert port.read_beat(unmapped, 0) == 0 and port.read_beat(unmapped, 1) == 0
    assert reports == []


@pytest.mark.parametrize("args, complaint", [
    ((0x1000, 0, FULL, BURST_FIXED), "only INCR"),
    ((0x1000, 0, FULL + 1, BURST_INCR), "wider than"),
    ((0x1000 + PAGE_4K - 4, 1, FULL, BURST_INCR), "4 KiB"),
])
def test_bursts_breaking_axi_rules_are_reported_and_still_served(mem, args, complaint):
    port, reports = make_port(mem)
    burst = port.burst(AccessKind.READ, *args)
    assert len(reports) == 1 and complaint in reports[0]
    assert burst.size <= WORD and port.read_beat(burst, 0) is not None


@pytest.mark.parametrize("rule, violations", [("word", 0), ("exact", 1)])
def test_read_firewall_rules(mem, rule, violations):
    port, _ = make_port(mem, firewall_reads=rule)
    mem.firewall.grant(0x1001, 5, Perm.READ, "t")  # [0x1001, 0x1006): parts of two words
    burst = port.burst(AccessKind.READ, 0x1001, 1, FULL, BURST_INCR)
    port.read_beat(burst, 0)  # [0x1001, 0x1004): granted
    port.read_beat(burst, 1)  # [0x1004, 0x1008): half granted
    assert [v.access for v in mem.firewall.violations] == \
        [DmaAccess(AccessKind.READ, 0x1004, 4)][:violations]


def test_writes_are_checked_byte_exactly(mem):
    port, _ = make_port(mem)
    mem.firewall.grant(0x1000, 3, Perm.WRITE, "t")
    port.write_address(port.burst(AccessKind.WRITE, 0x1000, 0, FULL, BURST_INCR))
    port.write_data(0, 0b0111, True)
    port.write_address(port.burst(AccessKind.WRITE, 0x1000, 0, FULL, BURST_INCR))
    port.write_data(0, 0b1111, True)
    assert [v.access.size for v in mem.firewall.violations] == [4]
