"""A board top: the device with its GPIO lines on the board's LEDs, buttons and header pins, its DMA
port on an on-chip guest memory, and its register window and that memory reachable from a host PC
through a UART-to-AXI4-Lite bridge, so that the host can act as the virtio driver.

The host address map (what the bridge's READ/WRITE addresses mean) and each board's baud rate and
memory size are in ``host_map.py``, which the host software reads too.

The device sees the guest memory at guest-physical address 0 (its DMA addresses are offsets into
it); a DMA address beyond the memory gets DECERR, as unmapped memory would on a real SoC.
"""

import enum
from dataclasses import dataclass

from amaranth.hdl import Module
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out, connect

from ...model.config import DeviceConfig
from ...model.constants import MMIO_WINDOW_SIZE
from ..device import VirtioGpioDevice
from ..registers import REGISTER_DATA_WIDTH
from ..soc.axi_lite_decoder import AxiLiteDecoder
from ..soc.guest_ram import GuestRam
from ..soc.uart_bridge import UartBusBridge
from .host_map import DEFAULT_BAUD, HOST_ADDR_WIDTH, MEMORY_BASE, REGISTERS_BASE

SYSTEM_INSTANCE = "system"
DEVICE_INSTANCE = "device"


class LineKind(enum.Enum):
    """How a line meets its pin; the value is the direction of the pin's I/O buffer."""

    OUTPUT = "o"  # an LED: lit while the line drives 1; reads back what it drives
    INPUT = "i"  # a button: reads the button, drives nothing
    INOUT = "io"  # a header pin: a real tristate pin


@dataclass(frozen=True)
class LinePin:
    """GPIO line → board resource. ``name`` becomes the line's name (GET_LINE_NAMES)."""

    name: str
    kind: LineKind
    resource: str
    number: int = 0


@dataclass(frozen=True)
class Board:
    name: str
    part: str  # the synthesis part of its FPGA (synth.targets.PARTS)
    platform_class: type
    lines: tuple[LinePin, ...]
    memory_bytes: int
    queue_size_max: int = 16
    extra_resources: tuple = ()  # resources the board's platform does not define (header pins)
    baud: int = DEFAULT_BAUD
    device_path: str = f"{SYSTEM_INSTANCE}.{DEVICE_INSTANCE}"

    @property
    def config(self) -> DeviceConfig:
        return DeviceConfig(ngpio=len(self.lines), line_names=tuple(p.name for p in self.lines),
                            queue_size_max=self.queue_size_max,
                            dma_addr_width=HOST_ADDR_WIDTH, dma_data_width=32)

    def platform(self):
        platform = self.platform_class()
        platform.add_resources(list(self.extra_resources))
        return platform

    @property
    def clock_mhz(self) -> float:
        return self.platform_class().default_clk_frequency / 1e6

    def top(self) -> "BoardTop":
        return BoardTop(self)


class BoardSystem(wiring.Component):
    """Everything of a board top but the pins: the device, its guest memory and the host bridge.
    ``rx``/``tx``: the host's UART (``divisor`` clock cycles per bit); ``irq`` and the GPIO lines
    as on the device."""

    def __init__(self, config: DeviceConfig, memory_bytes: int, divisor: int):
        self.config = config
        self.memory_bytes = memory_bytes
        self.divisor = divisor
        n = config.ngpio
        super().__init__({"rx": In(1), "tx": Out(1, init=1), "irq": Out(1),
                          "gpio_i": In(n), "gpio_o": Out(n), "gpio_oe": Out(n)})

    def elaborate(self, platform):
        m = Module()
        config = self.config
        m.submodules[DEVICE_INSTANCE] = device = VirtioGpioDevice(config)
        m.submodules.ram = ram = GuestRam(self.memory_bytes, data_width=config.dma_data_width,
                                          addr_width=config.dma_addr_width)
        m.submodules.bridge = bridge = UartBusBridge(self.divisor)
        m.submodules.decoder = decoder = AxiLiteDecoder(
            HOST_ADDR_WIDTH, REGISTER_DATA_WIDTH,
            [("registers", REGISTERS_BASE, MMIO_WINDOW_SIZE),
             ("memory", MEMORY_BASE, self.memory_bytes)])
        connect(m, bridge.bus, decoder.bus)
        connect(m, decoder.registers, device.s_axil)
        connect(m, decoder.memory, ram.host)
        connect(m, device.m_axi, ram.dma)
        m.d.comb += [
            bridge.rx.eq(self.rx), self.tx.eq(bridge.tx),
            bridge.irq.eq(device.irq), self.irq.eq(device.irq),
            device.gpio_i.eq(self.gpio_i), self.gpio_o.eq(device.gpio_o),
            self.gpio_oe.eq(device.gpio_oe),
        ]
        return m


class BoardTop(wiring.Component):
    def __init__(self, board: Board):
        self.board = board
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        board = self.board
        divisor = round(platform.default_clk_frequency / board.baud)
        m.submodules[SYSTEM_INSTANCE] = system = BoardSystem(board.config, board.memory_bytes,
                                                             divisor)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = uart_rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = uart_tx = io.Buffer("o", uart.tx)
        m.d.comb += [system.rx.eq(uart_rx.i), uart_tx.o.eq(system.tx)]
        self._wire_lines(m, platform, system)
        return m

    def _wire_lines(self, m, platform, system):
        for line, pin in enumerate(self.board.lines):
            port = platform.request(pin.resource, pin.number, dir="-")
            m.submodules[f"line{line}"] = buffer = io.Buffer(pin.kind.value, port)
            if pin.kind is LineKind.INPUT:
                m.d.comb += system.gpio_i[line].eq(buffer.i)
            elif pin.kind is LineKind.OUTPUT:
                driven = system.gpio_o[line] & system.gpio_oe[line]
                m.d.comb += [buffer.o.eq(driven), system.gpio_i[line].eq(driven)]
            else:
                m.d.comb += [buffer.o.eq(system.gpio_o[line]), buffer.oe.eq(system.gpio_oe[line]),
                             system.gpio_i[line].eq(buffer.i)]
