"""The vhost-user backend (``host/vhost_user.py``, ``host/serve.py``) with the golden model behind
it, driven by a Python frontend that sends QEMU's messages (``vhost_frontend.py``): the handshake,
requests on the requestq, interrupts on the eventq, shutdown, and the clear errors."""

import struct
import threading

import pytest
from vhost_frontend import Frontend

from virtio_gpio.host import vhost_user as vu
from virtio_gpio.host.devices import ModelDevice
from virtio_gpio.host.serve import ServeError, Server
from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.constants import Direction, Feature, IrqType, MsgType

CONFIG = DeviceConfig(ngpio=8, line_names=tuple(f"pin{i}" for i in range(8)),
                      dma_addr_width=64, dma_data_width=64)
OK = 0


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "gpio.sock", ModelDevice(CONFIG))
    thread = threading.Thread(target=srv.serve, daemon=True)
    thread.start()
    yield srv
    srv.stop()
    thread.join(5)
    assert not thread.is_alive()


def _started(server, queues=(0, 1)) -> Frontend:
    fe = Frontend(str(server.path))
    features, config = fe.handshake()
    assert config == CONFIG.config_space
    negotiated = features & CONFIG.offered_features
    fe.start(negotiated, {q: 16 for q in queues},
             event_idx=bool(negotiated & Feature.RING_EVENT_IDX.mask),
             indirect=bool(negotiated & Feature.RING_INDIRECT_DESC.mask))
    return fe


def test_the_backend_offers_the_device_features_and_its_config(server):
    fe = Frontend(str(server.path))
    features, config = fe.handshake()
    assert features == CONFIG.offered_features | vu.F_PROTOCOL_FEATURES
    protocol = fe.u64(vu.Request.GET_PROTOCOL_FEATURES)
    assert protocol & vu.ProtocolFeature.CONFIG and protocol & vu.ProtocolFeature.REPLY_ACK
    assert config == CONFIG.config_space
    fe.close()


def test_requests_set_and_read_the_pins(server):
    fe = _started(server)
    assert fe.gpio_request(MsgType.SET_DIRECTION, 3, Direction.OUT) == bytes([OK, 0])
    assert fe.gpio_request(MsgType.SET_VALUE, 3, 1) == bytes([OK, 0])
    server.wait_output(3, 1, timeout=2)
    server.set_input(5, 1)
    assert fe.gpio_request(MsgType.GET_VALUE, 5) == bytes([OK, 1])
    names = fe.gpio_request(MsgType.GET_LINE_NAMES, 0, rxlen=1 + CONFIG.gpio_names_size)
    assert names == bytes([OK]) + CONFIG.names_block
    assert fe.stop()[0] == 4  # four requests taken from the avail ring
    assert server.requests_served() == 4
    record = [(kind, detail) for _, kind, detail in server.events if kind == "requestq"]
    assert record == [("requestq", "SET_DIRECTION 3 OUT -> OK 0"), ("requestq", "SET_VALUE 3 1 -> OK 0"),
                      ("requestq", "GET_VALUE 5 0 -> OK 1"),
                      ("requestq", f"GET_LINE_NAMES 0 0 -> OK {CONFIG.gpio_names_size} name bytes")]
    fe.close()


def test_an_edge_driven_from_the_host_reaches_the_eventq(server):
    fe = _started(server)
    assert fe.gpio_request(MsgType.SET_IRQ_TYPE, 2, IrqType.EDGE_RISING) == bytes([OK, 0])
    req, res = fe.ram.alloc(4, 8), fe.ram.alloc(1, 8)
    fe.ram.write(req, struct.pack("<HH", 2, 0))
    fe.submit(1, [(req, 4)], [(res, 1)], "event")
    server.set_input(2, 1)
    token, length = fe.wait_used(1)
    assert (token, length, fe.ram.read(res, 1)) == ("event", 1, b"\x01")  # VALID
    assert server.events[-1][1:] == ("eventq", "event 2 -> VALID")
    fe.close()


def test_a_second_frontend_after_the_first_hung_up(server):
    _started(server).close()
    fe = _started(server)
    assert fe.gpio_request(MsgType.GET_DIRECTION, 0) == bytes([OK, Direction.IN])
    fe.close()


def test_a_socket_in_use_is_refused(server):
    with pytest.raises(ServeError, match="in use"):
        Server(server.path, ModelDevice(CONFIG))


def test_guest_ram_beyond_32_bit_dma_is_refused_with_the_reason(tmp_path):
    narrow = DeviceConfig(ngpio=4, dma_addr_width=32)
    srv = Server(tmp_path / "narrow.sock", ModelDevice(narrow))
    thread = threading.Thread(target=srv.serve, kwargs={"once": True}, daemon=True)
    thread.start()
    fe = Frontend(str(srv.path), guest_phys_addr=0xFFFF_0000)
    fe.handshake()
    fe.request(vu.Request.SET_FEATURES, struct.pack("<Q", narrow.offered_features))
    r = fe.ram.regions[0]
    reply = fe.request(vu.Request.SET_MEM_TABLE, struct.pack("<II", 1, 0) +
                       vu.REGION.pack(r.guest_phys_addr, r.size, r.user_addr, 0),
                       fds=[fe.ram.fd], need_reply=True)
    assert struct.unpack("<Q", reply)[0] != 0
    thread.join(5)
    kind, reason = srv.events[-1][1:]
    assert kind == "disconnect" and "beyond the device's 32-bit DMA reach" in reason
    fe.close()


def test_the_control_socket_drives_and_reads_the_pins(server, tmp_path):
    from virtio_gpio.host.control import ControlSocket, command
    control = ControlSocket(tmp_path / "control.sock", server)
    fe = _started(server)
    assert command(control.path, "set 4 1") == "ok"
    assert fe.gpio_request(MsgType.GET_VALUE, 4) == bytes([OK, 1])
    fe.gpio_request(MsgType.SET_DIRECTION, 1, Direction.OUT)
    fe.gpio_request(MsgType.SET_VALUE, 1, 1)
    assert command(control.path, "wait 1 1 2") == "ok"
    assert command(control.path, "get 1") == "out 1" and command(control.path, "get 0") == "in"
    assert command(control.path, "outputs") == "0x2 0x2"
    assert command(control.path, "requests") == "3"
    assert command(control.path, "wait 1 0 0.1").startswith("error timeout")
    assert command(control.path, "set 99 1").startswith("error line 99 does not exist")
    assert command(control.path, "fly").startswith("error unknown command")
    assert "input (4, 1)" in command(control.path, "events")
    control.close()
    fe.close()


def test_serve_refuses_a_socket_in_a_missing_folder(tmp_path, capsys):
    from virtio_gpio.cli import main
    assert main(["serve", "--socket", str(tmp_path / "no" / "s.sock")]) == 2
    assert "does not exist" in capsys.readouterr().err
