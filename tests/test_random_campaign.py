"""The random campaign (tb/random_campaign.py) as ``make test`` runs it: a short campaign on every
regression configuration that must pass and reach its coverage goals (all of them but the 16-bit
index wrap, which takes 65,536 requests: the soak's marathon seeds and ``make sim-long`` reach it),
and the pieces of the seed-range runner and of the coverage goals that need no simulator."""

import json
import os

import pytest
from conftest import require_simulator

from virtio_gpio.cli import main
from virtio_gpio.tb import configs
from virtio_gpio.tb import coverage as cov
from virtio_gpio.tb import soak

SHORT_SEEDS = "1-6"
SHORT_REQUESTS = 400


@pytest.mark.req("GPIO-1", "GPIO-7", "VQ-1", "VQ-2", "VQ-3", "VQ-8", "VQ-14", "GEN-3", "GEN-4", "C-5",
                 "C-6")
def test_short_campaign_passes_and_reaches_its_coverage_goals(tmp_path):
    settings = soak.CampaignSettings(configs=tuple(configs.REGRESSION), requests=SHORT_REQUESTS,
                                     jobs=os.cpu_count() or 1, out_dir=tmp_path)
    report = soak.run_campaign(settings, soak.parse_seeds(SHORT_SEEDS), out=lambda _: None)
    text = soak.format_report(report)
    print(text)
    assert report["runs"] == 6 * len(configs.REGRESSION)
    assert not report["failures"], text
    assert report["totals"]["requests"] >= 6 * len(configs.REGRESSION) * SHORT_REQUESTS
    assert report["coverage_reached"], text


def test_the_campaign_takes_the_same_course_on_both_simulators(tmp_path):
    """Seeds 1 and 2 of every configuration on Icarus tally what they tally on Verilator, cycles
    included: the campaign's choices follow the seed alone, never the simulator's scheduling."""
    require_simulator("icarus")
    tallies = {}
    for sim in ("verilator", "icarus"):
        settings = soak.CampaignSettings(configs=tuple(configs.REGRESSION), requests=200,
                                         jobs=os.cpu_count() or 1, out_dir=tmp_path / sim,
                                         simulator=sim)
        report = soak.run_campaign(settings, [1, 2], out=lambda _: None)
        assert not report["failures"], soak.format_report(report)
        tallies[sim] = {(r["config"], r["seed"]): r["tally"] for r in report["results"]}
    assert tallies["verilator"] == tallies["icarus"]


@pytest.mark.parametrize("text, seeds", [("3", [1, 2, 3]), ("1000-1002", [1000, 1001, 1002]),
                                         ("5,2-3", [2, 3, 5])])
def test_seed_ranges(text, seeds):
    assert soak.parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["0", "5-3", "a", "1-", ""])
def test_bad_seed_ranges_are_refused(text):
    with pytest.raises(soak.SeedRangeError, match="seeds must be"):
        soak.parse_seeds(text)


def test_campaign_command_refuses_bad_arguments_before_building(capsys):
    assert main(["campaign", "--config", "tiny"]) == 2
    assert "unknown configuration tiny" in capsys.readouterr().err
    assert main(["campaign", "--seeds", "9-1"]) == 2
    assert "seeds must be" in capsys.readouterr().err
    assert main(["campaign", "--requests", "0"]) == 2


@pytest.fixture(scope="module")
def blank_db(tmp_path_factory) -> dict:
    """The coverage database as ``export`` writes it, before this process sampled anything."""
    return cov.export(tmp_path_factory.mktemp("coverage") / "blank.yml")


def _db(blank: dict, bins: dict) -> dict:
    """``blank`` with the hits of ``bins`` (item -> {bin: hits})."""
    db = json.loads(json.dumps(blank))
    for item, hits in bins.items():
        db[f"{cov.ROOT}.{item}"]["bins:_hits"].update(hits)
    return db


def test_goals_skip_what_the_configuration_cannot_reach(blank_db):
    db = _db(blank_db, {"ring.wrap": {"2": 1, "4": 1, "8": 1, "16": 1}})
    rows = {r["item"]: r for r in cov.evaluate(db, configs.PLAIN)}
    assert rows["irq.outcome"]["required"] == 0  # plain offers no F_IRQ
    assert rows["ring.wrap"]["missed"] == ["index_65536"]  # queue_size_max 16: no 32..256 bins
    short = {r["item"]: r for r in cov.evaluate(db, configs.PLAIN, short=True)}
    assert short["ring.wrap"]["missed"] == []
    assert not cov.reached(cov.evaluate(blank_db, configs.SMALL))


def _shard(tmp_path, blank, name: str, seeds: list[int], hits: int, passed: bool = True):
    results = [{"seed": s, "config": "plain", "passed": passed, "tally": {"requests": 10},
                "coverage": _db(blank, {"ring.wrap": {"2": hits, "4": 1 - hits}}), "profile": {},
                "replay": f"replay {s}", "log": "log", "failure": None if passed else "boom"}
               for s in seeds]
    report = soak.combine(results, tmp_path / name)
    return soak.write_report(report, tmp_path / name)


def test_shards_merge_into_one_report(tmp_path, blank_db):
    a = _shard(tmp_path, blank_db, "a", [1, 2], hits=1)
    b = _shard(tmp_path, blank_db, "b", [3], hits=0, passed=False)
    merged = soak.merge_reports([a, b.parent], tmp_path / "merged")
    assert merged["seeds"] == [1, 2, 3]
    assert merged["totals"]["requests"] == 30
    assert [f["seed"] for f in merged["failures"]] == [3]
    wrap = {r["item"]: r for r in merged["goals"]["plain"]}["ring.wrap"]
    assert wrap["hit"] == 2  # "2" from shard a, "4" from shard b
    assert json.loads((tmp_path / "merged" / soak.REPORT_NAME).read_text())["runs"] == 3


def test_a_seed_in_two_shards_is_refused(tmp_path, blank_db):
    a = _shard(tmp_path, blank_db, "a", [1, 2], hits=1)
    b = _shard(tmp_path, blank_db, "b", [2], hits=1)
    with pytest.raises(ValueError, match="seed 2 of plain is in two shards"):
        soak.merge_reports([a, b], tmp_path / "merged")


def test_a_random_table_running_into_unmapped_memory_still_grants_its_readable_entries():
    """Soak seed 65: the entries of an indirect table before the point where it runs off mapped
    memory name buffers the device reads, so they are granted; the entries after it are not."""
    from types import SimpleNamespace

    from virtio_gpio.model.config import DeviceConfig
    from virtio_gpio.model.constants import DescFlags
    from virtio_gpio.model.driver.vring import DriverVirtqueue
    from virtio_gpio.model.memory import AccessKind, BusResponse, DmaAccess, GuestMemory
    from virtio_gpio.tb.random_campaign import Campaign

    mem = GuestMemory(32)
    vq = DriverVirtqueue(mem, 0, 8, indirect=True, event_idx=False)
    page = 0x5000_0000
    mem.map(page, GuestMemory.PAGE)
    table = page + GuestMemory.PAGE - 16  # one entry mapped, three more claimed beyond the page
    vq.write_desc(table, 0, 0x6000_0000, 8, 0, 0)
    vq.write_desc(vq.desc_addr, 0, table, 64, DescFlags.INDIRECT, 0)
    campaign = Campaign.__new__(Campaign)
    campaign.env, campaign.config = SimpleNamespace(memory=mem), DeviceConfig(ngpio=8)
    campaign._grant_named(vq, 0)

    def granted(addr, size):
        return mem.firewall.check(DmaAccess(AccessKind.READ, addr, size, BusResponse.OKAY))
    assert granted(table, 64)
    assert granted(0x6000_0000, 8)
    assert not granted(0x7000_0000, 8)
