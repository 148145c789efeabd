"""The device configurations of the Verilator regression, and how a configuration travels from
pytest to the cocotb tests (an environment variable holding JSON)."""

import json
import os

from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.constants import Direction

CONFIG_ENV = "VIRTIO_GPIO_CONFIG"

# ngpio = 8 without names, 32-bit DMA on a 32-bit bus: the smallest useful core.
SMALL = DeviceConfig(ngpio=8, dma_addr_width=32, dma_data_width=32)
# ngpio = 32 with names, 64-bit addresses on a 64-bit bus: rings above 4 GiB.
WIDE = DeviceConfig(ngpio=32, line_names=tuple(f"line{i}" if i % 5 else "" for i in range(32)),
                    dma_addr_width=64, dma_data_width=64)
# Nothing optional offered: no eventq, no indirect descriptors, no EVENT_IDX; lines start NONE.
PLAIN = DeviceConfig(ngpio=4, offer_irq=False, offer_indirect_desc=False, offer_event_idx=False,
                     reset_direction=Direction.NONE, queue_size_max=16)

REGRESSION = {"small": SMALL, "wide": WIDE, "plain": PLAIN}


def to_json(config: DeviceConfig) -> str:
    fields = {f: getattr(config, f) for f in (
        "ngpio", "line_names", "queue_size_max", "dma_addr_width", "dma_data_width", "vendor_id",
        "offer_irq", "offer_indirect_desc", "offer_event_idx", "offer_access_platform",
        "offer_order_platform")}
    fields["reset_direction"] = [int(d) for d in config.reset_directions]
    return json.dumps(fields)


def from_json(text: str) -> DeviceConfig:
    fields = json.loads(text)
    if fields.get("line_names") is not None:
        fields["line_names"] = tuple(fields["line_names"])
    fields["reset_direction"] = tuple(Direction(d) for d in fields["reset_direction"])
    return DeviceConfig(**fields)


def current() -> DeviceConfig:
    """The configuration the simulated Verilog was built from (set by the runner)."""
    text = os.environ.get(CONFIG_ENV)
    if text is None:
        raise RuntimeError(f"{CONFIG_ENV} is not set: run the cocotb tests through "
                           f"`make sim` or pytest, which build the Verilog for a configuration")
    return from_json(text)


def offers(feature_parameter: str) -> bool:
    """Whether the configuration under test offers a feature (``"offer_irq"``...), for skipping
    tests at import; True when no configuration is set (e.g. when only listing the tests)."""
    text = os.environ.get(CONFIG_ENV)
    return True if text is None else getattr(from_json(text), feature_parameter)
