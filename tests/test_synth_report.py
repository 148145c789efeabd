"""The synthesis report without the toolchain: cell classes from a Yosys ``stat -json``, Fmax and
the critical path from a nextpnr ``--report``, and the status of a build from what it left behind
(hand-written tool outputs in the tools' formats)."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from virtio_gpio.synth import flow, report, sweep
from virtio_gpio.synth.targets import CELL_CLASSES, PARTS

DEVICE = "top.harness.device"


def write_stat(path: Path, cells: dict) -> None:
    path.write_text(json.dumps({"modules": {
        "\\top": {"num_cells_by_type": {"SB_LUT4": 999, DEVICE: 1}},
        "\\" + DEVICE: {"num_cells_by_type": cells}}}))


def segment(kind, cell_from, cell_to, delay):
    return {"type": kind, "delay": delay, "from": {"cell": cell_from, "port": "Q"},
            "to": {"cell": cell_to, "port": "D"}}


def write_nextpnr_report(path: Path, achieved: float, constraint: float, lc_used: int) -> None:
    path.write_text(json.dumps({
        "utilization": {"ICESTORM_LC": {"used": lc_used, "available": 5280},
                        "ICESTORM_RAM": {"used": 3, "available": 30},
                        "SB_GB": {"used": 0, "available": 8}},
        "fmax": {"cd_sync.clk_$glb_clk": {"achieved": achieved, "constraint": constraint}},
        "critical_paths": [{"from": "posedge cd_sync.clk_$glb_clk", "to": "posedge cd_sync.clk_$glb_clk",
                            "path": [
            segment("clk-to-q", "d.engine.q_SB_DFFE_Q", "d.engine.q_SB_DFFE_Q", 0.5),
            segment("routing", "d.engine.q_SB_DFFE_Q", "d.engine.have_SB_LUT4_O", 1.25),
            segment("logic", "d.engine.have_SB_LUT4_O", "d.engine.have_SB_LUT4_O", 0.75),
            segment("routing", "d.engine.have_SB_LUT4_O", "$nextpnr_ICESTORM_LC_1", 1.0),
            segment("logic", "$nextpnr_ICESTORM_LC_1", "$nextpnr_ICESTORM_LC_1", 0.25),
            segment("routing", "$nextpnr_ICESTORM_LC_1", "d.dma.cur_SB_LUT4_O", 1.0),
            segment("logic", "d.dma.cur_SB_LUT4_O", "d.dma.cur_SB_LUT4_O", 0.5),
            segment("setup", "d.dma.cur_SB_LUT4_O", "d.engine.fsm_state_SB_DFFESR_Q", 0.25),
        ]}]}))


@pytest.fixture
def job(tmp_path):
    job, = sweep.ooc_jobs("ice40-up5k", "gpio8", None, tmp_path)
    job.build_dir.mkdir(parents=True)
    return job


def test_device_cells_are_counted_by_class_from_the_device_module_only(tmp_path):
    write_stat(tmp_path / "stat.json", {
        "SB_LUT4": 10, "SB_DFFE": 3, "SB_DFFSR": 2, "SB_DFF": 1, "SB_CARRY": 4,
        "SB_RAM40_4K": 1, "SB_SPRAM256KA": 2, "$scopeinfo": 7})
    cells = report.device_cells(tmp_path / "stat.json", DEVICE, CELL_CLASSES["ice40"])
    assert cells == {"lut4": 10, "ff": 6, "carry": 4, "bram": 1, "lutram": 0,
                     "other": {"SB_SPRAM256KA": 2}}


def test_ecp5_cell_classes(tmp_path):
    write_stat(tmp_path / "stat.json", {"LUT4": 7, "TRELLIS_FF": 5, "CCU2C": 3, "DP16KD": 2,
                                        "TRELLIS_DPR16X4": 4, "PFUMX": 6})
    cells = report.device_cells(tmp_path / "stat.json", DEVICE, CELL_CLASSES["ecp5"])
    assert cells == {"lut4": 7, "ff": 5, "carry": 3, "bram": 2, "lutram": 4,
                     "other": {"PFUMX": 6}}


def test_fmax_and_critical_path_are_read_from_the_nextpnr_report(tmp_path):
    write_nextpnr_report(tmp_path / "r.json", achieved=51.234, constraint=48, lc_used=2640)
    placed, fmax, critical = report.read_nextpnr_report(tmp_path / "r.json")
    assert placed == {"ICESTORM_LC": {"used": 2640, "available": 5280, "percent": 50.0},
                      "ICESTORM_RAM": {"used": 3, "available": 30, "percent": 10.0}}
    assert fmax == {"cd_sync.clk": {"achieved_mhz": 51.23, "constraint_mhz": 48}}
    assert critical == {"clock": "cd_sync.clk", "delay_ns": 5.5, "logic_ns": 1.5, "cells": 3,
                        "from": "d.engine.q", "to": "d.engine.fsm_state",
                        "through": ["d.engine.have", "d.dma.cur"]}


def test_a_build_that_meets_its_frequency(job):
    write_stat(job.build_dir / flow.STAT_FILE, {"SB_LUT4": 1320, "SB_DFFE": 528, "SB_RAM40_4K": 3})
    write_nextpnr_report(job.build_dir / flow.REPORT_FILE, achieved=60.0, constraint=48,
                         lc_used=2000)
    row = flow._row(job, returncode=0, seconds=1.0)
    assert row["status"] == report.MET and row["message"] == ""
    assert row["device_percent"] == {"lut4": 25.0, "ff": 10.0, "bram": 10.0}
    assert row["parameters"]["ngpio"] == 8


def test_a_build_below_its_frequency_fails_and_says_by_how_much(job):
    write_nextpnr_report(job.build_dir / flow.REPORT_FILE, achieved=41.5, constraint=48,
                         lc_used=2000)
    row = flow._row(job, returncode=0, seconds=1.0)
    assert row["status"] == report.TIMING_FAILED
    assert row["message"] == "cd_sync.clk: 41.5 MHz < 48 MHz"


def test_a_build_that_does_not_fit_reports_its_utilisation_from_the_log(job):
    (job.build_dir / flow.NEXTPNR_LOG).write_text(
        "Info: Device utilisation:\n"
        "Info: \t         ICESTORM_LC:    6965/   5280   131%\n"
        "Info: \t        ICESTORM_RAM:       3/     30    10%\n"
        "ERROR: Failed to expand region (0, 0) |_> (25, 31) of 6965 ICESTORM_LCs\n")
    row = flow._row(job, returncode=1, seconds=1.0)
    assert row["status"] == report.DOES_NOT_FIT
    assert row["placed"]["ICESTORM_LC"] == {"used": 6965, "available": 5280, "percent": 131.9}
    assert "6965" in row["message"] and "5280" in row["message"]


def test_a_placer_out_of_cells_is_does_not_fit_and_other_errors_are_errors(job):
    log = job.build_dir / flow.NEXTPNR_LOG
    log.write_text("ERROR: Unable to place cell 'x', no BELs remaining to implement cell type "
                   "'ICESTORM_LC'\n")
    assert flow._row(job, returncode=1, seconds=1.0)["status"] == report.DOES_NOT_FIT
    log.write_text("ERROR: IO pin 'clk_0__io' constrained to pin '99', which does not exist\n")
    row = flow._row(job, returncode=1, seconds=1.0)
    assert row["status"] == report.ERROR and "does not exist" in row["message"]


def test_the_table_shows_every_build_and_its_status(job, tmp_path):
    write_stat(job.build_dir / flow.STAT_FILE, {"SB_LUT4": 1320, "SB_DFFE": 528})
    write_nextpnr_report(job.build_dir / flow.REPORT_FILE, achieved=41.5, constraint=48,
                         lc_used=2000)
    failed = flow._row(job, returncode=0, seconds=1.0)
    other = replace(job, target="ecp5-85f", capacity=PARTS["ecp5-85f"].capacity,
                    build_dir=tmp_path / "missing")
    (tmp_path / "missing").mkdir()
    error = flow._row(other, returncode=1, seconds=1.0)
    table = report.format_table([failed, error]).splitlines()
    assert table[2].split()[:4] == ["ice40-up5k", "gpio8", "1320", "528"]
    assert table[2].split()[-1] == report.TIMING_FAILED
    assert table[3].split()[0] == "ecp5-85f" and table[3].split()[-1] == report.ERROR
    markdown = report.format_markdown([failed, error]).splitlines()
    assert markdown[2].startswith("| ice40-up5k | gpio8 | 1320 | 528 |")
    assert markdown[3].endswith(f"| {report.ERROR} |") and len(markdown) == 4
    report.write_json([failed, error], tmp_path / "out" / "report.json", {"yosys": "v"})
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert written["version"] == report.REPORT_VERSION
    assert [r["status"] for r in written["results"]] == [report.TIMING_FAILED, report.ERROR]


def test_a_missing_tool_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(flow.shutil, "which", lambda tool, path=None: None)
    for var in flow.TOOLS:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(flow.ToolchainMissing, match=r"make synth"):
        flow.toolchain_env()


def test_cli_rejects_unknown_targets_and_bad_numbers(capsys):
    from virtio_gpio.cli import main
    assert main(["synth", "--part", "virtex", "--board", "none"]) == 2
    assert "unknown part 'virtex'" in capsys.readouterr().err
    assert main(["synth", "--jobs", "0"]) == 2
    assert main(["synth", "--freq", "-5"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err
