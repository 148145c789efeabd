"""The conformance report of one configuration: a verdict for every row of the requirement
catalogue, from the outcomes of the cocotb regression over one or more seeds.

Verdicts, and why they are what they are:

* ``pass``: at least one test tagged with the ID ran, and every such test passed on every seed.
  A single failing seed is enough to fail, because each seed is a reproducible run.
* ``fail``: a test tagged with the ID failed on some seed. On a MUST row that fails the report;
  on a SHOULD or MAY row it is a warning (the specification allows the behaviour).
* ``not applicable``: ``applies()`` gives a reason (a feature this configuration does not offer,
  or a row this device never implements); its tests do not count.
* ``not tested``: the row applies but no test tagged with it ran (none exists, or all were
  skipped). A MUST row not tested fails the report just like a failure: a conformance claim needs
  evidence. A SHOULD or MAY row not tested is a warning.

The report is written as Markdown (for people and for ``docs/conformance/``), JSON (for tools) and
JUnit XML (one testcase per row, for CI dashboards). None of them holds a date, a duration or a
path of the machine, so a committed report changes only when a verdict, a test or a tool version
does. This module needs no simulator: it takes any objects with the ``name``, ``status`` ("pass",
"FAIL", "skip"), ``requirements`` and ``seed`` attributes of ``regression.TestOutcome``.
"""

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.constants import Feature
from virtio_gpio.model.driver.linux_gpio import LINUX_KNOWN_FEATURES
from virtio_gpio.model.requirements import CATALOGUE, Level, applies

from .dut import Dut, make_variables
from .simulator import describe, make_variable, qualified

PASS, FAIL, NOT_APPLICABLE, NOT_TESTED = "pass", "fail", "not applicable", "not tested"
OK, WARNING, FAILURE, SKIPPED = "ok", "warning", "failure", "skipped"  # what a verdict means


class Outcome(Protocol):
    name: str
    status: str
    requirements: tuple[str, ...]
    seed: int


@dataclass(frozen=True)
class Row:
    id: str
    level: Level
    verdict: str
    severity: str
    tests: tuple[str, ...] = ()     # tests tagged with the ID that ran
    seeds: tuple[int, ...] = ()     # seeds on which they ran
    note: str = ""                  # why: failing tests and seeds, the not-applicable reason...


@dataclass
class Report:
    name: str
    config: DeviceConfig
    seeds: tuple[int, ...]
    rows: list[Row]
    simulator: dict[str, str]
    failed_tests: list[str] = field(default_factory=list)  # "module.test (seed N)"
    # What ran: {"label", "toplevel", "sources", "description"} (sources empty for our device).
    dut: dict = field(default_factory=dict)
    # The random campaign's summary, if one ran: {"seeds", "requests", "failures", "coverage_reached"}.
    campaign: dict | None = None
    sim: str = "verilator"  # the simulator's key, for file names and rerun commands

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.severity == FAILURE]

    @property
    def campaign_failed(self) -> bool:
        """A campaign seed failed. Coverage goals not reached are reported, not failed: they
        say the campaign was too short, not that the device is wrong."""
        return bool(self.campaign and self.campaign["failures"])

    @property
    def directory_name(self) -> str:
        return qualified(self.name, self.sim)

    @property
    def warnings(self) -> list[Row]:
        return [r for r in self.rows if r.severity == WARNING]

    @property
    def passed(self) -> bool:
        return not self.failures and not self.campaign_failed

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def counts(self) -> dict[str, dict[str, int]]:
        """Per level, how many rows got each verdict."""
        counts = {level.value: {v: 0 for v in (PASS, FAIL, NOT_TESTED, NOT_APPLICABLE)}
                  for level in Level}
        for r in self.rows:
            counts[r.level.value][r.verdict] += 1
        return counts


def feature_names(mask: int) -> list[str]:
    return [f.name for f in sorted(Feature, key=int) if mask & f.mask]


def simulator_info(sim: str = "verilator") -> dict[str, str]:
    """The simulator's name and version and cocotb's, as ``tb/simulator.py`` describes them."""
    return describe(sim)


def _row(req, config: DeviceConfig, tests: list[Outcome]) -> Row:
    reason = applies(req, config)
    if reason:
        return Row(req.id, req.level, NOT_APPLICABLE, SKIPPED, note=reason)
    ran = [t for t in tests if req.id in t.requirements and t.status != "skip"]
    names = tuple(sorted({t.name for t in ran}))
    seeds = tuple(sorted({t.seed for t in ran}))
    soft = req.level is not Level.MUST
    if not ran:
        skipped = sorted({t.name for t in tests if req.id in t.requirements})
        note = (f"its tests were skipped: {', '.join(skipped)}" if skipped
                else "no test is tagged with it")
        return Row(req.id, req.level, NOT_TESTED, WARNING if soft else FAILURE, note=note)
    failed = sorted({(t.name, t.seed) for t in ran if t.status != "pass"})
    if failed:
        note = "failed: " + ", ".join(f"{n} (seed {s})" for n, s in failed)
        return Row(req.id, req.level, FAIL, WARNING if soft else FAILURE, names, seeds, note)
    return Row(req.id, req.level, PASS, OK, names, seeds)


def build_report(name: str, config: DeviceConfig, tests: Iterable[Outcome], *,
                 seeds: Iterable[int] | None = None, simulator: dict[str, str] | None = None,
                 sim: str = "verilator", dut: dict | None = None,
                 campaign: dict | None = None) -> Report:
    """The report of ``config`` from the outcomes ``tests`` of every seed it ran with, on the
    simulator ``sim``; ``dut`` says what ran (default: our device), ``campaign`` the random
    campaign's summary."""
    tests = list(tests)
    seeds = tuple(sorted(set(seeds) if seeds is not None else {t.seed for t in tests}))
    rows = [_row(req, config, tests) for req in CATALOGUE.values()]
    failed = sorted({(t.name, t.seed) for t in tests if t.status not in ("pass", "skip")})
    dut = dut or Dut(name, config).report_info()
    return Report(name, config, seeds, rows, simulator or simulator_info(sim),
                  [f"{n} (seed {s})" for n, s in failed], dut, campaign, sim)


def _campaign_line(report: Report) -> str:
    c = report.campaign
    if c is None:
        return "not run"
    verdict = "FAIL" if report.campaign_failed else "pass"
    goals = ("coverage goals reached" if c["coverage_reached"]
             else "coverage goals not all reached (a longer campaign: `virtio-gpio campaign`)")
    failures = "; ".join(c["failures"]) or "no failure"
    return (f"{verdict}: seeds {c['seeds']}, {c['requests']:,} requests, {goals}; {failures}")


# -- the three formats ----------------------------------------------------------------------------

def _parameters(config: DeviceConfig) -> dict:
    dirs = {d.name for d in config.reset_directions}
    return {
        "ngpio": config.ngpio,
        "line_names": (None if config.line_names is None
                       else f"{sum(1 for n in config.line_names if n)} of {config.ngpio} lines named"),
        "gpio_names_size": config.gpio_names_size,
        "reset_direction": dirs.pop() if len(dirs) == 1 else [d.name for d in config.reset_directions],
        "queue_size_max": config.queue_size_max,
        "dma_addr_width": config.dma_addr_width,
        "dma_data_width": config.dma_data_width,
        "vendor_id": f"0x{config.vendor_id:08x}",
    }


def _negotiated(config: DeviceConfig) -> int:
    return config.offered_features & LINUX_KNOWN_FEATURES


def _summary_line(report: Report) -> str:
    must = report.counts()[Level.MUST.value]
    campaign = "; the random campaign failed" if report.campaign_failed else ""
    if report.passed:
        return (f"**PASS**: all {must[PASS]} MUST rows that apply passed "
                f"({len(report.warnings)} warnings)")
    return (f"**FAIL**: MUST rows that apply: {must[PASS]} passed, {must[FAIL]} failed, "
            f"{must[NOT_TESTED]} not tested ({len(report.warnings)} warnings){campaign}")


def to_markdown(report: Report) -> str:
    p = _parameters(report.config)
    params = ", ".join(f"{k} {v if v is not None else 'none'}" for k, v in p.items())
    sim = report.simulator
    counts = "; ".join(f"{level}: " + ", ".join(f"{n} {v}" for v, n in c.items() if n)
                       for level, c in report.counts().items())
    sim_option = make_variable(report.sim)
    rerun = (f"make sim{sim_option} ARGS='--config {report.name} --seed N'"
             if not report.dut["sources"]
             else f"make conformance{sim_option} {make_variables(report.dut)} ARGS='--seeds N'")
    lines = [
        f"# Conformance report: `{report.name}` on {sim['name']}",
        "",
        "<!-- Generated by `make conformance ARGS='--copy-to-docs'` from the cocotb regression; "
        "do not edit. -->",
        "",
        _summary_line(report) + ".",
        "",
        "| | |",
        "|---|---|",
        f"| device under test | {report.dut['label']}"
        + (f"; top `{report.dut['toplevel']}`, sources {', '.join(report.dut['sources'])}, "
           f"described by `{report.dut['description']}`" if report.dut.get("sources") else "")
        + " |",
        f"| configuration | `{report.name}`: {params} |",
        f"| offered features | {', '.join(feature_names(report.config.offered_features))} |",
        f"| negotiated by the Linux driver model | {', '.join(feature_names(_negotiated(report.config)))} |",
        f"| seeds | {', '.join(map(str, report.seeds))} (rerun one: `{rerun}`) |",
        f"| simulator | {sim['name']} {sim['version']}, cocotb {sim['cocotb']} |",
        f"| random campaign | {_campaign_line(report)} |",
        f"| rows | {counts} |",
        f"| failed tests | {', '.join(report.failed_tests) or 'none'} |",
        "",
        "Verdicts: pass = every test tagged with the ID passed on every seed; fail = one failed "
        "(a warning on a SHOULD or MAY row); not tested = no tagged test ran (a failure on a MUST "
        "row); not applicable = the row does not apply to this configuration. The rows are those "
        "of the [requirement catalogue](../requirements.md).",
        "",
        "| ID | level | verdict | tests | seeds | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        verdict = r.verdict if r.severity != WARNING else f"{r.verdict} (warning)"
        if r.severity == FAILURE:
            verdict = f"**{verdict}**"
        lines.append(f"| {r.id} | {r.level.value} | {verdict} | {', '.join(r.tests)} | "
                     f"{', '.join(map(str, r.seeds))} | {r.note.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> str:
    data = {
        "configuration": {"name": report.name, "parameters": _parameters(report.config)},
        "offered_features": feature_names(report.config.offered_features),
        "negotiated_features": feature_names(_negotiated(report.config)),
        "seeds": list(report.seeds),
        "simulator": report.simulator,
        "dut": report.dut,
        "campaign": report.campaign,
        "verdict": PASS if report.passed else FAIL,
        "counts": report.counts(),
        "failed_tests": report.failed_tests,
        "rows": [{"id": r.id, "level": r.level.value, "verdict": r.verdict, "severity": r.severity,
                  "requirement": CATALOGUE[r.id].text, "source": CATALOGUE[r.id].source,
                  "features": list(CATALOGUE[r.id].features), "tests": list(r.tests),
                  "seeds": list(r.seeds), "note": r.note} for r in report.rows],
    }
    return json.dumps(data, indent=1) + "\n"


def to_junit(report: Report) -> str:
    """One testsuite, one testcase per row: <failure> for a MUST row failed or not tested,
    <skipped> for a row that does not apply, <system-out> with the warning for a SHOULD or MAY
    row failed or not tested."""
    suites = ET.Element("testsuites", name="virtio-gpio conformance")
    suite = ET.SubElement(suites, "testsuite", name=f"conformance.{report.name}",
                          tests=str(len(report.rows)), failures=str(len(report.failures)),
                          errors="0", skipped=str(sum(r.severity == SKIPPED for r in report.rows)))
    props = ET.SubElement(suite, "properties")
    for key, value in (("seeds", ",".join(map(str, report.seeds))),
                       ("simulator", f"{report.simulator['name']} {report.simulator['version']}"),
                       ("cocotb", report.simulator["cocotb"]),
                       ("offered_features", ",".join(feature_names(report.config.offered_features)))):
        ET.SubElement(props, "property", name=key, value=value)
    for r in report.rows:
        case = ET.SubElement(suite, "testcase", classname=f"conformance.{report.name}", name=r.id)
        message = f"{r.level.value} {r.verdict}: {r.note}" if r.note else f"{r.level.value} {r.verdict}"
        if r.severity == FAILURE:
            ET.SubElement(case, "failure", message=message).text = CATALOGUE[r.id].text
        elif r.severity == SKIPPED:
            ET.SubElement(case, "skipped", message=r.note)
        elif r.severity == WARNING:
            ET.SubElement(case, "system-out").text = f"warning: {message}"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def write(report: Report, out_dir: Path) -> dict[str, Path]:
    """Write ``report.md``, ``report.json`` and ``junit.xml`` under ``out_dir/<config>/``
    (``<config>-<simulator>`` on a simulator other than Verilator)."""
    directory = Path(out_dir) / report.directory_name
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": directory / "report.md", "json": directory / "report.json",
             "junit": directory / "junit.xml"}
    paths["markdown"].write_text(to_markdown(report))
    paths["json"].write_text(to_json(report))
    paths["junit"].write_text(to_junit(report))
    return paths


def summary(report: Report) -> str:
    """One line for the terminal."""
    must = report.counts()[Level.MUST.value]
    return (f"{report.name} on {report.simulator['name']}: {'PASS' if report.passed else 'FAIL'}: MUST {must[PASS]} pass, "
            f"{must[FAIL]} fail, {must[NOT_TESTED]} not tested, {must[NOT_APPLICABLE]} not "
            f"applicable; {len(report.warnings)} warnings (SHOULD/MAY failed or not tested); "
            f"seeds {','.join(map(str, report.seeds))}; random campaign {_campaign_line(report)}")
