"""The real virtio_mmio driver's register accesses (Linux 6.1 and 6.12, recorded by QEMU on the
virtio-mmio transport: ``traces/``) replayed on the RTL, every read compared with the golden model
(``tb/mmio_replay.py``). ``virtio-gpio linux --transport mmio`` records a fresh trace and replays
it as its ``mmio-replay`` step."""

from pathlib import Path

import pytest

from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.layouts import Reg
from virtio_gpio.model.scenario import DEMO_NAMES
from virtio_gpio.tb import mmio_replay

TRACES = sorted((Path(__file__).with_name("traces")).glob("linux-*-virtio-mmio.log"))
TRACE = TRACES[0]
# the configuration it was recorded with: QEMU's virtio-mmio offers rings of 1024 entries
CONFIG = DeviceConfig(ngpio=len(DEMO_NAMES), line_names=DEMO_NAMES, queue_size_max=1024)


def test_the_trace_is_this_devices_probe_then_its_work():
    accesses = mmio_replay.parse(TRACE.read_text())
    assert [(a.kind, a.offset) for a in accesses[:4]] == [
        ("r", Reg.MAGIC_VALUE), ("r", Reg.VERSION), ("r", Reg.DEVICE_ID), ("r", Reg.VENDOR_ID)]
    done = {(a.kind, a.offset) for a in accesses}
    assert {("r", Reg.INTERRUPT_STATUS), ("w", Reg.INTERRUPT_ACK), ("r", Reg.QUEUE_SIZE_MAX)} <= done
    assert {a.size for a in accesses if a.offset >= Reg.CONFIG} == {2, 4}  # ngpio, names size


@pytest.mark.req("MMIO-1", "MMIO-2", "MMIO-3", "MMIO-9", "MMIO-11", "MMIO-12", "MMIO-15")
@pytest.mark.parametrize("trace", TRACES, ids=[t.name.split("-virtio")[0] for t in TRACES])
def test_linux_virtio_mmio_register_accesses_replayed_on_the_rtl(tmp_path, trace):
    result = mmio_replay.replay(trace, CONFIG, tmp_path)
    assert result.passed == 1 and not result.failed, result.summary()
