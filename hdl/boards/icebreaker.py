"""iCEBreaker (iCE40UP5K-SG48) with its break-off PMOD: 8 lines on the two on-board LEDs, the
on-board button, three PMOD LEDs and two PMOD buttons; the host on the FTDI UART (12 MHz clock)."""

from amaranth_boards.icebreaker import ICEBreakerPlatform

from .board_top import Board, LineKind, LinePin
from .host_map import BOARD_LINKS

OUT, IN = LineKind.OUTPUT, LineKind.INPUT


class _ICEBreakerWithPmod(ICEBreakerPlatform):
    resources = ICEBreakerPlatform.resources + ICEBreakerPlatform.break_off_pmod


ICEBREAKER = Board(
    name="icebreaker",
    part="ice40-up5k",
    platform_class=_ICEBreakerWithPmod,
    lines=(
        LinePin("LED_R", OUT, "led", 0), LinePin("LED_G", OUT, "led", 1),
        LinePin("BTN_N", IN, "button", 0),
        LinePin("PMOD_LED2", OUT, "led", 2), LinePin("PMOD_LED3", OUT, "led", 3),
        LinePin("PMOD_LED4", OUT, "led", 4),
        LinePin("PMOD_BTN1", IN, "button", 1), LinePin("PMOD_BTN2", IN, "button", 2),
    ),
    memory_bytes=BOARD_LINKS["icebreaker"].memory_bytes,
    baud=BOARD_LINKS["icebreaker"].baud,
)
