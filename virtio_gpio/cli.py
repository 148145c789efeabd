"""Command line: ``virtio-gpio sim`` (also ``python -m virtio_gpio.cli sim``)."""

import argparse
import sys

from .model.config import ConfigError, DeviceConfig
from .model.scenario import DEMO_NAMES, print_summary, run_scenario


def _sim(args: argparse.Namespace) -> int:
    try:
        names = DEMO_NAMES if args.ngpio == len(DEMO_NAMES) and not args.no_names else None
        config = DeviceConfig(ngpio=args.ngpio, line_names=names, offer_irq=not args.no_irq,
                              offer_indirect_desc=not args.no_indirect,
                              offer_event_idx=not args.no_event_idx,
                              dma_addr_width=args.dma_addr_width)
    except ConfigError as e:
        print(f"virtio-gpio sim: {e}", file=sys.stderr)
        return 2
    print(f"== golden model end-to-end scenario: {config}")
    result = run_scenario(config)
    print_summary(result)
    return 0 if result.passed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="virtio-gpio", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("sim", help="run the Linux driver model against the golden model")
    sim.add_argument("--ngpio", type=int, default=len(DEMO_NAMES), help="number of lines (default %(default)s)")
    sim.add_argument("--no-names", action="store_true", help="no line names (gpio_names_size = 0)")
    sim.add_argument("--no-irq", action="store_true", help="do not offer VIRTIO_GPIO_F_IRQ")
    sim.add_argument("--no-indirect", action="store_true", help="do not offer RING_INDIRECT_DESC")
    sim.add_argument("--no-event-idx", action="store_true", help="do not offer RING_EVENT_IDX")
    sim.add_argument("--dma-addr-width", type=int, default=32, choices=(32, 64))
    sim.set_defaults(func=_sim)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
