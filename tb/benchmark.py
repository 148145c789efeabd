"""``make bench``: run tb/bench.py on the regression configurations and report the figures,
printed and written to build/bench.json (keys in docs/benchmarks.md)."""

import json
import time
from pathlib import Path

from . import configs
from .bench import BENCH_OUT_ENV
from .env import CLOCK_PERIOD_NS
from .regression import build_config
from .verilator_build import run

BENCH_JSON = Path("build") / "bench.json"
BENCH_CONFIGS = ("small", "wide")


def run_benchmarks(names=BENCH_CONFIGS, out=print) -> dict:
    report = {}
    for name in names:
        config = configs.REGRESSION[name]
        out(f"== {name}: building (cached when unchanged), then benchmarking")
        work, built = build_config(name, config)
        records = work / "bench.jsonl"
        records.unlink(missing_ok=True)
        start = time.monotonic()
        result = run(built, "virtio_gpio.tb.bench", junit_path=work / "bench.xml",
                     extra_env={configs.CONFIG_ENV: configs.to_json(config),
                                BENCH_OUT_ENV: str(records.resolve())})
        seconds = time.monotonic() - start
        if result.failed:
            raise RuntimeError(f"benchmark scenarios failed in {name}: {result.summary()}")
        figures = [json.loads(line) for line in records.read_text().splitlines()]
        sim_ns = sum(float(p.get("value")) for p in _properties(result.junit_path, "sim_time_duration"))
        cycles = int(sim_ns) // CLOCK_PERIOD_NS
        report[name] = {
            "config": json.loads(configs.to_json(config)),
            "figures": figures,
            "simulated_cycles": cycles,
            "wall_seconds": round(seconds, 2),
            "cycles_per_second": round(cycles / seconds),
        }
    return report


def _properties(junit_path, name):
    import xml.etree.ElementTree as ET
    return [p for p in ET.parse(junit_path).getroot().iter("property") if p.get("name") == name]


SPEED_GOAL = 100_000  # cycles/s of the random workload on small (simulation speed goal)


def format_report(report: dict) -> str:
    lines = [f"{'config':7} {'figure':15} {'shape':9} {'lat':>3} {'cycles':>7}  lower bound"]
    for name, r in report.items():
        speed = {f["figure"]: f for f in r["figures"] if f["figure"].startswith("speed_")}
        for f in r["figures"]:
            if f["figure"] in speed:
                continue
            value = f.get("cycles_per_request", f["cycles"])
            unit = "/req" if "cycles_per_request" in f else ""
            bound = ", ".join(f"{k} {v}" for k, v in f["lower_bound"].items())
            lines.append(f"{name:7} {f['figure']:15} {f.get('shape', '-'):9} "
                         f"{f.get('read_latency', 1):>3} {value:>7}{unit}  {bound}")
        lines.append(f"{name:7} simulation: {r['simulated_cycles']} cycles in {r['wall_seconds']} s "
                     f"= {r['cycles_per_second']} cycles/s")
        if speed:
            bare, work = speed["speed_bare_clock"], speed["speed_random_workload"]
            lines.append(f"{name:7} speed: random workload {work['cycles_per_second']} cycles/s "
                         f"({work['requests']} requests, {work['cycles']} cycles; goal "
                         f"{SPEED_GOAL}), bare clock {bare['cycles_per_second']} cycles/s, ratio "
                         f"{work['cycles_per_second'] / bare['cycles_per_second']:.2f}")
    return "\n".join(lines)


def main() -> int:
    report = run_benchmarks()
    print(format_report(report))
    BENCH_JSON.parent.mkdir(parents=True, exist_ok=True)
    BENCH_JSON.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {BENCH_JSON}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
