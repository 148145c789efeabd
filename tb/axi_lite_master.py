"""AXI4-Lite manager: the register reads and writes of a test, as a CPU would make them.

Every register-level step of the testbench goes through here, so this agent makes sure a test never
misses the two ways a register access can go wrong: an error response (``AxiResponseError``) and a
subordinate that never answers (``BusTimeout``, after ``timeout_cycles`` clock cycles, so a broken
DUT fails a test instead of hanging it).

Built on ``cocotb_bus.bus.Bus``, which only groups the ``<prefix>_<signal>`` handles; the handshakes
are written out here because cocotb-bus has no AXI driver.
"""

from cocotb.triggers import Lock, RisingEdge
from cocotb_bus.bus import Bus

from virtio_gpio.hdl.axi import RESP_DECERR, RESP_EXOKAY, RESP_OKAY, RESP_SLVERR

RESP_NAMES = {RESP_OKAY: "OKAY", RESP_EXOKAY: "EXOKAY", RESP_SLVERR: "SLVERR", RESP_DECERR: "DECERR"}
ACCESS_SIZES = (1, 2, 4)  # bytes: what a CPU's readb/readw/readl (and write*) put on the bus

_SIGNALS = ["awaddr", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready",
            "bresp", "bvalid", "bready", "araddr", "arvalid", "arready", "rdata", "rresp", "rvalid", "rready"]


class BusTimeout(Exception):
    """The subordinate did not complete an access within the allowed number of cycles."""


class AxiResponseError(Exception):
    """The subordinate answered an access with something other than OKAY."""

    def __init__(self, what: str, addr: int, resp: int):
        super().__init__(f"AXI-Lite {what} at {addr:#x} answered {RESP_NAMES[resp]}")
        self.addr, self.resp = addr, resp


class AxiLiteMaster:
    """One access at a time (a lock serialises concurrent coroutines), with AW and W presented in
    the same cycle. Addresses go out as the byte address of the access, with the data and WSTRB in
    the byte lanes of that address, as a CPU's narrow access reaches an AXI-Lite register block.

    ``reset``, if given, is a handle that is high while the DUT is in reset; accesses wait for it
    to go low. ``reads`` and ``writes`` count completed accesses (including error responses).
    """

    def __init__(self, dut, prefix: str, clock, reset=None, *, timeout_cycles: int = 1000):
        self.bus = Bus(dut, prefix, _SIGNALS, case_insensitive=False)
        self.clock, self.reset = clock, reset
        self.timeout_cycles = timeout_cycles
        self.word_bytes = len(self.bus.wdata) // 8
        self.reads = self.writes = 0
        self._lock = Lock()
        for name in ("awvalid", "wvalid", "bready", "arvalid", "rready"):
            getattr(self.bus, name).value = 0

    def _lane(self, addr: int, size: int) -> int:
        if size not in ACCESS_SIZES or size > self.word_bytes or addr % size:
            raise ValueError(f"unsupported access: {size} bytes at {addr:#x} (must be 1, 2 or 4 and aligned)")
        return addr % self.word_bytes

    async def _out_of_reset(self) -> None:
        while self.reset is not None and self.reset.value:
            await RisingEdge(self.clock)

    def _timeout(self, what: str, addr: int) -> BusTimeout:
        return BusTimeout(f"AXI-Lite {what} at {addr:#x}: no response within {self.timeout_cycles} cycles")

    async def read(self, addr: int, size: int = 4) -> int:
        """Read the ``size`` bytes at ``addr`` (from the bus word holding them)."""
        lane = self._lane(addr, size)
        b = self.bus
        async with self._lock:
            await self._out_of_reset()
            b.araddr.value = addr
            b.arvalid.value = 1
            b.rready.value = 1  # ready for the data from the start: AXI allows it, and it saves a cycle
            address_pending = True
            for _ in range(self.timeout_cycles):
                await RisingEdge(self.clock)
                if address_pending and b.arready.value:
                    address_pending = False
                    b.arvalid.value = 0
                elif not address_pending and b.rvalid.value:
                    data, resp = b.rdata.value.to_unsigned(), int(b.rresp.value)
                    break
            else:
                b.arvalid.value = b.rready.value = 0
                raise self._timeout("read", addr)
            b.rready.value = 0
            self.reads += 1
        if resp != RESP_OKAY:
            raise AxiResponseError("read", addr, resp)
        return (data >> (8 * lane)) & ((1 << (8 * size)) - 1)

    async def write(self, addr: int, value: int, size: int = 4) -> None:
        """Write the low ``size`` bytes of ``value`` at ``addr``, strobing only those bytes."""
        lane = self._lane(addr, size)
        if not 0 <= value < 1 << (8 * size):
            raise ValueError(f"value {value:#x} does not fit in {size} bytes")
        b = self.bus
        async with self._lock:
            await self._out_of_reset()
            b.awaddr.value = addr
            b.wdata.value = value << (8 * lane)
            b.wstrb.value = ((1 << size) - 1) << lane
            b.awvalid.value = b.wvalid.value = b.bready.value = 1
            address_pending = data_pending = True
            for _ in range(self.timeout_cycles):
                await RisingEdge(self.clock)
                if address_pending and b.awready.value:
                    address_pending = False
                    b.awvalid.value = 0
                if data_pending and b.wready.value:
                    data_pending = False
                    b.wvalid.value = 0
                if not (address_pending or data_pending) and b.bvalid.value:
                    resp = int(b.bresp.value)
                    break
            else:
                b.awvalid.value = b.wvalid.value = b.bready.value = 0
                raise self._timeout("write", addr)
            b.bready.value = 0
            self.writes += 1
        if resp != RESP_OKAY:
            raise AxiResponseError("write", addr, resp)
