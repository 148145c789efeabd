"""The gateware elaborates for the regression configurations and at the edges of the parameter
space, with the documented top-level ports, and its Verilog lints clean (verilator -Wall with the
waivers of hdl/lint.vlt)."""

import re

import pytest

from virtio_gpio.hdl.device import TOP_MODULE_NAME, generate_verilog
from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.tb import configs
from virtio_gpio.tb.lint import lint

AXIL = ["awaddr", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready", "bresp", "bvalid",
        "bready", "araddr", "arvalid", "arready", "rdata", "rresp", "rvalid", "rready"]
AXI = ["araddr", "arlen", "arsize", "arburst", "arvalid", "arready", "rdata", "rresp", "rlast",
       "rvalid", "rready", "awaddr", "awlen", "awsize", "awburst", "awvalid", "awready", "wdata",
       "wstrb", "wlast", "wvalid", "wready", "bresp", "bvalid", "bready"]
EDGES = {
    "one_line_64bit": DeviceConfig(ngpio=1, dma_addr_width=64, dma_data_width=32, queue_size_max=2),
    "1024_lines": DeviceConfig(ngpio=1024, dma_addr_width=64, dma_data_width=64,
                               queue_size_max=32768),
}


def port_widths(verilog: str) -> dict[str, int]:
    top = verilog[verilog.index(f"module {TOP_MODULE_NAME}("):]
    top = top[:top.index("endmodule")]
    widths = {}
    for direction, msb, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", top, re.M):
        widths[name] = int(msb) + 1 if msb else 1
    return widths


@pytest.mark.parametrize("name", list(configs.REGRESSION))
def test_ports_are_the_documented_ones(name):
    config = configs.REGRESSION[name]
    widths = port_widths(generate_verilog(config))
    expected = {"clk": 1, "rst": 1, "irq": 1, "gpio_i": config.ngpio, "gpio_o": config.ngpio,
                "gpio_oe": config.ngpio}
    expected |= {f"s_axil_{s}": None for s in AXIL} | {f"m_axi_{s}": None for s in AXI}
    assert set(widths) == set(expected)
    assert widths["s_axil_awaddr"] == 12 and widths["s_axil_wdata"] == 32
    assert widths["m_axi_araddr"] == config.dma_addr_width
    assert widths["m_axi_wdata"] == config.dma_data_width
    assert widths["m_axi_wstrb"] == config.dma_data_width // 8
    assert widths["m_axi_arlen"] == 8 and widths["m_axi_arsize"] == 3
    for port in ("gpio_i", "gpio_o", "gpio_oe"):
        assert widths[port] == config.ngpio


@pytest.mark.parametrize("name", ["small", "one_line_64bit", "1024_lines"])
def test_verilog_lints_clean(name, tmp_path):
    config = configs.REGRESSION.get(name) or EDGES[name]
    path = tmp_path / "virtio_gpio.v"
    path.write_text(generate_verilog(config))
    lint(path)
