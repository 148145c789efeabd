"""The Verilator conformance regression as pytest tests: one per device configuration and seed,
each building the Verilog (cached: the seeds of one configuration share its build) and running
every cocotb conformance module against the RTL with the golden model in lock-step.

Seed 1 is the plain run; every other seed adds random AXI back-pressure, so three seeds per
configuration shake out ordering bugs while staying reproducible: the seed is in the test id and
in every failure message, with the command that reruns exactly that run."""

import pytest

from virtio_gpio.tb import configs, regression

SEEDS = (1, 2, 3)
CASES = [(name, seed) for name in configs.REGRESSION for seed in SEEDS]


@pytest.mark.parametrize("name, seed", CASES, ids=[f"{n}-seed{s}" for n, s in CASES])
def test_rtl_matches_the_golden_model(name, seed):
    rerun = f"make sim ARGS='--config {name} --seed {seed}'"
    print(f"{name}, seed {seed} (rerun: {rerun})")
    outcome = regression.run_config(name, configs.REGRESSION[name], seed=seed, out=lambda _: None)
    summary = regression.format_summary([outcome])
    assert outcome.tests, f"no test ran ({name}, seed {seed}; rerun: {rerun})\n{summary}"
    assert not outcome.failed, (f"{name}, seed {seed}: {len(outcome.failed)} cocotb tests failed\n"
                                f"{summary}\n{regression.rerun_hint(outcome)}")
    print(summary)


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
