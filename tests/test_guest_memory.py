"""Guest memory and the DMA firewall: the instruments every other test relies on, so they are tested
for the failures they must catch, not only for the happy path."""

import time

import pytest
from hypothesis import given, settings, strategies as st

from virtio_gpio.model.memory import (
    AccessKind, BusError, BusResponse, DmaAccess, DmaFirewall, GuestMemory, MemoryAccessError, Perm,
    Violation,
)


def test_memory_is_sparse_zero_filled_and_little_endian():
    mem = GuestMemory(64)
    addr = mem.alloc(8)
    assert addr >= 1 << 32  # 64-bit arena lies above 4 GiB
    assert mem.read(addr, 8) == bytes(8)
    mem.write_u32(addr, 0x11223344)
    assert mem.read(addr, 4) == b"\x44\x33\x22\x11" and mem.read_u16(addr + 2) == 0x1122
    assert len(mem._pages) == 1


def test_accesses_across_a_page_boundary():
    mem = GuestMemory()
    mem.map(0x1FFE, 4)
    mem.write(0x1FFE, b"abcd")
    assert mem.read(0x1FFE, 4) == b"abcd"


def test_driver_access_outside_mapped_memory_is_an_error():
    mem = GuestMemory()
    with pytest.raises(MemoryAccessError):
        mem.read(0x10, 4)
    with pytest.raises(MemoryAccessError):
        mem.map(0xFFFF_FFFE, 4)  # beyond the 32-bit space


def test_device_access_to_unmapped_memory_is_decerr_and_logged():
    mem = GuestMemory()
    with pytest.raises(BusError) as e:
        mem.dma_read(0x10, 4)
    assert e.value.access.response is BusResponse.DECERR
    assert mem.dma_log == [e.value.access]


@pytest.mark.parametrize("kind", [AccessKind.READ, AccessKind.WRITE])
def test_injected_errors_hit_overlapping_accesses_of_their_kind(kind):
    mem = GuestMemory()
    a = mem.alloc(64)
    mem.firewall.grant(a, 64, Perm.READ | Perm.WRITE, "t")
    mem.inject_error(a + 8, 4, BusResponse.SLVERR, kind)
    mem.dma_read(a, 8)  # adjacent, not overlapping
    with pytest.raises(BusError):
        (mem.dma_read if kind is AccessKind.READ else lambda x, n: mem.dma_write(x, bytes(n)))(a + 6, 4)
    other = (lambda x, n: mem.dma_write(x, bytes(n))) if kind is AccessKind.READ else mem.dma_read
    other(a + 8, 4)  # the other direction is not affected
    mem.clear_errors()
    mem.dma_read(a + 8, 4)


def test_firewall_flags_reads_and_writes_outside_grants():
    mem = GuestMemory()
    a = mem.alloc(64)
    fw = mem.firewall
    g_read = fw.grant(a, 16, Perm.READ, "t")
    fw.grant(a + 32, 8, Perm.WRITE, "t")
    mem.dma_read(a, 16)
    mem.dma_write(a + 32, bytes(8))
    assert fw.violations == []
    mem.dma_write(a, b"x")  # readable only
    mem.dma_read(a + 32, 1)  # writable only (VQ-3)
    mem.dma_read(a + 12, 8)  # runs past the end of its grant
    assert len(fw.violations) == 3
    fw.revoke(g_read)
    mem.dma_read(a, 1)
    assert len(fw.violations) == 4


def test_firewall_grant_of_a_page():
    mem = GuestMemory()
    a = mem.alloc(4096)
    mem.firewall.grant(a, 4096, Perm.READ, "ring")
    mem.dma_read(a + 4000, 96)
    mem.dma_read(a + 60, 8)  # crosses a 64-byte boundary inside the grant
    assert mem.firewall.violations == []
    mem.firewall.revoke_owner("ring")
    assert mem.firewall.grants == []


def test_dma_response_is_the_response_dma_would_get_without_side_effects():
    mem = GuestMemory()
    a = mem.alloc(64)
    mem.inject_error(a + 16, 4, BusResponse.SLVERR, AccessKind.WRITE)
    assert mem.dma_response(AccessKind.READ, a, 64) is BusResponse.OKAY
    assert mem.dma_response(AccessKind.WRITE, a + 18, 8) is BusResponse.SLVERR
    assert mem.dma_response(AccessKind.READ, a + mem.PAGE - 4, 8) is BusResponse.DECERR  # off the mapped page
    assert mem.dma_log == [] and mem.firewall.violations == []


def test_record_dma_logs_unless_logging_is_off():
    mem = GuestMemory()
    access = DmaAccess(AccessKind.READ, 0x10, 4, BusResponse.DECERR)
    mem.record_dma(access)
    mem.log_dma = False
    mem.record_dma(access)
    assert mem.dma_log == [access] and mem.firewall.violations == []


def _read(addr, size):
    return DmaAccess(AccessKind.READ, addr, size)


@pytest.mark.parametrize("addr, size, ok", [
    (0x103, 2, True),   # inside the grant
    (0x100, 8, True),   # the whole word around the grant: the other bytes come along
    (0x108, 8, True),   # the word holding the grant's last bytes
    (0x100, 2, False),  # within a granted word but touches no granted byte
    (0x108, 16, False),  # second word holds no granted byte
    (0x0F8, 16, False),  # first word holds no granted byte
    (0x110, 8, False),  # next word, nothing granted
])
def test_check_read_word_accepts_whole_words_around_read_grants(addr, size, ok):
    fw = DmaFirewall()
    fw.grant(0x103, 10, Perm.READ, "t")  # [0x103, 0x10d): bytes in words 0x100 and 0x108
    assert fw.check_read_word(_read(addr, size), 8) is ok
    assert len(fw.violations) == (not ok)
    if not ok:
        assert fw.violations[0].access == _read(addr, size)


def test_check_read_word_ignores_write_only_grants_and_checks_every_word():
    fw = DmaFirewall()
    fw.grant(0x100, 4, Perm.WRITE, "t")
    assert not fw.check_read_word(_read(0x100, 4), 4)
    fw.grant(0x13E, 2, Perm.READ, "t")  # ends exactly at a 64-byte boundary
    assert fw.check_read_word(_read(0x13C, 8), 8) is False  # word 0x140 holds no granted byte
    assert fw.check_read_word(_read(0x138, 8), 8)
    assert len(fw.violations) == 2


def test_peek_and_poke_are_raw_and_are_not_driver_writes():
    class Mirrored(GuestMemory):
        def write(self, addr, data):
            raise AssertionError("poke must not go through the driver-side write")

    mem = Mirrored()
    a = mem.alloc(16)
    mem.poke(a + 2, b"xyz")
    assert mem.peek(a, 6) == b"\0\0xyz\0"
    assert mem.dma_log == []
    with pytest.raises(MemoryAccessError):
        mem.peek(a + mem.PAGE - 2, 4)
    with pytest.raises(MemoryAccessError):
        mem.poke(0x10, b"x")


# -- the grant index: overlapping, nested and huge grants ------------------------------------------

def _write(addr, size):
    return DmaAccess(AccessKind.WRITE, addr, size)


def test_an_access_must_lie_inside_one_grant_up_to_its_edges():
    fw = DmaFirewall()
    fw.grant(0x100, 0x10, Perm.READ, "a")
    fw.grant(0x110, 0x10, Perm.READ, "b")  # adjacent: together they do not make one grant
    assert fw.check(_read(0x100, 0x10)) and fw.check(_read(0x110, 0x10))
    assert fw.check(_read(0x10F, 1)) and fw.check(_read(0x110, 1))
    assert not fw.check(_read(0x0FF, 1))       # the byte before the first
    assert not fw.check(_read(0x0FF, 2))       # starts one byte early
    assert not fw.check(_read(0x10F, 2))       # straddles the two grants
    assert not fw.check(_read(0x11F, 2))       # runs one byte past the second
    assert not fw.check(_read(0x120, 1))       # the byte after it
    assert [v.access for v in fw.violations] == [
        _read(0x0FF, 1), _read(0x0FF, 2), _read(0x10F, 2), _read(0x11F, 2), _read(0x120, 1)]


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]])
def test_the_covering_grant_is_found_behind_later_starting_overlapping_grants(order):
    fw = DmaFirewall()
    ranges = [(0x1000, 0x1000, Perm.READ, "page"),
              (0x1100, 0x10, Perm.READ, "inner"),      # nested, starts later, ends sooner
              (0x1F00, 0x200, Perm.READ, "across"),    # overlaps the end of the page
              (0x1200, 0x10, Perm.WRITE, "w")]         # another permission in between
    made = {k: fw.grant(*ranges[k]) for k in order}    # the page granted before or after the rest
    outer = made[0]
    assert fw.check(_read(0x1108, 0x20))   # past the inner grant's end, inside the page
    assert fw.check(_read(0x1300, 0x100))  # behind the inner one and the write grant
    assert fw.check(_read(0x1F80, 0x100))  # past the page, inside the later grant
    assert fw.check(_read(0x2000, 0x100))
    assert not fw.check(_read(0x1EF0, 0x220))  # needs both the page and the later grant
    assert not fw.check(_write(0x1208, 0x10))  # past the write grant (the page is READ only)
    fw.revoke(outer)
    assert fw.check(_read(0x1100, 0x10)) and fw.check(_read(0x1F00, 0x200))
    assert not fw.check(_read(0x1108, 0x10))  # only the page covered it
    assert len(fw.violations) == 3


def test_the_same_range_granted_twice_stays_granted_until_both_are_revoked():
    fw = DmaFirewall()
    first = fw.grant(0x100, 0x40, Perm.READ, "a")
    second = fw.grant(0x100, 0x40, Perm.READ, "b")
    longer = fw.grant(0x100, 0x80, Perm.READ, "c")   # same start, further end
    fw.revoke(longer)
    assert not fw.check(_read(0x13F, 2))
    fw.revoke(first)
    fw.revoke(first)  # revoking twice is harmless
    assert fw.check(_read(0x100, 0x40))
    fw.revoke_owner("b")
    assert not fw.check(_read(0x100, 1))
    assert fw.grants == [] and len(fw.violations) == 2
    assert second not in fw.grants
    other = DmaFirewall()
    mine = other.grant(0x100, 0x40, Perm.READ, "x")
    fw.grant(0x100, 0x40, Perm.READ, "y")
    other.revoke(fw.grants[0])  # a grant of another firewall, perhaps with the same id
    assert other.grants == [mine]


def test_a_read_write_grant_serves_both_directions_and_revokes_from_both():
    fw = DmaFirewall()
    g = fw.grant(0x100, 8, Perm.READ | Perm.WRITE, "rw")
    assert fw.check(_read(0x100, 8)) and fw.check(_write(0x100, 8)) and fw.check_read_word(_read(0x100, 8), 8)
    fw.revoke(g)
    assert not fw.check(_read(0x100, 8)) and not fw.check(_write(0x100, 8))


def test_a_grant_costs_the_same_whatever_its_size():
    fw = DmaFirewall()
    start = time.perf_counter()
    whole32 = fw.grant(0, 2**32 - 1, Perm.WRITE, "all")
    whole64 = fw.grant(0, 2**64 - 1, Perm.READ, "all")
    high = fw.grant(2**63, 2**63, Perm.WRITE, "top")  # ends at the very end of the 64-bit space
    assert fw.check(_write(2**32 - 9, 8)) and fw.check(_read(2**64 - 9, 8)) and fw.check(_write(2**64 - 1, 1))
    assert not fw.check(_read(2**64 - 8, 8))  # the last byte of the space is not in [0, 2**64 - 1)
    assert fw.check_read_word(_read(2**40, 4096), 8)
    assert not fw.check(_write(2**32 - 2, 2))  # one byte past the 32-bit grant, below the high one
    for g in (whole32, whole64, high):
        fw.revoke(g)
    assert time.perf_counter() - start < 0.5  # a byte-indexed firewall would not finish
    assert not fw.check(_read(0, 1)) and fw.grants == [] and len(fw.violations) == 3


def test_grants_of_negative_addresses_or_sizes_are_refused():
    fw = DmaFirewall()
    with pytest.raises(ValueError):
        fw.grant(0x100, -1, Perm.READ, "t")
    with pytest.raises(ValueError):
        fw.grant(-1, 4, Perm.READ, "t")


def test_zero_size_grants_and_accesses():
    """Zero-size grants hold no byte; a zero-size access at ``a`` passes ``check`` under any grant
    with the permission that starts at or before ``a`` and ends at or after it (a zero-size grant at
    ``a`` included), and ``check_read_word`` under a READ grant holding the bytes on both sides."""
    fw = DmaFirewall()
    fw.grant(0x103, 0, Perm.READ, "empty")
    assert fw.check(_read(0x103, 0))                  # at the empty grant
    assert not fw.check(_read(0x103, 1))              # it holds no byte
    assert not fw.check(_read(0x104, 0))
    assert not fw.check_read_word(_read(0x100, 8), 8)  # nor makes its word readable
    fw.grant(0x100, 0x40, Perm.READ, "buf")          # ends on a 64-byte boundary
    assert fw.check(_read(0x100, 0)) and fw.check(_read(0x120, 0)) and fw.check(_read(0x140, 0))
    assert not fw.check(_read(0x141, 0)) and not fw.check(_write(0x120, 0))
    assert fw.check_read_word(_read(0x120, 0), 8)
    assert not fw.check_read_word(_read(0x100, 0), 8) and not fw.check_read_word(_read(0x140, 0), 8)
    assert len(fw.violations) == 7


# -- attribution ---------------------------------------------------------------------------------

def test_violations_name_their_side():
    mem = GuestMemory()
    mem.dma_read(mem.alloc(8), 4)
    [v] = mem.firewall.violations
    assert v.side == "device" and str(v).startswith("device: read [")
    rtl = DmaFirewall("RTL")
    model = rtl.sibling("model")
    assert rtl.side == "RTL" and model.side == "model" and rtl.shares_grants_with(model)
    assert not rtl.shares_grants_with(DmaFirewall("RTL"))
    g = model.grant(0x100, 8, Perm.READ, "t")   # a grant on either side is seen by both
    assert rtl.check(_read(0x100, 8)) and model.check(_read(0x100, 8)) and rtl.grants == model.grants == [g]
    rtl.revoke(g)
    assert not model.check(_read(0x100, 4)) and not rtl.check_read_word(_read(0x108, 8), 8)
    assert model.violations == [Violation(_read(0x100, 4), "not inside any range granted for READ", "model")]
    assert rtl.violations == [Violation(_read(0x108, 8), "overlaps no range granted for READ", "RTL")]
    assert str(model.violations[0]).startswith("model: read [0x100, +4)")
    assert str(rtl.violations[0]).startswith("RTL: read [0x108, +8)")


# -- the index against a brute-force reference -----------------------------------------------------

SPACE = 40  # bytes of the address space the property test draws from
PERMS = [Perm.READ, Perm.WRITE, Perm.READ | Perm.WRITE]


class _Reference:
    """The firewall's rules spelled out on sets of bytes, for a handful of small grants."""

    def __init__(self, grants):
        self.held = {need: [(a, n, set(range(a, a + n))) for a, n, p in grants if p & need]
                     for need in (Perm.READ, Perm.WRITE)}
        self.readable = set().union(*(held for _, _, held in self.held[Perm.READ]))

    def check(self, kind, lo, size):
        usable = self.held[Perm.READ if kind is AccessKind.READ else Perm.WRITE]
        if size == 0:  # the rule for zero-size accesses (test_zero_size_grants_and_accesses)
            return any(a <= lo <= a + n for a, n, _ in usable)
        wanted = set(range(lo, lo + size))
        return any(wanted <= held for _, _, held in usable)

    def read_word(self, lo, size, word):
        if size == 0:
            return any(a < lo < a + n for a, n, _ in self.held[Perm.READ])
        words = range(lo - lo % word, lo + size, word)
        return (not self.readable.isdisjoint(range(lo, lo + size))
                and all(not self.readable.isdisjoint(range(w, w + word)) for w in words))


_ops = st.lists(st.one_of(
    st.tuples(st.just("grant"), st.integers(0, SPACE), st.integers(0, 24), st.sampled_from(PERMS)),
    st.tuples(st.just("revoke"), st.integers(0, 63)),
), min_size=1, max_size=14)


@settings(max_examples=100, deadline=None)
@given(ops=_ops, base=st.sampled_from([0, 2**32 - 32, 2**64 - 64]), word=st.sampled_from([4, 8]))
def test_firewall_agrees_with_a_byte_set_reference(ops, base, word):
    fw = DmaFirewall()
    live = []  # (Grant, addr, size, perm) in grant order
    for op in ops:
        if op[0] == "grant":
            _, addr, size, perm = op
            live.append((fw.grant(base + addr, size, perm, "t"), addr, size, perm))
        elif live:
            fw.revoke(live.pop(op[1] % len(live))[0])
        grants = [(a, n, p) for _, a, n, p in live]
        ref = _Reference(grants)
        expected_violations = len(fw.violations)
        for lo in range(0, SPACE + 8):
            for size in range(0, 10):
                for kind in (AccessKind.READ, AccessKind.WRITE):
                    ok = ref.check(kind, lo, size)
                    assert fw.check(DmaAccess(kind, base + lo, size)) is ok, (grants, kind, lo, size)
                    expected_violations += not ok
                ok = ref.read_word(lo, size, word)
                assert fw.check_read_word(_read(base + lo, size), word) is ok, (grants, lo, size, word)
                expected_violations += not ok
        assert len(fw.violations) == expected_violations
        assert {g.id for g in fw.grants} == {g.id for g, *_ in live}
