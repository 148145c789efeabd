"""A vhost-user frontend in Python for the backend's tests: the part of QEMU's vhost-user-gpio
that talks to a backend (the same messages, in QEMU 10's order), with the guest's RAM in a memfd
and the driver's rings built by the driver model's ``DriverVirtqueue``."""

import os
import select
import socket
import struct

from virtio_gpio.host import vhost_user as vu
from virtio_gpio.host.guest_ram import SharedGuestRam
from virtio_gpio.model.driver.vring import DriverVirtqueue
from virtio_gpio.model.layouts import GPIO_REQUEST_PACKER

USER_BASE = 0x7F00_0000_0000  # where "QEMU" has the guest's RAM in its own address space


class FrontendRam(SharedGuestRam):
    """The guest's RAM as the driver sees it, with a bump allocator for rings and buffers."""

    def __init__(self, size: int, guest_phys_addr: int = 0, addr_width: int = 64):
        super().__init__(addr_width)
        self.fd = os.memfd_create("guest-ram")
        os.ftruncate(self.fd, size)
        self.add_region(guest_phys_addr, size, USER_BASE, 0, os.dup(self.fd))
        self._next = guest_phys_addr + 0x1000

    def alloc(self, size: int, align: int = 16) -> int:
        addr = -(-self._next // align) * align
        self._next = addr + max(size, 1)
        return addr

    def user_addr(self, gpa: int) -> int:
        r = self.regions[0]
        return r.user_addr + gpa - r.guest_phys_addr


class Frontend:
    def __init__(self, path: str, *, ram_size: int = 1 << 20, guest_phys_addr: int = 0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.ram = FrontendRam(ram_size, guest_phys_addr)
        self.kicks: dict[int, int] = {}
        self.calls: dict[int, int] = {}
        self.vqs: dict[int, DriverVirtqueue] = {}

    def request(self, request: int, payload: bytes = b"", *, fds=(), reply: bool = False,
                need_reply: bool = False) -> bytes | None:
        flags = vu.VERSION | (vu.FLAG_NEED_REPLY if need_reply else 0)
        data = vu.HEADER.pack(request, flags, len(payload)) + payload
        if fds:
            self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))])
        else:
            self.sock.sendall(data)
        if not (reply or need_reply):
            return None
        header = self._exactly(vu.HEADER.size)
        got, flags, size = vu.HEADER.unpack(header)
        assert got == request and flags & vu.FLAG_REPLY, (got, flags)
        return self._exactly(size)

    def _exactly(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("the backend closed the connection")
            out += chunk
        return out

    def u64(self, request: int) -> int:
        return struct.unpack("<Q", self.request(request, reply=True))[0]

    def handshake(self) -> tuple[int, bytes]:
        """What QEMU does at realize: features, protocol features, the config. (features, config)"""
        self.request(vu.Request.SET_OWNER)
        features = self.u64(vu.Request.GET_FEATURES)
        protocol = self.u64(vu.Request.GET_PROTOCOL_FEATURES)
        self.request(vu.Request.SET_PROTOCOL_FEATURES, struct.pack("<Q", protocol))
        config = self.request(vu.Request.GET_CONFIG, vu.CONFIG_HEADER.pack(0, 8, 0) + bytes(8),
                              reply=True)
        return features, config[vu.CONFIG_HEADER.size:]

    def start(self, features: int, queues: dict[int, int], *, event_idx: bool, indirect: bool) -> None:
        """What QEMU does when the guest sets DRIVER_OK: features, memory, each vring, enable."""
        self.request(vu.Request.SET_FEATURES, struct.pack("<Q", features | vu.F_PROTOCOL_FEATURES))
        r = self.ram.regions[0]
        self.request(vu.Request.SET_MEM_TABLE,
                     struct.pack("<II", 1, 0) + vu.REGION.pack(r.guest_phys_addr, r.size, r.user_addr, 0),
                     fds=[self.ram.fd], need_reply=True)
        for index, num in queues.items():
            vq = self.vqs[index] = DriverVirtqueue(self.ram, index, num, indirect=indirect,
                                                   event_idx=event_idx)
            self.kicks[index], self.calls[index] = os.eventfd(0), os.eventfd(0)
            self.request(vu.Request.SET_VRING_NUM, vu.VRING_STATE.pack(index, num))
            self.request(vu.Request.SET_VRING_BASE, vu.VRING_STATE.pack(index, 0))
            self.request(vu.Request.SET_VRING_ADDR, vu.VRING_ADDR.pack(
                index, 0, self.ram.user_addr(vq.desc_addr), self.ram.user_addr(vq.used_addr),
                self.ram.user_addr(vq.avail_addr), 0))
            self.request(vu.Request.SET_VRING_KICK, struct.pack("<Q", index), fds=[self.kicks[index]])
            self.request(vu.Request.SET_VRING_CALL, struct.pack("<Q", index), fds=[self.calls[index]])
        for index in queues:
            self.request(vu.Request.SET_VRING_ENABLE, vu.VRING_STATE.pack(index, 1))
            self.u64(vu.Request.GET_FEATURES)  # QEMU's sync point

    def submit(self, index: int, out_bufs, in_bufs, token) -> None:
        vq = self.vqs[index]
        vq.add(out_bufs, in_bufs, token)
        if vq.kick_prepare():
            os.eventfd_write(self.kicks[index], 1)

    def gpio_request(self, msg_type: int, gpio: int, value: int = 0, rxlen: int = 2) -> bytes:
        req, res = self.ram.alloc(8, 8), self.ram.alloc(rxlen, 8)
        self.ram.write(req, GPIO_REQUEST_PACKER.pack(msg_type, gpio, value))
        self.submit(0, [(req, 8)], [(res, rxlen)], "req")
        token, length = self.wait_used(0)
        assert length == rxlen, f"used.len {length}, not {rxlen}"
        return self.ram.read(res, rxlen)

    def wait_used(self, index: int, timeout: float = 5.0):
        """The next used buffer of queue ``index``, after its call eventfd fired."""
        vq = self.vqs[index]
        while not vq.more_used():
            ready, _, _ = select.select([self.calls[index]], [], [], timeout)
            if not ready:
                raise TimeoutError(f"no call on vring {index} within {timeout} s")
            os.eventfd_read(self.calls[index])
        return vq.get_buf()

    def stop(self) -> list[int]:
        """What QEMU does at shutdown: disable each ring and fetch its base."""
        bases = []
        for index in self.vqs:
            self.request(vu.Request.SET_VRING_ENABLE, vu.VRING_STATE.pack(index, 0))
            bases.append(vu.VRING_STATE.unpack(
                self.request(vu.Request.GET_VRING_BASE, vu.VRING_STATE.pack(index, 0), reply=True))[1])
        return bases

    def close(self) -> None:
        self.sock.close()
        for fd in [*self.kicks.values(), *self.calls.values(), self.ram.fd]:
            os.close(fd)
        self.ram.close()
