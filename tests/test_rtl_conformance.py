"""The conformance regression as pytest tests: one per simulator, device configuration and seed,
each building the Verilog (cached: the seeds of one configuration share its build) and running
every cocotb conformance module against the RTL with the golden model in lock-step.

Seed 1 is the plain run; every other seed adds random AXI back-pressure, so three seeds per
configuration shake out ordering bugs while staying reproducible: the seed is in the test id and
in every failure message, with the command that reruns exactly that run. Icarus Verilog, the
second simulator (four-state, event-driven, about 3.5 times slower here), runs seed 1 of each
configuration, and must agree with Verilator cycle for cycle. The cases marked ``long`` run in
``make test-long``."""

import xml.etree.ElementTree as ET

import pytest
from conftest import require_simulator

from virtio_gpio.tb import configs, regression

SEEDS = (1, 2, 3)
CASES = ([("verilator", name, seed) for name in configs.REGRESSION for seed in SEEDS]
         + [("icarus", name, 1) for name in configs.REGRESSION])
# Kept out of `make test` for its 15 minutes, run by `make test-long` (and CI): a third seed of
# back-pressure, and the slowest configuration on the slower simulator.
LONG = {("verilator", name, 3) for name in configs.REGRESSION} | {("icarus", "wide", 1)}


@pytest.mark.parametrize("sim, name, seed", [
    pytest.param(*case, id="{}-{}-seed{}".format(*case),
                 marks=[pytest.mark.long] if case in LONG else []) for case in CASES])
def test_rtl_matches_the_golden_model(sim, name, seed):
    require_simulator(sim)
    rerun = f"make sim SIM={sim} ARGS='--config {name} --seed {seed}'"
    print(f"{name}, seed {seed} on {sim} (rerun: {rerun})")
    outcome = _run(sim, name, seed)
    summary = regression.format_summary([outcome])
    assert outcome.tests, f"no test ran ({name}, seed {seed}; rerun: {rerun})\n{summary}"
    assert not outcome.failed, (f"{name}, seed {seed}: {len(outcome.failed)} cocotb tests failed\n"
                                f"{summary}\n{regression.rerun_hint(outcome)}")
    print(summary)
    if sim != "verilator":
        # The testbench and the device are deterministic: a race between the testbench and the
        # clock, or an X where Verilator has 0, would show as a different duration.
        reference = _run("verilator", name, seed)
        ours, theirs = _durations(outcome.junit_path), _durations(reference.junit_path)
        differ = {t: (theirs[t], ours.get(t)) for t in theirs if theirs[t] != ours.get(t)}
        assert not differ, f"{name}: test durations in ns (Verilator, {sim}) differ: {differ}"


_outcomes: dict[tuple[str, str, int], regression.ConfigOutcome] = {}


def _run(sim: str, name: str, seed: int) -> regression.ConfigOutcome:
    """One run per simulator, configuration and seed in a session: the Icarus cases compare with
    the Verilator run of the same seed, which has usually run just before."""
    key = (sim, name, seed)
    if key not in _outcomes:
        _outcomes[key] = regression.run_config(name, configs.REGRESSION[name], seed=seed,
                                               out=lambda _: None, simulator_name=sim)
    return _outcomes[key]


def _durations(junit) -> dict[str, str]:
    return {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
            .get("sim_time_duration") for case in ET.parse(junit).getroot().iter("testcase")}


def test_a_named_test_that_does_not_apply_is_skipped_without_simulating(tmp_path):
    # plain offers no F_IRQ; cocotb alone would run the named eventq test and fail it.
    outcome = regression.run_config("plain", configs.PLAIN, build_dir=tmp_path, out=lambda _: None,
                                    testcase="edge_types_latch_while_masked_and_deliver_once")
    assert [(t.name, t.status) for t in outcome.tests] == [
        ("events.edge_types_latch_while_masked_and_deliver_once", "skip")]
    assert not any(tmp_path.iterdir()), "built although nothing was to run"


def test_an_unknown_test_name_is_refused():
    with pytest.raises(regression.UnknownTest, match="no_such_test"):
        regression.run_config("plain", configs.PLAIN, testcase="no_such_test", out=lambda _: None)


def _cycles(junit) -> dict[str, float]:
    return {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
            .get("sim_time_duration") for case in ET.parse(junit).getroot().iter("testcase")}

