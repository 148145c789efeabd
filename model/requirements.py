"""The requirement catalogue: every requirement ID the project cites, in one machine-readable table.

Tests import it (the coverage test checks that every row is tagged by a test, the cocotb decorator
rejects IDs it does not know, the conformance report gives every row a verdict), and
``docs/requirements.md`` is generated from it::

    .venv/bin/python -m virtio_gpio.model.requirements > docs/requirements.md

Groups: GPIO-n (the GPIO device), MMIO-n (the virtio-mmio transport), VQ-n (split virtqueues),
GEN-n (device status, reset, features, configuration space) come from the device-side normative
text of the OASIS virtio specification, virtio-v1.4; DRV-n are driver-side rules the device has to
survive; C-n is section n of the device contract (``docs/contract.md``), which decides where the
specification leaves a choice.

Levels, and how they were assigned:

* MUST: a MUST or MUST NOT of the specification; also its lower-case "must" and its plain
  descriptive statements about the device (the device has to behave so for a driver to work); also
  a mixed SHOULD/MUST statement where this device always does the stronger thing (GEN-4, GEN-6) or
  where the row is never implemented (GEN-14); and every section of the device contract.
* SHOULD: a SHOULD or SHOULD NOT. A failed SHOULD row is a warning in the conformance report.
* MAY: a permission (a test of it must accept either behaviour), and every DRV row: a rule that
  binds the driver, which the device tolerates or detects.

``features`` names the ``Feature`` members a row depends on: the row applies only to a
configuration that offers all of them (rows about the case *without* a feature depend on nothing,
since a driver may always decline an offered feature). ``not_applicable`` says why a row never
applies to this device (a feature it never offers, or a decision left to the platform).
"""

import difflib
import re
from dataclasses import dataclass
from enum import Enum

from .constants import Feature


class Level(Enum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


class UnknownRequirement(ValueError):
    """An ID that is not in the catalogue (a typo would otherwise tag nothing)."""


@dataclass(frozen=True)
class Requirement:
    id: str
    level: Level
    text: str
    source: str
    features: tuple[str, ...] = ()
    not_applicable: str | None = None

    def __post_init__(self):
        for name in self.features:
            if name not in Feature.__members__:
                raise ValueError(f"{self.id}: {name!r} is not a Feature name")

    @property
    def group(self) -> str:
        return self.id.rsplit("-", 1)[0]


SPEC = "virtio-v1.4"
_GPIO_REQ = f"{SPEC} §5.17.6 Device Operation: requestq"
_GPIO_EVT = f"{SPEC} §5.17.7 Device Operation: eventq"
_SET_IRQ = f"{SPEC} §5.17.6.6 requestq Operation: Set IRQ Type"
_MMIO = f"{SPEC} §4.2.2 MMIO Device Register Layout"
_MMIO_IRQ = f"{SPEC} §4.2.3.4 Notifications From The Device"
_MMIO_INIT = f"{SPEC} §4.2.3.1 Device Initialization"
_MMIO_VQ = f"{SPEC} §4.2.3.2 Virtqueue Configuration"
_FRAMING = f"{SPEC} §2.7.4 Message Framing"
_DESC = f"{SPEC} §2.7.5 The Virtqueue Descriptor Table"
_INDIRECT = f"{SPEC} §2.7.5.3 Indirect Descriptors"
_AVAIL = f"{SPEC} §2.7.6 The Virtqueue Available Ring"
_USED_SUPP = f"{SPEC} §2.7.7 Used Buffer Notification Suppression"
_USED = f"{SPEC} §2.7.8 The Virtqueue Used Ring"
_AVAIL_SUPP = f"{SPEC} §2.7.10 Available Buffer Notification Suppression"
_STATUS = f"{SPEC} §2.1 Device Status Field"
_FEATURES = f"{SPEC} §2.2 Feature Bits"
_RESET = f"{SPEC} §2.4 Device Reset"
_CONFIG = f"{SPEC} §2.5 Device Configuration Space"
_RESERVED = f"{SPEC} §6 Reserved Feature Bits"

IRQ = ("GPIO_F_IRQ",)
NEVER_OFFERED = "{} is never offered by this device (device contract §2)"
DRV_PREFIX = "Driver rule the device tolerates: "

M, S, P = Level.MUST, Level.SHOULD, Level.MAY


def _r(id_, level, text, source, features=(), not_applicable=None) -> Requirement:
    return Requirement(id_, level, text, source, tuple(features), not_applicable)


def _drv(id_, rule, handling, source) -> Requirement:
    return Requirement(id_, P, f"{DRV_PREFIX}{rule} Device: {handling}", source)


_ROWS = [
    # -- GPIO device ----------------------------------------------------------------------------
    _r("GPIO-1", M, "Every field of a response is written before the response goes back: the status "
       "byte and the value byte, or all N name bytes of a GET_LINE_NAMES reply.", _GPIO_REQ),
    _r("GPIO-2", M, "The status byte is OK (0) when the request succeeded and ERR (1) when it failed.",
       _GPIO_REQ),
    _r("GPIO-3", M, "Every configuration field is set (ngpio, gpio_names_size); the two padding bytes "
       "read 0.", f"{SPEC} §5.17.4 Device configuration layout"),
    _r("GPIO-4", M, "gpio_names_size is 0 when the device has no line names.", _GPIO_REQ),
    _r("GPIO-5", M, "With line names, gpio_names_size is the exact size of the names block, and every "
       "name is NUL-terminated and unique among the named lines.", _GPIO_REQ),
    _r("GPIO-6", M, "The names block has one entry per line in increasing line order; an unnamed line "
       "is a single 0 byte; names are 7-bit ASCII.",
       f"{SPEC} §5.17.6.1 requestq Operation: Get Line Names"),
    _r("GPIO-7", M, "Messages for one line are processed one after the other and answered in the order "
       "they were made available.", _GPIO_REQ),
    _r("GPIO-8", P, "Messages for different lines may be processed and answered out of order, so a "
       "checker matches replies by chain head, not by position.", _GPIO_REQ),
    _r("GPIO-9", M, "SET_DIRECTION NONE discards every piece of state of the line.", _GPIO_REQ),
    _r("GPIO-10", M, "A SET_VALUE sent while the line is not an output is kept and driven once the "
       "line becomes an output.", f"{SPEC} §5.17.6.5 requestq Operation: Set Value"),
    _r("GPIO-11", M, "Reply values use each message's encoding (direction 0 none, 1 out, 2 in; level "
       "0 or 1); the replies to SET_* messages carry value 0.",
       f"{SPEC} §5.17.6.2-§5.17.6.6 requestq Operation"),
    _r("GPIO-12", M, "SET_IRQ_TYPE is valid only when VIRTIO_GPIO_F_IRQ was negotiated; without it the "
       "request is refused (ERR) and arms nothing.", _SET_IRQ),
    _r("GPIO-13", M, "The eventq exists only when VIRTIO_GPIO_F_IRQ was negotiated.",
       f"{SPEC} §5.17.2 Virtqueues"),
    _r("GPIO-14", M, "After initialisation and reset every interrupt is masked (no eventq buffer held) "
       "and disabled (type NONE).", _SET_IRQ, IRQ),
    _r("GPIO-15", M, "No interrupt event is delivered for a line unless its interrupt is both enabled "
       "(type other than NONE) and unmasked (an eventq buffer held).", _GPIO_EVT, IRQ),
    _r("GPIO-16", M, "An edge that occurs while the interrupt is enabled but masked is latched and "
       "delivered once the line is unmasked.", _GPIO_REQ, IRQ),
    _r("GPIO-17", M, "A level interrupt is not latched while masked; on unmask it is delivered only if "
       "the level is still active.", _GPIO_REQ, IRQ),
    _r("GPIO-18", M, "Delivery writes status VALID and returns the pair (used.len 1); the line stays "
       "masked until the driver queues a buffer again.",
       f"{SPEC} §5.17.7.1 eventq Operation: Message Flow", IRQ),
    _r("GPIO-19", M, "eventq buffers are matched to lines by the gpio field of their request.",
       f"{SPEC} §5.17.7.1 eventq Operation: Message Flow", IRQ),
    _r("GPIO-20", M, "SET_IRQ_TYPE NONE returns the line's held eventq pair with status INVALID.",
       _GPIO_EVT, IRQ),
    _r("GPIO-21", M, "Disabling an interrupt (type NONE) discards an edge latched on that line.",
       _GPIO_REQ, IRQ),
    _r("GPIO-22", S, "A buffer queued for a line whose interrupt is not enabled goes back at once with "
       "status INVALID.", _SET_IRQ, IRQ),
    _r("GPIO-23", S, "Edge types latch from the SET_IRQ_TYPE on; level types are reported once the "
       "level is sensed while the line is unmasked.", _SET_IRQ, IRQ),
    # -- virtio-mmio transport -------------------------------------------------------------------
    _r("MMIO-1", M, "MagicValue reads 0x74726976 (\"virt\").", _MMIO),
    _r("MMIO-2", M, "Version reads 2.", _MMIO),
    _r("MMIO-3", M, "DeviceID reads 41, the GPIO device (0 would mean no device).",
       f"{_MMIO}; §5.17.1 Device ID"),
    _r("MMIO-4", M, "An InterruptStatus bit stays set from its event until the driver acknowledges it "
       "through InterruptACK; bits of events that did not happen read 0.", _MMIO),
    _r("MMIO-5", M, "A reset clears InterruptStatus and the QueueReady of every queue.", _MMIO),
    _r("MMIO-6", M, "ConfigGeneration changes whenever a driver could read an inconsistent "
       "configuration (this configuration never changes, so it reads one constant).", _MMIO),
    _r("MMIO-7", M, "No access to a virtqueue while its QueueReady is 0.", _MMIO),
    _r("MMIO-8", M, "With RING_RESET: QueueReset reads 0 after a reset and once QueueReady is set; "
       "writing 1 resets the queue, after which QueueReset and QueueReady read 0.", _MMIO,
       ("RING_RESET",), NEVER_OFFERED.format("RING_RESET")),
    _r("MMIO-9", M, "QueueSizeMax reads 0 for a queue that does not exist.", _MMIO),
    _r("MMIO-10", M, "QueueReady reads back the last value written.", _MMIO),
    _r("MMIO-11", M, "DeviceFeatures shows the 32 feature bits chosen by DeviceFeaturesSel.", _MMIO),
    _r("MMIO-12", M, "Status reads the current flags; writing 0 resets the device.", _MMIO),
    _r("MMIO-13", M, "The interrupt line is asserted exactly while InterruptStatus is not 0.",
       _MMIO_IRQ),
    _r("MMIO-14", M, "SHMLen and SHMBase of a shared-memory region that does not exist read all ones "
       "(this device has none).", _MMIO),
    _r("MMIO-15", M, "The configuration space is little-endian and readable with 8-, 16- and 32-bit "
       "accesses.", f"{_MMIO}; §2.5 Device Configuration Space"),
    # -- split virtqueues ------------------------------------------------------------------------
    _r("VQ-1", M, "No assumption about how a message is split into descriptors (a limit on the chain "
       "length is allowed): a request over several readable descriptors and a reply over several "
       "writable ones behave like one of each.", _FRAMING),
    _r("VQ-2", M, "The device never writes a device-readable buffer or the descriptor table.", _DESC),
    _r("VQ-3", S, "The device does not read device-writable buffers.", _DESC),
    _r("VQ-4", M, "Indirect descriptors: the WRITE flag of the descriptor that points at a table is "
       "ignored, and direct descriptors followed by one indirect one are accepted.", _INDIRECT,
       ("RING_INDIRECT_DESC",)),
    _r("VQ-5", M, "Without EVENT_IDX: used_event is ignored, and after a used element the device "
       "notifies when avail.flags is 0.", _USED_SUPP),
    _r("VQ-6", S, "Without EVENT_IDX: the device does not notify when avail.flags is 1 "
       "(NO_INTERRUPT).", _USED_SUPP),
    _r("VQ-7", M, "With EVENT_IDX: the low bit of avail.flags is ignored, and the device notifies "
       "when the used index passes used_event.", _USED_SUPP, ("RING_EVENT_IDX",)),
    _r("VQ-8", S, "With EVENT_IDX: otherwise the device does not notify.", _USED_SUPP,
       ("RING_EVENT_IDX",)),
    _r("VQ-9", M, "used.len is written before used.idx is updated.", _USED),
    _r("VQ-10", M, "At least used.len bytes, from the first device-writable buffer on, are written "
       "before used.idx is updated (more may be).", _USED),
    _r("VQ-11", M, "Without EVENT_IDX, used.flags is only ever 0 or 1.", _AVAIL_SUPP),
    _r("VQ-12", M, "With EVENT_IDX, used.flags is 0, and avail_event, once used, is kept current.",
       _AVAIL_SUPP, ("RING_EVENT_IDX",)),
    _r("VQ-13", M, "Spurious driver notifications (nothing new in the ring) have no effect.",
       _AVAIL_SUPP),
    _r("VQ-14", M, "used.id is the head index of the chain; the ring indices run freely modulo 2^16.",
       _USED),
    _r("VQ-15", M, "The used element and used.idx are visible in memory before the interrupt rises.",
       f"{SPEC} §2.7.14 Receiving Used Buffers From The Device; §4.2.3.4"),
    # -- status, reset, features, configuration ---------------------------------------------------
    _r("GEN-1", M, "No buffer is consumed and no used-buffer notification is sent before DRIVER_OK.",
       _STATUS),
    _r("GEN-2", M, "Status reads 0 after a reset, already on the next access (Linux does not poll).",
       f"{_STATUS}; §2.4 Device Reset"),
    _r("GEN-3", M, "After a reset the device sends no notification and touches no queue until the "
       "driver sets it up again.", _RESET),
    _r("GEN-4", M, "An unrecoverable error sets DEVICE_NEEDS_RESET and, with DRIVER_OK set, raises a "
       "configuration-change notification.", _STATUS),
    _r("GEN-5", M, "No feature is offered that depends on a feature not offered.", _FEATURES),
    _r("GEN-6", M, "Any valid subset of the offered features is accepted; anything else is refused by "
       "leaving FEATURES_OK clear.", _FEATURES),
    _r("GEN-7", M, "No reserved, unimplemented or transport-inapplicable feature bit is offered "
       "(SR_IOV, ADMIN_VQ and the like).", _RESERVED),
    _r("GEN-8", S, "A feature set accepted once is accepted again after a reset.", _FEATURES),
    _r("GEN-9", M, "The configuration space is readable before FEATURES_OK.", _CONFIG),
    _r("GEN-10", M, "VERSION_1 is offered.", _RESERVED),
    _r("GEN-11", S, "ACCESS_PLATFORM is offered when the platform translates or limits the device's "
       "DMA.", _RESERVED, (), "a platform decision: offer_access_platform is a parameter of the "
       "configuration (on by default), not a behaviour of the core"),
    _r("GEN-12", M, "With IN_ORDER, buffers are used in the order they were made available.",
       f"{SPEC} §2.7.9 In-order use of descriptors", ("IN_ORDER",),
       NEVER_OFFERED.format("IN_ORDER")),
    _r("GEN-13", M, "With RING_RESET, a queue reset stops that queue and clears its ring state; "
       "re-enabling it honours the new configuration.", f"{SPEC} §2.6.1 Virtqueue Reset",
       ("RING_RESET",), NEVER_OFFERED.format("RING_RESET")),
    _r("GEN-14", M, "With SUSPEND, the suspend rules hold (no notification and no queue access while "
       "suspended).", _STATUS, ("SUSPEND",), NEVER_OFFERED.format("SUSPEND")),
    # -- driver rules the device has to survive ----------------------------------------------------
    _drv("DRV-1", "32-bit aligned accesses to the control registers, natural-width accesses to the "
         "configuration space.", "8-, 16- and 32-bit reads anywhere in 0x100-0x107 (older Linux reads "
         "byte by byte); other widths below 0x100 are ignored or read 0.", _MMIO),
    _drv("DRV-2", "no writes to read-only registers, no reads of write-only ones, nothing outside "
         "the map.", "such writes are ignored, such reads return 0.", _MMIO),
    _drv("DRV-3", "MagicValue, Version and DeviceID are read first; DeviceID 0 stops the probe.",
         "nothing to do.", _MMIO_INIT),
    _drv("DRV-4", "a selector is written before the feature register it selects.",
         "the selectors are 0 after reset.", _MMIO),
    _drv("DRV-5", "QueueSize is a power of two no larger than QueueSizeMax.",
         "QueueReady = 1 with any other size is a device error (contract §4).", _MMIO_VQ),
    _drv("DRV-6", "no queue configuration writes while QueueReady is not 0; a queue is stopped by "
         "writing 0 and reading it back.", "such writes are ignored; QueueReady reads 0 at once.",
         _MMIO_VQ),
    _drv("DRV-7", "InterruptStatus is read after an interrupt and the handled bits are acknowledged; "
         "undefined bits are never acknowledged.", "undefined InterruptACK bits are ignored.",
         _MMIO_IRQ),
    _drv("DRV-8", "status bits are never cleared; after FAILED the driver resets the device.",
         "with FAILED set the rings are left alone.", _STATUS),
    _drv("DRV-9", "the initialisation order is followed; no notification before DRIVER_OK.",
         "rings are not touched before DRIVER_OK (GEN-1).", f"{SPEC} §3.1 Device Initialization"),
    _drv("DRV-10", "only offered features are accepted, and none after FEATURES_OK.",
         "FEATURES_OK is refused; feature writes after it are ignored.", _FEATURES),
    _drv("DRV-11", "device-writable descriptors come after the device-readable ones.",
         "a readable descriptor after a writable one is a device error.", _FRAMING),
    _drv("DRV-12", "no loops, at most 2^32 bytes and no more descriptors than the queue size per "
         "chain; INDIRECT only when negotiated, never nested, never with NEXT, table length a "
         "multiple of 16.", "each is a device error (contract §5).", f"{_DESC}; §2.7.5.3"),
    _drv("DRV-13", "avail.idx never goes backwards and runs at most the queue size ahead of the "
         "device.", "anything else is a device error.", _AVAIL),
    _drv("DRV-14", "avail.flags is 0 or 1 (0 with EVENT_IDX); used.flags starts at 0.",
         "other avail.flags bits are ignored.", f"{_USED_SUPP}; §2.7.10"),
    _drv("DRV-15", "ring parts are aligned to 16, 2 and 4 bytes.",
         "a misaligned ring is a device error at QueueReady = 1.", f"{SPEC} §2.7 Split Virtqueues"),
    _drv("DRV-16", "buffers are not changed while the device owns them.",
         "the chain is parsed once, so later changes to its descriptors do not move reply bytes "
         "(contract §5).", f"{SPEC} §2.7.13 Supplying Buffers to The Device"),
    _drv("DRV-17", "one request and one response buffer per message (request device-readable, "
         "response device-writable); no IRQ messages without F_IRQ or for output lines; one eventq "
         "pair per line; a names buffer of N bytes.", "ERR replies and INVALID returns; the device "
         "never hangs.", f"{_GPIO_REQ}; §5.17.7"),
    # -- the device contract -----------------------------------------------------------------------
    _r("C-1", M, "Identity registers and elaboration parameters come from one shared configuration "
       "object.", "device contract §1 Identity and parameters"),
    _r("C-2", M, "The offered feature set and the negotiation rules.", "device contract §2 Features"),
    _r("C-3", M, "Register widths, read-as-zero and write-ignored offsets, config-space access, "
       "immediate side effects, the irq output.", "device contract §3 Registers"),
    _r("C-4", M, "Status and reset, queue set-up, queue existence, notifies.",
       "device contract §4 Status, reset, queues"),
    _r("C-5", M, "Chain parsing, chain limits, what the device writes and in which order, used.len.",
       "device contract §5 Virtqueues"),
    _r("C-6", M, "Device errors end in DEVICE_NEEDS_RESET; register writes during DMA.",
       "device contract §6 Device error"),
    _r("C-7", M, "The requestq messages, their error cases and their order.",
       "device contract §7 GPIO requests"),
    _r("C-8", M, "eventq buffers, edge latching, level sampling, delivery.",
       "device contract §8 Interrupt events", IRQ),
    _r("C-9", M, "The ports an implementation exposes to run the conformance suite.",
       "device contract §9 Ports"),
]

GROUPS = {
    "GPIO": "GPIO device",
    "MMIO": "virtio-mmio transport",
    "VQ": "Split virtqueues",
    "GEN": "Device status, reset, features and configuration space",
    "DRV": "Driver rules the device tolerates",
    "C": "Device contract",
}

_ID = re.compile(r"^(GPIO|MMIO|VQ|GEN|DRV|C)-[1-9]\d*$")


def _order(req: Requirement) -> tuple[int, int]:
    group, number = req.id.rsplit("-", 1)
    return list(GROUPS).index(group), int(number)


CATALOGUE: dict[str, Requirement] = {r.id: r for r in sorted(_ROWS, key=_order)}
assert len(CATALOGUE) == len(_ROWS), "duplicate requirement ID"
assert all(_ID.match(i) for i in CATALOGUE), "malformed requirement ID"


def _ranges() -> str:
    parts = []
    for group in GROUPS:
        numbers = [int(i.rsplit("-", 1)[1]) for i in CATALOGUE if i.rsplit("-", 1)[0] == group]
        parts.append(f"{group}-{min(numbers)}..{max(numbers)}")
    return ", ".join(parts)


def requirement(req_id: str) -> Requirement:
    """The row of ``req_id``; an unknown ID raises ``UnknownRequirement`` naming the nearest IDs."""
    try:
        return CATALOGUE[req_id]
    except (KeyError, TypeError):
        near = difflib.get_close_matches(str(req_id), CATALOGUE, n=3)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise UnknownRequirement(f"unknown requirement ID {req_id!r}{hint}; the catalogue has "
                                 f"{_ranges()} (docs/requirements.md)") from None


def applies(req: Requirement, config) -> str | None:
    """None when ``req`` applies to ``config`` (a ``DeviceConfig``), else the reason it does not."""
    if req.not_applicable:
        return req.not_applicable
    missing = [f for f in req.features if not config.offered_features & Feature[f].mask]
    if missing:
        return f"needs {' and '.join(missing)}, which this configuration does not offer"
    return None


# -- docs/requirements.md --------------------------------------------------------------------------

REGENERATE = ".venv/bin/python -m virtio_gpio.model.requirements > docs/requirements.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown() -> str:
    """The text of ``docs/requirements.md`` (a test checks the committed file equals it)."""
    lines = [
        "# Requirement catalogue",
        "",
        f"<!-- Generated from model/requirements.py; do not edit. Regenerate: {REGENERATE} -->",
        "",
        "Every requirement ID the project cites, with the section of the OASIS virtio specification "
        f"({SPEC}) or of the [device contract](contract.md) it comes from. Tests name the IDs they "
        "check: `@pytest.mark.req(\"GPIO-16\", \"C-8\")` for the model tests, "
        "`@conformance_test(\"GPIO-16\", \"C-8\", needs=(\"offer_irq\",))` for the cocotb tests "
        "against the RTL. `tests/test_requirement_coverage.py` checks that every row that applies "
        "has a model test, and every MUST row a cocotb test in every regression configuration; "
        "`make conformance` reports a verdict for every row ([conformance/](conformance/)).",
        "",
        "Levels: **MUST** stands for the specification's MUST and MUST NOT, its lower-case \"must\" "
        "and its descriptive statements about the device, a SHOULD/MUST pair where this device "
        "always does the stronger thing, and every contract section; **SHOULD** for SHOULD and "
        "SHOULD NOT (a failure is a warning); **MAY** for a permission (a test accepts either "
        "behaviour) and for every DRV row, a rule on the driver that the device survives.",
        "",
        "Features: the row applies only to a configuration that offers them. Note: why a row never "
        "applies to this device.",
    ]
    for group, title in GROUPS.items():
        lines += ["", f"## {title} ({group}-n)", "",
                  "| ID | level | requirement | source | features | note |",
                  "|---|---|---|---|---|---|"]
        for r in CATALOGUE.values():
            if r.group == group:
                lines.append(f"| {r.id} | {r.level.value} | {_cell(r.text)} | {_cell(r.source)} | "
                             f"{', '.join(r.features)} | {_cell(r.not_applicable or '')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys
    sys.stdout.write(render_markdown())
