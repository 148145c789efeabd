"""Running the suite against another implementation (``tb/dut.py``, ``conformance --dut``): the
description file, the port check, and the clear one-line errors that come before any build."""

import json

import pytest
from conftest import require_simulator

from virtio_gpio import cli
from virtio_gpio.tb import configs, dut
from virtio_gpio.tb.regression import DEFAULT_BUILD_DIR, build_config

PROG = "virtio-gpio conformance: "


@pytest.mark.parametrize("name", list(configs.REGRESSION))
def test_a_description_reads_back_as_the_configuration_it_was_written_from(name, tmp_path):
    path = tmp_path / f"{name}.toml"
    path.write_text(dut.describe(configs.REGRESSION[name]))
    assert dut.load_description(path) == configs.REGRESSION[name]


@pytest.mark.parametrize("text, message", [
    ("ngpio = 8\n", "the key 'queue_size_max' is missing"),
    ("ngpio = [\n", "not valid TOML"),
    ('ngpio = 8\nqueue_size_max = 256\ndma_addr_width = 32\ndma_data_width = 32\n'
     'features = ["VERSION_1"]\nngpi = 3\n', "unknown key 'ngpi'"),
    ('ngpio = 8\nqueue_size_max = 256\ndma_addr_width = 48\ndma_data_width = 32\n'
     'features = ["VERSION_1"]\n', "dma_addr_width must be 32 or 64"),
    ('ngpio = 8\nqueue_size_max = 100\ndma_addr_width = 32\ndma_data_width = 32\n'
     'features = ["VERSION_1"]\n', "queue_size_max must be a power of two"),
    ('ngpio = 8\nqueue_size_max = 256\ndma_addr_width = 32\ndma_data_width = 32\n'
     'features = ["GPIO_F_IRQ"]\n', "must include VERSION_1"),
    ('ngpio = 8\nqueue_size_max = 256\ndma_addr_width = 32\ndma_data_width = 32\n'
     'features = ["VERSION_1", "RING_PACKED"]\n', "RING_PACKED cannot be checked"),
    ('ngpio = 2\nqueue_size_max = 256\ndma_addr_width = 32\ndma_data_width = 32\n'
     'features = ["VERSION_1"]\nline_names = ["a"]\n', "line_names has 1 entries for 2 lines"),
    ('ngpio = 2\nqueue_size_max = 256\ndma_addr_width = 32\ndma_data_width = 32\n'
     'features = ["VERSION_1"]\nreset_direction = "out"\n', "reset_direction must be"),
])
def test_a_bad_description_is_one_line_naming_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "dut.toml"
    path.write_text(text)
    with pytest.raises(dut.DutError) as e:
        dut.load_description(path)
    assert message in str(e.value) and str(e.value).startswith(str(path))


def test_the_expected_ports_are_those_of_our_own_verilog():
    for name, config in configs.REGRESSION.items():
        work, _ = build_config(name, config, DEFAULT_BUILD_DIR)
        assert dut.read_ports([work / "virtio_gpio.v"], "virtio_gpio") == dut.expected_ports(config)


_PORTS = {"wide_gpio": "input [15:0] gpio_i", "no_irq": None, "irq_in": "input irq"}


def _fake_dut(tmp_path, change: str | None = None, replacement: str | None = None) -> str:
    """A SystemVerilog module with the ports of the small configuration, one of them changed."""
    lines = []
    for name, port in dut.expected_ports(configs.SMALL).items():
        width = f"[{port.width - 1}:0] " if port.width > 1 else ""
        lines.append(f"  {port.direction} logic {width}{name}")
    if change:
        index = next(i for i, line in enumerate(lines) if line.split()[-1] == change)
        if replacement is None:
            del lines[index]
        else:
            lines[index] = f"  {replacement}"
    path = tmp_path / "fake.sv"
    path.write_text("module fake (\n" + ",\n".join(lines) + "\n);\nendmodule\n")
    return str(path)


def _conformance(tmp_path, capsys, sources, description=None, *extra):
    if description is None:
        description = tmp_path / "small.toml"
        description.write_text(dut.describe(configs.SMALL))
    build = tmp_path / "out"
    code = cli.main(["conformance", "--dut", sources, "--top", "fake", "--dut-config",
                     str(description), "--out", str(build), *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("change, replacement, message", [
    ("irq", None, "missing port irq (output, 1 bit)"),
    ("gpio_i", "input logic [15:0] gpio_i", "port gpio_i is 16 bits wide; it must be 8"),
    ("irq", "input logic irq", "port irq is an input; it must be an output"),
    ("m_axi_araddr", "output logic [63:0] m_axi_araddr", "port m_axi_araddr is 64 bits wide; it must be 32"),
])
def test_a_port_problem_is_one_line_and_nothing_is_built(tmp_path, capsys, change, replacement, message):
    code, err = _conformance(tmp_path, capsys, _fake_dut(tmp_path, change, replacement))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(PROG) and message in err, err
    assert not (tmp_path / "out").exists()


def test_an_extra_input_is_refused_and_an_extra_output_is_not(tmp_path, capsys):
    sources = _fake_dut(tmp_path, "irq", "output logic irq, input logic test_mode, output logic dbg")
    code, err = _conformance(tmp_path, capsys, sources)
    assert code == 2 and err.count("\n") == 1 and "port test_mode is an input" in err, err


def test_sources_that_do_not_parse_are_reported_with_the_parser_error(tmp_path, capsys):
    bad = tmp_path / "bad.sv"
    bad.write_text("module fake (input clk;\nendmodule\n")
    code, err = _conformance(tmp_path, capsys, str(bad))
    assert code == 2 and "do not parse" in err and "%Error" in err


@pytest.mark.parametrize("argv, message", [
    (["--dut", "nothere.v", "--top", "x", "--dut-config", "d.toml"], "DUT source nothere.v does not exist"),
    (["--top", "x"], "--top and --dut-config describe a --dut"),
    (["--dut", "README.md", "--top", "x", "--dut-config", "nothere.toml"], "no such description file"),
    (["--dut", "README.md", "--dut-config", "d.toml"], "no top module given"),
    (["--dut", "README.md", "--top", "x", "--config", "small"], "--config chooses one of this project"),
])
def test_missing_pieces_are_one_line_each(capsys, argv, message):
    assert cli.main(["conformance", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_describe_writes_a_description_file(tmp_path, capsys):
    out = tmp_path / "wide.toml"
    assert cli.main(["describe", "--config", "wide", "--out", str(out)]) == 0
    assert dut.load_description(out) == configs.WIDE


def test_an_external_copy_of_our_device_passes_under_another_top_name(tmp_path, capsys):
    """The path a user's core takes, end to end on the fastest-building simulator: a renamed copy
    of the small configuration's Verilog, some directed tests and one campaign seed."""
    require_simulator("icarus")
    work, _ = build_config("small", configs.SMALL, DEFAULT_BUILD_DIR, simulator_name="icarus")
    verilog = tmp_path / "renamed.v"
    verilog.write_text((work / "virtio_gpio.v").read_text().replace("module virtio_gpio(", "module fake(", 1))
    tests = "linux_probe_modern_config_reads,every_message_with_valid_and_invalid_arguments"
    code, err = _conformance(tmp_path, capsys, str(verilog), None, "--sim", "icarus", "--seeds", "1",
                             "--tests", tests, "--campaign-seeds", "1", "--campaign-requests", "100")
    report = json.loads((tmp_path / "out" / "fake-icarus" / "report.json").read_text())
    assert report["simulator"]["name"] == "Icarus Verilog"
    assert report["dut"]["toplevel"] == "fake" and report["dut"]["sources"] == [str(verilog)]
    assert report["campaign"]["failures"] == [] and report["campaign"]["requests"] > 0
    rows = {r["id"]: r["verdict"] for r in report["rows"]}
    assert rows["MMIO-1"] == rows["GPIO-2"] == "pass"
    assert code == 1  # the rows the two tests do not cover are "not tested"


def test_an_undefined_output_after_reset_is_named(tmp_path, capsys):
    """A four-state simulator shows what Verilator hides: a DUT that leaves an output X."""
    require_simulator("icarus")
    outputs = [f"assign {n} = {'1' + chr(39) + 'bx' if n == 'm_axi_arvalid' else '0'};"
               for n, p in dut.expected_ports(configs.SMALL).items() if p.direction == "output"]
    sources = _fake_dut(tmp_path)
    text = open(sources).read().replace("endmodule", "\n".join(outputs) + "\nendmodule")
    open(sources, "w").write(text)
    code, _ = _conformance(tmp_path, capsys, sources, None, "--sim", "icarus", "--seeds", "1",
                           "--tests", "linux_probe_modern_config_reads", "--campaign-seeds", "0")
    assert code == 1
    log = max((DEFAULT_BUILD_DIR / "fake-icarus").glob("*/results.log"),
              key=lambda p: p.stat().st_mtime).read_text()
    assert "the DUT drives undefined values (X or Z) on m_axi_arvalid" in log


def test_a_failing_external_run_says_how_to_rerun_it():
    from pathlib import Path

    from virtio_gpio.tb import regression
    target = dut.Dut("fake", configs.SMALL, (Path("a.v"), Path("b.sv")), "fake", Path("d.toml"))
    outcome = regression.ConfigOutcome("fake", configs.SMALL, 2, "icarus", target)
    outcome.tests.append(regression.TestOutcome("probe.linux_probe_modern_config_reads", "FAIL", 1,
                                                1.0, ("MMIO-1",), 2))
    assert regression.rerun_hint(outcome).startswith(
        "rerun: make conformance SIM=icarus DUT=a.v,b.sv TOP=fake DUT_CONFIG=d.toml "
        "ARGS='--seeds 2 --tests linux_probe_modern_config_reads --campaign-seeds 0'")
