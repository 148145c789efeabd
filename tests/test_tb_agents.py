"""The testbench agents (``virtio_gpio.tb``) and the simulator layer, proven in simulation: the
DmaLoopback fixture is built with ``tb/verilator_build.py`` (and on Icarus through
``tb/simulator.py``) and ``tests/agents/test_agents_cocotb.py`` runs against it, once per bus
configuration. Builds are cached under ``build/sim``."""

import warnings
from pathlib import Path

import pytest

from agents.loopback_dut import DmaLoopback, to_verilog
from conftest import require_simulator
from virtio_gpio.tb import simulator, verilator_build

ROOT = Path(__file__).resolve().parent.parent
BUILD_ROOT = ROOT / "build" / "sim"
AGENT_TESTS = Path(__file__).resolve().parent / "agents" / "test_agents_cocotb.py"
TOPLEVEL = "virtio_gpio"
SEED = 1  # fixed, so that a failure replays; other seeds: tb/verilator_build.py's command line

CONFIGS = {  # name: (DMA address width, DMA data width, ngpio)
    "addr32-data32": (32, 32, 8),
    "addr64-data64": (64, 64, 32),
}


def loopback_verilog(name: str) -> Path:
    addr_width, data_width, ngpio = CONFIGS[name]
    path = BUILD_ROOT / f"loopback-{name}.v"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_verilog(DmaLoopback(addr_width=addr_width, data_width=data_width, ngpio=ngpio)))
    return path


@pytest.mark.parametrize("name", CONFIGS)
def test_agents_in_simulation(name, tmp_path):
    build = verilator_build.build(loopback_verilog(name), TOPLEVEL, BUILD_ROOT)
    result = verilator_build.run(build, str(AGENT_TESTS), seed=SEED, junit_path=tmp_path / "agents.xml")
    assert result.failed == 0 and result.passed > 0, result.summary()


def test_a_build_is_cached_and_each_configuration_has_its_own():
    first = verilator_build.build(loopback_verilog("addr32-data32"), TOPLEVEL, BUILD_ROOT)
    again = verilator_build.build(loopback_verilog("addr32-data32"), TOPLEVEL, BUILD_ROOT)
    assert again.cached and again.directory == first.directory
    other = verilator_build.build(loopback_verilog("addr64-data64"), TOPLEVEL, BUILD_ROOT)
    assert other.directory != first.directory


def test_only_the_ports_are_public():
    build = verilator_build.build(loopback_verilog("addr32-data32"), TOPLEVEL, BUILD_ROOT)
    control = (build.directory / "ports.vlt").read_text()
    assert control.count("public_flat_rw") == len(simulator.header_ports(
        loopback_verilog("addr32-data32").read_text(), TOPLEVEL))
    assert '-var "m_axi_wstrb"' in control and '-var "clk"' in control


def test_a_failing_build_shows_the_compiler_output(tmp_path):
    broken = tmp_path / "broken.v"
    broken.write_text(f"module {TOPLEVEL}(input clk);\n  wire x = ;\nendmodule\n")
    with pytest.raises(verilator_build.BuildError) as e:
        verilator_build.build(broken, TOPLEVEL, tmp_path / "build")
    assert "%Error" in str(e.value) and "broken.v" in str(e.value)


def test_failing_cocotb_tests_are_counted_not_raised(tmp_path):
    build = verilator_build.build(loopback_verilog("addr32-data32"), TOPLEVEL, BUILD_ROOT)
    failing = tmp_path / "failing_cocotb.py"
    failing.write_text("import cocotb\n\n\n@cocotb.test()\nasync def fails(dut):\n    assert dut.irq.value == 1\n")
    result = verilator_build.run(build, str(failing), junit_path=tmp_path / "failing.xml")
    assert (result.passed, result.failed, result.failures) == (0, 1, ("fails",))
    assert "fails" in result.summary() and result.log_path.is_file()


WAVES_FILE_START = {"fst": b"\x00",  # an FST file opens with its header block, block type 0
                    "vcd": b"$"}     # a VCD file with a declaration keyword


def test_waves_are_written_into_the_build_directory(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # VCD instead of FST where lz4.h is missing: said elsewhere
        build = verilator_build.build(loopback_verilog("addr32-data32"), TOPLEVEL, BUILD_ROOT, waves=True)
    result = verilator_build.run(build, str(AGENT_TESTS), testcase="axi_lite_master",
                                 junit_path=tmp_path / "waves.xml", waves=True)
    assert result.failed == 0 and result.passed == 1, result.summary()
    assert result.waves_path == build.directory / f"waves.{build.trace}"
    assert result.waves_path.read_bytes().startswith(WAVES_FILE_START[build.trace])


@pytest.mark.parametrize("name", CONFIGS)
def test_the_agents_pass_on_icarus_too(name, tmp_path):
    require_simulator("icarus")
    build = simulator.build("icarus", loopback_verilog(name), TOPLEVEL, BUILD_ROOT)
    result = simulator.run(build, str(AGENT_TESTS), seed=SEED, junit_path=tmp_path / "agents.xml")
    assert result.failed == 0 and result.passed > 0, result.summary()


def test_icarus_writes_waves_where_the_run_says(tmp_path):
    require_simulator("icarus")
    build = simulator.build("icarus", loopback_verilog("addr32-data32"), TOPLEVEL, BUILD_ROOT,
                            waves=True)
    result = simulator.run(build, str(AGENT_TESTS), testcase="axi_lite_master",
                           junit_path=tmp_path / "waves.xml", waves=True)
    assert result.failed == 0 and result.passed == 1, result.summary()
    assert result.waves_path == build.directory / "waves.fst"
    assert result.waves_path.read_bytes().startswith(WAVES_FILE_START["fst"])
