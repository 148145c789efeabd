"""What the FPGA flow builds: the parts of the out-of-context builds, the device configurations of
the sweep, and the boards.

A part's capacities are the datasheet figures of the device (the ones nextpnr reports as
"available"); they turn the device's own cell counts into percentages even when a build does not
fit and nextpnr writes no report.
"""

from dataclasses import dataclass, field

from amaranth.build import Clock, Pins, Resource
from amaranth.vendor import LatticeECP5Platform, LatticeICE40Platform

from ..hdl.boards.icebreaker import ICEBREAKER
from ..hdl.boards.ulx3s import ULX3S
from ..model.config import DeviceConfig


class TargetError(ValueError):
    """An unknown part, board or configuration name; the message lists the known ones."""


@dataclass(frozen=True)
class CellClasses:
    """Which synthesized cell types count as what, per family."""

    lut4: tuple[str, ...]
    carry: tuple[str, ...]
    bram: tuple[str, ...]
    ff_prefix: str
    lutram: tuple[str, ...] = ()


CELL_CLASSES = {
    "ice40": CellClasses(lut4=("SB_LUT4",), carry=("SB_CARRY",), bram=("SB_RAM40_4K",),
                         ff_prefix="SB_DFF"),
    # A CCU2C is a 2-bit carry slice; TRELLIS_DPR16X4 a 16x4 distributed RAM (one slice).
    "ecp5": CellClasses(lut4=("LUT4",), carry=("CCU2C",), bram=("DP16KD", "PDPW16KD"),
                        ff_prefix="TRELLIS_FF", lutram=("TRELLIS_DPR16X4",)),
}


@dataclass(frozen=True)
class Capacity:
    """Datasheet resources of a part; ``logic`` is the unit nextpnr places LUTs in (iCE40 logic
    cell: one LUT4 + one FF; ECP5: TRELLIS_COMB, one LUT4 each)."""

    logic: int
    ff: int
    bram: int
    logic_resource: str  # nextpnr's name for `logic` in its utilisation report
    ff_resource: str
    bram_resource: str


@dataclass(frozen=True)
class Part:
    """An FPGA part for out-of-context builds: four pins (clock, reset, scan in, scan out)."""

    name: str
    family: str
    device: str
    package: str
    speed: str
    requested_mhz: float  # the project's Fmax goal on this part (docs/synthesis.md)
    capacity: Capacity
    pins: dict = field(repr=False)  # clk, rst, scan_in, scan_out -> package pin

    def platform(self, mhz: float):
        base = {"ice40": LatticeICE40Platform, "ecp5": LatticeECP5Platform}[self.family]
        resources = [
            Resource("clk", 0, Pins(self.pins["clk"], dir="i"), Clock(mhz * 1e6)),
            Resource("rst", 0, Pins(self.pins["rst"], dir="i")),
            Resource("scan_in", 0, Pins(self.pins["scan_in"], dir="i")),
            Resource("scan_out", 0, Pins(self.pins["scan_out"], dir="o")),
        ]
        attrs = dict(device=self.device, package=self.package, default_clk="clk",
                     default_rst="rst", resources=resources, connectors=[])
        if self.family == "ecp5":
            attrs["speed"] = self.speed
        return type(f"OutOfContext_{self.device}", (base,), attrs)()


PARTS = {part.name: part for part in (
    # iCEBreaker's package; the clock on a global-buffer input.
    Part("ice40-up5k", "ice40", "iCE40UP5K", "SG48", "", requested_mhz=48.0,
         capacity=Capacity(logic=5280, ff=5280, bram=30, logic_resource="ICESTORM_LC",
                           ff_resource="ICESTORM_LC", bram_resource="ICESTORM_RAM"),
         pins=dict(clk="35", rst="10", scan_in="6", scan_out="9")),
    # ULX3S 85F's package and speed grade; the clock on its oscillator pin.
    Part("ecp5-85f", "ecp5", "LFE5U-85F", "BG381", "6", requested_mhz=100.0,
         capacity=Capacity(logic=83640, ff=83640, bram=208, logic_resource="TRELLIS_COMB",
                           ff_resource="TRELLIS_FF", bram_resource="DP16KD"),
         pins=dict(clk="G2", rst="R1", scan_in="M1", scan_out="L2")),
)}

_NO_OPTIONS = dict(offer_irq=False, offer_indirect_desc=False, offer_event_idx=False)

# The sweep of the resource table: the line count, and the optional features on and off.
SWEEP_CONFIGS = {
    "gpio8": DeviceConfig(ngpio=8),
    "gpio32": DeviceConfig(ngpio=32),
    "gpio128": DeviceConfig(ngpio=128),
    "gpio32-plain": DeviceConfig(ngpio=32, **_NO_OPTIONS),
}


def select(kind: str, table: dict, names: str | None) -> dict:
    """The entries of ``table`` named in the comma-separated ``names``, by name, in the order
    given (all of them when None)."""
    if names is None:
        return dict(table)
    chosen = {}
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name not in table:
            raise TargetError(f"unknown {kind} {name!r}; known: {', '.join(table)}")
        chosen[name] = table[name]
    return chosen


BOARDS = {board.name: board for board in (ICEBREAKER, ULX3S)}
