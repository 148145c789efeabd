"""The conformance report's verdict rules, its three formats and the ``conformance`` command, on
hand-made test outcomes (no simulator runs here)."""

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest

from virtio_gpio import cli
from virtio_gpio.model.requirements import CATALOGUE, Level, applies
from virtio_gpio.tb import configs, regression
from virtio_gpio.tb import conformance_report as cr

SIM = {"name": "Verilator", "version": "0.0", "cocotb": "0.0"}


@dataclass
class T:
    name: str
    status: str  # "pass", "FAIL", "skip" as in regression.TestOutcome
    requirements: tuple[str, ...]
    seed: int = 1


def applicable(config, *, but=()) -> tuple[str, ...]:
    return tuple(i for i, r in CATALOGUE.items() if applies(r, config) is None and i not in but)


def everything_passes(config, seeds=(1, 2, 3), but=()) -> list[T]:
    return [T("probe.all", "pass", applicable(config, but=but), s) for s in seeds]


def report(tests, config=configs.PLAIN, name="plain", **kwargs):
    return cr.build_report(name, config, tests, simulator=SIM, **kwargs)


def row(rep, req_id) -> cr.Row:
    return next(r for r in rep.rows if r.id == req_id)


def test_every_row_passes_when_its_tests_pass_on_every_seed():
    rep = report(everything_passes(configs.PLAIN))
    assert rep.passed and rep.exit_code == 0 and rep.seeds == (1, 2, 3)
    r = row(rep, "VQ-9")
    assert (r.verdict, r.severity, r.tests, r.seeds) == (cr.PASS, cr.OK, ("probe.all",), (1, 2, 3))
    assert len(rep.rows) == len(CATALOGUE) and [r.id for r in rep.rows] == list(CATALOGUE)


def test_a_must_row_fails_when_one_seed_fails():
    tests = everything_passes(configs.PLAIN) + [T("rings.order", "pass", ("VQ-9",), 1),
                                                T("rings.order", "FAIL", ("VQ-9",), 2)]
    rep = report(tests)
    r = row(rep, "VQ-9")
    assert (r.verdict, r.severity) == (cr.FAIL, cr.FAILURE)
    assert r.note == "failed: rings.order (seed 2)" and r.tests == ("probe.all", "rings.order")
    assert not rep.passed and rep.exit_code == 1 and rep.failures == [r]
    assert rep.failed_tests == ["rings.order (seed 2)"]


def test_a_failed_should_row_is_a_warning():
    rep = report(everything_passes(configs.PLAIN) + [T("requests.reads", "FAIL", ("VQ-3",), 3)])
    r = row(rep, "VQ-3")
    assert (r.verdict, r.severity) == (cr.FAIL, cr.WARNING)
    assert rep.passed and rep.exit_code == 0 and r in rep.warnings


def test_rows_that_do_not_apply_are_not_applicable_whatever_their_tests_did():
    rep = report(everything_passes(configs.PLAIN) + [T("events.edges", "FAIL", ("GPIO-16",), 1)])
    r = row(rep, "GPIO-16")  # plain does not offer F_IRQ
    assert (r.verdict, r.severity) == (cr.NOT_APPLICABLE, cr.SKIPPED)
    assert "GPIO_F_IRQ" in r.note
    assert row(rep, "MMIO-8").note.startswith("RING_RESET is never offered")
    assert rep.passed  # the failed test is still listed
    assert rep.failed_tests == ["events.edges (seed 1)"]


def test_a_must_row_not_tested_fails_the_report_and_a_should_row_warns():
    tests = everything_passes(configs.SMALL, but=("MMIO-4", "VQ-6")) + [
        T("probe.irq", "skip", ("MMIO-4",), 1)]
    rep = report(tests, configs.SMALL, "small")
    must, should = row(rep, "MMIO-4"), row(rep, "VQ-6")
    assert (must.verdict, must.severity) == (cr.NOT_TESTED, cr.FAILURE)
    assert must.note == "its tests were skipped: probe.irq"
    assert (should.verdict, should.severity, should.note) == \
        (cr.NOT_TESTED, cr.WARNING, "no test is tagged with it")
    assert rep.exit_code == 1 and rep.failures == [must]


def test_the_counts_add_up_per_level():
    rep = report(everything_passes(configs.PLAIN, but=("C-9",)))
    counts = rep.counts()
    assert sum(sum(c.values()) for c in counts.values()) == len(CATALOGUE)
    assert counts["MUST"][cr.NOT_TESTED] == 1
    assert counts["MUST"][cr.NOT_APPLICABLE] == sum(
        1 for r in CATALOGUE.values() if r.level is Level.MUST and applies(r, configs.PLAIN))


def test_markdown_json_and_junit_parse_and_agree():
    tests = everything_passes(configs.PLAIN, but=("MMIO-13",)) + [
        T("rings.order", "FAIL", ("VQ-9",), 2), T("requests.reads", "FAIL", ("VQ-3",), 1)]
    rep = report(tests)

    data = json.loads(cr.to_json(rep))
    assert data["verdict"] == "fail" and data["seeds"] == [1, 2, 3]
    assert data["configuration"]["name"] == "plain"
    assert data["configuration"]["parameters"]["ngpio"] == configs.PLAIN.ngpio
    assert "GPIO_F_IRQ" not in data["offered_features"] and "VERSION_1" in data["negotiated_features"]
    assert data["simulator"] == SIM
    by_id = {r["id"]: r for r in data["rows"]}
    assert by_id["VQ-9"]["verdict"] == "fail" and by_id["VQ-9"]["severity"] == "failure"
    assert by_id["MMIO-13"]["verdict"] == "not tested"
    assert by_id["VQ-3"]["severity"] == "warning"

    suite = ET.fromstring(cr.to_junit(rep)).find("testsuite")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == list(CATALOGUE)
    assert {n for n, c in cases.items() if c.find("failure") is not None} == {"VQ-9", "MMIO-13"}
    assert suite.get("failures") == "2"
    assert cases["GPIO-16"].find("skipped") is not None
    assert cases["VQ-3"].find("failure") is None
    assert cases["VQ-3"].find("system-out").text.startswith("warning: SHOULD fail")
    assert cases["VQ-1"].find("failure") is None and cases["VQ-1"].find("skipped") is None

    md = cr.to_markdown(rep)
    assert md.startswith("# Conformance report: `plain`") and "**FAIL**" in md
    assert "| VQ-9 | MUST | **fail** | probe.all, rings.order | 1, 2, 3 | failed: rings.order (seed 2) |" in md
    assert "| VQ-3 | SHOULD | fail (warning) |" in md
    assert sum(line.startswith("| ") and line.split(" | ")[0][2:] in CATALOGUE
               for line in md.splitlines()) == len(CATALOGUE)


def test_reports_hold_nothing_that_changes_between_identical_runs(tmp_path):
    first, second = (report(everything_passes(configs.WIDE), configs.WIDE, "wide") for _ in range(2))
    assert cr.to_markdown(first) == cr.to_markdown(second)
    assert cr.to_json(first) == cr.to_json(second) and cr.to_junit(first) == cr.to_junit(second)
    paths = cr.write(first, tmp_path)
    assert {p.name for p in paths.values()} == {"report.md", "report.json", "junit.xml"}
    assert all(p.parent == tmp_path / "wide" for p in paths.values())
    for p in paths.values():
        assert str(tmp_path) not in p.read_text()


def test_simulator_versions_come_from_the_installed_packages():
    info = cr.simulator_info()
    assert info["name"] == "Verilator" and info["version"][0].isdigit() and info["cocotb"][0].isdigit()


# -- the command ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--config", "nope"], "unknown configuration nope; choose from small, wide, plain"),
    (["--config", "small,nope"], "unknown configuration nope;"),
    (["--seeds", "1,x"], "--seeds takes comma-separated positive integers, not '1,x'"),
    (["--seeds", "0"], "--seeds takes comma-separated positive integers, not '0'"),
    (["--seeds", "2,2"], "--seeds names seed 2 twice"),
])
def test_command_refuses_bad_arguments_in_one_line(argv, message, capsys):
    assert cli.main(["conformance", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("virtio-gpio conformance: ") and message in err and err.count("\n") == 1


@pytest.fixture
def fake_regression(monkeypatch):
    """run_config without a simulator: every test passes except those listed in ``failing``."""
    failing: dict[tuple[str, int], tuple[str, ...]] = {}

    def run_config(name, config, *, seed=1, out=print, **_):
        outcome = regression.ConfigOutcome(name, config, seed)
        outcome.tests.append(regression.TestOutcome("probe.all", "pass", 1, 0.1,
                                                    applicable(config), seed))
        for key, ids in failing.items():
            if key == (name, seed):
                outcome.tests.append(regression.TestOutcome("rings.bad", "FAIL", 1, 0.1, ids, seed))
        return outcome
    monkeypatch.setattr(regression, "run_config", run_config)
    return failing


def test_command_writes_a_report_per_configuration_and_exits_0(fake_regression, tmp_path, capsys):
    assert cli.main(["conformance", "--seeds", "1,2", "--campaign-seeds", "0",
                     "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in configs.REGRESSION:
        assert f"== conformance {name} on Verilator, seed 2 of 1,2" in out
        assert f"{name} on Verilator: PASS: MUST" in out
        data = json.loads((tmp_path / name / "report.json").read_text())
        assert data["verdict"] == "pass" and data["seeds"] == [1, 2]


def test_command_exits_1_when_a_must_row_fails(fake_regression, tmp_path, capsys):
    fake_regression[("wide", 3)] = ("VQ-9",)
    assert cli.main(["conformance", "--config", "small", "--config", "wide", "--seeds", "3",
                     "--campaign-seeds", "0", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "small on Verilator: PASS" in out and "wide on Verilator: FAIL" in out
    assert "VQ-9 MUST fail: failed: rings.bad (seed 3)" in out
    assert not (tmp_path / "plain").exists()


def test_command_exits_0_when_only_a_should_row_fails(fake_regression, tmp_path):
    fake_regression[("plain", 1)] = ("VQ-3",)
    assert cli.main(["conformance", "--config", "plain", "--seeds", "1", "--campaign-seeds", "0",
                     "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "plain" / "report.json").read_text())
    assert {r["id"]: r["severity"] for r in data["rows"]}["VQ-3"] == "warning"
