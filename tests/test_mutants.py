"""The mutant check (``tb/mutants.py``, ``tb/mutation.py``): every mutant of the device, sent
through ``conformance --dut`` as a user's core would be, fails the requirement it breaks, and the
unmutated device sent the same way passes the same tests.

It runs on Icarus here: the mutants' Verilog compiles there in a fraction of a second, where a
Verilator build takes about 25 s each. ``make mutants`` runs both simulators (docs/mutants.md)."""

import pytest
from conftest import require_simulator

from virtio_gpio.tb import mutants, mutation
from virtio_gpio.tb.conformance_report import CATALOGUE

SIMULATOR = "icarus"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    require_simulator(SIMULATOR)
    out = tmp_path_factory.mktemp("mutants")
    done = mutation.run_all(list(mutants.MUTANTS), [SIMULATOR], out_dir=out, jobs=2)
    return {(r["mutant"], r["config"]): r for r in done}


@pytest.mark.parametrize("name", list(mutants.MUTANTS))
def test_the_mutant_fails_the_requirement_it_breaks(results, name):
    m = mutants.MUTANTS[name]
    r = results[(name, m.config)]
    assert r["caught"], (f"{name} ({m.description}) was not caught: {m.requirement} did not fail; "
                         f"failed rows {r['failed_rows']}, failed tests {r['failed_tests']} "
                         f"(log: {r['log']})")


@pytest.mark.parametrize("config", sorted({m.config for m in mutants.MUTANTS.values()}))
def test_the_unmutated_device_passes_the_same_tests(results, config):
    r = results[(mutation.CONTROL, config)]
    assert r["passed"], f"the real device fails {r['failed_tests']} on {config} (log: {r['log']})"


def test_there_are_enough_mutants_each_against_its_own_requirement():
    requirements = [m.requirement for m in mutants.MUTANTS.values()]
    assert len(requirements) >= 8
    assert len(set(requirements)) == len(requirements), "two mutants break the same requirement"
    assert all(r in CATALOGUE for r in requirements)


def test_every_mutant_applies_and_its_tests_are_tagged_with_its_requirement():
    for m in mutants.MUTANTS.values():
        assert mutants.tests_by_module(m), m.name  # raises MutantError when a test is wrong


def test_a_mutant_whose_text_is_gone_is_refused(tmp_path):
    m = next(iter(mutants.MUTANTS.values()))
    stale = mutants.Mutant(m.name, m.requirement, m.description, m.file, m.old + "  # gone",
                           m.new, m.config, m.tests)
    with pytest.raises(mutants.MutantError, match="occurs 0 times"):
        mutants.patched_sources(stale, tmp_path)


def test_the_default_verilog_is_not_mutated(tmp_path):
    from virtio_gpio.hdl.device import generate_verilog
    from virtio_gpio.tb import configs
    m = next(iter(mutants.MUTANTS.values()))
    before = generate_verilog(configs.REGRESSION[m.config])
    mutants.mutant_verilog(m.name, configs.REGRESSION[m.config])
    assert generate_verilog(configs.REGRESSION[m.config]) == before
