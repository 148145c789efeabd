"""What a host needs to know about a board, in pure Python: the host address map behind the UART
bridge, and each board's baud rate and guest memory size. The board tops (``board_top.py`` and the
boards) build from these numbers and the host software (``host/``, ``virtio-gpio board``) reads
them, so that the two cannot drift apart and the host needs no Amaranth.

========================  ==========================================================
``REGISTERS_BASE``        the device's 4 KiB virtio-mmio register window
``MEMORY_BASE``           the guest memory; host offset k is guest-physical address k
========================  ==========================================================
"""

from dataclasses import dataclass

REGISTERS_BASE = 0x0000_0000
MEMORY_BASE = 0x1000_0000
HOST_ADDR_WIDTH = 32
DEFAULT_BAUD = 115_200


@dataclass(frozen=True)
class HostLink:
    baud: int
    memory_bytes: int  # the on-chip guest memory, at MEMORY_BASE for the host and 0 for the device


BOARD_LINKS = {
    "icebreaker": HostLink(DEFAULT_BAUD, memory_bytes=8192),   # 16 of the 30 EBRs
    "ulx3s": HostLink(DEFAULT_BAUD, memory_bytes=16384),       # 8 of the 208 DP16KD blocks
}
