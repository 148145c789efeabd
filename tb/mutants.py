"""Mutants: deliberately broken variants of our own device, to prove that the conformance suite
catches bugs.

Each mutant is one small, realistic bug (one expression or condition) written as a literal source
replacement in one gateware file. It is applied to a copy of the installed package's ``hdl/`` and
``model/`` (never to the repository's files, so the default Verilog does not change), and the
Verilog is generated from that copy in a subprocess whose import path starts with it. A mutant
names the one requirement it breaks, the regression configuration (``tb/configs.py``) it is
checked on, and the few conformance tests that catch it, each tagged with that requirement: run
against the mutant, at least one of them fails; run against the real device, all pass.

Command line: ``python -m virtio_gpio.tb.mutants`` lists the mutants;
``python -m virtio_gpio.tb.mutants NAME [--config small] [--out FILE]`` writes one's Verilog.
"""

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import virtio_gpio
import virtio_gpio.hdl
import virtio_gpio.model
from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.requirements import requirement

from . import configs


@dataclass(frozen=True)
class Mutant:
    """One deliberate bug: a literal replacement in one gateware file, and how it is caught."""
    name: str            # short identifier, e.g. "ack_clears_every_bit"
    requirement: str     # the one requirement ID it breaks (the conformance report shows it FAIL)
    description: str     # one sentence: what the broken device does
    file: str            # the gateware file it patches, relative to hdl/
    old: str             # exact source text that must occur exactly once in that file
    new: str             # its replacement
    config: str          # the tb/configs.py REGRESSION configuration it is checked on
    tests: tuple[str, ...]  # conformance test functions that catch it, each tagged `requirement`


class MutantError(RuntimeError):
    """A mutant cannot be applied (its text no longer occurs exactly once) or has no effect."""


_MUTANTS = [
    # -- the register file --------------------------------------------------------------------
    Mutant("ack_clears_every_bit", "MMIO-4",
           "An InterruptACK write clears every InterruptStatus bit, not only the bits written.",
           "registers.py",
           "m.d.sync += interrupt_status.eq(interrupt_status & ~value[:2])",
           "m.d.sync += interrupt_status.eq(0)",
           "small", ("interrupt_follows_used_idx_and_interrupt_status",)),
    Mutant("irq_line_follows_bit0_only", "MMIO-13",
           "The irq output follows InterruptStatus bit 0 only, so a configuration change does not "
           "raise it.",
           "registers.py",
           "self.irq.eq(interrupt_status != 0),", "self.irq.eq(interrupt_status[0]),",
           "small", ("an_error_before_driver_ok_is_announced_when_driver_ok_is_set",)),
    Mutant("reset_keeps_queue_ready", "MMIO-5",
           "Writing Status = 0 clears every queue register except QueueReady.",
           "registers.py",
           "m.d.sync += [getattr(regs, f.name).eq(0) for f in fields(_QueueRegisters)]",
           "m.d.sync += [getattr(regs, f.name).eq(0) for f in fields(_QueueRegisters)\n"
           "                          if f.name != \"ready\"]",
           "small", ("reset_clears_queues_interrupts_and_lines",)),
    Mutant("features_ok_with_unoffered_high_bit", "GEN-6",
           "FEATURES_OK is kept when the driver accepted an unoffered bit in the high feature "
           "word (RING_PACKED, IN_ORDER...): only the low word is checked.",
           "registers.py",
           "acceptable = (~self.unoffered.any() & ~self.bad_select",
           "acceptable = (~self.unoffered[0] & ~self.bad_select",
           "small", ("any_offered_subset_is_accepted_and_nothing_else",)),
    Mutant("eventq_exists_without_f_irq", "GPIO-13",
           "The eventq keeps a QueueSizeMax and can be enabled after FEATURES_OK without F_IRQ.",
           "registers.py",
           "exists |= (index == QueueIndex.EVENTQ) & ~refused",
           "exists |= (index == QueueIndex.EVENTQ)",
           "small", ("without_f_irq_the_eventq_is_never_touched",)),
    Mutant("device_error_raises_used_buffer_bit", "GEN-4",
           "A device error after DRIVER_OK raises InterruptStatus bit 0 (used buffer) instead of "
           "bit 1 (configuration change).",
           "registers.py",
           "                m.d.sync += interrupt_status[1].eq(1)\n"
           "        with m.If(eng.used_buffer):",
           "                m.d.sync += interrupt_status[0].eq(1)\n"
           "        with m.If(eng.used_buffer):",
           "small", ("malformed_chains_end_in_device_needs_reset",)),
    Mutant("live_without_driver_ok", "GEN-1",
           "The device serves a ready queue once FEATURES_OK is set, without waiting for DRIVER_OK.",
           "registers.py",
           "live = (self._has(DeviceStatus.DRIVER_OK) & features_ok",
           "live = (features_ok",
           "small", ("no_ring_access_before_driver_ok_or_queue_ready",)),
    Mutant("status_write_keeps_only_new_bits", "MMIO-12",
           "A Status write keeps only the bits it newly sets and drops those set before.",
           "registers.py",
           "m.d.sync += status.eq(status | new | Mux(",
           "m.d.sync += status.eq(new | Mux(",
           "small", ("reset_clears_queues_interrupts_and_lines",)),
    Mutant("device_features_sel2_reads_high_word", "MMIO-11",
           "DeviceFeatures with DeviceFeaturesSel 2 or above shows the high feature word, not 0.",
           "registers.py",
           "Array([offered & 0xFFFF_FFFF, offered >> 32, 0])[self.device_features_sel]",
           "Array([offered & 0xFFFF_FFFF, offered >> 32, offered >> 32])[self.device_features_sel]",
           "small", ("every_register_offset_at_every_width",)),
    Mutant("queue_sel_low_bit_only", "MMIO-9",
           "QueueSel keeps only its low bit, so queue indices 2 and above alias the two real queues.",
           "registers.py",
           "m.d.sync += self.queue_sel.eq(self._clamp2(value))",
           "m.d.sync += self.queue_sel.eq(value[0])",
           "small", ("every_register_offset_at_every_width",)),
    Mutant("shm_base_high_reads_zero", "MMIO-14",
           "SHMBaseHigh reads 0 instead of all ones.",
           "registers.py",
           "for reg in (Reg.SHM_LEN_LOW, Reg.SHM_LEN_HIGH, Reg.SHM_BASE_LOW, Reg.SHM_BASE_HIGH):",
           "for reg in (Reg.SHM_LEN_LOW, Reg.SHM_LEN_HIGH, Reg.SHM_BASE_LOW):",
           "small", ("every_register_offset_at_every_width",)),
    # -- the virtqueue engine -----------------------------------------------------------------
    Mutant("used_len_one_too_many", "VQ-10",
           "The used element of a requestq reply claims one byte more than the device wrote.",
           "virtqueue_engine.py",
           "push(q, head, reply_len, Continuation.NEXT_CHAIN)",
           "push(q, head, reply_len + 1, Continuation.NEXT_CHAIN)",
           "small", ("request_and_reply_split_over_many_descriptors",
                     "names_replies_back_to_back_in_one_batch")),
    Mutant("interrupt_before_used_idx", "VQ-15",
           "The used-buffer interrupt rises once the used element is written, before used.idx.",
           "virtqueue_engine.py",
           "                                 USED_ELEM_SIZE, elem)):\n"
           "                    m.next = \"PUSH_IDX\"",
           "                                 USED_ELEM_SIZE, elem)):\n"
           "                    m.d.comb += tr.used_buffer.eq(~abort)\n"
           "                    m.next = \"PUSH_IDX\"",
           "small", ("interrupt_follows_used_idx_and_interrupt_status",)),
    Mutant("no_interrupt_flag_bit_misread", "VQ-6",
           "Without EVENT_IDX the device tests bit 1 of avail.flags instead of bit 0, so it "
           "interrupts despite NO_INTERRUPT.",
           "virtqueue_engine.py",
           "~dma.rdata_short[AvailFlags.NO_INTERRUPT.bit_length() - 1])",
           "~dma.rdata_short[AvailFlags.NO_INTERRUPT.bit_length()])",
           "plain", ("notification_suppression_and_spurious_notifies",)),
    Mutant("used_event_compared_with_new_index", "VQ-7",
           "With EVENT_IDX the device compares used_event with the new used index instead of the "
           "old one, so the interrupt the driver asked for never comes.",
           "virtqueue_engine.py",
           "dma.rdata_short[:INDEX_BITS] == old,",
           "dma.rdata_short[:INDEX_BITS] == push_used_idx,",
           "small", ("notification_suppression_and_spurious_notifies",)),
    Mutant("used_event_ignored", "VQ-8",
           "With EVENT_IDX the device notifies after every used element, whatever used_event says.",
           "virtqueue_engine.py",
           "dma.rdata_short[:INDEX_BITS] == old,", "1,",
           "small", ("used_event_ahead_holds_the_interrupt_back_until_used_idx_passes_it",)),
    Mutant("avail_event_published_once", "VQ-12",
           "With EVENT_IDX avail_event is written once after the queue is enabled and never kept "
           "current.",
           "virtqueue_engine.py",
           "& ~(published_valid.bit_select(q, 1)\n"
           "                                & (Cat(published).word_select(q, INDEX_BITS) == q_last_avail))):",
           "& ~published_valid.bit_select(q, 1)):",
           "small", ("notification_suppression_and_spurious_notifies",)),
    Mutant("reply_overruns_short_buffer", "VQ-2",
           "A reply split over writable buffers writes one byte past the end of a buffer shorter "
           "than the rest of the reply.",
           "virtqueue_engine.py",
           "n = Mux(seg.len < n, seg.len, n)",
           "n = Mux(seg.len < n, seg.len + 1, n)",
           "small", ("reply_follows_the_chain_as_parsed_when_it_overwrites_a_descriptor",
                     "request_and_reply_split_over_many_descriptors")),
    Mutant("request_gather_forgets_earlier_bytes", "VQ-1",
           "A request split over several readable descriptors counts only the last one's bytes, "
           "so the next read overwrites the request and the reply is ERR.",
           "virtqueue_engine.py",
           "m.d.sync += have.eq(have + gather_len)",
           "m.d.sync += have.eq(gather_len)",
           "small", ("request_and_reply_split_over_many_descriptors",)),
    Mutant("used_id_from_last_parsed_chain", "VQ-14",
           "The used element carries the head of the chain parsed last, not of the chain it "
           "returns (wrong for delivered and released eventq buffers).",
           "virtqueue_engine.py",
           "m.d.comb += [elem.id.eq(push_head), elem.len.eq(push_len)]",
           "m.d.comb += [elem.id.eq(head), elem.len.eq(push_len)]",
           "small", ("small_eventqs_wrap_many_times",)),
    Mutant("released_buffer_status_valid", "GPIO-20",
           "An eventq buffer given back by SET_IRQ_TYPE NONE carries status VALID, not INVALID.",
           "virtqueue_engine.py",
           "valid = then == Continuation.IDLE",
           "valid = then != Continuation.NEXT_CHAIN",
           "small", ("buffers_go_back_invalid_when_refused_or_disabled",)),
    Mutant("names_rom_off_by_one", "GPIO-6",
           "The names reply reads the names ROM one byte ahead, so every name is shifted.",
           "virtqueue_engine.py",
           "m.d.comb += rd.addr.eq(byte - 1)",
           "m.d.comb += rd.addr.eq(byte)",
           "wide", ("linux_probe_modern_config_reads", "names_reply_and_short_reply_buffers")),
    Mutant("no_event_idx_reads_used_event", "VQ-5",
           "Without EVENT_IDX the device takes NO_INTERRUPT from used_event instead of avail.flags.",
           "virtqueue_engine.py",
           "offset = Mux(tr.event_idx_negotiated, geo.used_event, 0)",
           "offset = geo.used_event",
           "plain", ("notification_suppression_and_spurious_notifies",)),
    Mutant("eventq_gpio_at_request_offset", "GPIO-19",
           "eventq buffers are matched to lines by bytes 2-3 (where a requestq message has its "
           "gpio) instead of bytes 0-1.",
           "virtqueue_engine.py",
           "m.d.comb += [gr.gpio.eq(Mux(q == QueueIndex.EVENTQ, irq_request.gpio, request.gpio)),",
           "m.d.comb += [gr.gpio.eq(request.gpio),",
           "small", ("events_on_every_line_are_all_delivered",)),
    # -- the GPIO bank ------------------------------------------------------------------------
    Mutant("edges_not_latched_while_masked", "GPIO-16",
           "An edge is latched only while the line holds an eventq buffer, so edges while masked "
           "are lost.",
           "gpio_bank.py",
           "with m.If((rise & line.irq_type[_RISING]) | (fall & line.irq_type[_FALLING])):",
           "with m.If(((rise & line.irq_type[_RISING]) | (fall & line.irq_type[_FALLING]))\n"
           "                      & line.held):",
           "small", ("edge_types_latch_while_masked_and_deliver_once",)),
    Mutant("level_high_latched_like_rising_edge", "GPIO-17",
           "A LEVEL_HIGH line latches its rising edge like EDGE_RISING, so a level that came and "
           "went while masked is delivered on unmask.",
           "gpio_bank.py",
           "with m.If((rise & line.irq_type[_RISING]) | (fall & line.irq_type[_FALLING])):",
           "with m.If((rise & (line.irq_type[_RISING] | line.irq_type[_HIGH]))\n"
           "                      | (fall & line.irq_type[_FALLING])):",
           "small", ("level_types_are_sampled_not_latched",)),
    Mutant("delivery_leaves_line_unmasked", "GPIO-18",
           "Delivering an event clears the latched edge but leaves the line holding the buffer "
           "it just returned.",
           "gpio_bank.py",
           "m.d.sync += [line.held.eq(0), line.edge_latched.eq(0)]",
           "m.d.sync += [line.edge_latched.eq(0)]",
           "small", ("edge_types_latch_while_masked_and_deliver_once",)),
    Mutant("irq_type_change_keeps_latched_edge", "GPIO-21",
           "A change of irq type, NONE included, never clears the latched edge.",
           "gpio_bank.py",
           "m.d.comb += clear_edge.eq(1)",
           "m.d.comb += clear_edge.eq(0)",
           "small", ("buffers_go_back_invalid_when_refused_or_disabled",)),
    Mutant("buffer_held_for_disabled_line", "GPIO-22",
           "An eventq buffer for a line whose irq type is NONE is kept instead of going back "
           "INVALID.",
           "gpio_bank.py",
           "m.d.comb += ev.acceptable.eq(in_range & (addressed.irq_type != IrqType.NONE)",
           "m.d.comb += ev.acceptable.eq(in_range",
           "small", ("buffers_go_back_invalid_when_refused_or_disabled",)),
    Mutant("reset_keeps_irq_type", "GPIO-14",
           "A device reset puts each line back to its reset direction but leaves its irq type "
           "enabled.",
           "gpio_bank.py",
           "m.d.sync += line.eq(LineState.const({\"direction\": cfg.reset_directions[i]}))",
           "m.d.sync += [line.direction.eq(cfg.reset_directions[i]), line.out_latch.eq(0),\n"
           "                             line.edge_latched.eq(0), line.held.eq(0)]",
           "small", ("armed_lines_start_from_their_reset_state_after_a_device_reset",)),
    Mutant("gpio_range_check_off_by_one", "C-7",
           "A request for line ngpio is accepted (and runs on line 0) instead of being refused.",
           "gpio_bank.py",
           "in_range.eq(req.gpio < n),",
           "in_range.eq(req.gpio <= n),",
           "small", ("every_message_with_valid_and_invalid_arguments",)),
    Mutant("set_value_dropped_unless_output", "GPIO-10",
           "SET_VALUE on a line that is not an output is answered OK but not kept.",
           "gpio_bank.py",
           "m.d.comb += [ok.eq(value_is(0) | value_is(1)), updated.out_latch.eq(d.value)]",
           "m.d.comb += [ok.eq(value_is(0) | value_is(1)),\n"
           "                             updated.out_latch.eq(Mux(direction == Direction.OUT, "
           "d.value, line.out_latch))]",
           "small", ("every_message_with_valid_and_invalid_arguments",)),
    Mutant("direction_none_keeps_output_latch", "GPIO-9",
           "SET_DIRECTION NONE forgets the irq type and the latched edge but keeps the output "
           "latch.",
           "gpio_bank.py",
           "updated.out_latch.eq(0), updated.irq_type.eq(IrqType.NONE),",
           "updated.irq_type.eq(IrqType.NONE),",
           "small", ("every_message_with_valid_and_invalid_arguments",)),
    Mutant("set_irq_type_accepted_without_f_irq", "GPIO-12",
           "SET_IRQ_TYPE is accepted and arms the line when F_IRQ was not negotiated.",
           "gpio_bank.py",
           "m.d.comb += [ok.eq(req.irq_negotiated & valid_irq_type",
           "m.d.comb += [ok.eq(valid_irq_type",
           "small", ("set_irq_type_is_refused_without_f_irq",)),
    Mutant("due_without_buffer", "GPIO-15",
           "A line with a latched edge is due even when it holds no eventq buffer, so the device "
           "returns a buffer it does not have.",
           "gpio_bank.py",
           "m.d.comb += due[i].eq(line.held & (line.edge_latched | level_i))",
           "m.d.comb += due[i].eq(line.edge_latched | level_i)",
           "small", ("edge_types_latch_while_masked_and_deliver_once",)),
    Mutant("get_value_on_unused_line_ok", "GPIO-2",
           "GET_VALUE on a line whose direction is NONE answers OK with the pin level, not ERR.",
           "gpio_bank.py",
           "m.d.comb += [ok.eq(direction != Direction.NONE),",
           "m.d.comb += [ok.eq(1),",
           "small", ("every_message_with_valid_and_invalid_arguments",)),
    Mutant("set_direction_reply_echoes_value", "GPIO-11",
           "The reply to SET_DIRECTION carries the direction just set instead of 0.",
           "gpio_bank.py",
           "m.d.comb += [ok.eq(valid_direction & ~refused), updated.direction.eq(d.value)]",
           "m.d.comb += [ok.eq(valid_direction & ~refused), updated.direction.eq(d.value),\n"
           "                             reply_value.eq(d.value)]",
           "small", ("every_message_with_valid_and_invalid_arguments",)),
]

MUTANTS: dict[str, Mutant] = {m.name: m for m in _MUTANTS}
assert len(MUTANTS) == len(_MUTANTS), "duplicate mutant name"
assert len({m.requirement for m in _MUTANTS}) == len(_MUTANTS), "two mutants break the same ID"
for _m in _MUTANTS:
    requirement(_m.requirement)  # an unknown ID raises here, naming the nearest ones
    assert _m.config in configs.REGRESSION, f"{_m.name}: unknown configuration {_m.config!r}"
    assert _m.old != _m.new and _m.tests, f"{_m.name}: no change, or no test"

PACKAGE = "virtio_gpio"


def _source_dirs() -> dict[str, Path]:
    """Where the installed package's gateware and model live (an editable install maps them)."""
    return {"hdl": Path(virtio_gpio.hdl.__file__).parent,
            "model": Path(virtio_gpio.model.__file__).parent}


def _copy_sources(into: Path) -> Path:
    """Copy hdl/, model/ and the package's __init__.py to ``into``/virtio_gpio; return that."""
    package = Path(into) / PACKAGE
    if package.exists():
        raise FileExistsError(f"{package} exists: give each copy a directory of its own")
    package.mkdir(parents=True)
    shutil.copy2(virtio_gpio.__file__, package / "__init__.py")
    for name, source in _source_dirs().items():
        shutil.copytree(source, package / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return package


def patched_sources(mutant: Mutant, into: Path) -> Path:
    """Copy the installed package's hdl/ and model/ (and virtio_gpio/__init__.py) into
    ``into``/virtio_gpio/..., apply the replacement, return ``into`` (an import root).

    ``into`` must not hold a virtio_gpio package yet (FileExistsError): a copy is never reused."""
    into = Path(into)
    target = _copy_sources(into) / "hdl" / mutant.file
    if not target.is_file():
        raise MutantError(f"mutant {mutant.name}: hdl/{mutant.file} does not exist")
    text = target.read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise MutantError(f"mutant {mutant.name}: its text occurs {count} times in hdl/{mutant.file}, "
                          f"not once (the gateware changed; update the mutant): {mutant.old!r}")
    target.write_text(text.replace(mutant.old, mutant.new))
    return into


# Run in the subprocess: import from the copy (checking that nothing came from elsewhere) and print
# the Verilog of the configuration read as JSON from stdin. tb/ is not copied: tb.configs comes from
# the installed package, and imports the model already loaded from the copy.
_GENERATE = r"""
import sys
from pathlib import Path
root = Path(sys.argv[1]).resolve()
sys.path.insert(0, str(root))
from virtio_gpio.hdl.device import generate_verilog
from virtio_gpio.tb.configs import from_json
verilog = generate_verilog(from_json(sys.stdin.read()))
for name, module in list(sys.modules.items()):
    if name == "virtio_gpio" or name.startswith(("virtio_gpio.hdl", "virtio_gpio.model")):
        where = Path(getattr(module, "__file__", None) or "?").resolve()
        if root not in where.parents:
            sys.exit(f"{name} was imported from {where}, not from the copy under {root}")
sys.stdout.write(verilog)
"""


def _generate(root: Path, config: DeviceConfig) -> str:
    """The Verilog generated from the sources under import root ``root``, in a subprocess."""
    # -I: no PYTHONPATH, no current directory on sys.path (site-packages, and so the editable
    # finder, stay: the copy comes first on sys.path, so it wins for hdl and model).
    done = subprocess.run([sys.executable, "-I", "-B", "-c", _GENERATE, str(root)],
                          input=configs.to_json(config), capture_output=True, text=True, cwd=root)
    if done.returncode != 0:
        raise MutantError(f"generating the Verilog under {root} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _sources_digest() -> str:
    digest = hashlib.sha256()
    for name, source in sorted(_source_dirs().items()):
        for path in sorted(source.rglob("*.py")):
            digest.update(f"{name}/{path.relative_to(source)}\0".encode() + path.read_bytes())
    return digest.hexdigest()


_reference: dict[tuple[str, str], str] = {}  # (sources digest, config JSON) -> Verilog


def _unmutated_verilog(config: DeviceConfig, scratch: Path) -> str:
    """The real device's Verilog, generated the same way as a mutant's (cached per sources)."""
    key = (_sources_digest(), configs.to_json(config))
    if key not in _reference:
        root = scratch / "unmutated"
        _copy_sources(root)
        _reference[key] = _generate(root, config)
    return _reference[key]


def mutant_verilog(name: str, config: DeviceConfig) -> str:
    """The Verilog (top module virtio_gpio, same ports) of the device with mutant ``name``
    applied; raises MutantError if the replacement does not apply or changes nothing."""
    if name not in MUTANTS:
        raise MutantError(f"no mutant {name!r}; the mutants are {', '.join(MUTANTS)}")
    mutant = MUTANTS[name]
    with tempfile.TemporaryDirectory(prefix="virtio-gpio-mutant-") as tmp:
        scratch = Path(tmp)
        verilog = _generate(patched_sources(mutant, scratch / "mutant"), config)
        if verilog == _unmutated_verilog(config, scratch):
            raise MutantError(f"mutant {name}: the Verilog is the same as the unmutated device's "
                              f"(the replacement in hdl/{mutant.file} has no effect)")
    return verilog


def tests_by_module(mutant: Mutant) -> dict[str, tuple[str, ...]]:
    """The mutant's tests grouped by conformance module (for ``verilator_build --testcase``);
    raises MutantError if one does not exist or is not tagged with the mutant's requirement."""
    import importlib

    from .conformance import MODULES
    from .requirements import COVERAGE
    for module in MODULES:
        importlib.import_module(f"{__package__}.conformance.{module}")
    found: dict[str, list[str]] = {}
    for test in mutant.tests:
        keys = [key for key in COVERAGE if key.split(".", 1)[1] == test]
        if len(keys) != 1:
            raise MutantError(f"mutant {mutant.name}: {len(keys)} conformance tests named {test}")
        if mutant.requirement not in COVERAGE[keys[0]].ids:
            raise MutantError(f"mutant {mutant.name}: {keys[0]} is not tagged {mutant.requirement}")
        module = keys[0].split(".", 1)[0]
        found.setdefault(module, []).append(test)
    return {module: tuple(tests) for module, tests in found.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", nargs="?", help="the mutant whose Verilog to write (none: list them)")
    parser.add_argument("--config", choices=configs.REGRESSION,
                        help="regression configuration (default: the mutant's own)")
    parser.add_argument("--out", help="the Verilog file to write (default: stdout)")
    args = parser.parse_args(argv)
    if args.name is None:
        for m in MUTANTS.values():
            print(f"{m.name:40} {m.requirement:8} {m.config:6} {m.description}")
        return 0
    try:
        if args.name not in MUTANTS:
            raise MutantError(f"no mutant {args.name!r}; the mutants are {', '.join(MUTANTS)}")
        verilog = mutant_verilog(args.name, configs.REGRESSION[args.config or MUTANTS[args.name].config])
    except MutantError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).write_text(verilog)
    else:
        sys.stdout.write(verilog)
    return 0


if __name__ == "__main__":
    sys.exit(main())
