"""The virtio-mmio GPIO device: register file, virtqueue engine, DMA port and GPIO bank, and its
Verilog form with the documented port names (device contract §9, docs/ports.md)."""

from amaranth.back import verilog
from amaranth.hdl import Module, Shape
from amaranth.hdl._ir import PortDirection
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from ..model.config import DeviceConfig
from .axi import AXI4LiteSignature, AXI4Signature
from .dma import DmaPort
from .gpio_bank import GpioBank
from .registers import REGISTER_ADDR_WIDTH, REGISTER_DATA_WIDTH, RegisterFile
from .virtqueue_engine import VirtqueueEngine

TOP_MODULE_NAME = "virtio_gpio"


def device_signature(config: DeviceConfig) -> wiring.Signature:
    n = config.ngpio
    return wiring.Signature({
        "s_axil": In(AXI4LiteSignature(addr_width=REGISTER_ADDR_WIDTH,
                                       data_width=REGISTER_DATA_WIDTH)),
        "m_axi": Out(AXI4Signature(addr_width=config.dma_addr_width,
                                   data_width=config.dma_data_width)),
        "irq": Out(1),
        "gpio_i": In(n), "gpio_o": Out(n), "gpio_oe": Out(n),
    })


class VirtioGpioDevice(wiring.Component):
    """``s_axil``: the register window; ``m_axi``: DMA into guest memory; ``irq``: high exactly
    while InterruptStatus is not 0; ``gpio_i``/``gpio_o``/``gpio_oe``: the lines (``gpio_i`` is
    synchronized inside)."""

    def __init__(self, config: DeviceConfig):
        self.config = config
        super().__init__(device_signature(config))

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        m.submodules.registers = registers = RegisterFile(cfg)
        m.submodules.engine = engine = VirtqueueEngine(cfg)
        m.submodules.dma = dma = DmaPort(addr_width=cfg.dma_addr_width, data_width=cfg.dma_data_width)
        m.submodules.gpio = gpio = GpioBank(cfg)

        connect(m, flipped(self.s_axil), registers.bus)
        connect(m, registers.engine, engine.transport)
        connect(m, engine.dma, dma.cmd)
        connect(m, dma.bus, flipped(self.m_axi))
        connect(m, engine.gpio_request, gpio.request)
        connect(m, engine.gpio_event, gpio.event)
        m.d.comb += [
            self.irq.eq(registers.irq),
            gpio.reset.eq(registers.engine.reset),
            gpio.gpio_i.eq(self.gpio_i),
            self.gpio_o.eq(gpio.gpio_o),
            self.gpio_oe.eq(gpio.gpio_oe),
        ]
        return m


def verilog_ports(device: VirtioGpioDevice) -> dict:
    """Top-level ports named by joining the signature path with "_": ``s_axil_awaddr``,
    ``m_axi_rdata``, ``gpio_i`` (Amaranth's default would be ``s_axil__awaddr``)."""
    ports = {}
    for path, member, value in device.signature.flatten(device):
        direction = PortDirection.Input if member.flow == In else PortDirection.Output
        ports["_".join(map(str, path))] = (value, direction)
    return ports


def port_table(config: DeviceConfig) -> dict[str, tuple[str, int]]:
    """Every Verilog port of the device for ``config``, clk and rst included, as name ->
    (``"input"`` or ``"output"``, width): what another implementation must have (docs/ports.md)."""
    ports = {"clk": ("input", 1), "rst": ("input", 1)}
    for path, member in device_signature(config).members.flatten():
        if member.is_port:
            ports["_".join(map(str, path))] = ("input" if member.flow == In else "output",
                                               Shape.cast(member.shape).width)
    return ports


def generate_verilog(config: DeviceConfig) -> str:
    """The device as one standalone Verilog module ``virtio_gpio`` with ports clk, rst and those of
    ``verilog_ports``."""
    device = VirtioGpioDevice(config)
    return verilog.convert(device, name=TOP_MODULE_NAME, ports=verilog_ports(device),
                           emit_src=False)
