"""Guest memory and the DMA firewall: the instruments every other test relies on, so they are tested
for the failures they must catch, not only for the happy path."""

import pytest

from virtio_gpio.model.memory import (
    AccessKind, BusError, BusResponse, DmaAccess, DmaFirewall, GuestMemory, MemoryAccessError, Perm,
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


def test_firewall_grant_spanning_many_buckets():
    mem = GuestMemory()
    a = mem.alloc(4096)
    mem.firewall.grant(a, 4096, Perm.READ, "ring")
    mem.dma_read(a + 4000, 96)
    mem.dma_read(a + 60, 8)  # crosses a 64-byte bucket edge inside the grant
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


def test_check_read_word_ignores_write_only_grants_and_sees_grants_in_other_buckets():
    fw = DmaFirewall()
    fw.grant(0x100, 4, Perm.WRITE, "t")
    assert not fw.check_read_word(_read(0x100, 4), 4)
    fw.grant(0x13E, 2, Perm.READ, "t")  # ends exactly at a 64-byte bucket edge
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
