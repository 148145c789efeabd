"""Amaranth views of the wire structures, derived from the golden model's construct definitions
(model/layouts.py) so that the gateware and the model cannot disagree on a field's place or size."""

from amaranth.lib import data
from construct import Int8ul, Int16ul, Int32ul, Int64ul

from ..model import layouts as wire

_FIELD_BITS = {Int8ul: 8, Int16ul: 16, Int32ul: 32, Int64ul: 64}


def from_construct(layout) -> data.StructLayout:
    """A little-endian construct Struct of fixed-width integers as an Amaranth StructLayout: on a
    little-endian bus, bit 0 of the layout is bit 0 of the structure's first byte."""
    struct = getattr(layout, "defersubcon", layout)  # compiled or not
    return data.StructLayout({field.name: _FIELD_BITS[field.subcon] for field in struct.subcons})


Descriptor = from_construct(wire.VirtqDesc)
UsedElement = from_construct(wire.VirtqUsedElem)
GpioRequest = from_construct(wire.GpioRequest)
IrqRequest = from_construct(wire.IrqRequest)
