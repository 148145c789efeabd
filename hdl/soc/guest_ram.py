"""The guest memory of a board build: an on-chip RAM that the device DMAs into and that the host
reads and writes through the UART bridge (virtqueues, descriptors and request buffers live here).

One ``Memory`` with one write port (byte enables) and one synchronous read port, so that it maps
onto iCE40 EBR or ECP5 block RAM. Two subordinate ports share it:

* ``dma`` (AXI4): INCR bursts of up to 256 full-width beats with WSTRB byte enables, as the device's
  DMA port issues them. A burst of any other type or beat size is answered SLVERR on every beat
  (its write beats are consumed, nothing is written; its reads return 0). A burst any beat of which
  lies at or above ``size_bytes`` is answered DECERR the same way: it never wraps around and never
  writes anything, not even its in-range beats.
* ``host`` (AXI4-Lite): single words, addressed by the offset inside the RAM (behind the decoder).

The ports are served one transaction (one burst, or one single access) at a time. A round-robin
over four requesters (DMA write, DMA read, host write, host read) grants the next transaction, so
every waiting requester is served within three other transactions and none starves.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from ..axi import AXI4LiteSignature, AXI4Signature, BURST_INCR, RESP_DECERR, RESP_OKAY, RESP_SLVERR

MIN_SIZE_BYTES = 64
BYTE = 8  # write enable granularity: AXI strobes are per byte

# Requesters, in the round-robin's order.
DMA_WRITE, DMA_READ, HOST_WRITE, HOST_READ = range(4)
REQUESTERS = 4


class GuestRam(wiring.Component):
    """``dma``: AXI4 subordinate (``addr_width``-bit byte addresses, RAM at 0); ``host``: AXI4-Lite
    subordinate with ``log2(size_bytes)``-bit addresses."""

    def __init__(self, size_bytes: int, data_width: int = 32, addr_width: int = 32):
        if (not isinstance(size_bytes, int) or size_bytes < MIN_SIZE_BYTES
                or size_bytes & (size_bytes - 1)):
            raise ValueError(f"Guest RAM size must be a power of two >= {MIN_SIZE_BYTES} bytes, "
                             f"not {size_bytes!r}")
        offset_width = size_bytes.bit_length() - 1
        if not isinstance(addr_width, int) or addr_width < offset_width:
            raise ValueError(f"A {addr_width!r}-bit DMA address cannot reach all of "
                             f"{size_bytes} bytes of guest RAM")
        self.size_bytes = size_bytes
        self.data_width = data_width
        self.addr_width = addr_width
        super().__init__({
            "dma": In(AXI4Signature(addr_width=addr_width, data_width=data_width)),
            "host": In(AXI4LiteSignature(addr_width=offset_width, data_width=data_width)),
        })

    def elaborate(self, platform):
        m = Module()
        dma, host = self.dma, self.host
        word_bytes = self.data_width // BYTE
        size = word_bytes.bit_length() - 1  # AxSIZE of a full-width beat = log2(bytes per beat)
        depth = self.size_bytes // word_bytes

        m.submodules.memory = memory = Memory(shape=self.data_width, depth=depth, init=[])
        wp = memory.write_port(granularity=BYTE)
        rp = memory.read_port()  # synchronous: block RAM

        word = Signal(range(depth))  # word of the current beat
        beats_left = Signal(len(dma.awlen))  # after the current beat
        resp = Signal.like(dma.bresp)  # response of every beat of the current burst

        def burst_response(addr, length, burst, beat_size):
            """SLVERR for a burst this RAM does not do, DECERR if its last beat is past the end."""
            last_word = (addr >> size) + length  # wide enough not to wrap
            return Mux((burst != BURST_INCR) | (beat_size != size), RESP_SLVERR,
                       Mux(last_word >= depth, RESP_DECERR, RESP_OKAY))

        # Round-robin grant: the first requester after the last one served.
        request = Signal(REQUESTERS)
        m.d.comb += [
            request[DMA_WRITE].eq(dma.awvalid),
            request[DMA_READ].eq(dma.arvalid),
            request[HOST_WRITE].eq(host.awvalid & host.wvalid),  # AXI lets us wait for both
            request[HOST_READ].eq(host.arvalid),
        ]
        last = Signal(range(REQUESTERS), init=REQUESTERS - 1)
        grant = Signal(REQUESTERS)
        with m.Switch(last):
            for previous in range(REQUESTERS):
                with m.Case(previous):
                    order = [(previous + k) % REQUESTERS for k in range(1, REQUESTERS + 1)]
                    for i, who in enumerate(order):
                        ahead = Cat(*(request[o] for o in order[:i])).any() if i else 0
                        m.d.comb += grant[who].eq(request[who] & ~ahead)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(grant != 0):
                    for who in range(REQUESTERS):
                        with m.If(grant[who]):
                            m.d.sync += last.eq(who)
                with m.If(grant[DMA_WRITE]):
                    m.d.comb += dma.awready.eq(1)
                    m.d.sync += [word.eq(dma.awaddr >> size), beats_left.eq(dma.awlen),
                                 resp.eq(burst_response(dma.awaddr, dma.awlen, dma.awburst,
                                                        dma.awsize))]
                    m.next = "DMA_W"
                with m.If(grant[DMA_READ]):
                    m.d.comb += dma.arready.eq(1)
                    m.d.sync += [word.eq(dma.araddr >> size), beats_left.eq(dma.arlen),
                                 resp.eq(burst_response(dma.araddr, dma.arlen, dma.arburst,
                                                        dma.arsize))]
                    m.next = "DMA_FETCH"
                with m.If(grant[HOST_WRITE]):
                    # The one beat is written right away.
                    m.d.comb += [host.awready.eq(1), host.wready.eq(1),
                                 wp.addr.eq(host.awaddr >> size), wp.data.eq(host.wdata),
                                 wp.en.eq(host.wstrb)]
                    m.next = "HOST_B"
                with m.If(grant[HOST_READ]):
                    m.d.comb += host.arready.eq(1)
                    m.d.sync += word.eq(host.araddr >> size)
                    m.next = "HOST_FETCH"

            with m.State("DMA_W"):
                m.d.comb += [dma.wready.eq(1), wp.addr.eq(word), wp.data.eq(dma.wdata)]
                with m.If(dma.wvalid):
                    with m.If(resp == RESP_OKAY):
                        m.d.comb += wp.en.eq(dma.wstrb)
                    # The burst ends after AWLEN+1 beats; WLAST is the manager's to get right.
                    m.d.sync += [word.eq(word + 1), beats_left.eq(beats_left - 1)]
                    with m.If(beats_left == 0):
                        m.next = "DMA_B"
            with m.State("DMA_B"):
                m.d.comb += [dma.bvalid.eq(1), dma.bresp.eq(resp)]
                with m.If(dma.bready):
                    m.next = "IDLE"

            with m.State("DMA_FETCH"):
                m.d.comb += [rp.addr.eq(word), rp.en.eq(1)]
                m.next = "DMA_R"
            with m.State("DMA_R"):
                m.d.comb += [
                    dma.rvalid.eq(1), dma.rresp.eq(resp), dma.rlast.eq(beats_left == 0),
                    dma.rdata.eq(Mux(resp == RESP_OKAY, rp.data, 0)),
                    # Fetch the next beat as this one is taken; hold this one while it is not.
                    rp.addr.eq(word + 1), rp.en.eq(dma.rready),
                ]
                with m.If(dma.rready):
                    m.d.sync += [word.eq(word + 1), beats_left.eq(beats_left - 1)]
                    with m.If(beats_left == 0):
                        m.next = "IDLE"

            with m.State("HOST_B"):
                m.d.comb += [host.bvalid.eq(1), host.bresp.eq(RESP_OKAY)]
                with m.If(host.bready):
                    m.next = "IDLE"
            with m.State("HOST_FETCH"):
                m.d.comb += [rp.addr.eq(word), rp.en.eq(1)]
                m.next = "HOST_R"
            with m.State("HOST_R"):
                m.d.comb += [host.rvalid.eq(1), host.rresp.eq(RESP_OKAY), host.rdata.eq(rp.data),
                             rp.en.eq(0)]
                with m.If(host.rready):
                    m.next = "IDLE"
        return m
