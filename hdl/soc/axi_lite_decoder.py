"""An AXI4-Lite address decoder: one subordinate port, one manager port per address window.

It lets the UART bridge (one manager) reach both the device's register window and the guest memory.
Each window has a power-of-two size and a base aligned to it, so decoding is a compare of the high
address bits, and the address passed down is the offset inside the window. An access outside every
window is answered here with DECERR (reads return 0) and touches no manager port.

One transaction at a time: the decoder takes a read (AR) or a write (AW and W together; AXI lets a
subordinate wait for both), forwards it, passes the response back and only then takes the next.
When a read and a write are both waiting they take turns, so neither can starve the other.
"""

from typing import NamedTuple

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..axi import AXI4LiteSignature, RESP_DECERR

BUS_PORT = "bus"


class Window(NamedTuple):
    name: str  # the manager port's member name
    base: int
    size: int  # bytes, a power of two

    @property
    def offset_width(self) -> int:
        return self.size.bit_length() - 1


def check_windows(addr_width: int, data_width: int, windows) -> list[Window]:
    """``windows`` as a list of ``(name, base, size)`` or a dict ``{name: (base, size)}``, checked:
    names usable as port names and distinct, sizes powers of two of at least one bus word, bases
    aligned to their size, every window inside the address space, no two windows overlapping."""
    if isinstance(windows, dict):
        windows = [(name, *span) for name, span in windows.items()]
    result = []
    for entry in windows:
        try:
            name, base, size = entry
        except (TypeError, ValueError):
            raise ValueError(f"A window must be (name, base, size), not {entry!r}") from None
        if not isinstance(name, str) or not name.isidentifier() or name == BUS_PORT:
            raise ValueError(f"Window name must be an identifier other than {BUS_PORT!r}, not {name!r}")
        if any(name == w.name for w in result):
            raise ValueError(f"Window name {name!r} is used twice")
        if not isinstance(size, int) or size < data_width // 8 or size & (size - 1):
            raise ValueError(f"Window {name!r}: size must be a power of two of at least "
                             f"{data_width // 8} bytes (one bus word), not {size!r}")
        if not isinstance(base, int) or base < 0 or base % size:
            raise ValueError(f"Window {name!r}: base {base!r} is not aligned to its size 0x{size:X}")
        if base + size > 1 << addr_width:
            raise ValueError(f"Window {name!r}: 0x{base:X}..0x{base + size - 1:X} does not fit in "
                             f"a {addr_width}-bit address space")
        for other in result:
            if base < other.base + other.size and other.base < base + size:
                raise ValueError(f"Window {name!r} (0x{base:X}..0x{base + size - 1:X}) overlaps "
                                 f"window {other.name!r} (0x{other.base:X}.."
                                 f"0x{other.base + other.size - 1:X})")
        result.append(Window(name, base, size))
    if not result:
        raise ValueError("At least one window is needed")
    return result


class AxiLiteDecoder(wiring.Component):
    """``bus``: the subordinate port (``addr_width``-bit addresses); one manager port per window,
    named after it, with ``log2(size)``-bit addresses (the offset inside the window)."""

    def __init__(self, addr_width: int, data_width: int, windows):
        self.addr_width = addr_width
        self.data_width = data_width
        self.windows = check_windows(addr_width, data_width, windows)
        members = {BUS_PORT: In(AXI4LiteSignature(addr_width=addr_width, data_width=data_width))}
        for w in self.windows:
            members[w.name] = Out(AXI4LiteSignature(addr_width=w.offset_width, data_width=data_width))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        ports = [(w, getattr(self, w.name)) for w in self.windows]
        miss = len(self.windows)

        def decode(address, name):
            """Index of the window holding ``address``; ``miss`` if none does."""
            index = Signal(range(miss + 1), name=name)
            m.d.comb += index.eq(miss)
            for i, w in enumerate(self.windows):
                with m.If(address[w.offset_width:] == w.base >> w.offset_width):
                    m.d.comb += index.eq(i)
            return index

        aw_index = decode(bus.awaddr, "aw_index")
        ar_index = decode(bus.araddr, "ar_index")

        selected = Signal(range(miss + 1))
        addr = Signal(self.addr_width)
        wdata = Signal(self.data_width)
        wstrb = Signal(self.data_width // 8)
        aw_done = Signal()
        w_done = Signal()
        prefer_write = Signal()  # whose turn it is when a read and a write both wait

        with m.FSM():
            with m.State("IDLE"):
                want_write = bus.awvalid & bus.wvalid
                take_write = want_write & (~bus.arvalid | prefer_write)
                with m.If(take_write):
                    m.d.comb += [bus.awready.eq(1), bus.wready.eq(1)]
                    m.d.sync += [addr.eq(bus.awaddr), wdata.eq(bus.wdata), wstrb.eq(bus.wstrb),
                                 selected.eq(aw_index), aw_done.eq(0), w_done.eq(0),
                                 prefer_write.eq(0)]
                    m.next = "WRITE"
                with m.Elif(bus.arvalid):
                    m.d.comb += bus.arready.eq(1)
                    m.d.sync += [addr.eq(bus.araddr), selected.eq(ar_index), prefer_write.eq(1)]
                    m.next = "READ"

            with m.State("WRITE"):
                for i, (w, port) in enumerate(ports):
                    with m.If(selected == i):
                        m.d.comb += [
                            port.awvalid.eq(~aw_done), port.awaddr.eq(addr[:w.offset_width]),
                            port.wvalid.eq(~w_done), port.wdata.eq(wdata), port.wstrb.eq(wstrb),
                        ]
                        with m.If(port.awready):
                            m.d.sync += aw_done.eq(1)
                        with m.If(port.wready):
                            m.d.sync += w_done.eq(1)
                        with m.If((aw_done | port.awready) & (w_done | port.wready)):
                            m.next = "WRITE_RESP"
                with m.If(selected == miss):
                    m.next = "WRITE_RESP"
            with m.State("WRITE_RESP"):
                for i, (w, port) in enumerate(ports):
                    with m.If(selected == i):
                        m.d.comb += [bus.bvalid.eq(port.bvalid), bus.bresp.eq(port.bresp),
                                     port.bready.eq(bus.bready)]
                with m.If(selected == miss):
                    m.d.comb += [bus.bvalid.eq(1), bus.bresp.eq(RESP_DECERR)]
                with m.If(bus.bvalid & bus.bready):
                    m.next = "IDLE"

            with m.State("READ"):
                for i, (w, port) in enumerate(ports):
                    with m.If(selected == i):
                        m.d.comb += [port.arvalid.eq(1), port.araddr.eq(addr[:w.offset_width])]
                        with m.If(port.arready):
                            m.next = "READ_RESP"
                with m.If(selected == miss):
                    m.next = "READ_RESP"
            with m.State("READ_RESP"):
                for i, (w, port) in enumerate(ports):
                    with m.If(selected == i):
                        m.d.comb += [bus.rvalid.eq(port.rvalid), bus.rdata.eq(port.rdata),
                                     bus.rresp.eq(port.rresp), port.rready.eq(bus.rready)]
                with m.If(selected == miss):
                    m.d.comb += [bus.rvalid.eq(1), bus.rdata.eq(0), bus.rresp.eq(RESP_DECERR)]
                with m.If(bus.rvalid & bus.rready):
                    m.next = "IDLE"
        return m
