"""Chain shapes the spec allows and Linux never builds, on the RTL in lock-step with the model
(contract §5): direct descriptors followed by an indirect one, writable buffers that overlap the
descriptor table, zero-length descriptors anywhere, requests and replies split at every byte.
The device parses a chain once; every reply byte must land where that parse said."""

from virtio_gpio.model.constants import DescFlags, MsgType, QueueIndex
from virtio_gpio.model.driver.linux_gpio import Pending
from virtio_gpio.model.layouts import (
    DESC_SIZE, GPIO_REPLY_SIZE, GPIO_REQUEST_PACKER, GPIO_REQUEST_SIZE, Reg,
)
from virtio_gpio.model.memory import Perm

from .. import configs
from ..env import DeviceEnv
from ..requirements import conformance_test

WRITE, INDIRECT = int(DescFlags.WRITE), int(DescFlags.INDIRECT)
FILL = 0xAA  # pre-fill of reply buffers: a byte the device forgot to write shows up
NO_INDIRECT = not configs.offers("offer_indirect_desc")
DESC_ADDR_BYTES = 8  # le64 addr is the first field of a descriptor


class Chain:
    """Buffers for one hand-built chain, each granted with exactly the access the device needs."""

    def __init__(self, env: DeviceEnv):
        self.env = env
        self.mem = env.memory

    def grant(self, addr: int, size: int, perm: Perm) -> None:
        if size:
            self.mem.firewall.grant(addr, size, perm, owner="test")

    def request(self, msg_type: int, gpio: int, value: int = 0, *, align: int = 64) -> int:
        addr = self.mem.alloc(GPIO_REQUEST_SIZE, align)
        self.mem.write(addr, GPIO_REQUEST_PACKER.pack(msg_type, gpio, value))
        self.grant(addr, GPIO_REQUEST_SIZE, Perm.READ)
        return addr

    def readable(self, data: bytes, *, align: int = 1) -> int:
        addr = self.mem.alloc(max(len(data), 1), align)
        self.mem.write(addr, data)
        self.grant(addr, len(data), Perm.READ)
        return addr

    def writable(self, size: int, *, offset: int = 0) -> int:
        """A pre-filled writable buffer; ``offset`` moves it off the allocator's alignment."""
        addr = self.mem.alloc(size + offset, 64) + offset
        self.mem.write(addr, bytes([FILL]) * size)
        self.grant(addr, size, Perm.WRITE)
        return addr

    def indirect_table(self, entries: list[tuple[int, int, int, int]]) -> int:
        """A table of (addr, len, flags, next) entries, granted READ."""
        addr = self.mem.alloc(DESC_SIZE * len(entries), DESC_SIZE)
        for i, (a, n, flags, nxt) in enumerate(entries):
            self.mem.write(addr + DESC_SIZE * i, a.to_bytes(8, "little") + n.to_bytes(4, "little")
                           + flags.to_bytes(2, "little") + nxt.to_bytes(2, "little"))
        self.grant(addr, DESC_SIZE * len(entries), Perm.READ)
        return addr


def send_chain(env: DeviceEnv, drv, descs: list[tuple[int, int, int]], reply_len: int) -> Pending:
    """Publish direct descriptors ``descs`` on the requestq, notify, and wait for the used element."""
    vq = drv.vqs[QueueIndex.REQUESTQ]
    pending = Pending(0, 0, reply_len)
    vq.add_chain(descs, pending)
    if vq.kick_prepare():
        env.transport.write(Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ)
    drv.wait(pending)
    return pending


@conformance_test("VQ-4", "VQ-10", "GPIO-1", "C-5", skip=NO_INDIRECT)
async def reply_goes_on_into_an_indirect_table_after_a_direct_writable_buffer(dut):
    """request (8 B) -> writable A (1 B) -> INDIRECT to a table holding writable B (1 B): the
    status byte goes to A and the value byte to B; the table itself is never written."""
    env = await DeviceEnv.start(dut, stall_probability=0.2)
    drv = env.driver()

    def scenario():
        drv.probe()
        c = Chain(env)
        req = c.request(MsgType.GET_VALUE, 0)
        a, b = c.writable(1), c.writable(1)
        table = c.indirect_table([(b, 1, WRITE, 0)])
        p = send_chain(env, drv, [(req, GPIO_REQUEST_SIZE, 0), (a, 1, WRITE),
                                  (table, DESC_SIZE, INDIRECT)], GPIO_REPLY_SIZE)
        assert p.used_len == GPIO_REPLY_SIZE, f"used.len {p.used_len}"
        reply = env.memory.read(a, 1) + env.memory.read(b, 1)
        assert FILL not in reply, f"reply bytes A, B = {reply.hex()}: one was never written"
    await env.run(scenario)


@conformance_test("VQ-2", "VQ-10", "GPIO-1", "C-5")
async def reply_follows_the_chain_as_parsed_when_it_overwrites_a_descriptor(dut):
    """request -> writable A (1 B) placed over the address field of the next descriptor ->
    writable C (1 B): the status byte changes that descriptor's address in memory, yet the value
    byte still goes to C, where the chain said when it was made available."""
    env = await DeviceEnv.start(dut, stall_probability=0.2)
    drv = env.driver()

    def scenario():
        drv.probe()
        vq = drv.vqs[QueueIndex.REQUESTQ]
        c = Chain(env)
        req = c.request(MsgType.GET_VALUE, 0)
        # C's address has a low byte that neither status value (0, 1) leaves unchanged.
        dest = c.writable(1, offset=0x13)
        third = vq.free_indices(3)[2]
        over = vq.desc_addr + DESC_SIZE * third  # the low byte of desc[third].addr
        c.grant(over, 1, Perm.WRITE)
        p = send_chain(env, drv, [(req, GPIO_REQUEST_SIZE, 0), (over, 1, WRITE), (dest, 1, WRITE)],
                       GPIO_REPLY_SIZE)
        assert p.used_len == GPIO_REPLY_SIZE, f"used.len {p.used_len}"
        assert env.memory.read(dest, 1)[0] != FILL, "the value byte did not reach C"
    await env.run(scenario)
