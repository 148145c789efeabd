"""Guest memory: sparse, bounds-checked, little-endian, with a log and a firewall for device DMA.

Two sides use it. The driver (the CPU) reads and writes with ``read``/``write``; those are not logged.
The device reads and writes with ``dma_read``/``dma_write``; every such access is appended to
``dma_log`` and checked by ``firewall`` against the ranges the driver has handed to the device, so a
test can prove that the device touched only what it owns (device contract §5). An access to an
unmapped address, or to a range with an injected error, fails with ``BusError`` as SLVERR/DECERR would
on AXI.

A firewall has a ``side`` that each of its violations carries (``"device"`` unless told otherwise);
where the RTL and the golden model run side by side, each has its own firewall over one shared set
of grants (``DmaFirewall.sibling``), so an offence says who made it.
"""

from bisect import bisect_left, bisect_right
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

    @property
    def end(self) -> int:
        return self.addr + self.size

    def covers(self, addr: int, size: int, perm: int) -> bool:
        return self.addr <= addr and addr + size <= self.addr + self.size and self.perm.value & perm == perm


DEFAULT_SIDE = "device"


@dataclass(frozen=True)
class Violation:
    access: DmaAccess
    reason: str
    side: str = DEFAULT_SIDE  # who made the access: the firewall's ``side`` ("RTL", "model", ...)

    def __str__(self):
        return f"{self.side}: {self.access}: {self.reason}"


class _Reach:
    """The grants that carry one permission, indexed by start address: a query is one binary
    search, an update a binary search, a list insertion or deletion and a running-maximum update
    that stops at the first entry it leaves unchanged; all in the number of grants, never their size.

    ``reach[i]`` is the furthest end of any grant that starts at or before ``starts[i]``: a
    non-decreasing step function, so "does one grant starting at or before ``a`` reach ``b``?" is
    one bisection and one comparison however the grants overlap or nest. Zero-size grants hold no
    byte; they are only counted in ``empty`` (see ``DmaFirewall``).
    """

    __slots__ = ("starts", "peak", "reach", "ends", "empty")

    def __init__(self):
        self.starts: list[int] = []          # distinct starts of the non-empty grants, ascending
        self.peak: list[int] = []            # peak[i]: furthest end of the grants starting at starts[i]
        self.reach: list[int] = []           # reach[i]: max(peak[:i + 1])
        self.ends: dict[int, list[int]] = {}  # start -> the ends of the grants starting there
        self.empty: dict[int, int] = {}      # address -> how many zero-size grants lie there

    def add(self, start: int, end: int) -> None:
        if end == start:
            self.empty[start] = self.empty.get(start, 0) + 1
            return
        i = bisect_left(self.starts, start)
        ends = self.ends.get(start)
        if ends is None:
            self.ends[start] = [end]
            self.starts.insert(i, start)
            self.peak.insert(i, end)
            self.reach.insert(i, end)
            self._settle(i)
        else:
            ends.append(end)
            if end > self.peak[i]:
                self.peak[i] = end
                self._settle(i)

    def remove(self, start: int, end: int) -> None:
        if end == start:
            left = self.empty[start] - 1
            if left:
                self.empty[start] = left
            else:
                del self.empty[start]
            return
        i = bisect_left(self.starts, start)
        ends = self.ends[start]
        ends.remove(end)
        if not ends:
            del self.ends[start], self.starts[i], self.peak[i], self.reach[i]
            if i < len(self.starts):
                self._settle(i)
        elif end == self.peak[i]:
            peak = max(ends)
            if peak != end:
                self.peak[i] = peak
                self._settle(i)

    def _settle(self, i: int) -> None:
        """Recompute ``reach`` from index ``i`` on, after ``peak[i]`` (or the entry at ``i``)
        changed. Stops at the first later entry that keeps its value: each entry depends only on
        the one before it and its own peak, so every entry after that one keeps its value too."""
        reach, peak = self.reach, self.peak
        v = max(reach[i - 1], peak[i]) if i else peak[i]
        reach[i] = v
        for j in range(i + 1, len(reach)):
            p = peak[j]
            if p > v:
                v = p
            if reach[j] == v:
                return
            reach[j] = v

    def overlapping(self, lo: int, hi: int) -> bool:
        """Some non-empty grant starts before ``hi`` and ends after ``lo`` (for ``lo < hi``: holds a
        byte of ``[lo, hi)``; for ``lo == hi``: holds the bytes on both sides of ``lo``)."""
        i = bisect_left(self.starts, hi)
        return bool(i) and self.reach[i - 1] > lo


class _GrantTable:
    """The grants themselves, shared by every side's ``DmaFirewall``."""

    def __init__(self):
        self.ids = count()
        self.grants: dict[int, Grant] = {}
        self.read, self.write = _Reach(), _Reach()

    def _indexes(self, perm: Perm) -> list[_Reach]:
        return [idx for bit, idx in ((Perm.READ, self.read), (Perm.WRITE, self.write)) if perm & bit]

    def add(self, g: Grant) -> None:
        self.grants[g.id] = g
        for idx in self._indexes(g.perm):
            idx.add(g.addr, g.end)

    def remove(self, g: Grant) -> None:
        if self.grants.get(g.id) != g:
            return  # revoked already, or a grant of another table
        del self.grants[g.id]
        for idx in self._indexes(g.perm):
            idx.remove(g.addr, g.end)


class DmaFirewall:
    """Ranges the device may read or write right now, granted and revoked by the driver.

    An access must lie wholly inside one grant with the needed permission; anything else is recorded
    as a violation (the device is not stopped, so a test sees every offence, not just the first).
    Grants may overlap and nest (two owners may grant the same page); touching bytes of two
    adjacent grants in one access is still a violation. What a grant, revoke or check costs
    depends on the number of live grants, never on their sizes (a check is one binary search), so
    the whole 64-bit space can be granted.

    Zero-size grants hold no byte: they make no bus word readable for ``check_read_word``, and
    ``check`` accepts only a zero-size access at their address. A zero-size access at ``a`` passes
    ``check`` when a grant with the permission starts at or before ``a`` and ends at or after it,
    and ``check_read_word`` when a READ grant holds the bytes on both sides of ``a``. (Neither
    the bus agent nor the model makes zero-size accesses.)

    Attribution: the RTL and the golden model run side by side over one set of grants, and each
    offence must say who made it. ``side`` names who this firewall checks; ``sibling(side)`` is a
    firewall over the same grants (a grant or revoke on either is seen by both) with its own
    ``violations``. Nothing compares what the sides read: the RTL may legally read granted
    buffers the model never reads (it gathers a chain's request while it walks the chain, so a
    chain rejected late in its walk was partly read by the RTL only).
    """

    def __init__(self, side: str = DEFAULT_SIDE):
        self.side = side
        self._table = _GrantTable()
        self._bind()
        self.violations: list[Violation] = []

    def _bind(self) -> None:
        self._read, self._write = self._table.read, self._table.write

    def sibling(self, side: str) -> "DmaFirewall":
        """A firewall for another side that shares this one's grants but not its violations."""
        other = DmaFirewall(side)
        other._table = self._table
        other._bind()
        return other

    def shares_grants_with(self, other: "DmaFirewall") -> bool:
        return self._table is other._table

    def grant(self, addr: int, size: int, perm: Perm, owner: str) -> Grant:
        if addr < 0 or size < 0:
            raise ValueError(f"cannot grant [{addr:#x}, +{size})")
        g = Grant(next(self._table.ids), addr, size, Perm(perm), owner)
        self._table.add(g)
        return g

    def revoke(self, grant: Grant) -> None:
        """Take back ``grant`` (one already revoked, or made by an unrelated firewall, is ignored)."""
        self._table.remove(grant)

    def revoke_owner(self, owner: str) -> None:
        for g in [g for g in self._table.grants.values() if g.owner == owner]:
            self._table.remove(g)

    @property
    def grants(self) -> list[Grant]:
        return list(self._table.grants.values())

    def check(self, access: DmaAccess) -> bool:
        # the hot path of every simulated AXI beat: one bisection and a comparison. The grant
        # starting at or before the access that reaches furthest covers it if any one grant does.
        write = access.kind is AccessKind.WRITE
        idx = self._write if write else self._read
        lo = access.addr
        hi = lo + access.size
        i = bisect_right(idx.starts, lo)
        if i and idx.reach[i - 1] >= hi or lo == hi and lo in idx.empty:
            return True
        self.violations.append(Violation(
            access, f"not inside any range granted for {'WRITE' if write else 'READ'}", self.side))
        return False

    def check_read_word(self, access: DmaAccess, word_bytes: int) -> bool:
        """``check`` for a read that could only be made a whole bus word at a time.

        AXI reads have no byte strobes, so a device that needs two bytes of a word reads all of it.
        Such a read is accepted when it overlaps a READ grant and every bus word (``word_bytes``
        wide, naturally aligned) it touches holds at least one byte of a READ grant; the other bytes
        of those words come along for free. Violations are recorded like ``check`` does.
        """
        idx = self._read
        lo = access.addr
        hi = lo + access.size
        if not idx.overlapping(lo, hi):
            reason = "overlaps no range granted for READ"
        else:
            w = lo - lo % word_bytes
            if hi <= w + word_bytes:
                return True  # one word, which holds the granted byte just found
            starts, reach = idx.starts, idx.reach
            reason = None
            while w < hi:
                # the grant reaching furthest among those starting before the word's end: if it
                # holds a byte of this word it holds one of every word up to its end, so skip there
                i = bisect_left(starts, w + word_bytes)
                r = reach[i - 1] if i else 0
                if r <= w:
                    reason = f"bus word {w:#x} holds no byte granted for READ"
                    break
                w = -(-r // word_bytes) * word_bytes
            if reason is None:
                return True
        self.violations.append(Violation(access, reason, self.side))
        return False


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
