"""Every requirement of the catalogue (``model/requirements.py``) is checked by a test.

Model side: every row that applies to the default ``DeviceConfig`` (DRV rows aside: they bind the
driver) is named by a ``@pytest.mark.req(...)`` of some ``tests/test_*.py``. RTL side: for each
regression configuration, every MUST row that applies to it is named by a cocotb conformance test
that is not skipped in that configuration. An ID that is not in the catalogue fails either way, so
a typo cannot tag nothing. ``docs/requirements.md`` is the catalogue's generated text.
"""

import re
from pathlib import Path

import pytest

from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.requirements import (
    CATALOGUE, REGENERATE, Level, UnknownRequirement, applies, render_markdown,
)
from virtio_gpio.tb import configs, regression
from virtio_gpio.tb.requirements import COVERAGE, Tagged, conformance_test

TESTS = Path(__file__).parent
DOCS = TESTS.parent / "docs" / "requirements.md"

# Rows the golden model cannot check, each with its reason.
NOT_FOR_THE_MODEL = {
    "C-9": "the ports are the gateware's; tests/test_hdl_elaboration.py checks them against "
           "docs/ports.md and every cocotb test drives them",
}

def _pairs(pairs) -> str:
    return ", ".join(f"{c}:{i}" for c, i in sorted(pairs, key=lambda p: (p[0], list(CATALOGUE).index(p[1]))))


# -- model side ---------------------------------------------------------------------------------

# A req marker where pytest sees one: a decorator, a pytest.param mark, or a module's pytestmark.
MARKER = re.compile(r"(?:^[ \t]*@|marks=\[?|pytestmark\s*=\s*\[?)pytest\.mark\.req\(([^)]*)\)", re.M)


def model_tags() -> dict[str, list[str]]:
    """ID -> "file:line" of every ``mark.req(...)`` naming it in tests/test_*.py."""
    where: dict[str, list[str]] = {}
    for path in sorted(TESTS.glob("test_*.py")):
        text = path.read_text()
        for match in MARKER.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            for req_id in re.findall(r"""["']([^"']+)["']""", match.group(1)):
                where.setdefault(req_id, []).append(f"{path.name}:{line}")
    return where


def test_every_model_tag_is_a_catalogue_id():
    unknown = {i: w for i, w in model_tags().items() if i not in CATALOGUE}
    assert not unknown, "unknown requirement IDs in @pytest.mark.req: " + "; ".join(
        f"{i} at {', '.join(w)}" for i, w in sorted(unknown.items()))


MODEL_ROWS = [r.id for r in CATALOGUE.values()
              if r.group != "DRV" and applies(r, DeviceConfig()) is None]


@pytest.mark.parametrize("req_id", MODEL_ROWS)
def test_requirement_has_a_model_test(req_id):
    if req_id in NOT_FOR_THE_MODEL:
        return
    assert req_id in model_tags(), f"no test is tagged {req_id} (@pytest.mark.req(\"{req_id}\"))"


def test_rows_left_out_have_a_reason():
    for req_id in NOT_FOR_THE_MODEL:
        assert req_id in CATALOGUE
    for r in CATALOGUE.values():
        if r.id not in MODEL_ROWS and r.group != "DRV":
            assert applies(r, DeviceConfig()), f"{r.id} is left out without a reason"


# -- the catalogue and its generated document ---------------------------------------------------

def test_docs_requirements_md_is_generated_from_the_catalogue():
    assert DOCS.is_file() and DOCS.read_text() == render_markdown(), \
        f"docs/requirements.md is not the catalogue's text; regenerate it with: {REGENERATE}"


def test_unknown_ids_raise_a_clear_error():
    with pytest.raises(UnknownRequirement, match=r"'VQ-77'.*catalogue has GPIO-1\.\.23"):
        conformance_test("VQ-1", "VQ-77")(_dummy)
    with pytest.raises(ValueError, match="unknown needs 'offer_irg'"):
        conformance_test("VQ-1", needs=("offer_irg",))(_dummy)
    with pytest.raises(TypeError, match="needs takes a tuple"):
        conformance_test("VQ-1", needs="offer_irq")(_dummy)


async def _dummy(dut):
    pass


@pytest.mark.parametrize("name, skipped", [("small", False), ("plain", True)])
def test_needs_skips_a_test_where_the_feature_is_not_offered_and_is_recorded(name, skipped,
                                                                             monkeypatch):
    monkeypatch.setenv(configs.CONFIG_ENV, configs.to_json(configs.REGRESSION[name]))
    try:
        test = conformance_test("GPIO-15", "C-8", needs=("offer_irq",))(_dummy)
        assert test.skip is skipped
        assert COVERAGE[f"{__name__.rsplit('.', 1)[-1]}._dummy"] == \
            Tagged(("GPIO-15", "C-8"), ("offer_irq",), skipped)
    finally:
        COVERAGE.pop(f"{__name__.rsplit('.', 1)[-1]}._dummy", None)


# -- RTL side -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rtl_tags():
    """Per regression configuration, the tags of the conformance tests as imported for its run."""
    return {name: regression.requirement_map_for(config)
            for name, config in configs.REGRESSION.items()}


def rtl_gaps(rtl_tags) -> set[tuple[str, str]]:
    gaps = set()
    for name, config in configs.REGRESSION.items():
        running = {i for t in rtl_tags[name].values() if not t.skip for i in t.ids}
        gaps |= {(name, r.id) for r in CATALOGUE.values()
                 if r.level is Level.MUST and applies(r, config) is None and r.id not in running}
    return gaps


def test_every_rtl_tag_is_a_catalogue_id(rtl_tags):
    # conformance_test already refuses an unknown ID at import; this repeats it on the record.
    for tags in rtl_tags.values():
        for test, tagged in tags.items():
            unknown = [i for i in tagged.ids if i not in CATALOGUE]
            assert not unknown, f"{test} is tagged with unknown IDs {unknown}"


def test_every_must_row_has_an_rtl_test_in_every_configuration(rtl_tags):
    gaps = rtl_gaps(rtl_tags)
    assert not gaps, f"MUST rows without a cocotb test that runs in that configuration: {_pairs(gaps)}"
