"""The board system (UART bridge -> decoder -> the device's register window and the guest RAM's host
port; the device's DMA port on the guest RAM), driven from the UART pin by the bit-level model: the
blocks' ports fit and the host reaches both windows at the board's address map."""

import random

from virtio_gpio.hdl.axi import RESP_DECERR, RESP_OKAY
from virtio_gpio.hdl.boards.board_top import MEMORY_BASE, REGISTERS_BASE, BoardSystem
from virtio_gpio.hdl.soc import bridge_protocol as bp
from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.constants import DEVICE_ID_GPIO
from virtio_gpio.model.layouts import Reg
from soc_sim import idle, receive_bytes, run, send_bytes, wait_until

DIVISOR = 4
BYTE_CYCLES = bp.BITS_PER_BYTE * DIVISOR
MEMORY_BYTES = 256


def test_host_reaches_registers_and_memory_through_the_uart():
    config = DeviceConfig(ngpio=2, queue_size_max=4)
    system = BoardSystem(config, MEMORY_BYTES, DIVISOR)

    value = random.Random(4).getrandbits(32)
    frames = [
        # MagicValue is "virt" in little-endian order (virtio-mmio).
        (bp.encode_read(REGISTERS_BASE + Reg.MAGIC_VALUE), bytes([RESP_OKAY]) + b"virt"),
        (bp.encode_read(REGISTERS_BASE + Reg.DEVICE_ID),
         bytes([RESP_OKAY]) + DEVICE_ID_GPIO.to_bytes(4, "little")),
        (bp.encode_write(MEMORY_BASE + 0x40, value), bytes([RESP_OKAY])),
        (bp.encode_read(MEMORY_BASE + 0x40), bytes([RESP_OKAY]) + value.to_bytes(4, "little")),
        (bp.encode_read(MEMORY_BASE + MEMORY_BYTES), bytes([RESP_DECERR, 0, 0, 0, 0])),
        (bp.encode_irq(), bytes([RESP_OKAY, 0])),
    ]
    replies = []

    async def host(ctx):
        await idle(ctx, system.rx, 2 * BYTE_CYCLES)
        for frame, expected in frames:
            start = len(replies)
            await send_bytes(ctx, system.rx, frame, DIVISOR)
            await wait_until(ctx, lambda: len(replies) >= start + len(expected), 20 * BYTE_CYCLES,
                             "the reply")
            assert bytes(replies[start:]) == expected, frame.hex()

    async def line(ctx):
        await receive_bytes(ctx, system.tx, DIVISOR, replies)

    run(system, host, background=[line])
