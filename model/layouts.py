"""Wire layouts: the virtio-mmio register map, the GPIO config space, split-ring structures and the
GPIO messages, as ``construct`` definitions.

Every offset and size used elsewhere is derived from these definitions, never written down again.
Fixed-size structures are compiled once (``construct``'s ``.compile()``), which keeps the golden model
fast enough for runs of more than 65536 requests.
"""

import struct
from dataclasses import dataclass
from enum import Enum

from construct import (
    Array, Bytes, Int8ul, Int16ul, Int32ul, Int64ul, Padding, Struct,
)

from .constants import CONFIG_SPACE_OFFSET

_STRUCT_CODES = {Int8ul: "B", Int16ul: "H", Int32ul: "I", Int64ul: "Q"}


def packer(layout: Struct) -> struct.Struct:
    """The same layout as a ``struct.Struct``, derived from the construct definition, for the model's
    hot paths (a descriptor walk, a used element): several times faster than construct."""
    return struct.Struct("<" + "".join(_STRUCT_CODES[field.subcon] for field in layout.subcons))


# ---------------------------------------------------------------------------------------------
# virtio-mmio v2 register map


class Access(Enum):
    R = "R"
    W = "W"
    RW = "RW"


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: Access


class Reg:
    """Offsets of the 32-bit control registers below the config space."""

    MAGIC_VALUE = 0x000
    VERSION = 0x004
    DEVICE_ID = 0x008
    VENDOR_ID = 0x00C
    DEVICE_FEATURES = 0x010
    DEVICE_FEATURES_SEL = 0x014
    DRIVER_FEATURES = 0x020
    DRIVER_FEATURES_SEL = 0x024
    QUEUE_SEL = 0x030
    QUEUE_SIZE_MAX = 0x034  # QueueNumMax
    QUEUE_SIZE = 0x038  # QueueNum
    QUEUE_READY = 0x044
    QUEUE_NOTIFY = 0x050
    INTERRUPT_STATUS = 0x060
    INTERRUPT_ACK = 0x064
    STATUS = 0x070
    QUEUE_DESC_LOW = 0x080
    QUEUE_DESC_HIGH = 0x084
    QUEUE_DRIVER_LOW = 0x090
    QUEUE_DRIVER_HIGH = 0x094
    QUEUE_DEVICE_LOW = 0x0A0
    QUEUE_DEVICE_HIGH = 0x0A4
    SHM_SEL = 0x0AC
    SHM_LEN_LOW = 0x0B0
    SHM_LEN_HIGH = 0x0B4
    SHM_BASE_LOW = 0x0B8
    SHM_BASE_HIGH = 0x0BC
    QUEUE_RESET = 0x0C0
    CONFIG_GENERATION = 0x0FC
    CONFIG = CONFIG_SPACE_OFFSET


_ACCESS = {
    "MAGIC_VALUE": Access.R, "VERSION": Access.R, "DEVICE_ID": Access.R, "VENDOR_ID": Access.R,
    "DEVICE_FEATURES": Access.R, "DEVICE_FEATURES_SEL": Access.W,
    "DRIVER_FEATURES": Access.W, "DRIVER_FEATURES_SEL": Access.W,
    "QUEUE_SEL": Access.W, "QUEUE_SIZE_MAX": Access.R, "QUEUE_SIZE": Access.W,
    "QUEUE_READY": Access.RW, "QUEUE_NOTIFY": Access.W,
    "INTERRUPT_STATUS": Access.R, "INTERRUPT_ACK": Access.W, "STATUS": Access.RW,
    "QUEUE_DESC_LOW": Access.W, "QUEUE_DESC_HIGH": Access.W,
    "QUEUE_DRIVER_LOW": Access.W, "QUEUE_DRIVER_HIGH": Access.W,
    "QUEUE_DEVICE_LOW": Access.W, "QUEUE_DEVICE_HIGH": Access.W,
    "SHM_SEL": Access.W, "SHM_LEN_LOW": Access.R, "SHM_LEN_HIGH": Access.R,
    "SHM_BASE_LOW": Access.R, "SHM_BASE_HIGH": Access.R,
    # QueueReset exists only with VIRTIO_F_RING_RESET, which this device never offers: it reads 0.
    "QUEUE_RESET": Access.RW,
    "CONFIG_GENERATION": Access.R,
}

REGISTERS: tuple[Register, ...] = tuple(
    Register(name, getattr(Reg, name), access) for name, access in _ACCESS.items()
)
REGISTER_BY_OFFSET = {r.offset: r for r in REGISTERS}


def _register_window() -> Struct:
    """The control-register window 0x000..0x0ff as a construct Struct, derived from REGISTERS."""
    fields, pos = [], 0
    for reg in sorted(REGISTERS, key=lambda r: r.offset):
        if reg.offset > pos:
            fields.append(Padding(reg.offset - pos))
        fields.append(reg.name.lower() / Int32ul)
        pos = reg.offset + 4
    fields.append(Padding(CONFIG_SPACE_OFFSET - pos))
    return Struct(*fields)


MmioControlRegisters = _register_window()

# ---------------------------------------------------------------------------------------------
# GPIO device configuration space (at CONFIG_SPACE_OFFSET)

GpioConfig = Struct(
    "ngpio" / Int16ul,
    "padding" / Bytes(2),
    "gpio_names_size" / Int32ul,
).compile()
CONFIG_SPACE_SIZE = GpioConfig.sizeof()

# ---------------------------------------------------------------------------------------------
# Split virtqueue

_VirtqDesc = Struct(
    "addr" / Int64ul,
    "len" / Int32ul,
    "flags" / Int16ul,
    "next" / Int16ul,
)
VirtqDesc = _VirtqDesc.compile()
DESC_PACKER = packer(_VirtqDesc)  # (addr, len, flags, next)
DESC_SIZE = VirtqDesc.sizeof()

VirtqAvailHeader = Struct("flags" / Int16ul, "idx" / Int16ul).compile()
VirtqUsedHeader = Struct("flags" / Int16ul, "idx" / Int16ul).compile()
_VirtqUsedElem = Struct("id" / Int32ul, "len" / Int32ul)
VirtqUsedElem = _VirtqUsedElem.compile()
USED_ELEM_PACKER = packer(_VirtqUsedElem)  # (id, len)
RingIndex = Int16ul  # avail ring entries, idx fields, used_event and avail_event

RING_HEADER_SIZE = VirtqAvailHeader.sizeof()
RING_IDX_OFFSET = 2  # offset of `idx` in both ring headers
AVAIL_ENTRY_SIZE = RingIndex.sizeof()
USED_ELEM_SIZE = VirtqUsedElem.sizeof()

# Required alignment of each virtqueue part (spec "Virtqueue Alignment").
DESC_TABLE_ALIGN = 16
AVAIL_RING_ALIGN = 2
USED_RING_ALIGN = 4


def virtq_avail(num: int):
    """``struct virtq_avail`` for a queue of ``num`` entries (used_event is always laid out)."""
    return Struct(
        "flags" / Int16ul, "idx" / Int16ul, "ring" / Array(num, Int16ul), "used_event" / Int16ul,
    )


def virtq_used(num: int):
    """``struct virtq_used`` for a queue of ``num`` entries (avail_event is always laid out)."""
    return Struct(
        "flags" / Int16ul, "idx" / Int16ul, "ring" / Array(num, VirtqUsedElem),
        "avail_event" / Int16ul,
    )


@dataclass(frozen=True)
class RingGeometry:
    """Byte offsets inside the three virtqueue parts for a queue of ``num`` entries."""

    num: int

    @property
    def desc_table_size(self) -> int:
        return DESC_SIZE * self.num

    @property
    def avail_ring_size(self) -> int:
        return RING_HEADER_SIZE + AVAIL_ENTRY_SIZE * self.num + RingIndex.sizeof()

    @property
    def used_ring_size(self) -> int:
        return RING_HEADER_SIZE + USED_ELEM_SIZE * self.num + RingIndex.sizeof()

    def avail_entry(self, slot: int) -> int:
        return RING_HEADER_SIZE + AVAIL_ENTRY_SIZE * slot

    @property
    def used_event(self) -> int:
        return RING_HEADER_SIZE + AVAIL_ENTRY_SIZE * self.num

    def used_elem(self, slot: int) -> int:
        return RING_HEADER_SIZE + USED_ELEM_SIZE * slot

    @property
    def avail_event(self) -> int:
        return RING_HEADER_SIZE + USED_ELEM_SIZE * self.num


def need_event(event_idx: int, new_idx: int, old_idx: int) -> bool:
    """``vring_need_event`` of the spec's virtio-queue.h: has ``new`` moved past ``event`` since ``old``?"""
    return ((new_idx - event_idx - 1) & 0xFFFF) < ((new_idx - old_idx) & 0xFFFF)


# ---------------------------------------------------------------------------------------------
# GPIO messages

_GpioRequest = Struct("type" / Int16ul, "gpio" / Int16ul, "value" / Int32ul)
GpioRequest = _GpioRequest.compile()
GPIO_REQUEST_PACKER = packer(_GpioRequest)  # (type, gpio, value)
GpioReply = Struct("status" / Int8ul, "value" / Int8ul).compile()
IrqRequest = Struct("gpio" / Int16ul).compile()
IrqReply = Struct("status" / Int8ul).compile()
GPIO_REQUEST_SIZE = GpioRequest.sizeof()
GPIO_REPLY_SIZE = GpioReply.sizeof()
IRQ_REQUEST_SIZE = IrqRequest.sizeof()
IRQ_REPLY_SIZE = IrqReply.sizeof()


def gpio_names_reply(names_size: int):
    """The GET_LINE_NAMES reply: a status byte and the ``gpio_names_size``-byte names block."""
    return Struct("status" / Int8ul, "value" / Bytes(names_size))

