"""The synthesis sweep behind ``cli synth`` / ``make synth``: out-of-context builds of the device for
each part and configuration, and the board builds, run a few at a time, with progress output, the
table and ``report.json``."""

import subprocess
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from ..hdl.boards.harness import DEVICE_INSTANCE, HARNESS_INSTANCE, OutOfContextTop
from . import flow, report
from .targets import BOARDS, PARTS, SWEEP_CONFIGS, select


def ooc_jobs(parts: str | None, configs: str | None, mhz: float | None, out: Path) -> list:
    jobs = []
    for part in select("part", PARTS, parts).values():
        requested = mhz or part.requested_mhz
        for name, config in select("configuration", SWEEP_CONFIGS, configs).items():
            jobs.append(flow.BuildJob(
                kind="ooc", target=part.name, config_name=name, config=config,
                family=part.family, capacity=part.capacity, platform=part.platform(requested),
                make_top=lambda config=config: OutOfContextTop(config),
                device_path=f"{HARNESS_INSTANCE}.{DEVICE_INSTANCE}",
                requested_mhz=requested, build_dir=out / part.name / name))
    return jobs


def board_jobs(boards: str | None, out: Path) -> list:
    jobs = []
    for board in select("board", BOARDS, boards).values():
        part = PARTS[board.part]
        jobs.append(flow.BuildJob(
            kind="board", target=board.name, config_name="board", config=board.config,
            family=part.family, capacity=part.capacity, platform=board.platform(),
            make_top=board.top, device_path=board.device_path, requested_mhz=board.clock_mhz,
            build_dir=out / "boards" / board.name))
    return jobs


def toolchain_versions(env: dict) -> dict:
    """The first line each tool prints about its version, for the report."""
    versions = {}
    for var, flag in (("YOSYS", "-V"), ("NEXTPNR_ICE40", "--version"), ("NEXTPNR_ECP5", "--version")):
        done = subprocess.run([env[var], flag], env=env, capture_output=True, text=True)
        lines = (done.stdout or done.stderr).strip().splitlines()
        versions[var.lower()] = lines[0] if lines else "unknown"
    return versions


def run(jobs: list, *, parallel: int, out: Path, progress=print) -> list[dict]:
    """Run every job, ``parallel`` at a time; print one line as each finishes; write the JSON
    report (rows in job order) and return the rows."""
    env = flow.toolchain_env()
    versions = toolchain_versions(env)
    progress(f"== {len(jobs)} build(s), {parallel} at a time; logs under {out}/")
    for job in jobs:
        flow.prepare(job)
    rows = [None] * len(jobs)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {pool.submit(flow.execute, job, env): i for i, job in enumerate(jobs)}
        for n, future in enumerate(as_completed(futures), 1):
            i = futures[future]
            row = future.result()
            rows[i] = row
            fmax = min((f["achieved_mhz"] for f in row["fmax_mhz"].values()), default=None)
            figure = f", Fmax {fmax:.1f} MHz" if fmax is not None else ""
            progress(f"[{n}/{len(jobs)}] {jobs[i].label}: {row['status']}{figure} "
                     f"({row['seconds']:.0f} s)")
    report.write_json(rows, out / "report.json", versions)
    return rows
