"""Campaigns people can run: the random campaign (tb/random_campaign.py) over a range of seeds, one
simulator process per job, with a progress line, a closing table and one JSON report; and the merge
of several such reports (the shards of a CI matrix or a batch scheduler) into one.

A seed is one simulator process: its traffic, faults and back-pressure all follow from the seed, so
the seed is all it takes to replay a failure (the table prints the command). Every
``marathon_every``-th seed instead runs one episode past the 16-bit index wrap (65,536+ requests on
a 2-entry queue), which is the only way to reach the ``index_65536`` coverage bin.

The fan-out uses the standard library: a thread per job, each waiting on its simulator process.
"""

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from . import configs
from . import coverage as cov
from . import simulator
from .dut import Dut
from .env import SEED_ENV
from .random_campaign import PROFILE_ENV
from .regression import DEFAULT_BUILD_DIR, build_config
from .simulator import DEFAULT_SIMULATOR, SimulationError

DEFAULT_OUT = Path("build") / "campaign"
REPORT_NAME = "campaign.json"
TALLY_COLUMNS = ("requests", "malformed_rings", "bus_errors", "register_faults", "resets",
                 "mid_burst_writes", "pin_changes", "irq_events", "cycles")


class SeedRangeError(ValueError):
    """A ``--seeds`` value that names no seeds."""


def parse_seeds(text: str) -> list[int]:
    """``N`` (seeds 1..N), ``A-B`` (A..B inclusive), or a comma-separated list of either."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if lo < 1 or hi < lo:
                    raise ValueError
                seeds += range(lo, hi + 1)
            elif str(text).strip() == part:
                n = int(part)
                if n < 1:
                    raise ValueError
                seeds += range(1, n + 1)
            else:
                seeds.append(int(part))
        except ValueError:
            raise SeedRangeError(f"seeds must be N (1..N), A-B or a list of them, not {text!r}") from None
    return sorted(set(seeds))


@dataclass
class CampaignSettings:
    configs: tuple[str, ...] = ("small",)
    requests: int = 2000          # per seed
    faults: bool = True
    marathon_every: int = 100     # every Nth seed runs past the 16-bit wrap (0: never)
    jobs: int = os.cpu_count() or 1
    waves: bool = False
    out_dir: Path = DEFAULT_OUT
    simulator: str = DEFAULT_SIMULATOR
    # What each name in ``configs`` runs; a name not in it is our device in that regression
    # configuration.
    duts: dict[str, Dut] | None = None

    def dut(self, name: str) -> Dut:
        return (self.duts or {}).get(name) or Dut(name, configs.REGRESSION[name])

    def profile(self, seed: int, out: Path) -> dict:
        marathon = bool(self.marathon_every) and seed % self.marathon_every == 0
        return {"requests": self.requests, "faults": self.faults, "marathon": marathon, "out": str(out)}

    def replay(self, config: str, seed: int) -> str:
        dut = self.dut(config)
        target = dut.cli_options() if dut.external else f"--config {config}"
        sim = "" if self.simulator == DEFAULT_SIMULATOR else f" --sim {self.simulator}"
        return (f"virtio-gpio campaign {target} --seeds {seed}-{seed} "
                f"--requests {self.requests}{'' if self.faults else ' --no-faults'} "
                f"--marathon-every {self.marathon_every} --no-coverage-goal --waves{sim}")


def run_seed(settings: CampaignSettings, name: str, built, seed: int) -> dict:
    """One seed of configuration ``name`` in its own simulator process; its figures (and
    coverage file) as a dict."""
    work = settings.out_dir / name
    work.mkdir(parents=True, exist_ok=True)
    out = (work / f"seed-{seed}.json").resolve()
    out.unlink(missing_ok=True)
    config = settings.dut(name).config
    env = {configs.CONFIG_ENV: configs.to_json(config), SEED_ENV: str(seed),
           PROFILE_ENV: json.dumps(settings.profile(seed, out))}
    start = time.monotonic()
    try:
        result = simulator.run(built, "virtio_gpio.tb.random_campaign", seed=seed, extra_env=env,
                               junit_path=work / f"seed-{seed}.xml", waves=settings.waves)
        failed, log, waves = bool(result.failed), str(result.log_path), result.waves_path
    except SimulationError as e:
        failed, log, waves = True, str(e), None
    data = json.loads(out.read_text()) if out.is_file() else {"seed": seed, "tally": {}, "coverage": {}}
    data.update(seed=seed, config=name, device=configs.to_json(config), passed=not failed, seconds=round(time.monotonic() - start, 1),
                log=log, waves=str(waves) if waves else None, replay=settings.replay(name, seed))
    if failed and not data.get("failure"):
        data["failure"] = f"the simulation failed; see {log}"
    return data


def _progress(done: int, total: int, results: list[dict], started: float, stream) -> None:
    width = 30
    filled = width * done // total
    requests = sum(r.get("tally", {}).get("requests", 0) for r in results)
    failed = sum(not r["passed"] for r in results)
    elapsed = time.monotonic() - started
    eta = f", about {elapsed / done * (total - done):.0f} s to go" if done and done < total else ""
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} seeds, "
                 f"{requests} requests, {failed} failed, {elapsed:.0f} s{eta}   ")
    stream.flush()


def run_campaign(settings: CampaignSettings, seeds: list[int], *, out=print, stream=sys.stderr) -> dict:
    """Build each configuration once, run every (configuration, seed) pair, ``settings.jobs`` at
    a time, and write the report under ``settings.out_dir``."""
    builds = {}
    label = simulator.describe(settings.simulator)["name"]
    for name in settings.configs:
        out(f"== {name}: building with {label} (cached when unchanged)")
        dut = settings.dut(name)
        _, builds[name] = build_config(name, dut.config, DEFAULT_BUILD_DIR, waves=settings.waves,
                                       simulator_name=settings.simulator, dut=dut)
    runs = [(name, seed) for name in settings.configs for seed in seeds]
    out(f"   {len(seeds)} seeds x {len(settings.configs)} configurations, {settings.requests} "
        f"requests per seed, faults {'on' if settings.faults else 'off'}, {settings.jobs} jobs")
    results: list[dict] = []
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, settings.jobs)) as pool:
        futures = [pool.submit(run_seed, settings, name, builds[name], seed) for name, seed in runs]
        _progress(0, len(runs), results, started, stream)
        for future in as_completed(futures):
            results.append(future.result())
            _progress(len(results), len(runs), results, started, stream)
    stream.write("\n")
    report = combine(results, settings.out_dir)
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    write_report(report, settings.out_dir)
    return report


def combine(results: list[dict], out_dir: Path) -> dict:
    """One report from per-seed results: totals, failures, and per configuration the merged
    coverage and the goals (the 16-bit wrap is required only where a marathon seed ran)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = sorted(results, key=lambda r: (r["config"], r["seed"]))
    names = sorted({r["config"] for r in results})
    totals = {k: sum(r.get("tally", {}).get(k, 0) for r in results) for k in TALLY_COLUMNS}
    goals, coverage_files = {}, {}
    for name in names:
        mine = [r for r in results if r["config"] == name]
        path = out_dir / f"coverage-{name}.yml"
        merged = cov.merge_databases([r["coverage"] for r in mine if r.get("coverage")], path)
        coverage_files[name] = str(path)
        config = (configs.from_json(mine[0]["device"]) if mine[0].get("device")
                  else configs.REGRESSION[name])
        goals[name] = cov.evaluate(merged, config,
                                   short=not any(r.get("profile", {}).get("marathon") for r in mine))
    return {"configs": names, "seeds": sorted({r["seed"] for r in results}), "runs": len(results),
            "totals": totals, "failures": [r for r in results if not r["passed"]],
            "results": results, "coverage_files": coverage_files,
            "goals": goals, "coverage_reached": all(cov.reached(g) for g in goals.values())}


def write_report(report: dict, out_dir: Path) -> Path:
    path = out_dir / REPORT_NAME
    path.write_text(json.dumps(report, indent=1) + "\n")
    return path


def merge_reports(paths: list[Path], out_dir: Path) -> dict:
    """Combine the reports of several shards (``campaign.json`` files or the folders holding them)."""
    results = []
    for p in paths:
        p = Path(p)
        file = p / REPORT_NAME if p.is_dir() else p
        if not file.is_file():
            raise FileNotFoundError(f"no campaign report at {file}")
        results += json.loads(file.read_text())["results"]
    seen = set()
    for r in results:
        key = (r["config"], r["seed"])
        if key in seen:
            raise ValueError(f"seed {r['seed']} of {r['config']} is in two shards")
        seen.add(key)
    report = combine(results, out_dir)
    write_report(report, out_dir)
    return report


def format_report(report: dict) -> str:
    t = report["totals"]
    lines = [f"runs: {report['runs']} ({len(report['seeds'])} seeds x {', '.join(report['configs'])})"
             f"   failures: {len(report['failures'])}"
             + (f"   wall time: {report['wall_seconds']} s" if "wall_seconds" in report else "")]
    lines += [f"  {k.replace('_', ' '):18} {t[k]:>12,}" for k in TALLY_COLUMNS]
    for name, rows in report["goals"].items():
        lines += ["", f"coverage ({name}):", cov.format_goals(rows)]
    lines.append("")
    lines.append("coverage goals: " + ("reached" if report["coverage_reached"] else "NOT reached"))
    for r in report["failures"]:
        lines.append(f"FAIL seed {r['seed']} ({r.get('config')}): {str(r.get('failure'))[:300]}")
        lines.append(f"     replay: {r['replay']}")
        lines.append(f"     log: {r['log']}")
    return "\n".join(lines)
