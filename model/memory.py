"""Guest memory: sparse, bounds-checked, little-endian, with a log and a firewall for device DMA.

Two sides use it. The driver (the CPU) reads and writes with ``read``/``write``; those are not logged.
The device reads and writes with ``dma_read``/``dma_write``; every such access is appended to
``dma_log`` and checked by ``firewall`` against the ranges the driver has handed to the device, so a
test can prove that the device touched only what it owns (device contract §5). An access to an
unmapped address, or to a range with an injected error, fails with ``BusError`` as SLVERR/DECERR would
on AXI.
"""

from collections import defaultdict
from dataclasses import dataclass
from enum import Enum, IntFlag
from itertools import count


class BusResponse(Enum):
    OKAY = "OKAY"
    SLVERR = "SLVERR"
    DECERR = "DECERR"


class AccessKind(Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class DmaAccess:
    kind: AccessKind
    addr: int
    size: int
    response: BusResponse = BusResponse.OKAY

    def __str__(self):
        return f"{self.kind.value} [{self.addr:#x}, +{self.size}) {self.response.value}"


class BusError(Exception):
    """A device DMA access got an error response."""

    def __init__(self, access: DmaAccess):
        super().__init__(f"DMA {access}")
        self.access = access


class MemoryAccessError(Exception):
    """The driver side touched memory that does not exist (a bug in the test or driver model)."""


class Perm(IntFlag):
    READ = 1
    WRITE = 2


@dataclass(frozen=True)
class Grant:
    id: int
    addr: int
    size: int
    perm: Perm
    owner: str

    def covers(self, addr: int, size: int, perm: int) -> bool:
        return self.addr <= addr and addr + size <= self.addr + self.size and self.perm.value & perm == perm


@dataclass(frozen=True)
class Violation:
    access: DmaAccess
    reason: str

    def __str__(self):
        return f"{self.access}: {self.reason}"


class DmaFirewall:
    """Ranges the device may read or write right now, granted and revoked by the driver.

    An access must lie wholly inside one grant with the needed permission; anything else is recorded
    as a violation (the device is not stopped, so a test sees every offence, not just the first).
    """

    _BUCKET = 64  # grants are indexed by 64-byte bucket so that a check looks at few candidates

    def __init__(self):
        self._ids = count()
        self._grants: dict[int, Grant] = {}
        self._buckets: dict[int, set[int]] = defaultdict(set)
        self.violations: list[Violation] = []

    def _bucket_range(self, addr: int, size: int) -> range:
        return range(addr // self._BUCKET, (addr + max(size, 1) - 1) // self._BUCKET + 1)

    def grant(self, addr: int, size: int, perm: Perm, owner: str) -> Grant:
        g = Grant(next(self._ids), addr, size, perm, owner)
        self._grants[g.id] = g
        for b in self._bucket_range(addr, size):
            self._buckets[b].add(g.id)
        return g

    def revoke(self, grant: Grant) -> None:
        if self._grants.pop(grant.id, None) is None:
            return
        for b in self._bucket_range(grant.addr, grant.size):
            self._buckets[b].discard(grant.id)
            if not self._buckets[b]:
                del self._buckets[b]

    def revoke_owner(self, owner: str) -> None:
        for g in [g for g in self._grants.values() if g.owner == owner]:
            self.revoke(g)

    @property
    def grants(self) -> list[Grant]:
        return list(self._grants.values())

    def check(self, access: DmaAccess) -> bool:
        perm = Perm.READ if access.kind is AccessKind.READ else Perm.WRITE
        bits = perm.value
        for gid in self._buckets.get(access.addr // self._BUCKET, ()):
            if self._grants[gid].covers(access.addr, access.size, bits):
                return True
        self.violations.append(Violation(access, f"not inside any range granted for {perm.name}"))
        return False

    def check_read_word(self, access: DmaAccess, word_bytes: int) -> bool:
        """``check`` for a read that could only be made a whole bus word at a time.

        AXI reads have no byte strobes, so a device that needs two bytes of a word reads all of it.
        Such a read is accepted when it overlaps a READ grant and every bus word (``word_bytes``
        wide, naturally aligned) it touches holds at least one byte of a READ grant; the other bytes
        of those words come along for free. Violations are recorded like ``check`` does.
        """
        lo, hi = access.addr, access.addr + access.size
        first_word, end_word = lo - lo % word_bytes, -(-hi // word_bytes) * word_bytes
        readable = [g for g in self._overlapping(first_word, end_word - first_word)
                    if g.perm & Perm.READ]
        if not any(g.addr < hi and lo < g.addr + g.size for g in readable):
            reason = "overlaps no range granted for READ"
        else:
            reason = next((f"bus word {w:#x} holds no byte granted for READ"
                           for w in range(first_word, end_word, word_bytes)
                           if not any(g.addr < w + word_bytes and w < g.addr + g.size for g in readable)),
                          None)
        if reason is None:
            return True
        self.violations.append(Violation(access, reason))
        return False

    def _overlapping(self, addr: int, size: int) -> list[Grant]:
        ids = set().union(*(self._buckets.get(b, ()) for b in self._bucket_range(addr, size)))
        return [g for g in map(self._grants.__getitem__, ids) if g.addr < addr + size and addr < g.addr + g.size]


class GuestMemory:
    """Sparse byte-addressed memory of ``2**addr_width`` bytes, of which only mapped pages exist."""

    PAGE = 4096

    def __init__(self, addr_width: int = 32, *, arena_base: int | None = None):
        if addr_width not in (32, 64):
            raise ValueError(f"addr_width must be 32 or 64, not {addr_width!r}")
        self.addr_width = addr_width
        self.limit = 1 << addr_width
        self._pages: dict[int, bytearray] = {}
        # The allocator hands out addresses from here up. With 64-bit DMA the default arena lies above
        # 4 GiB so that every ring and buffer address has non-zero high bits.
        self._next = arena_base if arena_base is not None else (
            0x1_2000_0000 if addr_width == 64 else 0x4000_0000)
        self._errors: list[tuple[int, int, AccessKind | None, BusResponse]] = []
        self.firewall = DmaFirewall()
        self.dma_log: list[DmaAccess] = []
        self.log_dma = True

    # -- layout ----------------------------------------------------------------------------

    def map(self, addr: int, size: int) -> None:
        """Make ``[addr, addr + size)`` exist (zero-filled)."""
        self._check_range(addr, size)
        for page in range(addr // self.PAGE, (addr + size - 1) // self.PAGE + 1):
            self._pages.setdefault(page, bytearray(self.PAGE))

    def alloc(self, size: int, align: int = 16) -> int:
        """Map and return a fresh zero-filled block (a bump allocator: blocks are never reused)."""
        addr = -(-self._next // align) * align
        self.map(addr, max(size, 1))
        self._next = addr + max(size, 1)
        return addr

    def inject_error(self, addr: int, size: int, response: BusResponse = BusResponse.SLVERR,
                     kind: AccessKind | None = None) -> None:
        """Make device accesses that overlap ``[addr, addr + size)`` fail with ``response``."""
        self._errors.append((addr, addr + size, kind, response))

    def clear_errors(self) -> None:
        self._errors.clear()

    def is_mapped(self, addr: int, size: int) -> bool:
        if size <= 0 or addr < 0 or addr + size > self.limit:
            return False
        first, last = addr // self.PAGE, (addr + size - 1) // self.PAGE
        if first == last:
            return first in self._pages
        return all(p in self._pages for p in range(first, last + 1))

    def _check_range(self, addr: int, size: int) -> None:
        if addr < 0 or size < 0 or addr + size > self.limit:
            raise MemoryAccessError(f"[{addr:#x}, +{size}) is outside the {self.addr_width}-bit space")

    # -- raw byte access -------------------------------------------------------------------

    def _read(self, addr: int, size: int) -> bytes:
        page, off = divmod(addr, self.PAGE)
        if off + size <= self.PAGE:
            return bytes(self._pages[page][off:off + size])
        out = bytearray()
        while size:
            page, off = divmod(addr, self.PAGE)
            n = min(size, self.PAGE - off)
            out += self._pages[page][off:off + n]
            addr, size = addr + n, size - n
        return bytes(out)

    def _write(self, addr: int, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            page, off = divmod(addr + pos, self.PAGE)
            n = min(len(data) - pos, self.PAGE - off)
            self._pages[page][off:off + n] = data[pos:pos + n]
            pos += n

    # -- driver (CPU) side -----------------------------------------------------------------

    def read(self, addr: int, size: int) -> bytes:
        if not self.is_mapped(addr, size) and size:
            raise MemoryAccessError(f"driver read of unmapped [{addr:#x}, +{size})")
        return self._read(addr, size)

    def write(self, addr: int, data: bytes) -> None:
        if data and not self.is_mapped(addr, len(data)):
            raise MemoryAccessError(f"driver write of unmapped [{addr:#x}, +{len(data)})")
        self._write(addr, bytes(data))

    # -- raw access for bus agents ---------------------------------------------------------

    def peek(self, addr: int, size: int) -> bytes:
        """Bytes for a bus agent that logs and checks the device access itself (``record_dma``,
        ``firewall``): neither a driver access nor a logged one."""
        if size and not self.is_mapped(addr, size):
            raise MemoryAccessError(f"peek of unmapped [{addr:#x}, +{size})")
        return self._read(addr, size)

    def poke(self, addr: int, data: bytes) -> None:
        """Store bytes for a bus agent, as ``peek`` reads them; a subclass that mirrors the
        driver's ``write`` elsewhere does not see these device writes."""
        if data and not self.is_mapped(addr, len(data)):
            raise MemoryAccessError(f"poke of unmapped [{addr:#x}, +{len(data)})")
        self._write(addr, bytes(data))

    def read_u16(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 2), "little")

    def write_u16(self, addr: int, value: int) -> None:
        self.write(addr, (value & 0xFFFF).to_bytes(2, "little"))

    def read_u32(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 4), "little")

    def write_u32(self, addr: int, value: int) -> None:
        self.write(addr, (value & 0xFFFF_FFFF).to_bytes(4, "little"))

    # -- device (DMA) side -----------------------------------------------------------------

    def dma_response(self, kind: AccessKind, addr: int, size: int) -> BusResponse:
        """The response a device access would get, without logging or checking it: the first
        injected error of that kind it overlaps, else DECERR if any byte is unmapped, else OKAY."""
        for lo, hi, k, response in self._errors:
            if (k is None or k is kind) and addr < hi and lo < addr + size:
                return response
        return BusResponse.OKAY if self.is_mapped(addr, size) else BusResponse.DECERR

    def record_dma(self, access: DmaAccess) -> None:
        """Append a device access to ``dma_log`` (if ``log_dma``); for bus agents that move the data
        themselves and check the firewall with the rule that fits their bus."""
        if self.log_dma:
            self.dma_log.append(access)

    def _dma(self, kind: AccessKind, addr: int, size: int) -> DmaAccess:
        access = DmaAccess(kind, addr, size, self.dma_response(kind, addr, size))
        self.record_dma(access)
        self.firewall.check(access)
        if access.response is not BusResponse.OKAY:
            raise BusError(access)
        return access

    def dma_read(self, addr: int, size: int) -> bytes:
        self._dma(AccessKind.READ, addr, size)
        return self._read(addr, size)

    def dma_write(self, addr: int, data: bytes) -> None:
        self._dma(AccessKind.WRITE, addr, len(data))
        self._write(addr, bytes(data))

    def device_writes(self) -> list[DmaAccess]:
        return [a for a in self.dma_log if a.kind is AccessKind.WRITE]
