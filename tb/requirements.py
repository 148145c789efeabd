"""Requirement tags for the cocotb conformance tests.

``@conformance_test("GPIO-16", "C-8", needs=("offer_irq",))`` is ``cocotb.test()`` plus a record,
in ``COVERAGE``, of the requirement IDs the test checks (rows of ``model/requirements.py``, listed
in docs/requirements.md) and of the configuration parameters it needs. The regression summary and
the conformance report print the IDs; the coverage test reads the record to know which test covers
which row in which configuration.

Why the checks happen here, at import: an ID with a typo would otherwise tag nothing and leave a
requirement silently uncovered, and a misspelt ``needs`` name would silently skip a test. Both
raise before the simulator runs a single test.

``needs`` names ``DeviceConfig`` parameters (``offer_irq``, ``offer_indirect_desc``...): the test is
skipped when the configuration under test does not offer one of them. The older
``skip=<bool computed at import>`` still works, but the coverage test can only learn what it skips
by importing the module under each configuration; ``needs`` says it directly.
"""

from dataclasses import dataclass

import cocotb

from virtio_gpio.model.constants import Feature
from virtio_gpio.model.requirements import UnknownRequirement, requirement

from . import configs

# The DeviceConfig parameters a test may need, and the feature each one offers.
FEATURE_PARAMETERS = {
    "offer_irq": Feature.GPIO_F_IRQ,
    "offer_indirect_desc": Feature.RING_INDIRECT_DESC,
    "offer_event_idx": Feature.RING_EVENT_IDX,
    "offer_access_platform": Feature.ACCESS_PLATFORM,
    "offer_order_platform": Feature.ORDER_PLATFORM,
}


@dataclass(frozen=True)
class Tagged:
    ids: tuple[str, ...]          # requirement IDs the test checks
    needs: tuple[str, ...] = ()   # DeviceConfig parameters it needs (FEATURE_PARAMETERS keys)
    skip: bool = False            # whether cocotb skips it in the configuration it was imported under


COVERAGE: dict[str, Tagged] = {}  # "module.test" -> its tags


def _check_needs(needs, where: str) -> tuple[str, ...]:
    if isinstance(needs, str) or not all(isinstance(n, str) for n in needs):
        raise TypeError(f"{where}: needs takes a tuple of parameter names, e.g. "
                        f"needs=(\"offer_irq\",), not {needs!r}")
    unknown = [n for n in needs if n not in FEATURE_PARAMETERS]
    if unknown:
        raise ValueError(f"{where}: unknown needs {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(FEATURE_PARAMETERS)}")
    return tuple(needs)


def conformance_test(*ids: str, needs: tuple[str, ...] = (), **cocotb_kwargs):
    """``cocotb.test(**cocotb_kwargs)`` that records ``ids`` and ``needs``; skipped when the
    configuration under test lacks a parameter in ``needs`` (or when ``skip`` is true)."""
    if not ids:
        raise ValueError("a conformance test names the requirements it checks")

    def decorate(fn):
        name = f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"
        for req_id in ids:
            try:
                requirement(req_id)
            except UnknownRequirement as e:
                raise UnknownRequirement(f"@conformance_test of {name}: {e}") from None
        wanted = _check_needs(needs, name)
        skip = bool(cocotb_kwargs.pop("skip", False)) or not all(configs.offers(n) for n in wanted)
        COVERAGE[name] = Tagged(tuple(ids), wanted, skip)
        return cocotb.test(skip=skip, **cocotb_kwargs)(fn)
    return decorate
