"""Every synthesis target elaborates and carries the right constraints, without running the FPGA
toolchain: the out-of-context top on each part, and each board top on its board."""

import re

import pytest

from virtio_gpio.hdl.boards.board_top import LineKind
from virtio_gpio.hdl.boards.harness import DEVICE_INSTANCE, HARNESS_INSTANCE
from virtio_gpio.synth import flow, sweep
from virtio_gpio.synth.targets import BOARDS, PARTS, SWEEP_CONFIGS, TargetError, select

CONSTRAINTS = {"ice40": "top.pcf", "ecp5": "top.lpf"}


def prepared_files(job) -> dict:
    plan = job.platform.prepare(job.make_top(), name=flow.TOP_NAME, **flow._overrides(job))
    return {name: content if isinstance(content, str) else content.decode()
            for name, content in plan.files.items()}


def constrained_pins(family: str, constraints: str) -> set[str]:
    pattern = r"set_io\s+(?:-\S+\s+)*\S+\s+(\S+)" if family == "ice40" else r'SITE "(\S+)"'
    return set(re.findall(pattern, constraints))


def clock_constraint_mhz(family: str, constraints: str) -> float:
    if family == "ice40":
        return float(re.search(r"set_frequency \S+ ([\d.]+)", constraints).group(1))
    return float(re.search(r"FREQUENCY (?:PORT|NET) \S+ ([\d.e+]+) HZ", constraints).group(1)) / 1e6


def resource_pins(platform, name: str, number: int, subsignal: str | None = None) -> set[str]:
    resource = platform.lookup(name, number)
    ios = resource.ios
    if subsignal is not None:
        ios, = (sub.ios for sub in ios if sub.name == subsignal)
    return {pin for io in ios for pin in io.map_names(platform._conn_pins, resource)}


@pytest.mark.parametrize("part", PARTS.values(), ids=lambda p: p.name)
def test_out_of_context_top_elaborates_with_four_pins_and_the_clock_goal(part, tmp_path):
    job, = sweep.ooc_jobs(part.name, "gpio8", None, tmp_path)
    files = prepared_files(job)
    constraints = files[CONSTRAINTS[part.family]]
    assert constrained_pins(part.family, constraints) == set(part.pins.values())
    assert clock_constraint_mhz(part.family, constraints) == \
        part.requested_mhz
    device_module = f"top.{HARNESS_INSTANCE}.{DEVICE_INSTANCE}"
    assert f"module \\{device_module}\n" in files["top.il"]
    assert f"setattr -mod -set keep_hierarchy 1 {device_module}" in files["top.ys"]
    assert f"tee -q -o {flow.STAT_FILE} stat -json" in files["top.ys"]


def test_requested_frequency_reaches_the_constraints(tmp_path):
    job, = sweep.ooc_jobs("ecp5-85f", "gpio8", 62.5, tmp_path)
    files = prepared_files(job)
    assert clock_constraint_mhz("ecp5", files["top.lpf"]) == 62.5
    assert job.requested_mhz == 62.5


@pytest.mark.parametrize("board", BOARDS.values(), ids=lambda b: b.name)
def test_board_top_puts_every_line_and_the_uart_on_board_pins(board, tmp_path):
    job, = sweep.board_jobs(board.name, tmp_path)
    part = PARTS[board.part]
    files = prepared_files(job)
    constraints = files[CONSTRAINTS[part.family]]
    pins = constrained_pins(part.family, constraints)
    platform = board.platform()
    for line in board.lines:
        assert resource_pins(platform, line.resource, line.number) <= pins, line
    assert resource_pins(platform, "uart", 0, "rx") | resource_pins(platform, "uart", 0, "tx") <= pins
    clock = clock_constraint_mhz(part.family, constraints)
    assert clock == board.clock_mhz == job.requested_mhz
    assert f"module \\top.{board.device_path}\n" in files["top.il"]
    # The line names tell the driver which pin is which.
    assert board.config.line_names == tuple(line.name for line in board.lines)
    assert board.config.ngpio == len(board.lines)


@pytest.mark.parametrize("board", BOARDS.values(), ids=lambda b: b.name)
def test_board_lines_use_distinct_resources_of_the_right_direction(board):
    platform = board.platform()
    seen = set()
    for line in board.lines:
        key = (line.resource, line.number)
        assert key not in seen, f"{line.name} reuses {key}"
        seen.add(key)
        direction = platform.lookup(*key).ios[0].dir
        expected = {LineKind.INPUT: "i", LineKind.OUTPUT: "o", LineKind.INOUT: "io"}[line.kind]
        assert direction == expected, line


def test_sweep_covers_line_counts_and_features_on_and_off():
    ngpios = {c.ngpio for c in SWEEP_CONFIGS.values()}
    assert {8, 32, 128} <= ngpios
    plain = [c for c in SWEEP_CONFIGS.values() if not (c.offer_irq or c.offer_indirect_desc
                                                       or c.offer_event_idx)]
    full = [c for c in SWEEP_CONFIGS.values() if c.offer_irq and c.offer_indirect_desc
            and c.offer_event_idx]
    assert plain and full


def test_unknown_names_are_rejected_with_the_known_ones():
    with pytest.raises(TargetError, match="ice40-up5k, ecp5-85f"):
        select("part", PARTS, "ice40-up5k,virtex")
    assert select("part", PARTS, "") == {}
    assert list(select("configuration", SWEEP_CONFIGS, "gpio32,gpio8")) == ["gpio32", "gpio8"]
