"""A vhost-user backend for QEMU's ``vhost-user-gpio-pci`` (the role vhost-device-gpio plays for
rust-vmm): the guest's virtqueues are served by a virtio-mmio GPIO device, programmed from the
vhost-user messages through its registers.

The device behind it is anything with the register interface of ``model.device.VirtioGpioDevice``
(``read``, ``write``, ``step``, ``irq``, pins), so the golden model and the Verilated RTL take the
same path. The translation, message by message:

* SET_FEATURES: the driver features, written to DriverFeatures when the device starts.
* SET_MEM_TABLE: the guest's RAM, mapped (``SharedGuestRam``); the device reaches all of it.
* SET_VRING_NUM / ADDR / BASE / KICK / CALL: one queue's set-up, kept until the device starts;
  ring addresses are translated from QEMU's virtual addresses to guest-physical ones.
* SET_VRING_ENABLE 1 (the first): the device starts: Status 0, ACKNOWLEDGE | DRIVER, the
  features, FEATURES_OK, each queue with an address (QueueNum, the three addresses, QueueReady),
  DRIVER_OK. A later enable of another queue sets that queue up while the device runs.
* a kick on a queue's eventfd: a write to QueueNotify, then the device works.
* the device's irq: InterruptStatus is read and acknowledged, and the call eventfd of each queue
  whose used.idx moved is written. A configuration-change bit (DEVICE_NEEDS_RESET) is logged as
  an error: this backend has no channel to tell the guest.
* SET_VRING_ENABLE 0 / GET_VRING_BASE: that queue's QueueReady goes to 0; GET_VRING_BASE answers
  the next avail index. When no queue is left, the device is reset.
* GET_CONFIG: the device's configuration space, read through its registers.

Protocol features offered: CONFIG (QEMU requires it), REPLY_ACK, and BACKEND_REQ (QEMU requires
both when the device offers ACCESS_PLATFORM; the backend channel is accepted and never used).
"""

import array
import enum
import logging
import os
import select
import socket
import struct
from dataclasses import dataclass, field

from virtio_gpio.model.constants import DeviceStatus, InterruptStatus, QueueIndex
from virtio_gpio.model.layouts import RING_IDX_OFFSET, Reg

from .guest_ram import MemoryTableError, SharedGuestRam
from .request_trace import completions

log = logging.getLogger("virtio_gpio.vhost_user")

HEADER = struct.Struct("<III")  # request, flags, size
VERSION = 0x1
FLAG_REPLY = 1 << 2
FLAG_NEED_REPLY = 1 << 3
F_PROTOCOL_FEATURES = 1 << 30  # a virtio feature bit that only vhost-user uses
MAX_PAYLOAD = 4096
MAX_FDS = 8
VRING_INDEX_MASK = 0xFF
VRING_NOFD = 1 << 8
NUM_QUEUES = 2
CONFIG_HEADER = struct.Struct("<III")  # offset, size, flags
REGION = struct.Struct("<QQQQ")      # guest_phys_addr, memory_size, userspace_addr, mmap_offset
VRING_STATE = struct.Struct("<II")   # index, num
VRING_ADDR = struct.Struct("<IIQQQQ")  # index, flags, desc, used, avail, log


class Request(enum.IntEnum):
    GET_FEATURES = 1
    SET_FEATURES = 2
    SET_OWNER = 3
    RESET_OWNER = 4
    SET_MEM_TABLE = 5
    SET_LOG_BASE = 6
    SET_LOG_FD = 7
    SET_VRING_NUM = 8
    SET_VRING_ADDR = 9
    SET_VRING_BASE = 10
    GET_VRING_BASE = 11
    SET_VRING_KICK = 12
    SET_VRING_CALL = 13
    SET_VRING_ERR = 14
    GET_PROTOCOL_FEATURES = 15
    SET_PROTOCOL_FEATURES = 16
    GET_QUEUE_NUM = 17
    SET_VRING_ENABLE = 18
    SET_BACKEND_REQ_FD = 21
    GET_CONFIG = 24
    SET_CONFIG = 25
    RESET_DEVICE = 34


class ProtocolFeature(enum.IntFlag):
    MQ = 1 << 0
    REPLY_ACK = 1 << 3
    BACKEND_REQ = 1 << 5
    CONFIG = 1 << 9


OFFERED_PROTOCOL_FEATURES = (ProtocolFeature.MQ | ProtocolFeature.REPLY_ACK
                             | ProtocolFeature.BACKEND_REQ | ProtocolFeature.CONFIG)


class ProtocolError(Exception):
    """A message this backend cannot accept; the connection is closed with this reason."""


@dataclass
class Message:
    request: int
    flags: int
    payload: bytes
    fds: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        try:
            return Request(self.request).name
        except ValueError:
            return f"request {self.request}"


def receive(sock: socket.socket) -> Message | None:
    """One message, or None when the frontend closed the connection."""
    data, fds, _, _ = socket.recv_fds(sock, HEADER.size, MAX_FDS)
    if not data:
        return None
    if len(data) < HEADER.size:
        data += _exactly(sock, HEADER.size - len(data))
    request, flags, size = HEADER.unpack(data)
    if flags & 0x3 != VERSION:
        raise ProtocolError(f"message version {flags & 0x3}, not {VERSION}")
    if size > MAX_PAYLOAD:
        raise ProtocolError(f"a {size}-byte payload (at most {MAX_PAYLOAD})")
    return Message(request, flags, _exactly(sock, size), list(fds))


def _exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ProtocolError("the frontend closed the connection in the middle of a message")
        out += chunk
    return out


def send(sock: socket.socket, request: int, payload: bytes = b"", *, reply: bool = True,
         fds: list[int] = ()) -> None:
    flags = VERSION | (FLAG_REPLY if reply else 0)
    data = HEADER.pack(request, flags, len(payload)) + payload
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.sendall(data)


@dataclass
class Vring:
    num: int = 0
    base: int = 0
    desc: int = 0   # guest-physical
    avail: int = 0
    used: int = 0
    kick: int | None = None
    call: int | None = None
    enabled: bool = False
    addressed: bool = False
    started: bool = False
    last_used: int = 0


class VhostUserGpio:
    """One frontend connection: its messages, its rings, and the device they drive."""

    def __init__(self, device, config, *, on_event=None):
        self.device, self.config = device, config
        self.memory: SharedGuestRam = device.memory
        self.vrings = [Vring() for _ in range(NUM_QUEUES)]
        self.features = 0
        self.protocol_features = 0
        self.running = False
        self.backend_fd: int | None = None
        self.on_event = on_event or (lambda kind, detail: None)
        self.requests_served = 0

    # -- messages ---------------------------------------------------------------------------

    def handle(self, sock: socket.socket, msg: Message) -> None:
        handler = getattr(self, f"_on_{msg.name.lower()}", None)
        log.debug("%s (%d bytes, %d fds)", msg.name, len(msg.payload), len(msg.fds))
        ack = (msg.flags & FLAG_NEED_REPLY and self.protocol_features & ProtocolFeature.REPLY_ACK)
        if handler is None:
            for fd in msg.fds:
                os.close(fd)
            if ack:
                send(sock, msg.request, struct.pack("<Q", 1))
                log.warning("%s is not supported: refused", msg.name)
                return
            raise ProtocolError(f"{msg.name} is not supported by this backend")
        try:
            answer = handler(msg)
        except (MemoryTableError, ProtocolError) as e:
            if ack:
                send(sock, msg.request, struct.pack("<Q", 1))
            raise ProtocolError(f"{msg.name}: {e}") from None
        if answer is not None:
            send(sock, msg.request, answer)
        elif ack:
            send(sock, msg.request, struct.pack("<Q", 0))

    def _u64(self, msg: Message) -> int:
        if len(msg.payload) < 8:
            raise ProtocolError(f"a {len(msg.payload)}-byte payload where 8 were due")
        return struct.unpack_from("<Q", msg.payload)[0]

    def _vring(self, index: int) -> Vring:
        if not 0 <= index < NUM_QUEUES:
            raise ProtocolError(f"vring {index} does not exist (this device has {NUM_QUEUES})")
        return self.vrings[index]

    def _on_get_features(self, msg):
        return struct.pack("<Q", self.config.offered_features | F_PROTOCOL_FEATURES)

    def _on_set_features(self, msg):
        self.features = self._u64(msg) & ~F_PROTOCOL_FEATURES

    def _on_get_protocol_features(self, msg):
        return struct.pack("<Q", OFFERED_PROTOCOL_FEATURES)

    def _on_set_protocol_features(self, msg):
        self.protocol_features = self._u64(msg) & OFFERED_PROTOCOL_FEATURES

    def _on_set_owner(self, msg):
        pass

    def _on_reset_owner(self, msg):
        self._stop_device()

    _on_reset_device = _on_reset_owner

    def _on_get_queue_num(self, msg):
        return struct.pack("<Q", NUM_QUEUES)

    def _on_set_backend_req_fd(self, msg):
        self.backend_fd = msg.fds[0] if msg.fds else None

    def _on_set_mem_table(self, msg):
        count, _ = struct.unpack_from("<II", msg.payload)
        if count != len(msg.fds):
            raise ProtocolError(f"{count} memory regions with {len(msg.fds)} file descriptors")
        self.memory.close()
        for i, fd in enumerate(msg.fds):
            gpa, size, user, offset = REGION.unpack_from(msg.payload, 8 + i * REGION.size)
            self.memory.add_region(gpa, size, user, offset, fd)
        log.info("guest RAM: %s", ", ".join(f"[{r.guest_phys_addr:#x}, +{r.size:#x})"
                                            for r in self.memory.regions))

    def _on_set_vring_num(self, msg):
        index, num = VRING_STATE.unpack_from(msg.payload)
        self._vring(index).num = num

    def _on_set_vring_base(self, msg):
        index, base = VRING_STATE.unpack_from(msg.payload)
        if base != 0:
            raise ProtocolError(f"vring {index} resumes at avail index {base}: a virtio-mmio "
                                f"device always starts at 0 (no reconnect or migration)")
        self._vring(index).base = base

    def _on_set_vring_addr(self, msg):
        index, _, desc, used, avail, _ = VRING_ADDR.unpack_from(msg.payload)
        v = self._vring(index)
        v.desc = self.memory.guest_physical(desc)
        v.used = self.memory.guest_physical(used)
        v.avail = self.memory.guest_physical(avail)
        v.addressed = True

    def _eventfd(self, msg) -> tuple[Vring, int | None]:
        value = self._u64(msg)
        v = self._vring(value & VRING_INDEX_MASK)
        fd = None if value & VRING_NOFD or not msg.fds else msg.fds[0]
        return v, fd

    def _on_set_vring_kick(self, msg):
        v, fd = self._eventfd(msg)
        if v.kick is not None:
            os.close(v.kick)
        v.kick = fd
        if not self.protocol_features and fd is not None:
            v.enabled = True  # without PROTOCOL_FEATURES a ring starts enabled
            self._enable(self.vrings.index(v))

    def _on_set_vring_call(self, msg):
        v, fd = self._eventfd(msg)
        if v.call is not None:
            os.close(v.call)
        v.call = fd

    def _on_set_vring_err(self, msg):
        _, fd = self._eventfd(msg)
        if fd is not None:
            os.close(fd)

    def _on_set_vring_enable(self, msg):
        index, enable = VRING_STATE.unpack_from(msg.payload)
        v = self._vring(index)
        v.enabled = bool(enable)
        if enable:
            self._enable(index)
        else:
            self._disable(index)

    def _on_get_vring_base(self, msg):
        index, _ = VRING_STATE.unpack_from(msg.payload)
        v = self._vring(index)
        self._disable(index)
        base = v.base
        for fd in (v.kick, v.call):
            if fd is not None:
                os.close(fd)
        self.vrings[index] = Vring()
        return VRING_STATE.pack(index, base)

    def _on_get_config(self, msg):
        offset, size, flags = CONFIG_HEADER.unpack_from(msg.payload)
        data = bytes(self.device.read(Reg.CONFIG + offset + i, 1) for i in range(size))
        return CONFIG_HEADER.pack(offset, size, flags) + data

    def _on_set_config(self, msg):
        raise ProtocolError("the configuration space is read-only")

    # -- the device -------------------------------------------------------------------------

    def _enable(self, index: int) -> None:
        if not self.running:
            self._start_device()
        elif not self.vrings[index].started:
            self._start_queue(index)

    def _disable(self, index: int) -> None:
        v = self.vrings[index]
        if v.started:
            v.base = self.device.next_avail(index)  # before a reset forgets it (GET_VRING_BASE)
            if v.base is None:  # a device that cannot tell: every request taken was completed
                v.base = self.memory.read_u16(v.used + RING_IDX_OFFSET)
            self.device.write(Reg.QUEUE_SEL, index)
            self.device.write(Reg.QUEUE_READY, 0)
            v.started = False
        if self.running and not any(r.started for r in self.vrings):
            self._stop_device()

    def _start_device(self) -> None:
        d = self.device
        d.write(Reg.STATUS, 0)
        d.write(Reg.STATUS, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER)
        for sel in (0, 1):
            d.write(Reg.DRIVER_FEATURES_SEL, sel)
            d.write(Reg.DRIVER_FEATURES, (self.features >> (32 * sel)) & 0xFFFF_FFFF)
        status = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK
        d.write(Reg.STATUS, status)
        if not d.read(Reg.STATUS) & DeviceStatus.FEATURES_OK:
            raise ProtocolError(f"the device refused the features {self.features:#x}")
        for i, v in enumerate(self.vrings):
            if v.addressed and v.enabled:
                self._start_queue(i)
        d.write(Reg.STATUS, status | DeviceStatus.DRIVER_OK)
        self.running = True
        log.info("device started: features %#x, queues %s", self.features,
                 [i for i, v in enumerate(self.vrings) if v.started])
        self.on_event("start", self.features)
        self.work()

    def _start_queue(self, index: int) -> None:
        v, d = self.vrings[index], self.device
        if not v.addressed:
            raise ProtocolError(f"vring {index} enabled before its addresses were set")
        d.write(Reg.QUEUE_SEL, index)
        if d.read(Reg.QUEUE_SIZE_MAX) < v.num:
            raise ProtocolError(f"vring {index} has {v.num} entries; the device takes at most "
                                f"{d.read(Reg.QUEUE_SIZE_MAX)} (queue_size_max)")
        d.write(Reg.QUEUE_SIZE, v.num)
        for low, addr in ((Reg.QUEUE_DESC_LOW, v.desc), (Reg.QUEUE_DRIVER_LOW, v.avail),
                          (Reg.QUEUE_DEVICE_LOW, v.used)):
            d.write(low, addr & 0xFFFF_FFFF)
            d.write(low + 4, addr >> 32)
        d.write(Reg.QUEUE_READY, 1)
        v.started, v.last_used = True, 0

    def _stop_device(self) -> None:
        if self.running:
            self.device.write(Reg.STATUS, 0)
            log.info("device reset (%d requests served)", self.requests_served)
        self.running = False
        for v in self.vrings:
            v.started = False

    def kick(self, index: int) -> None:
        """A notification from the guest on queue ``index``."""
        if self.running:
            self.device.write(Reg.QUEUE_NOTIFY, index)
            self.work()

    def work(self) -> None:
        """Let the device run, then pass its interrupt on to the guest."""
        self.device.step()
        if not self.device.irq:
            return
        status = self.device.read(Reg.INTERRUPT_STATUS)
        self.device.write(Reg.INTERRUPT_ACK, status)
        if status & InterruptStatus.CONFIG_CHANGE:
            log.error("the device set DEVICE_NEEDS_RESET (Status %#x): %s",
                      self.device.read(Reg.STATUS), self.device.describe_error())
            self.on_event("needs_reset", self.device.describe_error())
        moved = []
        for i, v in enumerate(self.vrings):
            if not v.started:
                continue
            used = self.memory.read_u16(v.used + RING_IDX_OFFSET)
            if used != v.last_used:
                if i == QueueIndex.REQUESTQ:
                    self.requests_served += (used - v.last_used) & 0xFFFF
                for done in completions(self.memory, i, v.desc, v.used, v.num, v.last_used, used):
                    log.info("%s", done)
                    self.on_event(done.queue, done.text)
                v.last_used = used
                moved.append(v)
        # Only now: a guest told of one ring may look at the other (a shared interrupt line) and
        # reuse its buffers before they were recorded.
        for v in moved:
            if v.call is not None:
                os.write(v.call, struct.pack("<Q", 1))

    def close(self) -> None:
        self._stop_device()
        for v in self.vrings:
            for fd in (v.kick, v.call):
                if fd is not None:
                    os.close(fd)
        self.vrings = [Vring() for _ in range(NUM_QUEUES)]
        if self.backend_fd is not None:
            os.close(self.backend_fd)
            self.backend_fd = None
        self.memory.close()


def serve_connection(conn: socket.socket, backend: VhostUserGpio, *, poll_extra=(),
                     on_idle=None, stop_when=lambda: False) -> str:
    """Serve one frontend until it hangs up (or ``stop_when()``); the reason the connection
    ended. ``poll_extra``: more fds that wake the loop, which then calls ``on_idle``."""
    try:
        while not stop_when():
            fds = {conn.fileno(): None}
            for i, v in enumerate(backend.vrings):
                if v.kick is not None:
                    fds[v.kick] = i
            for fd in poll_extra:
                fds[fd] = "extra"
            poller = select.poll()
            for fd in fds:
                poller.register(fd, select.POLLIN)
            for fd, _ in poller.poll(100):
                what = fds.get(fd)
                if fd == conn.fileno():
                    msg = receive(conn)
                    if msg is None:
                        return "the frontend closed the connection"
                    backend.handle(conn, msg)
                elif isinstance(what, int):
                    os.read(fd, 8)
                    backend.kick(what)
            if on_idle is not None:
                on_idle()
            if backend.running:
                backend.work()  # pin changes may have made events due
        return "the backend was stopped"
    except ProtocolError as e:
        return f"protocol error: {e}"
    except ConnectionError as e:
        return f"the connection failed: {e}"
    finally:
        backend.close()
        conn.close()
