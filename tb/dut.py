"""What the suite simulates: our device for a configuration, or another implementation given as
Verilog sources, a top module and a description file.

The description file (TOML) says what the golden model must be built from to stand beside the
DUT. Required keys: ``ngpio``, ``queue_size_max``, ``dma_addr_width``, ``dma_data_width`` and
``features`` (the names of the feature bits the device offers: ``VERSION_1`` and any of
``GPIO_F_IRQ``, ``RING_INDIRECT_DESC``, ``RING_EVENT_IDX``, ``ACCESS_PLATFORM``,
``ORDER_PLATFORM``). Optional: ``line_names`` (one string per line, ``""`` for an unnamed line;
absent: no names), ``reset_direction`` (``"in"`` or ``"none"``, or a list with one per line;
default ``"in"``), ``vendor_id`` (default 0x41475046). ``describe(config)`` writes one.

Before anything is built, ``check_ports`` compares the DUT's top-level ports, as Verilator's
parser reads them (``--json-only``, so parameters are resolved and SystemVerilog is understood),
with the ports our own device has for the same description (docs/ports.md): one line per missing
port, wrong direction or wrong width.
"""

import json
import os
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from virtio_gpio.hdl.device import TOP_MODULE_NAME, port_table
from virtio_gpio.model.config import OPTIONAL_FEATURES, ConfigError, DeviceConfig
from virtio_gpio.model.constants import Direction

# The feature bits a description may list: those the golden model implements (contract §2).
DESCRIBABLE_FEATURES = {"VERSION_1": None} | {f.name: p for f, p in OPTIONAL_FEATURES.items()}
_REQUIRED = ("ngpio", "queue_size_max", "dma_addr_width", "dma_data_width", "features")
_OPTIONAL = ("line_names", "reset_direction", "vendor_id")
_DIRECTIONS = {"in": Direction.IN, "none": Direction.NONE}


class DutError(ValueError):
    """An unusable DUT: unreadable description, missing sources, ports that do not match. Each
    line of the message is one problem."""


@dataclass(frozen=True)
class Dut:
    """``sources`` empty: our own device, generated from ``config``."""
    name: str
    config: DeviceConfig
    sources: tuple[Path, ...] = ()
    toplevel: str = TOP_MODULE_NAME
    description: Path | None = None

    @property
    def external(self) -> bool:
        return bool(self.sources)

    def report_info(self) -> dict:
        """How a report names it: label, top module, sources and description file."""
        if not self.external:
            return {"label": f"this project's device (configuration {self.name})",
                    "toplevel": TOP_MODULE_NAME, "sources": [], "description": None}
        return {"label": f"{self.toplevel} from {', '.join(p.name for p in self.sources)}",
                "toplevel": self.toplevel, "sources": [str(p) for p in self.sources],
                "description": str(self.description)}

    def make_variables(self) -> str:
        """``DUT=... TOP=... DUT_CONFIG=...``, for the make commands that rerun it."""
        return make_variables(self.report_info())

    def cli_options(self) -> str:
        """``--dut ... --top ... --dut-config ...``, for the CLI commands that rerun it."""
        return (f"--dut {','.join(map(str, self.sources))} --top {self.toplevel} "
                f"--dut-config {self.description}")


def make_variables(info: dict) -> str:
    """The make variables of an external DUT, from its ``Dut.report_info()``."""
    return (f"DUT={','.join(info['sources'])} TOP={info['toplevel']} "
            f"DUT_CONFIG={info['description']}")


# -- the description file ---------------------------------------------------------------------

def load_description(path) -> DeviceConfig:
    """The configuration a description file describes; ``DutError`` naming the file and the key."""
    path = Path(path)
    where = str(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise DutError(f"{where}: no such description file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DutError(f"{where}: cannot be read ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise DutError(f"{where}: not valid TOML ({e})") from None
    problems = [f"{where}: unknown key {k!r} (known: {', '.join(_REQUIRED + _OPTIONAL)})"
                for k in data if k not in _REQUIRED + _OPTIONAL]
    problems += [f"{where}: the key {k!r} is missing" for k in _REQUIRED if k not in data]
    if problems:
        raise DutError("\n".join(problems))
    fields = {k: data[k] for k in ("ngpio", "queue_size_max", "dma_addr_width", "dma_data_width")}
    for key, value in fields.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise DutError(f"{where}: {key} must be an integer, not {value!r}")
    features = data["features"]
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise DutError(f"{where}: features must be a list of feature names, not {features!r}")
    unknown = [f for f in features if f.removeprefix("VIRTIO_F_").removeprefix("VIRTIO_")
               not in DESCRIBABLE_FEATURES]
    if unknown:
        raise DutError(f"{where}: features {', '.join(unknown)} cannot be checked: the golden model "
                       f"implements {', '.join(DESCRIBABLE_FEATURES)}")
    names = {f.removeprefix("VIRTIO_F_").removeprefix("VIRTIO_") for f in features}
    if "VERSION_1" not in names:
        raise DutError(f"{where}: features must include VERSION_1 (a virtio 1.x device offers it)")
    for feature, parameter in DESCRIBABLE_FEATURES.items():
        if parameter:
            fields[parameter] = feature in names
    if "line_names" in data:
        fields["line_names"] = data["line_names"]
    if "vendor_id" in data:
        fields["vendor_id"] = data["vendor_id"]
    direction = data.get("reset_direction", "in")
    try:
        fields["reset_direction"] = (_DIRECTIONS[direction] if isinstance(direction, str)
                                     else tuple(_DIRECTIONS[d] for d in direction))
    except (KeyError, TypeError):
        raise DutError(f"{where}: reset_direction must be \"in\", \"none\" or a list of them, "
                       f"not {direction!r}") from None
    try:
        return DeviceConfig(**fields)
    except (ConfigError, TypeError) as e:
        raise DutError(f"{where}: {e}") from None


def describe(config: DeviceConfig) -> str:
    """A description file for ``config`` (what ``load_description`` reads back)."""
    features = ["VERSION_1"] + [f for f, p in DESCRIBABLE_FEATURES.items() if p and getattr(config, p)]
    directions = {d: name for name, d in _DIRECTIONS.items()}
    dirs = config.reset_directions
    lines = ["# A virtio-gpio implementation, as the conformance suite's golden model sees it.",
             f"ngpio = {config.ngpio}",
             f"queue_size_max = {config.queue_size_max}",
             f"dma_addr_width = {config.dma_addr_width}",
             f"dma_data_width = {config.dma_data_width}",
             f"features = {json.dumps(features)}",
             f"vendor_id = {config.vendor_id:#010x}",
             "reset_direction = " + (json.dumps(directions[dirs[0]]) if len(set(dirs)) == 1
                                     else json.dumps([directions[d] for d in dirs]))]
    if config.line_names is not None:
        lines.append(f"line_names = {json.dumps(list(config.line_names))}")
    return "\n".join(lines) + "\n"


def external(sources, toplevel: str, description) -> Dut:
    """An external implementation: sources exist and the description loads, or ``DutError``."""
    paths = tuple(Path(s) for s in sources)
    if not paths:
        raise DutError("no DUT sources given (DUT=file.v[,file2.sv...])")
    missing = [f"DUT source {p} does not exist" for p in paths if not p.is_file()]
    if missing:
        raise DutError("\n".join(missing))
    if not toplevel:
        raise DutError("no top module given (TOP=<module>)")
    if description is None:
        raise DutError("no description file given (DUT_CONFIG=<file.toml>; "
                       "`virtio-gpio describe` writes one)")
    config = load_description(description)
    return Dut(toplevel, config, paths, toplevel, Path(description))


# -- the ports ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Port:
    direction: str  # "input" or "output"
    width: int


def expected_ports(config: DeviceConfig) -> dict[str, Port]:
    """The ports of our own device for ``config``: the contract (docs/ports.md) as the gateware
    states it, so that the two cannot drift apart."""
    return {name: Port(direction, width) for name, (direction, width) in port_table(config).items()}


def read_ports(sources, toplevel: str) -> dict[str, Port]:
    """The top-level ports of ``toplevel`` in ``sources``, from Verilator's parser."""
    from .verilator_build import verilator_root
    root = verilator_root()
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"VERILATOR_ROOT": str(root),
                            "PATH": os.pathsep.join([str(root / "bin"), str(Path(sys.executable).parent),
                                                     os.environ.get("PATH", "")])}
        includes = [f"-I{d}" for d in dict.fromkeys(Path(s).resolve().parent for s in sources)]
        proc = subprocess.run([str(root / "bin" / "verilator"), "--json-only", "-Wno-fatal",
                               "-Wno-lint", "-Wno-style", "--top-module", toplevel, *includes,
                               "--Mdir", tmp, *map(str, sources)],
                              capture_output=True, text=True, env=env)
        tree = Path(tmp) / f"V{toplevel}.tree.json"
        if proc.returncode or not tree.is_file():
            errors = [line for line in proc.stderr.splitlines() if line.startswith("%Error")]
            raise DutError("the DUT sources do not parse: "
                           + ("\n".join(errors[:5]) or proc.stderr.strip()[-500:]))
        return _ports_from_tree(json.loads(tree.read_text()), toplevel)


def _ports_from_tree(tree: dict, toplevel: str) -> dict[str, Port]:
    types, modules = {}, []

    def walk(node):
        if isinstance(node, dict):
            if node.get("addr"):
                types[node["addr"]] = node
            if node.get("type") == "MODULE" and node.get("origName") == toplevel:
                modules.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(tree)
    if not modules:
        raise DutError(f"module {toplevel!r} is not in the DUT sources")
    ports = {}
    for var in modules[0].get("stmtsp", []):
        if var.get("type") != "VAR" or not var.get("isPrimaryIO"):
            continue
        dtype = types.get(var.get("dtypep"), {})
        if dtype.get("type") != "BASICDTYPE":
            width = 0  # a struct, array or interface port: reported as a wrong width
        elif dtype.get("range"):
            hi, lo = (int(x) for x in dtype["range"].split(":"))
            width = abs(hi - lo) + 1
        else:
            width = 1
        ports[var["name"]] = Port(var.get("direction", "").lower(), width)
    return ports


def port_problems(expected: dict[str, Port], actual: dict[str, Port]) -> list[str]:
    """One line per difference that stops the suite from driving the DUT. Extra outputs are
    allowed (a debug port, say); an extra input is not, since nothing would drive it."""
    problems = []
    for name, want in expected.items():
        have = actual.get(name)
        if have is None:
            problems.append(f"missing port {name} ({want.direction}, {want.width} bit"
                            f"{'s' if want.width > 1 else ''})")
        elif have.direction != want.direction:
            problems.append(f"port {name} is an {have.direction or 'inout'}; it must be an "
                            f"{want.direction}")
        elif have.width != want.width:
            problems.append(f"port {name} is {have.width or 'not a vector of'} bit"
                            f"{'s' if have.width != 1 else ''} wide; it must be {want.width}")
    problems += [f"port {name} is an input the suite does not know (docs/ports.md); nothing "
                 f"would drive it" for name, p in actual.items()
                 if name not in expected and p.direction != "output"]
    return problems


def check_ports(dut: Dut) -> list[str]:
    """Raise ``DutError`` with one line per port problem; return the extra outputs (allowed)."""
    expected = expected_ports(dut.config)
    actual = read_ports(dut.sources, dut.toplevel)
    problems = port_problems(expected, actual)
    if problems:
        where = f"{dut.toplevel} (described by {dut.description})"
        raise DutError("\n".join(f"{where}: {p}" for p in problems))
    return sorted(set(actual) - set(expected))
