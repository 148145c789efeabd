"""The mutant check: each mutant of ``tb/mutants.py`` goes through ``virtio-gpio conformance
--dut``, exactly as a user's core would (its own Verilog file, a description file, the port check,
a subprocess), with the mutant's tests; it counts as caught when the report fails the very
requirement the mutant breaks. The unmutated device, sent the same way with the same tests, must
pass them: a check that fails on a correct device catches nothing.

``virtio-gpio mutants`` (``make mutants``) runs every mutant on each simulator asked for and
prints the table that docs/mutants.md holds.
"""

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from virtio_gpio.hdl.device import generate_verilog

from . import configs
from .dut import TOP_MODULE_NAME, describe
from .mutants import MUTANTS, Mutant, mutant_verilog
from .simulator import qualified

DEFAULT_OUT = Path("build") / "mutants"
CONTROL = "unmutated"


def _conformance(verilog: Path, config_name: str, tests: tuple[str, ...], simulator: str,
                 work: Path) -> dict:
    """``virtio-gpio conformance --dut`` on ``verilog`` (one seed, no campaign): its report."""
    description = work / f"{config_name}.toml"
    description.write_text(describe(configs.REGRESSION[config_name]))
    out = work / "report"
    command = [sys.executable, "-m", "virtio_gpio.cli", "conformance", "--dut", str(verilog),
               "--top", TOP_MODULE_NAME, "--dut-config", str(description), "--sim", simulator,
               "--seeds", "1", "--tests", ",".join(tests), "--campaign-seeds", "0",
               "--out", str(out)]
    log = work / "conformance.log"
    with log.open("w") as f:
        code = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT).returncode
    report_path = out / qualified(TOP_MODULE_NAME, simulator) / "report.json"
    if code == 2 or not report_path.is_file():
        raise RuntimeError(f"`{' '.join(command)}` ended with {code} and no report; see {log}")
    report = json.loads(report_path.read_text())
    return {"exit_code": code, "log": str(log), "report": str(report_path),
            "failed_rows": [r["id"] for r in report["rows"] if r["verdict"] == "fail"],
            "failed_tests": report["failed_tests"]}


def run_mutant(mutant: Mutant, simulator: str, out_dir: Path = DEFAULT_OUT) -> dict:
    """One mutant on one simulator: its Verilog, the conformance run, whether it was caught."""
    start = time.monotonic()
    work = Path(out_dir) / simulator / mutant.name
    work.mkdir(parents=True, exist_ok=True)
    verilog = work / f"{TOP_MODULE_NAME}.v"
    verilog.write_text(mutant_verilog(mutant.name, configs.REGRESSION[mutant.config]))
    result = _conformance(verilog, mutant.config, mutant.tests, simulator, work)
    return {"mutant": mutant.name, "requirement": mutant.requirement, "config": mutant.config,
            "simulator": simulator, "tests": list(mutant.tests),
            "caught": mutant.requirement in result["failed_rows"],
            "seconds": round(time.monotonic() - start, 1), **result}


def run_control(config_name: str, simulator: str, out_dir: Path = DEFAULT_OUT) -> dict:
    """The unmutated device of ``config_name`` through the same path, with the tests of every
    mutant checked on that configuration: none of them may fail."""
    start = time.monotonic()
    tests = tuple(dict.fromkeys(t for m in MUTANTS.values() if m.config == config_name
                                for t in m.tests))
    work = Path(out_dir) / simulator / f"{CONTROL}-{config_name}"
    work.mkdir(parents=True, exist_ok=True)
    verilog = work / f"{TOP_MODULE_NAME}.v"
    verilog.write_text(generate_verilog(configs.REGRESSION[config_name]))
    result = _conformance(verilog, config_name, tests, simulator, work)
    return {"mutant": CONTROL, "requirement": "", "config": config_name, "simulator": simulator,
            "tests": list(tests), "caught": False, "passed": not result["failed_tests"],
            "seconds": round(time.monotonic() - start, 1), **result}


def run_all(names: list[str], simulators: list[str], *, out_dir: Path = DEFAULT_OUT,
            jobs: int = 2, progress=None) -> list[dict]:
    """Every named mutant on every simulator, and the controls of their configurations,
    ``jobs`` at a time. ``progress(done, total, result)`` hears each result."""
    used = sorted({MUTANTS[n].config for n in names})
    work = ([(run_control, c, s) for s in simulators for c in used]
            + [(run_mutant, MUTANTS[n], s) for s in simulators for n in names])
    results = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(fn, what, sim, out_dir) for fn, what, sim in work]
        for future in futures:
            results.append(future.result())
            if progress:
                progress(len(results), len(work), results[-1])
    return results


def verdict(results: list[dict]) -> list[str]:
    """What is wrong with a set of results: mutants not caught, controls that failed."""
    problems = []
    for r in results:
        if r["mutant"] == CONTROL and not r["passed"]:
            problems.append(f"the unmutated device fails on {r['simulator']} ({r['config']}): "
                            f"{', '.join(r['failed_tests'])} (see {r['log']})")
        elif r["mutant"] != CONTROL and not r["caught"]:
            problems.append(f"mutant {r['mutant']} is not caught on {r['simulator']}: "
                            f"{r['requirement']} did not fail (failed rows: "
                            f"{', '.join(r['failed_rows']) or 'none'}; see {r['log']})")
    return problems


def format_table(results: list[dict]) -> str:
    """The mutant table in Markdown: one row per mutant, one verdict column per simulator."""
    simulators = list(dict.fromkeys(r["simulator"] for r in results))
    by = {(r["mutant"], r["simulator"]): r for r in results if r["mutant"] != CONTROL}
    names = list(dict.fromkeys(r["mutant"] for r in results if r["mutant"] != CONTROL))
    head = ["mutant", "what the broken device does", "breaks", "config", "tests run"]
    lines = ["| " + " | ".join(head + [f"{s}: rows failed" for s in simulators]) + " |",
             "|" + "---|" * (len(head) + len(simulators))]
    for name in names:
        m = MUTANTS[name]
        cells = [f"`{name}`", m.description, m.requirement, m.config,
                 ", ".join(f"`{t}`" for t in m.tests)]
        for s in simulators:
            r = by.get((name, s))
            if r is None:
                cells.append("not run")
            else:
                rows = ", ".join(f"**{i}**" if i == m.requirement else i for i in r["failed_rows"])
                cells.append(("caught: " if r["caught"] else "NOT CAUGHT: ") + (rows or "none"))
        lines.append("| " + " | ".join(cells) + " |")
    controls = [r for r in results if r["mutant"] == CONTROL]
    if controls:
        lines.append("")
        for r in controls:
            n = len(r["tests"])
            verdict = ((f"all {n} tests pass" if n > 1 else "its test passes") if r["passed"]
                       else "FAILS " + ", ".join(r["failed_tests"]))
            lines.append(f"Unmutated device, {r['config']} on {r['simulator']}: {verdict}.")
    return "\n".join(lines)
