"""Functional coverage of the random campaign: what the stimulus reached, declared as cocotb-coverage
cover points, with the goals a campaign must reach.

Why cocotb-coverage: it is the maintained coverage library of the cocotb world, its database
exports to YAML and its ``merge_coverage`` combines the files of many runs, which is what a
sharded soak needs. What it lacks is a notion of bins a configuration cannot reach (no eventq
without F_IRQ, no names without line names), so the goals are checked here: every bin of a goal
must be hit ``at_least`` times, except the bins ``unreachable`` lists for the configuration.

The bins are the issue's coverage goals: message type x reply status; irq type x line state x pin
edge, and what came back on the eventq; descriptor shapes; every device error of the contract;
ring wraps at every queue size and at 65536; notification suppression with and without EVENT_IDX;
reset, QueueReady = 0 and notify in the middle of a burst; an event racing the interrupt ACK.
Sampling happens in the campaign once the lock-step comparison has accepted the step, so a bin
counts only behaviour the golden model agreed with.
"""

from dataclasses import dataclass

from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db

from virtio_gpio.model.config import DeviceConfig

ROOT = "vgpio"

MESSAGES = ("GET_LINE_NAMES", "GET_DIRECTION", "SET_DIRECTION", "GET_VALUE", "SET_VALUE",
            "SET_IRQ_TYPE", "unknown")
STATUSES = ("OK", "ERR")
REPLY_SPACE = ("full", "short", "none")  # writable bytes >= reply, fewer, zero
IRQ_TYPES = ("EDGE_RISING", "EDGE_FALLING", "EDGE_BOTH", "LEVEL_HIGH", "LEVEL_LOW")
LINE_STATES = ("armed", "masked")  # an eventq buffer held for the line, or none
PIN_EDGES = ("rising", "falling")
IRQ_OUTCOMES = ("VALID", "INVALID")
SHAPES = ("linux", "linux_indirect", "split_request", "split_reply", "zero_length",
          "direct_then_indirect", "indirect_split")
DEVICE_ERRORS = (
    # contract §5: malformed chains and rings
    "loop", "next_beyond_num", "head_beyond_num", "readable_after_writable", "indirect_with_next",
    "nested_indirect", "indirect_bad_length", "indirect_empty", "indirect_loop",
    "indirect_not_negotiated", "huge_indirect_table_with_loop", "more_than_queue_num",
    "buffer_beyond_dma_space", "zero_length_beyond_dma_space", "avail_idx_jump",
    # contract §4: queue configuration refused at QueueReady = 1
    "queue_num_not_power_of_two", "ring_misaligned",
    # contract §6: error responses, on the read and the write channels
    "bus_error_read", "bus_error_write",
    # random bytes in a descriptor table or an indirect table
    "garbage",
)
WRAPS = ("2", "4", "8", "16", "32", "64", "128", "256", "index_65536")
SUPPRESSION = ("driver_kick", "device_interrupt")  # who was asked not to notify
EVENT_IDX = ("event_idx", "flags")
SUPPRESSED = ("suppressed", "notified")
MID_BURST = ("reset", "queue_ready_0", "notify")
RACES = ("eventq", "requestq")


@CoverPoint(f"{ROOT}.request.type", xf=lambda m, s: m, bins=list(MESSAGES))
@CoverPoint(f"{ROOT}.request.status", xf=lambda m, s: s, bins=list(STATUSES))
@CoverCross(f"{ROOT}.request.type_x_status", items=[f"{ROOT}.request.type", f"{ROOT}.request.status"])
def sample_request(message: str, status: str) -> None:
    """One completed request with at least a status byte: its type and that status."""


@CoverPoint(f"{ROOT}.request.reply_space", bins=list(REPLY_SPACE))
def sample_reply_space(space: str) -> None:
    """One completed request: whether its writable space held the reply, part of it, or nothing."""


@CoverPoint(f"{ROOT}.irq.type", xf=lambda t, st, e: t, bins=list(IRQ_TYPES))
@CoverPoint(f"{ROOT}.irq.line_state", xf=lambda t, st, e: st, bins=list(LINE_STATES))
@CoverPoint(f"{ROOT}.irq.pin_edge", xf=lambda t, st, e: e, bins=list(PIN_EDGES))
@CoverCross(f"{ROOT}.irq.type_x_state_x_edge",
            items=[f"{ROOT}.irq.type", f"{ROOT}.irq.line_state", f"{ROOT}.irq.pin_edge"])
def sample_pin_change(irq_type: str, line_state: str, edge: str) -> None:
    """A pin changed on a line with an irq type set, with or without an eventq buffer held."""


@CoverPoint(f"{ROOT}.irq.outcome", bins=list(IRQ_OUTCOMES))
def sample_irq_outcome(outcome: str) -> None:
    """An eventq buffer came back, with this status."""


@CoverPoint(f"{ROOT}.chain.shape", bins=list(SHAPES))
def sample_shape(shape: str) -> None:
    """A well-formed chain of this shape was served."""


@CoverPoint(f"{ROOT}.device_error.cause", bins=list(DEVICE_ERRORS))
def sample_device_error(cause: str) -> None:
    """A fault ended in DEVICE_NEEDS_RESET as the contract says."""


@CoverPoint(f"{ROOT}.ring.wrap", bins=list(WRAPS))
def sample_wrap(what: str) -> None:
    """A used ring of this size went round (``index_65536``: used.idx went past 0xffff)."""


@CoverPoint(f"{ROOT}.notify.who", xf=lambda w, e, s: w, bins=list(SUPPRESSION))
@CoverPoint(f"{ROOT}.notify.mechanism", xf=lambda w, e, s: e, bins=list(EVENT_IDX))
@CoverPoint(f"{ROOT}.notify.outcome", xf=lambda w, e, s: s, bins=list(SUPPRESSED))
@CoverCross(f"{ROOT}.notify.who_x_mechanism_x_outcome",
            items=[f"{ROOT}.notify.who", f"{ROOT}.notify.mechanism", f"{ROOT}.notify.outcome"])
def sample_notification(who: str, mechanism: str, outcome: str) -> None:
    """A notification that was wanted or suppressed, by the driver's kick or the device's irq."""


@CoverPoint(f"{ROOT}.mid_burst.write", bins=list(MID_BURST))
def sample_mid_burst(write: str) -> None:
    """This register write met a DMA burst on the bus."""


@CoverPoint(f"{ROOT}.race.ack", bins=list(RACES))
def sample_race(queue: str) -> None:
    """A completion on this queue happened between the InterruptStatus read and its ACK."""


@dataclass(frozen=True)
class Goal:
    item: str        # cover point or cross, under ROOT
    at_least: int = 1


GOALS = tuple(Goal(item) for item in (
    "request.type_x_status", "request.reply_space", "irq.type_x_state_x_edge", "irq.outcome",
    "chain.shape", "device_error.cause", "ring.wrap", "notify.who_x_mechanism_x_outcome",
    "mid_burst.write", "race.ack"))


def unreachable(config: DeviceConfig) -> dict[str, set]:
    """Bins that ``config`` cannot reach, per goal item (no eventq without F_IRQ...)."""
    out: dict[str, set] = {g.item: set() for g in GOALS}
    cross = out["request.type_x_status"]
    cross.add(("unknown", "OK"))
    # A level irq with a buffer held and its pin at the active level is delivered at once, so
    # the pin can only leave the active level on a line without a buffer.
    out["irq.type_x_state_x_edge"] |= {("LEVEL_HIGH", "armed", "falling"), ("LEVEL_LOW", "armed", "rising")}
    # This core never sets used.flags NO_NOTIFY (contract §5: used.flags stays 0), so without
    # EVENT_IDX a driver always kicks; the bin stays for implementations that do.
    out["notify.who_x_mechanism_x_outcome"].add(("driver_kick", "flags", "suppressed"))
    if not config.line_names:
        cross.add(("GET_LINE_NAMES", "OK"))
    if not config.offer_irq:
        cross.add(("SET_IRQ_TYPE", "OK"))
        out["irq.type_x_state_x_edge"] |= {(t, s, e) for t in IRQ_TYPES for s in LINE_STATES
                                          for e in PIN_EDGES}
        out["irq.outcome"] |= set(IRQ_OUTCOMES)
        out["race.ack"].add("eventq")
    if not config.offer_indirect_desc:
        out["chain.shape"] |= {"linux_indirect", "direct_then_indirect", "indirect_split"}
        # (a direct chain cannot hold more than QueueNum descriptors without a loop)
        out["device_error.cause"] |= {"indirect_with_next", "nested_indirect", "indirect_bad_length",
                                      "indirect_empty", "indirect_loop",
                                      "huge_indirect_table_with_loop", "more_than_queue_num"}
    if config.dma_addr_width == 64:
        out["device_error.cause"].add("zero_length_beyond_dma_space")
    if not config.offer_event_idx:
        out["notify.who_x_mechanism_x_outcome"] |= {(w, "event_idx", s) for w in SUPPRESSION
                                                    for s in SUPPRESSED}
    out["ring.wrap"] |= {w for w in WRAPS[:-1] if int(w) > config.queue_size_max}
    return out


def _bins(node: dict) -> dict:
    return node.get("bins:_hits", {})


def _key(bin_) -> str:
    return str(bin_) if isinstance(bin_, tuple) else bin_


def evaluate(db: dict, config: DeviceConfig, *, short: bool = False) -> list[dict]:
    """Each goal against a coverage database as exported to YAML (``export()``, or a merge of
    several): the bins required, hit and missed. With ``short``, the ``index_65536`` wrap is not
    required (it takes 65,536 requests on one queue; the soak and ``make sim-long`` reach it)."""
    skip = unreachable(config)
    if short:
        skip["ring.wrap"].add("index_65536")
    rows = []
    for goal in GOALS:
        node = db.get(f"{ROOT}.{goal.item}", {})
        hits = _bins(node)
        skipped = {_key(s) for s in skip[goal.item]}
        required = [b for b in hits if b not in skipped]
        missed = [b for b in required if hits[b] < goal.at_least]
        rows.append({"item": goal.item, "required": len(required), "hit": len(required) - len(missed),
                     "missed": missed, "samples": sum(hits.values())})
    return rows


def export(path) -> dict:
    """Write this process's coverage database to ``path`` (YAML) and return it as loaded."""
    import yaml
    coverage_db.export_to_yaml(str(path))
    with open(path) as f:
        return yaml.safe_load(f)


def merge_databases(dbs: list[dict], out_path) -> dict:
    """Merge the coverage databases of several runs (as ``export`` returned them) with
    cocotb-coverage's ``merge_coverage``; the result is written to ``out_path`` (YAML) too."""
    import tempfile
    from pathlib import Path

    import yaml
    from cocotb_coverage.coverage import merge_coverage
    if not dbs:
        Path(out_path).write_text("{}\n")
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, db in enumerate(dbs):
            paths.append(Path(tmp) / f"{i}.yml")
            paths[-1].write_text(yaml.safe_dump(db))
        merge_coverage(lambda _msg: None, str(out_path), *map(str, paths))
    with open(out_path) as f:
        return yaml.safe_load(f)


def format_goals(rows: list[dict]) -> str:
    lines = [f"{'coverage goal':34} {'bins hit':>9} {'samples':>9}  missed"]
    for r in rows:
        missed = ", ".join(map(str, r["missed"][:6])) + (" ..." if len(r["missed"]) > 6 else "")
        lines.append(f"{r['item']:34} {r['hit']:>4}/{r['required']:<4} {r['samples']:>9}  {missed or '-'}")
    return "\n".join(lines)


def reached(rows: list[dict]) -> bool:
    return all(not r["missed"] for r in rows)
