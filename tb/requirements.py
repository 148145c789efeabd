"""Requirement tags for the cocotb conformance tests.

``@conformance_test("GPIO-7", "C-7")`` is ``cocotb.test()`` plus a record of the requirement IDs
(spec-notes checklist and device-contract sections) the test checks, which the regression summary
reports and the requirement coverage test reads.
"""

import cocotb

COVERAGE: dict[str, tuple[str, ...]] = {}  # "module.test" -> requirement IDs


def conformance_test(*ids: str, **cocotb_kwargs):
    if not ids:
        raise ValueError("a conformance test names the requirements it checks")

    def decorate(fn):
        COVERAGE[f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"] = ids
        return cocotb.test(**cocotb_kwargs)(fn)
    return decorate
