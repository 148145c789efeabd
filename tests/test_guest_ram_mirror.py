"""The guest RAM the RTL backend gives the model beside the RTL (``tb/guest_ram_mirror.py``): the
model sees what the RTL read, keeps its writes to itself, and the two sides' writes are compared."""

import os

from virtio_gpio.tb.guest_ram_mirror import MirroredGuestRam

USER = 0x7F00_0000_0000


def _ram(size: int = 0x2000) -> MirroredGuestRam:
    ram = MirroredGuestRam(32)
    fd = os.memfd_create("guest")
    os.ftruncate(fd, size)
    ram.add_region(0, size, USER, 0, fd)
    return ram


def test_the_model_reads_what_the_rtl_read_even_after_the_guest_changed_it():
    ram = _ram()
    ram.write(0x100, b"\x01\x02")
    assert ram.peek(0x100, 2) == b"\x01\x02"   # the RTL's DMA read
    ram.write(0x100, b"\x09\x09")               # the guest moves on before the model runs
    assert ram.shadow.dma_read(0x100, 2) == b"\x01\x02"
    assert ram.shadow.dma_read(0x102, 1) == b"\x00"  # a byte the RTL never read: guest RAM
    ram.next_round()
    assert ram.shadow.dma_read(0x100, 2) == b"\x09\x09"


def test_the_model_writes_only_its_own_view_and_equal_writes_are_no_difference():
    ram = _ram()
    ram.poke(0x200, b"\xaa\xbb")            # the RTL writes guest RAM
    ram.shadow.dma_write(0x200, b"\xaa\xbb")
    assert ram.read(0x200, 2) == b"\xaa\xbb" and ram.differences() == []
    ram.shadow.dma_write(0x300, b"\x11")     # the model alone writes: guest RAM keeps its byte
    assert ram.read(0x300, 1) == b"\x00"
    assert ram.shadow.dma_read(0x300, 1) == b"\x11"


def test_differences_name_the_bytes_and_both_values():
    ram = _ram()
    ram.poke(0x400, b"\x01\x02\x03")
    ram.shadow.dma_write(0x400, b"\x01\x07\x03")
    ram.shadow.dma_write(0x500, b"\x05\x06")
    ram.write(0x400, b"\x00\x00\x00")  # the guest overwrites the reply: the RTL's value counts
    assert ram.differences() == ["[0x401, +1): RTL 02 model 07", "[0x500, +2): RTL ---- model 0506"]
    ram.next_round()
    assert ram.differences() == []


def test_a_byte_the_rtl_reads_back_after_writing_it_is_not_the_models_input():
    ram = _ram()
    ram.write(0x600, b"\x04")
    ram.peek(0x600, 1)
    ram.poke(0x600, b"\x05")
    ram.peek(0x600, 1)
    assert ram.seen[0x600] == 0x04
