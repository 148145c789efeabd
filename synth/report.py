"""The resource and timing report: one row per build, read from Yosys's ``stat -json`` (the device's
own cells) and nextpnr's ``--report`` (placed utilisation, Fmax per clock, critical path); printed
as a table and written as JSON. The keys are documented in docs/synthesis.md."""

import json
import re
from pathlib import Path

from .targets import CellClasses

REPORT_VERSION = 1
# Build outcomes.
MET = "met"
TIMING_FAILED = "timing-failed"
DOES_NOT_FIT = "does-not-fit"
ERROR = "error"

# Yosys appends the mapped cell's type and port to a signal's name (``engine.q_TRELLIS_FF_Q``);
# the signal name alone is what a reader looks for in the source.
_CELL_SUFFIX = re.compile(r"_(SB_|TRELLIS_|LUT4|CCU2C|PFUMX|L6MUX21|DP16KD|DFF).*$")


def device_cells(stat_path: Path, module: str, classes: CellClasses) -> dict:
    """The device module's cells by class: lut4, ff, carry, bram, lutram, and ``other`` by type."""
    stat = json.loads(stat_path.read_text())
    cells = dict(stat["modules"]["\\" + module]["num_cells_by_type"])
    cells.pop("$scopeinfo", None)  # debug information, not hardware
    counts = {"lut4": 0, "ff": 0, "carry": 0, "bram": 0, "lutram": 0}
    other = {}
    for cell, n in sorted(cells.items()):
        if cell in classes.lut4:
            counts["lut4"] += n
        elif cell.startswith(classes.ff_prefix):
            counts["ff"] += n
        elif cell in classes.carry:
            counts["carry"] += n
        elif cell in classes.bram:
            counts["bram"] += n
        elif cell in classes.lutram:
            counts["lutram"] += n
        else:
            other[cell] = n
    counts["other"] = other
    return counts


def read_nextpnr_report(path: Path) -> tuple[dict, dict, dict | None]:
    """(placed utilisation of the resources in use, Fmax per clock, the critical path of the
    slowest clock)."""
    report = json.loads(path.read_text())
    placed = {name: _used(u["used"], u["available"])
              for name, u in sorted(report["utilization"].items()) if u["used"]}
    fmax = {_clock_name(clock): {"achieved_mhz": round(f["achieved"], 2),
                                 "constraint_mhz": round(f["constraint"], 2)}
            for clock, f in sorted(report["fmax"].items())}
    critical = None
    if fmax:
        worst = min(fmax, key=lambda c: fmax[c]["achieved_mhz"])
        for entry in report.get("critical_paths", []):
            if _clock_name(entry["from"].split()[-1]) == worst and entry["path"]:
                critical = _summarise_path(worst, entry["path"])
                break
    return placed, fmax, critical


_UTILISATION_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.MULTILINE)


def utilisation_from_log(log: str) -> dict:
    """Placed utilisation from a nextpnr log (a build that stopped before writing its report)."""
    return {name: _used(int(used), int(avail))
            for name, used, avail in _UTILISATION_LINE.findall(log) if int(used)}


def _used(used: int, available: int) -> dict:
    return {"used": used, "available": available, "percent": _percent(used, available)}


def _percent(used: int, available: int) -> float:
    return round(100.0 * used / available, 1) if available else 0.0


def _clock_name(net: str) -> str:
    """The clock net as the design names it, without the global-buffer decoration nextpnr adds
    (``$glbnet$`` on ECP5, ``_$glb_clk`` on iCE40)."""
    return net.removeprefix("$glbnet$").removesuffix("_$glb_clk")


def _cell_name(cell: str) -> str:
    return _CELL_SUFFIX.sub("", cell)


def _summarise_path(clock: str, path: list) -> dict:
    delay = sum(seg["delay"] for seg in path)
    logic = [seg for seg in path if seg["type"] == "logic"]
    return {
        "clock": clock,
        "delay_ns": round(delay, 2),
        "logic_ns": round(sum(seg["delay"] for seg in logic), 2),
        "cells": len(logic),  # cells traversed, carry-chain links included
        "from": _cell_name(path[0]["from"]["cell"]),
        "to": _cell_name(path[-1]["to"]["cell"]),
        # The signals the path runs through, in order, each once: where to look in the source.
        "through": list(dict.fromkeys(
            _cell_name(seg["to"]["cell"]) for seg in logic
            if not seg["to"]["cell"].startswith("$"))),  # "$nextpnr...": cells nextpnr made
    }


def row(job, *, status: str, message: str, seconds: float, device_cells: dict | None,
        placed: dict | None, fmax: dict | None, critical_path: dict | None,
        bitstream: str | None) -> dict:
    cap = job.capacity
    percent = None
    if device_cells is not None:
        percent = {"lut4": _percent(device_cells["lut4"], cap.logic),
                   "ff": _percent(device_cells["ff"], cap.ff),
                   "bram": _percent(device_cells["bram"], cap.bram)}
    return {
        "kind": job.kind,
        "target": job.target,
        "config": job.config_name,
        "parameters": _parameters(job.config),
        "status": status,
        "message": message,
        "requested_mhz": job.requested_mhz,
        "fmax_mhz": fmax or {},
        "critical_path": critical_path,
        "device": device_cells,
        "device_percent": percent,
        "placed": placed or {},
        "placed_logic_resource": cap.logic_resource,
        "seconds": round(seconds, 1),
        "build_dir": str(job.build_dir),
        "bitstream": bitstream,
    }


def _parameters(config) -> dict:
    return {"ngpio": config.ngpio, "names": config.line_names is not None,
            "irq": config.offer_irq, "indirect_desc": config.offer_indirect_desc,
            "event_idx": config.offer_event_idx, "queue_size_max": config.queue_size_max,
            "dma_addr_width": config.dma_addr_width, "dma_data_width": config.dma_data_width}


def write_json(rows: list[dict], path: Path, toolchain: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": REPORT_VERSION, "toolchain": toolchain,
                                "results": rows}, indent=2) + "\n")


_COLUMNS = ("target", "config", "LUT4", "FF", "carry", "BRAM", "LUT %", "placed logic",
            "Fmax MHz", "goal MHz", "status")


def _table_cells(r: dict) -> tuple[str, ...]:
    dev = r["device"] or {}
    pct = r["device_percent"] or {}
    logic = r["placed"].get(r["placed_logic_resource"])
    fmax = min((f["achieved_mhz"] for f in r["fmax_mhz"].values()), default=None)
    return (r["target"], r["config"], _cell(dev.get("lut4")), _cell(dev.get("ff")),
            _cell(dev.get("carry")), _cell(dev.get("bram")), _cell(pct.get("lut4")),
            f"{logic['used']}/{logic['available']} ({logic['percent']}%)" if logic else "-",
            f"{fmax:.1f}" if fmax is not None else "-", f"{r['requested_mhz']:g}", r["status"])


def format_table(rows: list[dict]) -> str:
    lines = [_COLUMNS] + [_table_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(_COLUMNS))]
    out = ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_markdown(rows: list[dict]) -> str:
    """The same table in Markdown, for the docs and release notes."""
    lines = [_COLUMNS, ("---",) * len(_COLUMNS)] + [_table_cells(r) for r in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def format_critical_paths(rows: list[dict]) -> str:
    out = []
    for r in rows:
        cp = r["critical_path"]
        if cp:
            out.append(f"{r['target']} {r['config']}: {cp['delay_ns']} ns through {cp['cells']} "
                       f"cells ({cp['logic_ns']} ns in logic), {cp['from']} -> {cp['to']}")
            out.append(f"    through: {' -> '.join(cp['through'])}")
        elif r["status"] != MET:
            out.append(f"{r['target']} {r['config']}: {r['status']}: {r['message']}")
    return "\n".join(out)


def _cell(value) -> str:
    return "-" if value is None else str(value)
