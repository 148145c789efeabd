"""AXI4-Lite and AXI4 bus signatures, seen from the manager (master) side.

A subordinate takes ``In(signature)``. Member names are the AXI signal names in lower case without
the channel prefix split off (``awaddr``, ``wstrb``, ...), so that a port path such as
``("s_axil", "awaddr")`` joins to the conventional Verilog name ``s_axil_awaddr``. Only the signals
this device needs exist: no IDs (one outstanding transaction per direction), no PROT, CACHE, LOCK,
QOS, REGION or USER signals; an interconnect ties those off.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

# AXI response codes (AMBA AXI spec, xRESP).
RESP_OKAY = 0b00
RESP_EXOKAY = 0b01
RESP_SLVERR = 0b10
RESP_DECERR = 0b11
BURST_INCR = 0b01
MAX_BURST_LEN = 16  # beats; the device never issues longer bursts (device contract §9)


def _check_widths(addr_width: int, data_width: int, data_widths: tuple[int, ...]) -> None:
    if not isinstance(addr_width, int) or not 1 <= addr_width <= 64:
        raise TypeError(f"Address width must be an integer in 1..64, not {addr_width!r}")
    if data_width not in data_widths:
        raise TypeError(f"Data width must be one of {data_widths}, not {data_width!r}")


class AXI4LiteSignature(wiring.Signature):
    """AXI4-Lite, manager view."""

    def __init__(self, *, addr_width: int, data_width: int = 32):
        _check_widths(addr_width, data_width, (32, 64))
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self):
        return f"AXI4LiteSignature(addr_width={self.addr_width}, data_width={self.data_width})"


class AXI4Signature(wiring.Signature):
    """AXI4 with INCR bursts (AxLEN, AxSIZE, AxBURST, xLAST), manager view."""

    def __init__(self, *, addr_width: int, data_width: int):
        _check_widths(addr_width, data_width, (32, 64))
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width), "awlen": Out(8), "awsize": Out(3), "awburst": Out(2),
            "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
            "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arlen": Out(8), "arsize": Out(3), "arburst": Out(2),
            "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rlast": In(1), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self):
        return f"AXI4Signature(addr_width={self.addr_width}, data_width={self.data_width})"
