"""Icarus Verilog through cocotb's runner: cached builds of Verilog sources, and test runs that
report their pass/fail counts, with the interface of ``tb/verilator_build.py``.

Icarus comes from the system (Debian: ``apt-get install iverilog``; cocotb 2 needs 11.0 or later).
Two choices differ from cocotb's runner, each for a reason:

* The language generation follows the sources: ``-g2005`` when every file is ``.v``, ``-g2012``
  as soon as one is ``.sv``. Under ``-g2012`` Icarus gives variable initialisers SystemVerilog's
  meaning (applied before time 0, no event), and Yosys's Verilog (ours, and any core synthesised
  to a netlist) relies on the Verilog-2005 one: ``reg x = 0`` is an event at time 0 that runs its
  ``always @*`` blocks once. Without it, every combinational output of our device stays X until
  one of its inputs moves.
* Waves are FST through cocotb's dump module, written to the file the run names.
"""

import os
import re
import shutil
import subprocess
import time
from functools import cache
from pathlib import Path

from cocotb_tools.runner import Icarus

from .simulator import (
    Build, BuildError, RunResult, SimulatorMissing, build_directory, collect, finish,
    include_dirs, is_built, junit_and_log, python_module, source_paths, tail,
    test_env,
)

MIN_VERSION = (11, 0)
INSTALL_HINT = "install it with `apt-get install iverilog` (Debian, Ubuntu) or your system's package"
TIMESCALE = ("1ns", "1ps")


@cache
def _version() -> tuple[int, int]:
    for tool in ("iverilog", "vvp"):
        if shutil.which(tool) is None:
            raise SimulatorMissing(f"Icarus Verilog is not installed (no `{tool}` on PATH); "
                                   f"{INSTALL_HINT}")
    text = subprocess.run(["iverilog", "-V"], capture_output=True, text=True).stdout
    match = re.search(r"version (\d+)\.(\d+)", text)
    if match is None:
        raise SimulatorMissing(f"`iverilog -V` printed no version ({text.strip()[:80]!r})")
    return int(match.group(1)), int(match.group(2))


def check_tools() -> None:
    version = _version()
    if version < MIN_VERSION:
        raise SimulatorMissing(f"Icarus Verilog {version[0]}.{version[1]} is too old: cocotb 2 "
                               f"needs {MIN_VERSION[0]}.{MIN_VERSION[1]} or later; {INSTALL_HINT}")


def describe() -> dict[str, str]:
    from .verilator_build import _package_version
    try:
        version = ".".join(map(str, _version()))
    except SimulatorMissing:
        version = "not installed"
    return {"name": "Icarus Verilog", "version": version, "cocotb": _package_version("cocotb")}


class _Icarus(Icarus):
    """cocotb's Icarus runner, with test modules found on an extra Python path too, and a waves
    dump module in Verilog-2005 (cocotb's declares a SystemVerilog ``string``)."""

    def __init__(self, python_path: list[str] = ()):
        self._python_path = list(python_path)
        super().__init__()

    def _create_iverilog_dump_file(self) -> None:
        self.iverilog_dump_file.write_text(
            "module cocotb_iverilog_dump();\n"
            "reg [8*4096-1:0] path;  // the file the run names with +dumpfile_path=\n"
            "initial begin\n"
            '    if ($value$plusargs("dumpfile_path=%s", path)) $dumpfile(path);\n'
            f'    else $dumpfile("{self.build_dir / (self.hdl_toplevel + ".fst")}");\n'
            f"    $dumpvars(0, {self.hdl_toplevel});\n"
            "end\n"
            "endmodule\n")

    def _set_env_test(self) -> None:
        super()._set_env_test()
        self.env["PYTHONPATH"] = os.pathsep.join([*self._python_path, self.env["PYTHONPATH"]])


def _generation(paths: list[Path]) -> str:
    return "-g2012" if any(p.suffix == ".sv" for p in paths) else "-g2005"


def build(sources, toplevel: str, build_dir, *, ports=None, waves: bool = False) -> Build:
    """Compile ``sources`` with iverilog under ``build_dir``/<toplevel>-<hash> (``ports`` is
    accepted for the common interface: every signal is visible on Icarus anyway). Returns at once
    when that directory already holds a finished build."""
    check_tools()
    start = time.monotonic()
    paths = source_paths(sources)
    options = {"simulator": "icarus", "version": list(_version()), "toplevel": toplevel,
               "waves": waves, "generation": _generation(paths)}
    directory = build_directory(build_dir, toplevel, paths, options)
    if is_built(directory):
        return Build(directory, toplevel, waves, True, time.monotonic() - start,
                     "fst" if waves else None, "icarus")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    log = directory / "build.log"
    runner = _Icarus()
    try:
        runner.build(sources=[p.resolve() for p in paths], includes=include_dirs(paths),
                     hdl_toplevel=toplevel, build_dir=directory, log_file=log, waves=waves,
                     timescale=TIMESCALE, build_args=[options["generation"]], always=True)
    except (RuntimeError, OSError, SystemExit) as e:
        names = ", ".join(str(p) for p in paths)
        raise BuildError(f"building {toplevel} from {names} with Icarus Verilog failed ({e}); "
                         f"last lines of {log}:\n{tail(log)}") from None
    finish(directory, options)
    return Build(directory, toplevel, waves, False, time.monotonic() - start,
                 "fst" if waves else None, "icarus")


def run(build: Build, test_module: str, *, testcase=None, seed: int | None = None,
        extra_env: dict[str, str] | None = None, junit_path=None, waves: bool = False) -> RunResult:
    """As ``verilator_build.run``, on vvp."""
    if waves and not build.waves:
        raise ValueError("waves=True needs a build made with waves=True")
    module, python_path = python_module(test_module)
    runner = _Icarus(python_path)
    junit, log = junit_and_log(build, module, testcase, junit_path)
    waves_file = build.directory / f"{junit.stem}.fst" if waves else None

    def test():
        runner.test(test_module=module, hdl_toplevel=build.toplevel, hdl_toplevel_lang="verilog",
                    build_dir=build.directory, test_dir=build.directory, seed=seed,
                    extra_env=test_env(testcase, extra_env), results_xml=str(junit), log_file=log,
                    waves=waves, timescale=TIMESCALE,
                    plusargs=[f"+dumpfile_path={waves_file}"] if waves_file else [])
    return collect(test, junit, log, waves_file)
