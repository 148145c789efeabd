"""``verilator --lint-only -Wall`` on the device's Verilog, with the waivers of hdl/lint.vlt
(each listed there with its reason). Command line: ``python -m virtio_gpio.tb.lint FILE.v``."""

import os
import subprocess
import sys
from pathlib import Path

from .verilator_build import verilator_root

WAIVERS = Path(__file__).resolve().parent.parent / "hdl" / "lint.vlt"


class LintError(Exception):
    pass


def lint(verilog_path) -> None:
    """Raise ``LintError`` with Verilator's messages unless the file lints clean."""
    root = verilator_root()
    env = dict(os.environ, VERILATOR_ROOT=str(root),
               PATH=f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wall", str(WAIVERS),
                           str(verilog_path)], env=env, capture_output=True, text=True)
    if done.returncode != 0 or "%Warning" in done.stderr:
        raise LintError(f"verilator --lint-only -Wall {verilog_path}:\n{done.stderr.strip()}")


def main(argv=None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m virtio_gpio.tb.lint FILE.v", file=sys.stderr)
        return 2
    try:
        lint(args[0])
    except LintError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"{args[0]}: verilator --lint-only -Wall clean (waivers: hdl/lint.vlt)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
