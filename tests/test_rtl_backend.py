"""The RTL behind the vhost-user backend (``serve --backend rtl``: ``tb/rtl_backend.py``,
``tb/rtl_serve.py``), driven by the Python frontend that sends QEMU's messages, with the golden
model beside it: requests and edges served in lock-step, a broken device's difference reported
while the RTL goes on serving, and the clear errors. The Linux guest on this backend is
``test_linux_guest.py``."""

import struct

import pytest
from vhost_frontend import Frontend

from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.constants import Direction, Feature, IrqType, MsgType
from virtio_gpio.model.scenario import DEMO_NAMES
from virtio_gpio.tb import dut, mutants
from virtio_gpio.tb.rtl_serve import RtlBackend, RtlBackendError

CONFIG = DeviceConfig(ngpio=len(DEMO_NAMES), line_names=DEMO_NAMES)  # the Linux guest's: one build
OK = 0


def _started(backend: RtlBackend, socket_path) -> Frontend:
    fe = Frontend(str(socket_path))
    features, config = fe.handshake()
    assert config == CONFIG.config_space
    negotiated = features & CONFIG.offered_features
    fe.start(negotiated, {0: 16, 1: 16},
             event_idx=bool(negotiated & Feature.RING_EVENT_IDX.mask),
             indirect=bool(negotiated & Feature.RING_INDIRECT_DESC.mask))
    return fe


@pytest.mark.req("GPIO-1", "GPIO-6", "GPIO-9", "GPIO-10", "GPIO-15")
def test_the_rtl_serves_requests_and_edges_in_lockstep_with_the_model(tmp_path):
    backend = RtlBackend(CONFIG)
    backend.start(tmp_path / "gpio.sock", tmp_path)
    fe = _started(backend, tmp_path / "gpio.sock")
    assert fe.gpio_request(MsgType.SET_DIRECTION, 3, Direction.OUT) == bytes([OK, 0])
    assert fe.gpio_request(MsgType.SET_VALUE, 3, 1) == bytes([OK, 0])
    backend.wait_output(3, 1, timeout=5)
    assert backend.control.outputs() == (0x08, 0x08)
    backend.set_input(5, 1)
    assert fe.gpio_request(MsgType.GET_VALUE, 5) == bytes([OK, 1])
    names = fe.gpio_request(MsgType.GET_LINE_NAMES, 0, rxlen=1 + CONFIG.gpio_names_size)
    assert names == bytes([OK]) + CONFIG.names_block
    assert fe.gpio_request(MsgType.SET_IRQ_TYPE, 2, IrqType.EDGE_RISING) == bytes([OK, 0])
    req, res = fe.ram.alloc(4, 8), fe.ram.alloc(1, 8)
    fe.ram.write(req, struct.pack("<HH", 2, 0))
    fe.submit(1, [(req, 4)], [(res, 1)], "event")
    backend.set_input(2, 1)
    assert fe.wait_used(1) == ("event", 1) and fe.ram.read(res, 1) == b"\x01"  # VALID
    assert backend.control.requests_served() == 5
    assert fe.stop() == [5, 1]  # GET_VRING_BASE: both rings' next avail index
    fe.close()
    report = backend.finish()
    assert report["error"] is None, report
    assert report["differences"] == [], report["differences"]
    assert report["requests"] == 5 and report["cycles"] > 0


@pytest.mark.req("GPIO-9")
def test_a_difference_between_rtl_and_model_is_reported_and_the_rtl_goes_on(tmp_path):
    """A device that keeps its output latch when a line goes to NONE: the guest cannot see it (the
    line is not driven), the model beside the RTL does."""
    verilog = tmp_path / "broken.v"
    verilog.write_text(mutants.mutant_verilog("direction_none_keeps_output_latch", CONFIG))
    description = tmp_path / "broken.toml"
    description.write_text(dut.describe(CONFIG))
    backend = RtlBackend(CONFIG, dut=dut.external([verilog], "virtio_gpio", description))
    backend.start(tmp_path / "gpio.sock", tmp_path)
    fe = _started(backend, tmp_path / "gpio.sock")
    fe.gpio_request(MsgType.SET_DIRECTION, 0, Direction.OUT)
    fe.gpio_request(MsgType.SET_VALUE, 0, 1)
    assert fe.gpio_request(MsgType.SET_DIRECTION, 0, Direction.NONE) == bytes([OK, 0])
    assert fe.gpio_request(MsgType.GET_DIRECTION, 0) == bytes([OK, Direction.NONE])  # goes on
    assert len(backend.control.differences()) == 1
    fe.close()
    report = backend.finish()
    assert len(report["differences"]) == 1
    assert "gpio_o: RTL 0x1, model 0x0 (GPIO-9" in report["differences"][0]
    assert report["requests"] == 4


def test_a_socket_in_use_is_refused_with_the_reason(tmp_path):
    first = RtlBackend(CONFIG)
    first.start(tmp_path / "gpio.sock", tmp_path / "first")
    second = RtlBackend(CONFIG)
    with pytest.raises(RtlBackendError, match="is in use: another backend is listening on it"):
        second.start(tmp_path / "gpio.sock", tmp_path / "second")
    first.stop()
    assert first.finish()["error"] is None


def test_serve_rtl_refuses_a_socket_in_a_missing_folder_with_one_line(tmp_path, capsys):
    from virtio_gpio.cli import main
    assert main(["serve", "--backend", "rtl", "--socket", str(tmp_path / "no" / "s.sock"),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0], err


@pytest.mark.parametrize("argv, message", [
    (["serve", "--backend", "rtl", "--socket", "s.sock", "--top", "x"], "--top and --dut-config describe a --dut"),
    (["serve", "--backend", "rtl", "--socket", "s.sock", "--dut", "nothere.v", "--top", "x",
      "--dut-config", "d.toml"], "DUT source nothere.v does not exist"),
    (["linux", "--backend", "rtl", "--dut-config", "d.toml"], "--top and --dut-config describe a --dut"),
    (["linux", "--backend", "model", "--dut", "a.v"], "--dut needs --backend rtl"),
    (["linux", "--backend", "model,fpga"], "unknown backend fpga"),
    (["linux", "--backend", "model", "--transport", "usb"], "--transport takes pci, mmio or both"),
    (["linux", "--backend", "model", "--transport", "mmio"], "give --queue-size-max 1024"),
])
def test_bad_backend_options_are_one_line_each(capsys, argv, message):
    from virtio_gpio.cli import main
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
