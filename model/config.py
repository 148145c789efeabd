"""The device's elaboration-time parameters: one validated object taken by the golden model, the
gateware and the testbench alike (device contract §1), so that they cannot drift apart."""

from dataclasses import dataclass, field

from .constants import (
    DEFAULT_VENDOR_ID, MAX_QUEUE_SIZE, NGPIO_MAX, Direction, Feature,
)
from .layouts import GpioConfig


# The features a configuration may offer or not, and the parameter that decides each (VERSION_1 is
# always offered; contract §2).
OPTIONAL_FEATURES = {
    Feature.GPIO_F_IRQ: "offer_irq",
    Feature.RING_INDIRECT_DESC: "offer_indirect_desc",
    Feature.RING_EVENT_IDX: "offer_event_idx",
    Feature.ACCESS_PLATFORM: "offer_access_platform",
    Feature.ORDER_PLATFORM: "offer_order_platform",
}


class ConfigError(ValueError):
    """A device parameter is out of range; the message names the parameter and the allowed values."""


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


@dataclass(frozen=True)
class DeviceConfig:
    """Parameters of one virtio-gpio device instance.

    ``line_names``: ``None`` for no names (gpio_names_size = 0), or one entry per line: a 7-bit ASCII
    string, ``""`` for an unnamed line. ``reset_direction``: one ``Direction`` (IN or NONE) for every
    line, or a sequence with one per line.
    """

    ngpio: int = 32
    line_names: tuple[str, ...] | None = None
    reset_direction: Direction | tuple[Direction, ...] = Direction.IN
    queue_size_max: int = 256
    dma_addr_width: int = 32
    dma_data_width: int = 32
    vendor_id: int = DEFAULT_VENDOR_ID
    offer_irq: bool = True
    offer_indirect_desc: bool = True
    offer_event_idx: bool = True
    offer_access_platform: bool = True
    offer_order_platform: bool = True
    reset_directions: tuple[Direction, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.ngpio, int) or not 1 <= self.ngpio <= NGPIO_MAX:
            raise ConfigError(f"ngpio must be an integer in 1..{NGPIO_MAX}, not {self.ngpio!r}")
        if (not isinstance(self.queue_size_max, int) or not is_power_of_two(self.queue_size_max)
                or not 2 <= self.queue_size_max <= MAX_QUEUE_SIZE):
            raise ConfigError(f"queue_size_max must be a power of two in 2..{MAX_QUEUE_SIZE}, "
                              f"not {self.queue_size_max!r}")
        if self.dma_addr_width not in (32, 64):
            raise ConfigError(f"dma_addr_width must be 32 or 64, not {self.dma_addr_width!r}")
        if self.dma_data_width not in (32, 64):
            raise ConfigError(f"dma_data_width must be 32 or 64, not {self.dma_data_width!r}")
        if not isinstance(self.vendor_id, int) or not 0 <= self.vendor_id <= 0xFFFF_FFFF:
            raise ConfigError(f"vendor_id must be a 32-bit unsigned integer, not {self.vendor_id!r}")
        object.__setattr__(self, "reset_directions", self._check_reset_directions())
        if self.line_names is not None:
            object.__setattr__(self, "line_names", self._check_line_names())

    def _check_reset_directions(self) -> tuple[Direction, ...]:
        raw = self.reset_direction
        dirs = (raw,) * self.ngpio if isinstance(raw, (Direction, int)) else tuple(raw)
        if len(dirs) != self.ngpio:
            raise ConfigError(f"reset_direction has {len(dirs)} entries for {self.ngpio} lines")
        for line, d in enumerate(dirs):
            if d not in (Direction.IN, Direction.NONE):
                raise ConfigError(f"reset_direction of line {line} must be Direction.IN or "
                                  f"Direction.NONE, not {d!r}")
        return tuple(Direction(d) for d in dirs)

    def _check_line_names(self) -> tuple[str, ...]:
        names = tuple(self.line_names)
        if len(names) != self.ngpio:
            raise ConfigError(f"line_names has {len(names)} entries for {self.ngpio} lines")
        seen = set()
        for line, name in enumerate(names):
            if not isinstance(name, str):
                raise ConfigError(f"line_names[{line}] must be a string, not {name!r}")
            if any(ord(c) == 0 or ord(c) > 0x7F for c in name):
                raise ConfigError(f"line_names[{line}] = {name!r} must be 7-bit ASCII without NUL")
            if name and name in seen:
                raise ConfigError(f"line name {name!r} is used twice; names must be unique")
            seen.add(name)
        return names

    # -- derived values --------------------------------------------------------------------

    @property
    def offered_features(self) -> int:
        """The 64-bit DeviceFeatures value (device contract §2)."""
        bits = [Feature.VERSION_1] + [bit for bit, parameter in OPTIONAL_FEATURES.items()
                                      if getattr(self, parameter)]
        return sum(1 << b for b in bits)

    @property
    def names_block(self) -> bytes:
        """The GET_LINE_NAMES payload: one NUL-terminated string per line, in line order."""
        if self.line_names is None:
            return b""
        return b"".join(name.encode("ascii") + b"\0" for name in self.line_names)

    @property
    def gpio_names_size(self) -> int:
        return len(self.names_block)

    @property
    def config_space(self) -> bytes:
        """The 8 bytes of device configuration space at offset 0x100."""
        return GpioConfig.build(dict(ngpio=self.ngpio, padding=b"\0\0",
                                     gpio_names_size=self.gpio_names_size))

    @property
    def dma_addr_limit(self) -> int:
        """One past the highest byte address the DMA port can reach."""
        return 1 << self.dma_addr_width
