"""Command line (``python -m virtio_gpio.cli``):

* ``sim``: the Verilator conformance regression of the RTL against the golden model;
* ``conformance``: the same regression over several seeds, and a report per configuration with a
  verdict for every requirement ID (Markdown, JSON, JUnit XML);
* ``campaign``: the random campaign (constrained-random traffic, faults, functional coverage)
  over a range of seeds, one simulator per job; ``campaign-merge`` combines the reports of shards;
* ``verilog``: write the device as one Verilog file; ``describe``: its description file, which
  ``conformance --dut`` takes for another implementation;
* ``mutants``: every deliberately broken variant of the device through ``conformance --dut``,
  each of which must fail the requirement it breaks;
* ``model``: the Linux driver model against the golden model alone (no simulator);
* ``synth``: out-of-context and board builds on the open FPGA toolchain, with the resource and
  timing report (needs the ``synth`` extra);
* ``serve``: a vhost-user backend that puts the device behind a VM's virtio GPIO device (QEMU's
  vhost-user-gpio-pci), with ``control`` for the test script that drives its pins;
* ``linux``: a Linux guest in QEMU whose real gpio-virtio driver and libgpiod tools drive the
  device through that backend;
* ``board``: the Linux driver model probes a board's device over its USB UART and drives its lines
  (needs the ``board`` extra).
"""

import argparse
import sys
import time
from pathlib import Path

from .model.config import ConfigError, DeviceConfig
from .model.scenario import DEMO_NAMES, print_summary, run_scenario


def _config_from_args(args: argparse.Namespace) -> DeviceConfig:
    names = None
    if args.names:
        names = DEMO_NAMES if args.ngpio == len(DEMO_NAMES) else tuple(f"gpio{i}" for i in range(args.ngpio))
    return DeviceConfig(ngpio=args.ngpio, line_names=names, offer_irq=not args.no_irq,
                        offer_indirect_desc=not args.no_indirect,
                        offer_event_idx=not args.no_event_idx, queue_size_max=args.queue_size_max,
                        dma_addr_width=args.dma_addr_width, dma_data_width=args.dma_data_width)


def _add_config_options(p: argparse.ArgumentParser, names_default: bool) -> None:
    p.add_argument("--ngpio", type=int, default=len(DEMO_NAMES), help="number of lines (default %(default)s)")
    p.add_argument("--names", action=argparse.BooleanOptionalAction, default=names_default,
                   help="line names (gpio_names_size > 0)")
    p.add_argument("--no-irq", action="store_true", help="do not offer VIRTIO_GPIO_F_IRQ")
    p.add_argument("--no-indirect", action="store_true", help="do not offer RING_INDIRECT_DESC")
    p.add_argument("--no-event-idx", action="store_true", help="do not offer RING_EVENT_IDX")
    p.add_argument("--queue-size-max", type=int, default=256)
    p.add_argument("--dma-addr-width", type=int, default=32, choices=(32, 64))
    p.add_argument("--dma-data-width", type=int, default=32, choices=(32, 64))


def _add_simulator_option(p: argparse.ArgumentParser) -> None:
    from .tb.simulator import DEFAULT_SIMULATOR, SIMULATORS
    p.add_argument("--sim", choices=SIMULATORS, default=DEFAULT_SIMULATOR,
                   help="the simulator (default %(default)s; icarus needs Icarus Verilog 11+)")


def _model(args: argparse.Namespace) -> int:
    config = _config_from_args(args)
    print(f"== golden model end-to-end scenario: {config}")
    result = run_scenario(config)
    print_summary(result)
    return 0 if result.passed else 1


def _verilog(args: argparse.Namespace) -> int:
    from .hdl.device import generate_verilog
    config = _config_from_args(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(generate_verilog(config))
    print(f"wrote {args.out} ({config})")
    return 0


def _sim(args: argparse.Namespace) -> int:
    from .tb import configs, regression
    from .tb.simulator import BuildError, SimulationError, SimulatorMissing
    names = args.config.split(",") if args.config else list(configs.REGRESSION)
    unknown = [n for n in names if n not in configs.REGRESSION]
    if unknown:
        print(f"virtio-gpio sim: unknown configuration {', '.join(unknown)}; "
              f"choose from {', '.join(configs.REGRESSION)}", file=sys.stderr)
        return 2
    outcomes = []
    for name in names:
        try:
            outcome = regression.run_config(name, configs.REGRESSION[name], testcase=args.test,
                                            seed=args.seed, waves=args.waves,
                                            simulator_name=args.sim)
        except regression.UnknownTest as e:
            print(f"virtio-gpio sim: {e}", file=sys.stderr)
            return 2
        except (SimulatorMissing, BuildError, SimulationError) as e:
            print(f"virtio-gpio sim: {e}", file=sys.stderr)
            return 2
        outcomes.append(outcome)
        print(f"   {len(outcome.tests)} tests, {len(outcome.failed)} failed, "
              f"{outcome.run_seconds:.1f} s")
    print()
    print(regression.format_summary(outcomes))
    failed = [o for o in outcomes if o.failed]
    for o in failed:
        print(f"FAILED in {o.name}: {', '.join(t.name for t in o.failed)}")
        print("  " + regression.rerun_hint(o, args.seed))
    for o in outcomes:
        if o.waves_path:
            print(f"waves: {o.waves_path}")
    return 1 if failed else 0


def _regression_configs(items: list[str], prog: str) -> list[str] | None:
    """The regression configurations named in ``items`` (each comma-separated), in order and
    once each; None, after one line on stderr, when a name is unknown or none is given."""
    from .tb import configs
    names = [n for item in items for n in item.split(",") if n]
    unknown = [n for n in names if n not in configs.REGRESSION]
    if unknown or not names:
        print(f"{prog}: unknown configuration {', '.join(unknown) or '(none given)'}; "
              f"choose from {', '.join(configs.REGRESSION)}", file=sys.stderr)
        return None
    return list(dict.fromkeys(names))


def _parse_seeds(text: str) -> tuple[int, ...]:
    """``"1,2,3"`` -> (1, 2, 3); a ValueError with the message the user sees otherwise."""
    seeds = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) < 1:
            raise ValueError(f"--seeds takes comma-separated positive integers, not {text!r}")
        if int(item) in seeds:
            raise ValueError(f"--seeds names seed {int(item)} twice")
        seeds.append(int(item))
    return tuple(seeds)


def _targets(args: argparse.Namespace, prog: str, default_configs: str):
    """What to simulate, as {name: Dut}: the external DUT of --dut/--top/--dut-config (its
    description loaded and its ports checked), or our device in the --config configurations;
    None, after one line per problem on stderr, when that is impossible. The simulator is checked
    first, so that a missing one is reported before anything else is done."""
    from .tb import configs, dut
    if not _usable_target_options(args, prog):
        return None
    if not args.dut:
        names = _regression_configs(args.config or [default_configs], prog)
        return None if names is None else {n: dut.Dut(n, configs.REGRESSION[n]) for n in names}
    if args.config:
        print(f"{prog}: --config chooses one of this project's configurations; an external "
              f"--dut is described by --dut-config instead", file=sys.stderr)
        return None
    target = _external_dut(args, prog)
    return None if target is None else {target.name: target}


def _usable_target_options(args: argparse.Namespace, prog: str) -> bool:
    """The simulator is there, and --top/--dut-config come with a --dut (else one line on
    stderr)."""
    from .tb import simulator
    try:
        simulator.check(args.sim)
    except simulator.SimulatorMissing as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return False
    if not args.dut and (args.top or args.dut_config):
        print(f"{prog}: --top and --dut-config describe a --dut; give its sources too",
              file=sys.stderr)
        return False
    return True


def _external_dut(args: argparse.Namespace, prog: str):
    """The Dut of --dut/--top/--dut-config, its description loaded and its ports checked; None,
    after one line per problem on stderr, when it cannot be used."""
    from .tb import dut
    sources = [s for item in args.dut for s in item.split(",") if s]
    try:
        target = dut.external(sources, args.top, args.dut_config)
        extra = dut.check_ports(target)
    except dut.DutError as e:
        for line in str(e).splitlines():
            print(f"{prog}: {line}", file=sys.stderr)
        return None
    if extra:
        print(f"   {target.toplevel} has outputs the suite ignores: {', '.join(extra)}")
    return target


def _rtl_target(args: argparse.Namespace, prog: str):
    """(config, Dut or None) for the RTL backend: this project's device in the configuration the
    options give, or the --dut; None when that is impossible (said on stderr)."""
    if not _usable_target_options(args, prog):
        return None
    if not args.dut:
        return _config_from_args(args), None
    target = _external_dut(args, prog)
    return None if target is None else (target.config, target)


def _run_campaign_for_report(args, name, target):
    """The short random campaign beside the directed tests: its summary for the report."""
    import os

    from .tb import soak
    seeds = list(range(1, args.campaign_seeds + 1))
    settings = soak.CampaignSettings(configs=(name,), requests=args.campaign_requests,
                                     marathon_every=0, jobs=os.cpu_count() or 1,
                                     out_dir=args.out / "campaign" / name, simulator=args.sim,
                                     duts={name: target})
    print(f"== random campaign {name}: seeds 1-{len(seeds)}, {args.campaign_requests} requests "
          f"each", flush=True)
    report = soak.run_campaign(settings, seeds, out=lambda line: print(line, flush=True))
    failures = [f"seed {r['seed']}: {str(r.get('failure'))[:200]} (replay: {r['replay']})"
                for r in report["failures"]]
    for line in failures:
        print(f"   FAIL {line}", flush=True)
    return {"seeds": f"1-{len(seeds)}", "requests": report["totals"]["requests"],
            "failures": failures, "coverage_reached": report["coverage_reached"]}


def _conformance(args: argparse.Namespace) -> int:
    from .tb import configs, conformance_report, regression
    from .tb.simulator import BuildError, SimulationError, SimulatorMissing, describe
    prog = "virtio-gpio conformance"
    targets = _targets(args, prog, ",".join(configs.REGRESSION))
    if targets is None:
        return 2
    try:
        seeds = _parse_seeds(args.seeds)
    except ValueError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    if args.campaign_seeds < 0 or args.campaign_requests < 1:
        print(f"{prog}: --campaign-seeds must be at least 0 and --campaign-requests at least 1",
              file=sys.stderr)
        return 2
    docs = Path(__file__).resolve().parent.parent / "docs"
    if args.copy_to_docs and not docs.is_dir():
        print(f"{prog}: --copy-to-docs needs the repository checkout (no docs/ next to the package)",
              file=sys.stderr)
        return 2
    sim = describe(args.sim)
    reports = []
    for name, target in targets.items():
        tests = []
        for seed in seeds:
            print(f"== conformance {name} on {sim['name']}, seed {seed} of "
                  f"{','.join(map(str, seeds))}", flush=True)
            try:
                outcome = regression.run_config(name, target.config, seed=seed, testcase=args.tests,
                                                simulator_name=args.sim, dut=target,
                                                out=lambda line: print(line, flush=True))
            except regression.UnknownTest as e:
                print(f"{prog}: {e}", file=sys.stderr)
                return 2
            except (SimulatorMissing, BuildError, SimulationError) as e:
                print(f"{prog}: {name} seed {seed}: {e}", file=sys.stderr)
                return 1
            tests += outcome.tests
            skipped = sum(t.status == "skip" for t in outcome.tests)
            print(f"   {name} seed {seed}: {len(outcome.tests)} tests, {len(outcome.failed)} failed, "
                  f"{skipped} skipped, {outcome.run_seconds:.1f} s", flush=True)
            if outcome.failed:
                print("   " + regression.rerun_hint(outcome), flush=True)
        try:
            campaign = (_run_campaign_for_report(args, name, target)
                        if args.campaign_seeds else None)
        except (SimulatorMissing, BuildError) as e:
            print(f"{prog}: {name} campaign: {e}", file=sys.stderr)
            return 1
        report = conformance_report.build_report(name, target.config, tests, seeds=seeds,
                                                 simulator=sim, sim=args.sim,
                                                 dut=target.report_info(), campaign=campaign)
        paths = conformance_report.write(report, args.out)
        if args.copy_to_docs:
            (docs / "conformance").mkdir(exist_ok=True)
            paths["docs"] = docs / "conformance" / f"{report.directory_name}.md"
            paths["docs"].write_text(conformance_report.to_markdown(report))
        reports.append((report, paths))
    print()
    for report, paths in reports:
        print(conformance_report.summary(report))
        for row in report.failures:
            print(f"   {row.id} {row.level.value} {row.verdict}: {row.note}")
        print(f"   report: {paths['markdown']} ({paths['json'].name}, {paths['junit'].name})"
              + (f"; copied to {paths['docs']}" if "docs" in paths else ""))
    return max(report.exit_code for report, _ in reports)


def _describe(args: argparse.Namespace) -> int:
    from .tb import configs, dut
    if args.config:
        names = _regression_configs([args.config], "virtio-gpio describe")
        if names is None or len(names) != 1:
            return 2
        config = configs.REGRESSION[names[0]]
    else:
        config = _config_from_args(args)
    text = dut.describe(config)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


def _mutants(args: argparse.Namespace) -> int:
    import json

    from .tb import mutants, mutation, simulator
    prog = "virtio-gpio mutants"
    sims = [s for s in args.sim.split(",") if s]
    names = [n for n in (args.only or ",".join(mutants.MUTANTS)).split(",") if n]
    unknown = [n for n in names if n not in mutants.MUTANTS]
    bad_sims = [s for s in sims if s not in simulator.SIMULATORS]
    if unknown or bad_sims or not sims:
        print(f"{prog}: unknown mutant or simulator {', '.join(unknown + bad_sims) or '(none)'}; "
              f"mutants: {', '.join(mutants.MUTANTS)}; simulators: {', '.join(simulator.SIMULATORS)}",
              file=sys.stderr)
        return 2
    try:
        for s in sims:
            simulator.check(s)
    except simulator.SimulatorMissing as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2

    def progress(done, total, r):
        what = ("passes" if r["passed"] else "FAILS") if r["mutant"] == mutation.CONTROL else \
            ("caught" if r["caught"] else "NOT CAUGHT")
        print(f"[{done}/{total}] {r['mutant']} ({r['config']}) on {r['simulator']}: {what}, "
              f"{r['seconds']} s", flush=True)
    start = time.monotonic()
    try:
        results = mutation.run_all(names, sims, out_dir=args.out, jobs=args.jobs, progress=progress)
    except (mutants.MutantError, RuntimeError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    table = mutation.format_table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mutants.md").write_text(table + "\n")
    (args.out / "mutants.json").write_text(json.dumps(results, indent=1) + "\n")
    print()
    print(table)
    print(f"\n{len(names)} mutants on {', '.join(sims)} in {time.monotonic() - start:.0f} s; "
          f"table: {args.out / 'mutants.md'}")
    problems = mutation.verdict(results)
    for line in problems:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if problems else 0


def _serve(args: argparse.Namespace) -> int:
    import logging
    import signal

    from .host.control import ControlSocket
    from .host.devices import ModelDevice
    from .host.serve import LOG_FORMAT, ServeError, Server
    if args.backend == "rtl":
        return _serve_rtl(args)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format=LOG_FORMAT, stream=sys.stderr)
    config = _config_from_args(args)
    try:
        server = Server(args.socket, ModelDevice(config))
        control = ControlSocket(args.control, server) if args.control else None
    except ServeError as e:
        print(f"virtio-gpio serve: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        server.serve(once=args.once)
    except KeyboardInterrupt:
        pass
    finally:
        if control:
            control.close()
    return 0


def _serve_rtl(args: argparse.Namespace) -> int:
    """The RTL backend in the foreground: the simulation runs until the frontend hangs up (with
    --once) or `control stop`; SIGTERM stops it the same way."""
    import signal

    from .host.control import ControlClient
    from .tb import rtl_serve, simulator
    target = _rtl_target(args, "virtio-gpio serve")
    if target is None:
        return 2
    config, dut = target
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    settings = rtl_serve.settings_for(out, args.socket, control=args.control, once=args.once)
    control = Path(settings.control)
    try:
        built = rtl_serve.build(config, simulator_name=args.sim, waves=args.waves, dut=dut)
    except simulator.BuildError as e:
        print(f"virtio-gpio serve: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: ControlClient(control).stop())
    print(f"== serving {args.socket} with the RTL (seed {args.seed}); control socket {control}; "
          f"logs in {out}", flush=True)
    try:
        result = rtl_serve.run(built, config, settings, out, seed=args.seed, waves=args.waves)
    except simulator.SimulationError as e:
        print(f"virtio-gpio serve: {e}", file=sys.stderr)
        return 1
    report = rtl_serve.read_report(settings)
    if report["error"]:
        print(f"virtio-gpio serve: {report['error']}", file=sys.stderr)
        return 2
    print(f"   {report['requests']} requests in {report['cycles']} cycles, "
          f"{len(report['differences'])} differences between RTL and model"
          + (f"; waves {result.waves_path}" if result.waves_path else ""))
    for difference in report["differences"]:
        print(f"DIFFERENCE {difference}", file=sys.stderr)
    return 1 if result.failed or report["differences"] else 0


def _control(args: argparse.Namespace) -> int:
    from .host.control import command
    try:
        reply = command(args.socket, " ".join(args.words), timeout=args.timeout)
    except OSError as e:
        print(f"virtio-gpio control: {args.socket}: {e}", file=sys.stderr)
        return 2
    print(reply)
    return 1 if reply.startswith("error") else 0


MMIO_QUEUE_SIZE = 1024  # the ring size QEMU's virtio-mmio transport offers a vhost-user device


def _linux(args: argparse.Namespace) -> int:
    from .host import guest_image, linux_vm
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    unknown = [b for b in backends if b not in ("model", "rtl")]
    if unknown or not backends:
        print(f"virtio-gpio linux: unknown backend {', '.join(unknown) or '(none)'}: "
              f"give model, rtl or both", file=sys.stderr)
        return 2
    config, dut, rtl_errors = _config_from_args(args), None, ()
    if "rtl" in backends:
        from .tb import simulator
        from .tb.rtl_serve import RtlBackend, RtlBackendError
        rtl_errors = (simulator.BuildError, RtlBackendError)
        target = _rtl_target(args, "virtio-gpio linux")
        if target is None:
            return 2
        config, dut = target
    elif args.dut:
        print("virtio-gpio linux: --dut needs --backend rtl", file=sys.stderr)
        return 2
    transports = [t.strip() for t in args.transport.split(",") if t.strip()]
    if not transports or set(transports) - {"pci", "mmio"}:
        print(f"virtio-gpio linux: --transport takes pci, mmio or both, not {args.transport!r}",
              file=sys.stderr)
        return 2
    if "mmio" in transports and config.queue_size_max < MMIO_QUEUE_SIZE:
        print(f"virtio-gpio linux: QEMU's virtio-mmio transport offers rings of {MMIO_QUEUE_SIZE} "
              f"entries: give --queue-size-max {MMIO_QUEUE_SIZE}", file=sys.stderr)
        return 2
    failed = False
    for kernel, transport, name in [(k, t, b) for k in args.kernel.split(",") for t in transports
                                    for b in backends]:
        checks = ()
        if transport == "mmio":
            from .tb.mmio_replay import replay_step
            checks = (replay_step(config, args.sim),)
        backend = linux_vm.ModelBackend(config)
        if name == "rtl":
            backend = RtlBackend(config, simulator_name=args.sim, seed=args.seed,
                                 waves=args.waves, dut=dut)
        out = args.out / (f"{kernel}-{name}" + ("-mmio" if transport == "mmio" else ""))
        try:
            run = linux_vm.run_guest(config, kernel, out, backend=backend, cache=args.cache,
                                     transport=transport, checks=checks,
                                     progress=lambda line: print(line, flush=True))
        except guest_image.GuestImageError as e:
            print(f"virtio-gpio linux: {e}", file=sys.stderr)
            return 2
        except rtl_errors as e:
            print(f"virtio-gpio linux: the RTL backend: {e}", file=sys.stderr)
            return 2
        print(run.table())
        print(f"{kernel}/{run.backend}/{transport}: {'PASS' if run.passed else 'FAIL'}, "
              f"{sum(s.ok for s in run.steps)}/{len(run.steps)} steps, {run.requests} requests, "
              + ", ".join(f"{k.replace('_', ' ')} {v} s" for k, v in run.seconds.items())
              + f"; console {run.console}, backend log {run.backend_log}", flush=True)
        failed |= not run.passed
    return 1 if failed else 0


def _add_dut_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dut", action="append", metavar="FILES",
                   help="another implementation's Verilog/SystemVerilog sources (comma-separated "
                        "or repeated), instead of this project's device")
    p.add_argument("--top", help="the DUT's top module (with --dut)")
    p.add_argument("--dut-config", type=Path, metavar="FILE",
                   help="the DUT's description file (TOML; `virtio-gpio describe` writes one)")
    _add_simulator_option(p)


def _add_rtl_options(p: argparse.ArgumentParser) -> None:
    _add_dut_options(p)
    p.add_argument("--seed", type=int, default=1,
                   help="rtl: a seed other than 1 adds random DMA back-pressure (default 1)")
    p.add_argument("--waves", action="store_true", help="rtl: record the simulation's waves")


def _campaign_report(report: dict, prog: str, path: Path, require_coverage: bool) -> int:
    from .tb import soak
    print(soak.format_report(report))
    print(f"report: {path}")
    if report["failures"]:
        return 1
    if require_coverage and not report["coverage_reached"]:
        print(f"{prog}: the coverage goals were not reached (--no-coverage-goal for a shard)",
              file=sys.stderr)
        return 1
    return 0


def _campaign(args: argparse.Namespace) -> int:
    import os

    from .tb import soak
    from .tb.simulator import BuildError, SimulatorMissing
    prog = "virtio-gpio campaign"
    targets = _targets(args, prog, "small")
    if targets is None:
        return 2
    try:
        seeds = soak.parse_seeds(args.seeds)
    except soak.SeedRangeError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    if args.requests < 1 or args.jobs < 0 or args.marathon_every < 0:
        print(f"{prog}: --requests must be at least 1, --jobs and --marathon-every at least 0",
              file=sys.stderr)
        return 2
    settings = soak.CampaignSettings(configs=tuple(targets), requests=args.requests,
                                     faults=not args.no_faults, marathon_every=args.marathon_every,
                                     jobs=args.jobs or os.cpu_count() or 1, waves=args.waves,
                                     out_dir=args.out, simulator=args.sim, duts=targets)
    try:
        report = soak.run_campaign(settings, seeds)
    except (SimulatorMissing, BuildError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    for r in report["results"]:
        if r.get("waves"):
            print(f"waves: {r['waves']}")
    return _campaign_report(report, prog, args.out / soak.REPORT_NAME, not args.no_coverage_goal)


def _campaign_merge(args: argparse.Namespace) -> int:
    from .tb import soak
    prog = "virtio-gpio campaign-merge"
    try:
        report = soak.merge_reports(args.reports, args.out)
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    return _campaign_report(report, prog, args.out / soak.REPORT_NAME, not args.no_coverage_goal)


def _synth(args: argparse.Namespace) -> int:
    from .synth import report, sweep
    from .synth.flow import ToolchainMissing
    from .synth.targets import TargetError

    def chosen(value):
        return "" if value == "none" else value

    try:
        if args.jobs < 1 or (args.freq is not None and args.freq <= 0):
            raise TargetError("--jobs must be at least 1 and --freq above 0 MHz")
        jobs = (sweep.ooc_jobs(chosen(args.part), chosen(args.config), args.freq, args.out)
                + sweep.board_jobs(chosen(args.board), args.out))
        if not jobs:
            raise TargetError("nothing to build: every list is 'none'")
        rows = sweep.run(jobs, parallel=args.jobs, out=args.out)
    except (TargetError, ToolchainMissing) as e:
        print(f"virtio-gpio synth: {e}", file=sys.stderr)
        return 2
    print()
    print(report.format_table(rows))
    print()
    print("critical paths:")
    print(report.format_critical_paths(rows))
    (args.out / "report.md").write_text(report.format_markdown(rows) + "\n")
    print(f"\nreport: {args.out / 'report.json'} (table in Markdown: {args.out / 'report.md'})")
    for r in rows:
        if r["kind"] == "board" and r["bitstream"]:
            print(f"bitstream: {r['bitstream']}")
    failed = [r for r in rows if r["status"] != report.MET]
    for r in failed:
        print(f"FAILED {r['target']} {r['config']}: {r['status']}: {r['message']} "
              f"(log: {r['build_dir']}/build.log)", file=sys.stderr)
    return 1 if failed else 0


def _board(args: argparse.Namespace) -> int:
    # Host code only: this runs where the gateware toolchain is not installed.
    from .hdl.boards.host_map import BOARD_LINKS as BOARDS
    from .host.board_transport import BridgeTransport
    from .host.bridge_client import BridgeClient, BridgeError
    from .model.driver.linux_gpio import LinuxVirtioGpioDriver, ProbeError
    try:
        import serial
    except ImportError:
        print("virtio-gpio board: pyserial is not installed: pip install -e '.[board]'",
              file=sys.stderr)
        return 2
    board = BOARDS.get(args.board)
    if board is None:
        print(f"virtio-gpio board: unknown board {args.board!r}; known: {', '.join(BOARDS)}",
              file=sys.stderr)
        return 2
    settings = []
    for item in args.set:
        line, _, value = item.partition("=")
        if not (line.isdigit() and value in ("0", "1")):
            print(f"virtio-gpio board: --set takes LINE=0 or LINE=1, not {item!r}", file=sys.stderr)
            return 2
        settings.append((int(line), int(value)))
    try:
        port = serial.Serial(args.port, board.baud, timeout=args.timeout)
    except serial.SerialException as e:
        print(f"virtio-gpio board: cannot open {args.port}: {e}", file=sys.stderr)
        return 2
    with port:
        driver = LinuxVirtioGpioDriver(BridgeTransport(BridgeClient(port), board.memory_bytes),
                                       trace=lambda m: print(f"  {m}"))
        try:
            driver.probe()
            for line, value in settings:
                driver.direction_output(line, value)
            for line in range(driver.ngpio):
                name = driver.names[line] if driver.names else ""
                print(f"line {line:3} {name:12} {driver.get_direction(line).name:5} "
                      f"{driver.get(line)}")
        except (BridgeError, ProbeError) as e:
            print(f"virtio-gpio board: {e}", file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="virtio-gpio", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("sim", help="run the conformance regression of this project's device")
    sim.add_argument("--config", help="comma-separated regression configurations (default: all)")
    sim.add_argument("--test", help="run only this cocotb test (its function name)")
    sim.add_argument("--seed", type=int, default=1, help="random seed (default %(default)s)")
    sim.add_argument("--waves", action="store_true", help="write an FST waveform per configuration")
    _add_simulator_option(sim)
    sim.set_defaults(func=_sim)
    conformance = sub.add_parser(
        "conformance", help="run the regression over seeds and report a verdict per requirement",
        description="Runs every conformance test of each configuration (or of the external "
                    "--dut) once per seed, then a short random campaign, and writes a report per "
                    "configuration under OUT/<config>/ (OUT/<config>-icarus/ on Icarus: "
                    "report.md, report.json, junit.xml): one row per requirement ID with its level "
                    "and verdict. Exits 1 when a MUST row fails or is not tested, or a campaign "
                    "seed fails; 2 when the DUT, its description or the simulator is unusable.")
    conformance.add_argument("--config", action="append", metavar="NAME",
                             help="a regression configuration (repeatable or comma-separated; "
                                  "default: every regression configuration)")
    _add_dut_options(conformance)
    conformance.add_argument("--tests", metavar="NAMES",
                             help="only these conformance tests (comma-separated function names)")
    conformance.add_argument("--campaign-seeds", type=int, default=6, metavar="N",
                             help="random campaign seeds 1..N after the directed tests "
                                  "(default %(default)s; 0: none)")
    conformance.add_argument("--campaign-requests", type=int, default=400, metavar="N",
                             help="requests per campaign seed (default %(default)s)")
    conformance.add_argument("--seeds", default="1,2,3",
                             help="comma-separated seeds (default %(default)s; seeds other than 1 "
                                  "add random AXI back-pressure)")
    conformance.add_argument("--out", type=Path, default=Path("build/conformance"))
    conformance.add_argument("--copy-to-docs", action="store_true",
                             help="also write each Markdown report to docs/conformance/<config>.md")
    conformance.set_defaults(func=_conformance)
    campaign = sub.add_parser(
        "campaign", help="run the random campaign over a range of seeds",
        description="Constrained-random traffic and faults against the RTL in lock-step with the "
                    "golden model, one simulator process per seed and --jobs at a time. Writes "
                    "OUT/campaign.json (figures, failures with their replay commands, coverage per "
                    "configuration) and exits 1 on a failure or when the coverage goals are not "
                    "reached.")
    campaign.add_argument("--config", action="append", metavar="NAME",
                          help="regression configurations (repeatable or comma-separated; "
                               "default small)")
    _add_dut_options(campaign)
    campaign.add_argument("--seeds", default="8", help="N (1..N), A-B, or a comma-separated list "
                                                       "(default %(default)s)")
    campaign.add_argument("--requests", type=int, default=2000,
                          help="requests per seed (default %(default)s)")
    campaign.add_argument("--no-faults", action="store_true", help="traffic only, no faults")
    campaign.add_argument("--marathon-every", type=int, default=100, metavar="N",
                          help="every Nth seed runs past the 16-bit index wrap instead "
                               "(default %(default)s; 0: never)")
    campaign.add_argument("--jobs", type=int, default=0,
                          help="simulators at a time (default: one per core)")
    campaign.add_argument("--waves", action="store_true", help="write an FST waveform per seed")
    campaign.add_argument("--no-coverage-goal", action="store_true",
                          help="do not fail when the coverage goals are not reached (a shard)")
    campaign.add_argument("--out", type=Path, default=Path("build/campaign"))
    campaign.set_defaults(func=_campaign)
    merge = sub.add_parser("campaign-merge", help="combine the reports of campaign shards",
                           description="Reads campaign.json files (or the folders holding them) "
                                       "and writes one report: totals, failures, merged coverage.")
    merge.add_argument("reports", nargs="+", type=Path)
    merge.add_argument("--out", type=Path, default=Path("build/campaign/merged"))
    merge.add_argument("--no-coverage-goal", action="store_true",
                       help="do not fail when the coverage goals are not reached")
    merge.set_defaults(func=_campaign_merge)
    describe = sub.add_parser(
        "describe", help="write the description file (--dut-config) of a device configuration",
        description="Prints (or writes to --out) the TOML description that `conformance --dut` "
                    "reads: of a regression configuration (--config), or of the device the "
                    "configuration options describe.")
    describe.add_argument("--config", help="a regression configuration (small, wide, plain)")
    _add_config_options(describe, names_default=False)
    describe.add_argument("--out", type=Path)
    describe.set_defaults(func=_describe)
    serve = sub.add_parser(
        "serve", help="be the vhost-user backend of a VM's virtio GPIO device",
        description="Listens on --socket for QEMU's vhost-user-gpio-pci (chardev socket) and serves "
                    "the guest's virtqueues with the golden model, or with the simulated RTL "
                    "(--backend rtl, the model beside it reporting every difference), programmed "
                    "through its registers. --control PATH opens a text control socket for test "
                    "scripts (`virtio-gpio control`). The VM's memory must be shared "
                    "(-object memory-backend-memfd,...,share=on).")
    serve.add_argument("--socket", type=Path, required=True, help="the vhost-user socket to listen on")
    serve.add_argument("--backend", choices=("model", "rtl"), default="model",
                       help="what serves the queues (default %(default)s)")
    serve.add_argument("--control", type=Path, help="a control socket for test scripts "
                                                    "(rtl: default OUT/control.sock)")
    serve.add_argument("--once", action="store_true", help="exit when the first frontend hangs up")
    serve.add_argument("--verbose", "-v", action="store_true", help="log every message (model)")
    serve.add_argument("--out", type=Path, default=Path("build/serve"),
                       help="rtl: where the logs, report and waves go (default %(default)s)")
    _add_rtl_options(serve)
    _add_config_options(serve, names_default=True)
    serve.set_defaults(func=_serve)
    linux = sub.add_parser(
        "linux", help="boot a Linux guest whose real gpio-virtio driver drives the device",
        description="Fetches (and caches) QEMU 10, a Debian kernel and libgpiod's tools, builds "
                    "gpio-virtio as a module, boots the guest under TCG with the device on the "
                    "vhost-user backend, and checks probe, gpiodetect, gpioinfo (every name), "
                    "gpioset/gpioget on every line from the host side, gpiomon on every edge "
                    "type, unbind/bind and poweroff. One named result per step; exits 1 if one "
                    "fails, 2 if a piece of the guest cannot be had.")
    linux.add_argument("--kernel", default="6.1,6.12",
                       help="driver versions, comma-separated (default %(default)s: Debian's 6.1 "
                            "and bookworm-backports' 6.12)")
    linux.add_argument("--backend", default="model,rtl",
                       help="model, rtl or both, comma-separated (default %(default)s)")
    linux.add_argument("--transport", default="pci",
                       help="pci (vhost-user-gpio-pci), mmio (vhost-user-gpio-device on QEMU's "
                            "microvm: its register accesses are traced and replayed on the RTL "
                            "against the model; needs --queue-size-max 1024), or both")
    _add_rtl_options(linux)
    linux.add_argument("--out", type=Path, default=Path("build/linux/runs"))
    linux.add_argument("--cache", type=Path, default=Path("build/linux"))
    _add_config_options(linux, names_default=True)
    linux.set_defaults(func=_linux)
    control = sub.add_parser(
        "control", help="send one command to a running backend's control socket",
        description="Commands: set LINE 0|1; get LINE; wait LINE 0|1 [SECONDS]; outputs; "
                    "requests; events; differences; stop. Prints the answer; exits 1 on an "
                    "error answer.")
    control.add_argument("--socket", type=Path, required=True)
    control.add_argument("--timeout", type=float, default=30.0)
    control.add_argument("words", nargs="+", metavar="COMMAND")
    control.set_defaults(func=_control)
    mutants = sub.add_parser(
        "mutants", help="prove the suite catches bugs: run every mutant of the device through --dut",
        description="Each mutant (tb/mutants.py) is this device with one deliberate bug against "
                    "one requirement. Each goes through `conformance --dut` with its tests; it is "
                    "caught when the report fails that requirement. The unmutated device, sent "
                    "the same way, must pass. Exits 1 when a mutant is not caught or a control "
                    "fails; writes OUT/mutants.md and OUT/mutants.json.")
    mutants.add_argument("--sim", default="verilator,icarus",
                         help="comma-separated simulators (default %(default)s)")
    mutants.add_argument("--only", metavar="NAMES", help="comma-separated mutants (default: all)")
    mutants.add_argument("--jobs", type=int, default=2, help="runs at a time (default %(default)s)")
    mutants.add_argument("--out", type=Path, default=Path("build/mutants"))
    mutants.set_defaults(func=_mutants)
    verilog = sub.add_parser("verilog", help="write the device as a Verilog file")
    _add_config_options(verilog, names_default=False)
    verilog.add_argument("--out", type=Path, default=Path("build/virtio_gpio.v"))
    verilog.set_defaults(func=_verilog)
    model = sub.add_parser("model", help="run the Linux driver model against the golden model")
    _add_config_options(model, names_default=True)
    model.set_defaults(func=_model)
    synth = sub.add_parser(
        "synth", help="build for FPGAs and report resources and Fmax",
        description="Out-of-context builds of the device (every part x configuration) and the "
                    "board builds; prints the table, writes report.json, and fails when a build "
                    "misses its frequency or does not fit. Lists are comma-separated; 'none' "
                    "skips a kind.")
    synth.add_argument("--part", help="out-of-context parts (default: all of ice40-up5k, ecp5-85f)")
    synth.add_argument("--config", help="configurations (default: all of gpio8, gpio32, gpio128, "
                                        "gpio32-plain)")
    synth.add_argument("--board", help="board builds (default: all of icebreaker, ulx3s)")
    synth.add_argument("--freq", type=float, help="requested MHz of the out-of-context builds "
                                                  "(default: 48 on iCE40, 100 on ECP5)")
    synth.add_argument("--jobs", type=int, default=2, help="builds at a time (default %(default)s)")
    synth.add_argument("--out", type=Path, default=Path("build/synth"))
    synth.set_defaults(func=_synth)
    board = sub.add_parser("board", help="probe a board's device over its UART and drive its lines")
    board.add_argument("--port", required=True, help="the board's serial port, e.g. /dev/ttyUSB0")
    board.add_argument("--board", default="ulx3s", help="which board top it runs (default %(default)s)")
    board.add_argument("--set", action="append", default=[], metavar="LINE=VALUE",
                       help="make LINE an output at VALUE (0 or 1) before listing; repeatable")
    board.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for a reply")
    board.set_defaults(func=_board)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"virtio-gpio {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
