"""Constants of virtio-mmio v2, split virtqueues and the virtio GPIO device.

One source of truth: the golden model, the gateware and the testbench all import these. Names follow
the OASIS virtio specification (virtio-v1.4); the Linux spelling is noted where it differs.
"""

from enum import IntEnum, IntFlag

MAGIC_VALUE = 0x74726976  # "virt", little-endian
MMIO_VERSION = 2  # virtio-mmio v2 ("modern"); 1 is legacy and not implemented
DEVICE_ID_GPIO = 41
# VendorID default: "FPGA" read as a little-endian word, in the manner of QEMU's "QEMU" (0x554d4551).
DEFAULT_VENDOR_ID = 0x41475046

MMIO_WINDOW_SIZE = 0x1000  # the register window is 4 KiB
CONFIG_SPACE_OFFSET = 0x100
CONFIG_GENERATION = 0  # the configuration never changes, so its generation is a constant

MAX_QUEUE_SIZE = 32768  # split-ring limit
NUM_QUEUES = 2


class QueueIndex(IntEnum):
    REQUESTQ = 0
    EVENTQ = 1  # exists only when VIRTIO_GPIO_F_IRQ is negotiated


class DeviceStatus(IntFlag):
    ACKNOWLEDGE = 1
    DRIVER = 2
    DRIVER_OK = 4
    FEATURES_OK = 8
    SUSPEND = 16
    DEVICE_NEEDS_RESET = 64
    FAILED = 128


class Feature(IntEnum):
    """Feature bit numbers (not masks): ``1 << Feature.X`` is the mask."""

    GPIO_F_IRQ = 0
    NOTIFY_ON_EMPTY = 24
    ANY_LAYOUT = 27
    RING_INDIRECT_DESC = 28
    RING_EVENT_IDX = 29
    VERSION_1 = 32
    ACCESS_PLATFORM = 33
    RING_PACKED = 34
    IN_ORDER = 35
    ORDER_PLATFORM = 36
    SR_IOV = 37
    NOTIFICATION_DATA = 38
    NOTIF_CONFIG_DATA = 39
    RING_RESET = 40
    ADMIN_VQ = 41
    SUSPEND = 43

    @property
    def mask(self) -> int:
        return 1 << self.value


# The features this design can offer at all (device contract §2). Everything else is never offered.
IMPLEMENTED_FEATURES = frozenset({
    Feature.GPIO_F_IRQ,
    Feature.RING_INDIRECT_DESC,
    Feature.RING_EVENT_IDX,
    Feature.VERSION_1,
    Feature.ACCESS_PLATFORM,
    Feature.ORDER_PLATFORM,
})


class InterruptStatus(IntFlag):
    USED_BUFFER = 1
    CONFIG_CHANGE = 2


class DescFlags(IntFlag):
    NEXT = 1
    WRITE = 2
    INDIRECT = 4


class AvailFlags(IntFlag):
    NO_INTERRUPT = 1


class UsedFlags(IntFlag):
    NO_NOTIFY = 1


class MsgType(IntEnum):
    GET_LINE_NAMES = 0x0001  # Linux: VIRTIO_GPIO_MSG_GET_NAMES
    GET_DIRECTION = 0x0002
    SET_DIRECTION = 0x0003
    GET_VALUE = 0x0004
    SET_VALUE = 0x0005
    SET_IRQ_TYPE = 0x0006  # Linux: VIRTIO_GPIO_MSG_IRQ_TYPE


class ReplyStatus(IntEnum):
    OK = 0x0
    ERR = 0x1


class Direction(IntEnum):
    NONE = 0x00
    OUT = 0x01
    IN = 0x02


class IrqType(IntEnum):
    NONE = 0x00
    EDGE_RISING = 0x01
    EDGE_FALLING = 0x02
    EDGE_BOTH = 0x03
    LEVEL_HIGH = 0x04
    LEVEL_LOW = 0x08

    @property
    def is_edge(self) -> bool:
        return self in (IrqType.EDGE_RISING, IrqType.EDGE_FALLING, IrqType.EDGE_BOTH)

    @property
    def is_level(self) -> bool:
        return self in (IrqType.LEVEL_HIGH, IrqType.LEVEL_LOW)


class IrqStatus(IntEnum):
    INVALID = 0x0
    VALID = 0x1


NGPIO_MAX = 1024
