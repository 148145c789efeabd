"""ULX3S 85F (LFE5U-85F-6BG381): 16 lines on the 8 LEDs, the six direction/fire buttons and two
header pins (GP0/GN0 pair 0); the host on the FTDI UART (25 MHz clock)."""

from amaranth.build import Attrs, Pins, Resource
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from .board_top import Board, LineKind, LinePin
from .host_map import BOARD_LINKS

OUT, IN, INOUT = LineKind.OUTPUT, LineKind.INPUT, LineKind.INOUT
HEADER = "gpio_header"

ULX3S = Board(
    name="ulx3s",
    part="ecp5-85f",
    platform_class=ULX3S_85F_Platform,
    lines=(
        *(LinePin(f"LED{i}", OUT, "led", i) for i in range(8)),
        LinePin("BTN_FIRE1", IN, "button_fire", 0), LinePin("BTN_FIRE2", IN, "button_fire", 1),
        LinePin("BTN_UP", IN, "button_up"), LinePin("BTN_DOWN", IN, "button_down"),
        LinePin("BTN_LEFT", IN, "button_left"), LinePin("BTN_RIGHT", IN, "button_right"),
        LinePin("GP0", INOUT, HEADER, 0), LinePin("GN0", INOUT, HEADER, 1),
    ),
    memory_bytes=BOARD_LINKS["ulx3s"].memory_bytes,
    baud=BOARD_LINKS["ulx3s"].baud,
    extra_resources=(
        Resource(HEADER, 0, Pins("0+", dir="io", conn=("gpio", 0)), Attrs(IO_TYPE="LVCMOS33")),
        Resource(HEADER, 1, Pins("0-", dir="io", conn=("gpio", 0)), Attrs(IO_TYPE="LVCMOS33")),
    ),
)
