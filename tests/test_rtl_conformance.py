"""The Verilator conformance regression as pytest tests: one per device configuration, each
building the Verilog (cached) and running every cocotb conformance module against the RTL with the
golden model in lock-step. A failure lists the failed cocotb tests, the seed and how to rerun."""

import pytest

from virtio_gpio.tb import configs, regression

SEED = 1


@pytest.mark.parametrize("name", list(configs.REGRESSION))
def test_rtl_matches_the_golden_model(name, tmp_path_factory):
    outcome = regression.run_config(name, configs.REGRESSION[name], seed=SEED, out=lambda _: None)
    summary = regression.format_summary([outcome])
    assert outcome.tests, f"no test ran\n{summary}"
    assert not outcome.failed, f"{summary}\n{regression.rerun_hint(outcome, SEED)}"
    print(summary)
