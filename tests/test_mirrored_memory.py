"""The RTL's memory and the golden model's copy (``tb/mirrored_memory.py``): one table of grants,
one violation list per side, so an offence says whether the RTL or the model made it."""

from virtio_gpio.model.memory import AccessKind, BusResponse, DmaAccess, GuestMemory, Perm
from virtio_gpio.tb.axi_memory import MemoryPort
from virtio_gpio.tb.mirrored_memory import MirroredMemory

WORD = 4  # bytes: a 32-bit data bus
FULL = 2  # AxSIZE of a 4-byte beat
BURST_INCR = 0b01


def rtl_read(memory: MirroredMemory, addr: int, beats: int) -> None:
    """The RTL reading ``beats`` words from ``addr`` through the AXI memory agent's rules."""
    def report(message):
        raise AssertionError(message)

    port = MemoryPort(memory, WORD, report=report)
    burst = port.burst(AccessKind.READ, addr, beats - 1, FULL, BURST_INCR)
    for beat in range(beats):
        port.read_beat(burst, beat)


def test_driver_grants_are_seen_by_both_sides_and_violations_are_kept_apart():
    mem = MirroredMemory(32)
    buf = mem.alloc(64)
    mem.write(buf, bytes(range(64)))
    assert mem.shadow.read(buf, 64) == bytes(range(64))
    g = mem.firewall.grant(buf, 32, Perm.READ, "vq0")  # as the driver model grants
    assert mem.shadow.dma_read(buf, 32) == bytes(range(32))  # the model's access is inside it
    rtl_read(mem, buf, 8)  # all 32 granted bytes
    assert mem.violations_by_side() == {"RTL": [], "model": []}
    rtl_read(mem, buf + 28, 2)  # the last granted word and the one after it
    assert [v.access.addr for v in mem.firewall.violations] == [buf + 32]
    mem.firewall.revoke(g)  # a revoke reaches the model's side too
    mem.shadow.dma_read(buf, 4)
    assert [v.access.addr for v in mem.shadow.firewall.violations] == [buf]
    assert len(mem.firewall.violations) == 1


def test_a_granted_buffer_read_by_the_rtl_alone_is_legal_and_offences_name_their_side():
    """A chain rejected late in its walk: the RTL gathered its request buffer while walking, the
    model, which reads a request only after the whole chain parsed, never read it. The buffer was
    granted when the chain was published, so the RTL's read is no offence."""
    mem = MirroredMemory(64)
    request, elsewhere = mem.alloc(8), mem.alloc(8)
    mem.firewall.grant(request, 8, Perm.READ, "vq0")
    rtl_read(mem, request, 2)
    assert [(a.addr, a.size) for a in mem.dma_log] == [(request, 4), (request + 4, 4)]
    assert mem.shadow.dma_log == []  # the model read nothing
    assert mem.violations_by_side() == {"RTL": [], "model": []}

    mem.shadow.dma_read(elsewhere, 4)   # the model's own out-of-grant read
    rtl_read(mem, elsewhere + 4, 1)     # and one by the RTL
    by_side = mem.violations_by_side()
    assert [v.access for v in by_side["model"]] == [DmaAccess(AccessKind.READ, elsewhere, 4)]
    assert [v.access for v in by_side["RTL"]] == [DmaAccess(AccessKind.READ, elsewhere + 4, 4)]
    assert by_side["model"] is mem.shadow.firewall.violations and by_side["RTL"] is mem.firewall.violations
    assert [v.side for v in by_side["model"]] == ["model"] and [v.side for v in by_side["RTL"]] == ["RTL"]
    assert str(by_side["model"][0]).startswith(f"model: read [{elsewhere:#x}, +4)")
    assert str(by_side["RTL"][0]).startswith(f"RTL: read [{elsewhere + 4:#x}, +4)")


def test_a_plain_guest_memory_has_one_side():
    mem = GuestMemory()
    mem.dma_write(mem.alloc(4), b"x")
    assert [v.side for v in mem.firewall.violations] == ["device"]
    assert mem.firewall.violations[0].access.response is BusResponse.OKAY
