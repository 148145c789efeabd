"""Replaying the register accesses of Linux's real virtio_mmio driver on the RTL, every read
compared with the golden model.

The accesses come from QEMU's ``virtio_mmio_read`` / ``virtio_mmio_write_offset`` trace events,
recorded while a guest drove the device on the virtio-mmio transport (``virtio-gpio linux
--transport mmio`` writes ``mmio-trace.log``). The trace names offsets, not the transport nor the
access size, so:

* the transports QEMU's microvm has without a device show as a read of MagicValue, Version and
  DeviceID with nothing after (the driver stops at DeviceID 0); those are dropped, the rest is
  this device's;
* registers are 32 bits wide; in the configuration space each field is read at its own width
  (``virtio_cread`` of a le16 is a 16-bit read), taken from the layout.

Guest memory is not part of the trace, so the rings the driver sets up are mapped empty (and
granted as the driver would: descriptors and avail ring readable, used ring writable). QEMU
serves the driver's notifications through host notifiers, so the trace holds no QueueNotify; the
device finds no buffer (avail.idx 0), as after a reset, and the replay checks the register
file, the feature and status handshake, queue set-up and interrupt acknowledgement under the
driver's real order of accesses, with the model in lock-step (``DeviceEnv``).
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

import cocotb

from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.constants import CONFIG_SPACE_OFFSET
from virtio_gpio.model.layouts import GpioConfig, Reg, RingGeometry
from virtio_gpio.model.memory import Perm

from . import configs
from .env import DeviceEnv

TRACE_ENV = "VIRTIO_GPIO_MMIO_TRACE"
_LINE = re.compile(r"virtio_mmio_(read|write_offset)\b.*?offset 0x([0-9a-f]+)(?: value 0x([0-9a-f]+))?")
_EMPTY_TRANSPORT = [("r", Reg.MAGIC_VALUE), ("r", Reg.VERSION), ("r", Reg.DEVICE_ID)]


@dataclass(frozen=True)
class Access:
    kind: str       # "r" or "w"
    offset: int
    value: int = 0  # written value

    @property
    def size(self) -> int:
        if self.offset < CONFIG_SPACE_OFFSET:
            return 4
        return _CONFIG_FIELD_SIZES.get(self.offset - CONFIG_SPACE_OFFSET, 1)


def _config_field_sizes() -> dict[int, int]:
    sizes, pos = {}, 0
    for sub in GpioConfig.defersubcon.subcons:  # the compiled layout's fields
        size = sub.sizeof()
        if sub.name != "padding":
            sizes[pos] = size
        pos += size
    return sizes


_CONFIG_FIELD_SIZES = _config_field_sizes()


def parse(text: str) -> list[Access]:
    """This device's accesses, in order, from a QEMU trace log."""
    accesses = []
    for line in text.splitlines():
        m = _LINE.search(line)
        if m:
            kind = "r" if m.group(1) == "read" else "w"
            accesses.append(Access(kind, int(m.group(2), 16), int(m.group(3) or "0", 16)))
    kept, i = [], 0
    while i < len(accesses):
        head = [(a.kind, a.offset) for a in accesses[i:i + 3]]
        after = accesses[i + 3] if i + 3 < len(accesses) else None
        if head == _EMPTY_TRANSPORT and (after is None or (after.kind, after.offset) == ("r", Reg.MAGIC_VALUE)):
            i += 3
            continue
        kept.append(accesses[i])
        i += 1
    return kept


class _Rings:
    """Maps each ring the driver sets up (empty), as QueueNum and the addresses are written."""

    def __init__(self, env: DeviceEnv):
        self.env, self.num, self.addr = env, 0, {}

    def written(self, offset: int, value: int) -> None:
        if offset == Reg.QUEUE_SIZE:
            self.num = value
        elif offset in (Reg.QUEUE_DESC_LOW, Reg.QUEUE_DRIVER_LOW, Reg.QUEUE_DEVICE_LOW):
            self.addr[offset] = value
        elif offset in (Reg.QUEUE_DESC_HIGH, Reg.QUEUE_DRIVER_HIGH, Reg.QUEUE_DEVICE_HIGH):
            self.addr[offset - 4] = self.addr.get(offset - 4, 0) | value << 32
        elif offset == Reg.QUEUE_READY and value == 1 and self.num:
            geometry = RingGeometry(self.num)
            for low, size, perm in ((Reg.QUEUE_DESC_LOW, geometry.desc_table_size, Perm.READ),
                                    (Reg.QUEUE_DRIVER_LOW, geometry.avail_ring_size, Perm.READ),
                                    (Reg.QUEUE_DEVICE_LOW, geometry.used_ring_size, Perm.WRITE)):
                if low in self.addr:
                    self.env.memory.map(self.addr[low], size)
                    self.env.memory.firewall.grant(self.addr[low], size, perm, "ring")


def replay(trace, config: DeviceConfig, out, *, simulator_name: str = "verilator"):
    """Build the device for ``config`` (the one the trace was recorded with; cached) and replay
    ``trace`` on it: the ``simulator.RunResult``."""
    from . import regression, simulator
    out = Path(out).resolve()
    _, built = regression.build_config("mmio-replay", config, simulator_name=simulator_name)
    env = {configs.CONFIG_ENV: configs.to_json(config), TRACE_ENV: str(Path(trace).resolve())}
    return simulator.run(built, "virtio_gpio.tb.mmio_replay",
                         testcase="replay_linux_register_accesses", extra_env=env,
                         junit_path=out / "mmio-replay.xml")


def replay_step(config: DeviceConfig, simulator_name: str = "verilator"):
    """A check for ``host.linux_vm.run_guest``: the run's fresh trace replayed, as a step."""
    from virtio_gpio.host.linux_vm import Step

    def check(out) -> Step:
        trace = Path(out) / "mmio-trace.log"
        accesses = parse(trace.read_text()) if trace.is_file() else []
        if not accesses:
            return Step("mmio-replay", False, f"no access of this device in {trace}")
        result = replay(trace, config, out, simulator_name=simulator_name)
        return Step("mmio-replay", result.passed == 1 and not result.failed,
                    f"{len(accesses)} accesses, every read equal to the model's" if result.passed
                    else f"see {result.log_path}")
    return check


@cocotb.test()
async def replay_linux_register_accesses(dut):
    """Every access of the trace in ``TRACE_ENV``, in order; each read compared with the model."""
    accesses = parse(open(os.environ[TRACE_ENV]).read())
    assert accesses, f"no virtio_mmio access of this device in {os.environ[TRACE_ENV]}"
    env = await DeviceEnv.start(dut, configs.current())
    rings = _Rings(env)
    reads = 0
    for a in accesses:
        if a.kind == "w":
            rings.written(a.offset, a.value)
            await env.write(a.offset, a.value, a.size)
        else:
            await env.read(a.offset, a.size)  # raises Mismatch, naming the requirement
            reads += 1
    await env.settle()
    dut._log.info("replayed %d accesses (%d reads, all equal to the model's)", len(accesses), reads)
