"""AXI4 subordinate backed by ``GuestMemory``: the guest RAM the DUT's DMA port reads and writes.

Why it exists: the device under test may only touch what the driver handed over (device contract
§5), must cope with a slow or erroring memory, and must follow the AXI rules. So this memory logs
every access to ``memory.dma_log``, checks it against ``memory.firewall``, answers injected errors
and unmapped bytes with SLVERR/DECERR, stalls at random (seeded, so a failing run can be replayed)
and records every AXI rule the DUT breaks in ``protocol_errors``, still answering so that a DUT
with a protocol bug fails a test rather than hanging it.

Behaviour, per the AMBA AXI4 spec where it has a say:

* INCR bursts of 1..256 beats, AxSIZE up to the bus width; the first beat of a burst starts at
  AxADDR, later beats at AxSIZE-aligned addresses. Several bursts may be outstanding on each side;
  W beats may arrive before their AW. Reads are served in order, ``read_latency`` cycles after the
  AR handshake at the earliest (1: RVALID in the cycle after it).
* A burst whose bytes overlap an injected error or unmapped memory gets that response on every R
  beat, or on B; an erroring write burst writes nothing.
* Writes: only strobed bytes within the beat's active lanes are written; each contiguous run of them
  is one logged, firewall-checked access. Reads: one logged access per beat, covering the bytes the
  beat carries (the whole lane range of a full-width beat, clipped at the burst's start address),
  checked with ``DmaFirewall.check_read_word`` (``firewall_reads="word"``: a read may take the
  rest of a bus word around granted bytes, since AXI reads have no strobes) or byte-exactly with
  ``DmaFirewall.check`` (``"exact"``). Violations do not stop the memory.
* Stalls: with probability ``stall_probability`` per cycle, each of ARREADY, AWREADY and WREADY is
  low, and a pending R beat or B response waits a cycle before its VALID rises (a VALID, once high,
  stays high until its handshake).

The rules and the byte moving live in ``MemoryPort``, which knows nothing of signals or time, so
they are unit-tested without a simulator; ``AxiMemory`` adds the channels, the timing and the stalls.
"""

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import RisingEdge
from cocotb_bus.bus import Bus

from virtio_gpio.hdl.axi import BURST_INCR, RESP_DECERR, RESP_OKAY, RESP_SLVERR
from virtio_gpio.model.memory import AccessKind, BusResponse, DmaAccess, GuestMemory

PAGE_4K = 4096  # AXI: no burst may cross a 4 KiB boundary
RESP_CODES = {BusResponse.OKAY: RESP_OKAY, BusResponse.SLVERR: RESP_SLVERR, BusResponse.DECERR: RESP_DECERR}
FIREWALL_READ_RULES = ("word", "exact")

_SIGNALS = ["araddr", "arlen", "arsize", "arburst", "arvalid", "arready",
            "rdata", "rresp", "rlast", "rvalid", "rready",
            "awaddr", "awlen", "awsize", "awburst", "awvalid", "awready",
            "wdata", "wstrb", "wlast", "wvalid", "wready", "bresp", "bvalid", "bready"]


@dataclass(frozen=True)
class Burst:
    addr: int
    beats: int
    size: int            # bytes per beat
    response: BusResponse

    @property
    def aligned(self) -> int:
        return self.addr - self.addr % self.size

    @property
    def end(self) -> int:
        return self.aligned + self.beats * self.size

    def beat_range(self, beat: int) -> tuple[int, int]:
        """The bytes beat ``beat`` carries: ``[lo, hi)``, always inside one bus word."""
        lo = self.addr if beat == 0 else self.aligned + beat * self.size
        return lo, self.aligned + (beat + 1) * self.size


class MemoryPort:
    """GuestMemory as AXI bursts see it: decodes address-channel payloads into bursts, turns beats
    into logged and firewall-checked accesses, pairs W beats with their AW burst and queues the B
    responses. ``report`` receives a message for each AXI rule broken."""

    def __init__(self, memory: GuestMemory, word_bytes: int, *, firewall_reads: str = "word",
                 report: Callable[[str], None]):
        if firewall_reads not in FIREWALL_READ_RULES:
            raise ValueError(f"firewall_reads must be one of {FIREWALL_READ_RULES}, not {firewall_reads!r}")
        self.memory, self.word_bytes = memory, word_bytes
        self.firewall_reads, self.report = firewall_reads, report
        self.writes: deque[Burst] = deque()                   # AW accepted, data not complete
        self.w_beats: deque[tuple[int, int, bool]] = deque()  # (WDATA, WSTRB, WLAST) awaiting an AW
        self.responses: deque[BusResponse] = deque()          # B responses to send, oldest first
        self.response_writes: deque[list[DmaAccess]] = deque()  # the accesses each of them answers
        self._w_beat = 0                                      # beats of writes[0] consumed so far
        self._w_accesses: list[DmaAccess] = []                # the accesses of writes[0] so far

    def burst(self, kind: AccessKind, addr: int, length: int, size: int, burst: int) -> Burst:
        """The burst an AR/AW payload (AxADDR, AxLEN, AxSIZE, AxBURST) asks for, with the AXI rules
        on it checked and its response decided."""
        channel = "AR" if kind is AccessKind.READ else "AW"
        where = f"{channel} {addr:#x}"
        if burst != BURST_INCR:
            self.report(f"{where}: {channel}BURST={burst:#04b}, only INCR is supported (served as INCR)")
        nbytes = 1 << size
        if nbytes > self.word_bytes:
            self.report(f"{where}: {channel}SIZE={size} ({nbytes} bytes) is wider than the "
                        f"{self.word_bytes}-byte bus (served as full width)")
            nbytes = self.word_bytes
        shape = Burst(addr, length + 1, nbytes, BusResponse.OKAY)
        if shape.addr // PAGE_4K != (shape.end - 1) // PAGE_4K:
            self.report(f"{where}: {shape.beats} beats of {nbytes} bytes cross a 4 KiB boundary")
        return Burst(addr, shape.beats, nbytes, self.memory.dma_response(kind, addr, shape.end - addr))

    def read_beat(self, burst: Burst, beat: int) -> int:
        """RDATA of beat ``beat`` (the carried bytes in their lanes, zero elsewhere or on error)."""
        lo, hi = burst.beat_range(beat)
        access = DmaAccess(AccessKind.READ, lo, hi - lo, burst.response)
        self.memory.record_dma(access)
        if self.firewall_reads == "word":
            self.memory.firewall.check_read_word(access, self.word_bytes)
        else:
            self.memory.firewall.check(access)
        if burst.response is not BusResponse.OKAY:
            return 0
        return int.from_bytes(self.memory.peek(lo, hi - lo), "little") << (8 * (lo % self.word_bytes))

    def write_address(self, burst: Burst) -> None:
        self.writes.append(burst)
        self._pair()

    def write_data(self, data: int, strobes: int, last: bool) -> None:
        self.w_beats.append((data, strobes, last))
        self._pair()

    def _pair(self) -> None:
        """Apply buffered W beats to the oldest AW burst; a burst ends at its last beat by AWLEN or
        at WLAST, whichever comes first (so a DUT that is wrong about either still gets its B)."""
        while self.writes and self.w_beats:
            burst = self.writes[0]
            data, strobes, wlast = self.w_beats.popleft()
            self._write_beat(burst, self._w_beat, data, strobes)
            final = self._w_beat == burst.beats - 1
            if wlast != final:
                self.report(f"W beat {self._w_beat} of the {burst.beats}-beat burst at {burst.addr:#x}: "
                            f"WLAST={int(wlast)}")
            self._w_beat += 1
            if final or wlast:
                self.writes.popleft()
                self._w_beat = 0
                self.responses.append(burst.response)
                self.response_writes.append(self._w_accesses)
                self._w_accesses = []

    def _write_beat(self, burst: Burst, beat: int, data: int, strobes: int) -> None:
        lo, hi = burst.beat_range(beat)
        base = lo - lo % self.word_bytes
        active = ((1 << (hi - lo)) - 1) << (lo - base)
        if strobes & ~active:
            self.report(f"W beat {beat} of the burst at {burst.addr:#x}: WSTRB={strobes:#x} strobes bytes "
                        f"outside the beat's lanes [{lo:#x}, {hi:#x}) (not written)")
        strobes &= active
        raw = data.to_bytes(self.word_bytes, "little")
        lane = 0
        while strobes >> lane:
            if not strobes >> lane & 1:
                lane += 1
                continue
            end = lane
            while strobes >> end & 1:
                end += 1
            access = DmaAccess(AccessKind.WRITE, base + lane, end - lane, burst.response)
            self._w_accesses.append(access)
            self.memory.record_dma(access)
            self.memory.firewall.check(access)
            if burst.response is BusResponse.OKAY:
                self.memory.poke(base + lane, raw[lane:end])
            lane = end


class _Output:
    """A signal this agent drives, written only when its value changes: each write is a simulator
    call, and in most cycles nothing changes."""

    def __init__(self, handle):
        self.handle, self.value = handle, 0
        handle.value = 0

    def set(self, value: int) -> None:
        if value != self.value:
            self.handle.value = self.value = value


class _Hold:
    """AXI: once a VALID is high it stays high, with its payload unchanged, until READY. Remembers
    what a stalled channel offered so that the next cycle can be compared with it."""

    def __init__(self, name: str, payload: Callable[[], tuple], report: Callable[[str], None]):
        self._name, self._payload, self._report = name, payload, report
        self._offered = None

    @property
    def waiting(self) -> bool:
        """A VALID was high without READY at the last edge: the same transaction is still offered."""
        return self._offered is not None

    def step(self, valid: bool, ready: bool) -> None:
        if self._offered is not None:
            if not valid:
                self._report(f"{self._name}VALID dropped before {self._name}READY")
            elif self._payload() != self._offered:
                self._report(f"{self._name} payload changed while waiting for {self._name}READY")
        self._offered = self._payload() if valid and not ready else None


class ProtocolError(AssertionError):
    """The DUT broke the bus rules in a way that stops the agent (an undefined value)."""


class AxiMemory:
    """Serves from construction on (with ``reset``: from the end of the DUT's first reset), one
    coroutine stepping both sides (reads, writes) at each rising edge of ``clock``; ``memory`` may
    be any GuestMemory (data moves through ``peek``/``poke``).

    ``busy`` is True while a burst is queued or in flight; ``last_activity_cycle`` is the last cycle
    (``cycle`` counts clock edges from construction) in which a VALID was high or a burst was
    pending, so a test can wait for the DMA port to be idle for N cycles. ``read_bursts`` and
    ``write_bursts`` count address handshakes, ``read_beats``/``write_beats`` data handshakes;
    ``peak_reads``/``peak_writes`` are the most bursts outstanding at once (address accepted, last R
    beat or B not yet sent). ``protocol_errors`` entries start with the simulation time.

    For ordering checks: ``starts`` holds the simulation time (ns) at which each burst was first
    offered (its ARVALID or AWVALID seen high at a clock edge, stalled or not), and
    ``on_write_acked(time_ns, accesses)``, if set, hears each write burst at its B handshake.
    """

    def __init__(self, dut, prefix: str, clock, memory: GuestMemory, *, seed, read_latency: int = 1,
                 stall_probability: float = 0.0, firewall_reads: str = "word", reset=None):
        if read_latency < 1:
            raise ValueError(f"read_latency must be at least 1 cycle, not {read_latency}")
        if not 0.0 <= stall_probability < 1.0:
            raise ValueError(f"stall_probability must be in [0, 1), not {stall_probability}")
        self.bus = Bus(dut, prefix, _SIGNALS, case_insensitive=False)
        self.clock, self.memory, self.reset = clock, memory, reset
        self.read_latency, self.stall_probability = read_latency, stall_probability
        self.word_bytes = len(self.bus.wdata) // 8
        self.port = MemoryPort(memory, self.word_bytes, firewall_reads=firewall_reads, report=self._error)
        seeds = random.Random(seed)  # one stream per side, so one side's traffic never shifts the other's
        self._read_rng, self._write_rng = random.Random(seeds.getrandbits(64)), random.Random(seeds.getrandbits(64))

        self.protocol_errors: list[str] = []
        self.read_bursts = self.read_beats = self.write_bursts = self.write_beats = 0
        self.peak_reads = self.peak_writes = 0
        self.cycle = 0
        self._read_activity = self._write_activity = -1
        self._reads: deque[tuple[int, Burst]] = deque()  # (first cycle its data may go out, burst)
        self.starts: list[float] = []
        self.on_write_acked: Callable[[float, list[DmaAccess]], None] | None = None

        b = self.bus
        self._outputs = [_Output(s) for s in (b.arready, b.rvalid, b.awready, b.wready, b.bvalid)]
        self._tasks = [cocotb.start_soon(self._serve())]

    def stop(self) -> None:
        """Stop serving and leave the channels idle (say, to put another memory on the port)."""
        for task in self._tasks:
            task.cancel()
        for output in self._outputs:
            output.set(0)

    @property
    def busy(self) -> bool:
        p = self.port
        return bool(self._reads or p.writes or p.w_beats or p.responses)

    @property
    def last_activity_cycle(self) -> int:
        return max(self._read_activity, self._write_activity)

    def _error(self, message: str) -> None:
        # stamped with simulation time, the coordinate a waveform viewer shows
        self.protocol_errors.append(f"{get_sim_time('ns'):.0f} ns: {message}")

    def _stall(self, rng: random.Random) -> bool:
        return self.stall_probability > 0 and rng.random() < self.stall_probability

    async def _serve(self) -> None:
        """One coroutine steps both sides at each rising edge: a wake-up costs more than the
        work of a cycle, and the two sides share nothing but the cycle count."""
        reads, writes = self._read_side(), self._write_side()
        if self.reset is not None:
            # The DUT's outputs mean nothing until its synchronous reset has been clocked in (on a
            # four-state simulator they are X until then), so sampling starts once reset has been
            # seen high and then low; the channels stay idle meanwhile.
            seen = False
            while not seen or self.reset.value != 0:
                await RisingEdge(self.clock)
                self.cycle += 1
                seen = seen or self.reset.value == 1
        while True:
            await RisingEdge(self.clock)
            self.cycle += 1
            try:
                reads()
                writes()
            except ValueError:  # an X or Z where a 0 or 1 was needed
                raise ProtocolError(f"{get_sim_time('ns'):.0f} ns: the DUT drives undefined values "
                                    f"(X or Z) on {', '.join(self._undefined()) or 'a DMA output'}"
                                    ) from None

    def _undefined(self) -> list[str]:
        """The DUT's outputs on this port that hold X or Z bits."""
        b = self.bus
        return [s._name for s in (b.arvalid, b.araddr, b.arlen, b.arsize, b.arburst, b.rready,
                                  b.awvalid, b.awaddr, b.awlen, b.awsize, b.awburst, b.wvalid,
                                  b.wdata, b.wstrb, b.wlast, b.bready)
                if not s.value.is_resolvable]

    def _read_side(self) -> Callable[[], None]:
        b, port, rng = self.bus, self.port, self._read_rng

        def payload():
            return int(b.araddr.value), int(b.arlen.value), int(b.arsize.value), int(b.arburst.value)

        hold = _Hold("AR", payload, self._error)
        arready_out, rvalid_out = self._outputs[:2]
        arready = rvalid = False   # what this side drives in the cycle ending at the next edge
        beat = 0                   # beat of _reads[0] on (or next for) the R channel

        def step() -> None:
            nonlocal arready, rvalid, beat
            arvalid = bool(b.arvalid.value)
            if arvalid and not hold.waiting:
                self.starts.append(get_sim_time("ns"))
            hold.step(arvalid, arready)
            if arvalid and arready:
                self._reads.append((self.cycle + self.read_latency - 1, port.burst(AccessKind.READ, *payload())))
                self.read_bursts += 1
                self.peak_reads = max(self.peak_reads, len(self._reads))
            if rvalid and b.rready.value:
                rvalid = False
                self.read_beats += 1
                beat += 1
                if beat == self._reads[0][1].beats:
                    self._reads.popleft()
                    beat = 0
            if not rvalid and self._reads and self.cycle >= self._reads[0][0] and not self._stall(rng):
                burst = self._reads[0][1]
                rvalid = True
                b.rdata.value = port.read_beat(burst, beat)
                b.rresp.value = RESP_CODES[burst.response]
                b.rlast.value = beat == burst.beats - 1
            rvalid_out.set(rvalid)
            arready = not self._stall(rng)
            arready_out.set(arready)
            if arvalid or self._reads:
                self._read_activity = self.cycle
        return step

    def _write_side(self) -> Callable[[], None]:
        b, port, rng = self.bus, self.port, self._write_rng

        def address():
            return int(b.awaddr.value), int(b.awlen.value), int(b.awsize.value), int(b.awburst.value)

        def data():
            return int(b.wdata.value), int(b.wstrb.value), bool(b.wlast.value)

        aw_hold, w_hold = _Hold("AW", address, self._error), _Hold("W", data, self._error)
        awready_out, wready_out, bvalid_out = self._outputs[2:]
        awready = wready = bvalid = False

        def step() -> None:
            nonlocal awready, wready, bvalid
            awvalid, wvalid = bool(b.awvalid.value), bool(b.wvalid.value)
            if awvalid and not aw_hold.waiting:
                self.starts.append(get_sim_time("ns"))
            aw_hold.step(awvalid, awready)
            w_hold.step(wvalid, wready)
            if awvalid and awready:
                port.write_address(port.burst(AccessKind.WRITE, *address()))
                self.write_bursts += 1
                self.peak_writes = max(self.peak_writes, len(port.writes) + len(port.responses))
            if wvalid and wready:
                port.write_data(*data())
                self.write_beats += 1
            if bvalid and b.bready.value:
                bvalid = False
                port.responses.popleft()
                accesses = port.response_writes.popleft()
                if self.on_write_acked is not None:
                    self.on_write_acked(get_sim_time("ns"), accesses)
            if not bvalid and port.responses and not self._stall(rng):
                bvalid = True
                b.bresp.value = RESP_CODES[port.responses[0]]
            bvalid_out.set(bvalid)
            awready, wready = not self._stall(rng), not self._stall(rng)
            awready_out.set(awready)
            wready_out.set(wready)
            if awvalid or wvalid or port.writes or port.w_beats or port.responses:
                self._write_activity = self.cycle
        return step
