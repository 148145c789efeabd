"""The conformance regression: for each device configuration (or an external DUT), generate the
Verilog, build it (cached) on Verilator or Icarus, run every conformance module in one simulator
process, and report.

Used by ``make sim`` (through ``virtio_gpio.cli sim``), ``make conformance`` (through
``virtio_gpio.cli conformance``, which turns the outcomes into a report per configuration) and by
the pytest entry point. Every outcome carries its seed: a seed other than 1 gives random AXI
back-pressure, and the seed is all it takes to reproduce a run.
"""

import importlib
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from virtio_gpio.hdl.device import TOP_MODULE_NAME, generate_verilog
from virtio_gpio.model.config import DeviceConfig

from . import configs, simulator
from .conformance import MODULES
from .dut import Dut, expected_ports
from .env import CLOCK_PERIOD_NS, SEED_ENV
from .requirements import COVERAGE, Tagged
from .simulator import DEFAULT_SIMULATOR, Build

DEFAULT_BUILD_DIR = Path("build") / "sim"
PACKAGE = "virtio_gpio.tb.conformance"


class UnknownTest(ValueError):
    """``--test`` names no conformance test."""


@dataclass
class TestOutcome:
    name: str  # module.test
    status: str  # "pass", "FAIL", "skip"
    cycles: int
    seconds: float
    requirements: tuple[str, ...]
    seed: int = 1


@dataclass
class ConfigOutcome:
    name: str
    config: DeviceConfig
    seed: int = 1
    simulator: str = DEFAULT_SIMULATOR
    dut: Dut | None = None  # an external implementation, if that is what ran
    tests: list[TestOutcome] = field(default_factory=list)
    build_seconds: float = 0.0
    build_cached: bool = False
    run_seconds: float = 0.0
    junit_path: Path | None = None
    log_path: Path | None = None
    waves_path: Path | None = None

    @property
    def failed(self) -> list[TestOutcome]:
        return [t for t in self.tests if t.status == "FAIL"]

    @property
    def cycles(self) -> int:
        return sum(t.cycles for t in self.tests)


def requirement_map() -> dict[str, Tagged]:
    """The tags of every conformance test ("module.test" -> IDs, needs, skip), as imported in this
    process (its skips are those of the configuration in the environment, if any)."""
    for module in MODULES:
        importlib.import_module(f"{PACKAGE}.{module}")
    return dict(COVERAGE)


_DUMP_TAGS = f"""
import importlib, json
from {PACKAGE} import MODULES
from virtio_gpio.tb.requirements import COVERAGE
for m in MODULES:
    importlib.import_module("{PACKAGE}." + m)
print(json.dumps({{k: [list(t.ids), list(t.needs), t.skip] for k, t in COVERAGE.items()}}))
"""


def requirement_map_for(config: DeviceConfig, *, seed: int = 1) -> dict[str, Tagged]:
    """The tags as the simulator sees them when it runs ``config``: the modules are imported in a
    fresh interpreter with that run's environment, so a ``skip`` computed at import (from
    ``configs.offers``) is the one of that configuration, whether it came from ``needs`` or not."""
    env = os.environ | _test_env(config, seed)
    proc = subprocess.run([sys.executable, "-c", _DUMP_TAGS], env=env, capture_output=True,
                          text=True)
    if proc.returncode:
        raise RuntimeError(f"importing the conformance modules failed:\n{proc.stderr.strip()}")
    return {name: Tagged(tuple(ids), tuple(needs), skip)
            for name, (ids, needs, skip) in json.loads(proc.stdout).items()}


def _test_env(config: DeviceConfig, seed: int, extra_env: dict | None = None) -> dict[str, str]:
    env = {configs.CONFIG_ENV: configs.to_json(config), SEED_ENV: str(seed)} | (extra_env or {})
    env.update({k: v for k, v in os.environ.items() if k.startswith("VIRTIO_GPIO_") and k not in env})
    return env


def work_dir(build_dir: Path, name: str, simulator_name: str) -> Path:
    """Where a configuration's Verilog, builds and results go (Verilator's keep their old place)."""
    return build_dir / simulator.qualified(name, simulator_name)


def build_config(name: str, config: DeviceConfig, build_dir: Path = DEFAULT_BUILD_DIR, *,
                 waves: bool = False, simulator_name: str = DEFAULT_SIMULATOR,
                 dut: Dut | None = None) -> tuple[Path, Build]:
    """Build ``dut`` (default: our device for ``config``, whose Verilog is written under
    ``build_dir/name`` only when it changed) on ``simulator_name`` (a no-op when that exact
    build exists)."""
    work = work_dir(build_dir, name, simulator_name)
    work.mkdir(parents=True, exist_ok=True)
    if dut is not None and dut.external:
        sources, toplevel = list(dut.sources), dut.toplevel
    else:
        verilog = work / f"{TOP_MODULE_NAME}.v"
        text = generate_verilog(config)
        if not verilog.is_file() or verilog.read_text() != text:
            verilog.write_text(text)
        sources, toplevel = [verilog], TOP_MODULE_NAME
    return work, simulator.build(simulator_name, sources, toplevel, work, waves=waves,
                                 ports=list(expected_ports(config)))


def run_config(name: str, config: DeviceConfig, *, build_dir: Path = DEFAULT_BUILD_DIR,
               testcase: str | None = None, seed: int = 1, waves: bool = False,
               modules: tuple[str, ...] = MODULES, extra_env: dict | None = None,
               out=print, simulator_name: str = DEFAULT_SIMULATOR,
               dut: Dut | None = None) -> ConfigOutcome:
    """Build ``config`` (or the external ``dut`` it describes; cached) and run the conformance
    modules once with ``seed``. ``testcase``: one test's name, or several comma-separated. The
    JUnit XML goes to the work directory's ``results.xml`` for seed 1 and ``results-seed<N>.xml``
    otherwise, so the runs of several seeds do not overwrite each other."""
    outcome = ConfigOutcome(name, config, seed, simulator_name, dut if dut and dut.external else None)
    if testcase is not None:
        # cocotb runs a test named on its own even when it is marked skip; a test that does not
        # apply to this configuration is reported as skipped here instead.
        wanted = [t.strip() for t in testcase.split(",") if t.strip()]
        by_name = {key.rsplit(".", 1)[-1]: (key, t)
                   for key, t in requirement_map_for(config, seed=seed).items()}
        unknown = [t for t in wanted if t not in by_name]
        if unknown:
            raise UnknownTest(f"no conformance test is named {', '.join(map(repr, unknown))}")
        for test in wanted:
            key, tagged = by_name[test]
            if tagged.skip:
                needs = f" (it needs {', '.join(tagged.needs)})" if tagged.needs else ""
                out(f"== {name}: {key} is skipped in this configuration or environment{needs}")
                outcome.tests.append(TestOutcome(key, "skip", 0, 0.0, tagged.ids, seed))
        wanted = [t for t in wanted if not by_name[t][1].skip]
        if not wanted:
            return outcome
        testcase = ",".join(wanted)
    label = simulator.describe(simulator_name)["name"]
    out(f"== {name}: building with {label} (cached when unchanged)")
    work, built = build_config(name, config, build_dir, waves=waves,
                               simulator_name=simulator_name, dut=dut)
    outcome.build_seconds, outcome.build_cached = built.seconds, built.cached
    out(f"   build {'reused' if built.cached else 'done'} in {built.seconds:.1f} s")
    env = _test_env(config, seed, extra_env)
    test_modules = ",".join(f"{PACKAGE}.{m}" for m in modules)
    out(f"   running {len(modules)} conformance modules (seed {seed})...")
    start = time.monotonic()
    # An external DUT's results go into its own build directory (named by its sources' hash), so
    # that several DUTs with one top-module name (the mutants) can run at once.
    results_dir = built.directory if dut is not None and dut.external else work
    junit = results_dir / ("results.xml" if seed == 1 else f"results-seed{seed}.xml")
    result = simulator.run(built, test_modules, testcase=testcase, seed=seed, extra_env=env,
                           junit_path=junit, waves=waves)
    outcome.run_seconds = time.monotonic() - start
    outcome.junit_path, outcome.log_path, outcome.waves_path = \
        result.junit_path, result.log_path, result.waves_path
    requirements = requirement_map()
    for case in ET.parse(result.junit_path).getroot().iter("testcase"):
        test = f"{case.get('classname', '').rsplit('.', 1)[-1]}.{case.get('name')}"
        status = ("FAIL" if case.find("failure") is not None or case.find("error") is not None
                  else "skip" if case.find("skipped") is not None else "pass")
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        sim_ns = float(props.get("sim_time_duration") or 0)  # in sim_time_unit, "ns" here
        tagged = requirements.get(test)
        outcome.tests.append(TestOutcome(test, status, int(sim_ns) // CLOCK_PERIOD_NS,
                                         float(case.get("time", 0) or 0),
                                         tagged.ids if tagged else (), seed))
    return outcome


def format_summary(outcomes: list[ConfigOutcome]) -> str:
    lines = [f"{'config':8} {'test':58} {'result':6} {'cycles':>9} {'cycles/s':>9}  requirements"]
    for o in outcomes:
        for t in o.tests:
            rate = f"{t.cycles / t.seconds:9.0f}" if t.seconds and t.cycles else f"{'-':>9}"
            lines.append(f"{o.name:8} {t.name:58} {t.status:6} {t.cycles:9} {rate}  "
                         f"{' '.join(t.requirements)}")
    lines.append("")
    for o in outcomes:
        passed = sum(t.status == "pass" for t in o.tests)
        skipped = sum(t.status == "skip" for t in o.tests)
        covered = sorted({r for t in o.tests if t.status == "pass" for r in t.requirements})
        rate = o.cycles / o.run_seconds if o.run_seconds else 0
        lines.append(f"{o.name}: {passed} passed, {len(o.failed)} failed, {skipped} skipped; "
                     f"{o.cycles} cycles in {o.run_seconds:.1f} s ({rate:.0f} cycles/s); "
                     f"build {o.build_seconds:.1f} s{' (cached)' if o.build_cached else ''}; "
                     f"{len(covered)} requirement IDs covered; JUnit {o.junit_path}")
    return "\n".join(lines)


def rerun_hint(outcome: ConfigOutcome, seed: int | None = None) -> str:
    seed = outcome.seed if seed is None else seed
    tests = " ".join(f"--test {t.name.split('.')[-1]}" for t in outcome.failed[:1])
    sim = simulator.make_variable(outcome.simulator)
    if outcome.dut is not None:
        names = ",".join(t.name.split(".")[-1] for t in outcome.failed[:1])
        return (f"rerun: make conformance{sim} {outcome.dut.make_variables()} ARGS='--seeds {seed} "
                f"--tests {names} --campaign-seeds 0'  (log: {outcome.log_path})")
    return (f"rerun with waves: make sim{sim} ARGS='--config {outcome.name} --seed {seed} {tests} --waves'"
            f"  (log: {outcome.log_path})")
