"""Chain shapes the spec allows and Linux never builds, on the RTL in lock-step with the model
(contract §5): direct descriptors followed by an indirect one, writable buffers that overlap the
descriptor table, zero-length descriptors anywhere, requests and replies split at every byte.
The device parses a chain once; every reply byte must land where that parse said.

And runs long enough to wrap small rings many times: queue sizes 2, 4 and 8 on the requestq (one
request at a time, and full batches behind one notify) and on the eventq, so that whatever goes
wrong only once a ring index wraps (not only at 65536) shows.

Every reply here depends on line state the test set up itself (an OUT line at 1, a direction just
set), and the test predicts it on its own (``Lines``), so a byte in the wrong place, a byte never
written or a request byte gathered wrongly fails an assertion, not only the comparison with the
model. Chain shapes vary per request with ``seeded``: reproducible from the run's seed."""

import os
import random
from dataclasses import dataclass

from virtio_gpio.model.constants import (
    DescFlags, Direction, Feature, IrqType, MsgType, QueueIndex, ReplyStatus,
)
from virtio_gpio.model.driver.linux_gpio import LINUX_KNOWN_FEATURES, Pending
from virtio_gpio.model.layouts import (
    DESC_SIZE, GPIO_REPLY_SIZE, GPIO_REQUEST_PACKER, GPIO_REQUEST_SIZE, RING_IDX_OFFSET, Reg,
)
from virtio_gpio.model.memory import Perm

from .. import configs
from ..env import DeviceEnv, seeded
from ..requirements import conformance_test

NEXT, WRITE, INDIRECT = int(DescFlags.NEXT), int(DescFlags.WRITE), int(DescFlags.INDIRECT)
FILL = 0xAA  # pre-fill of reply buffers: a byte the device forgot to write shows up
BAIT = 0x5C  # memory no descriptor lets the device touch (zero-length descriptors point at it)
NO_INDIRECT = not configs.offers("offer_indirect_desc")
NO_IRQ = not configs.offers("offer_irq")
DESC_ADDR_BYTES = 8  # le64 addr is the first field of a descriptor
OK, ERR = ReplyStatus.OK, ReplyStatus.ERR
SMALL_QUEUE_SIZES = (2, 4, 8)


def _names_size() -> int:
    """gpio_names_size of the configuration under test (1 when none is set, e.g. when listing)."""
    text = os.environ.get(configs.CONFIG_ENV)
    return 1 if text is None else configs.from_json(text).gpio_names_size


NO_NAMES = _names_size() == 0


class Chain:
    """Buffers for one hand-built chain, each granted with exactly the access the device needs;
    ``release`` takes the grants back once the chain is done."""

    def __init__(self, env: DeviceEnv):
        self.env = env
        self.mem = env.memory
        self.grants = []

    def grant(self, addr: int, size: int, perm: Perm) -> None:
        if size:
            self.grants.append(self.mem.firewall.grant(addr, size, perm, owner="test"))

    def release(self) -> None:
        for g in self.grants:
            self.mem.firewall.revoke(g)
        self.grants.clear()

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

    def bait(self, size: int = 16) -> int:
        """Memory granted to nobody: a zero-length descriptor points here, so any access the
        device makes through one is a firewall violation."""
        addr = self.mem.alloc(size, 16)
        self.mem.write(addr, bytes([BAIT]) * size)
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


# -- chain shapes ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Piece:
    """One buffer descriptor of a hand-built chain: ``length`` bytes, device-writable or not."""

    write: bool
    length: int


def R(n: int) -> Piece:
    return Piece(False, n)


def W(n: int) -> Piece:
    return Piece(True, n)


def cut(rng: random.Random, total: int, most: int = 3) -> list[int]:
    """``total`` bytes as 1..``most`` non-empty pieces (none for 0 bytes)."""
    if total == 0:
        return []
    k = rng.randint(1, min(most, total))
    cuts = sorted(rng.sample(range(1, total), k - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total])]


def send_shaped(env: DeviceEnv, drv, c: Chain, request: bytes, direct: list[Piece],
                table: list[Piece] | None = None, *, pointer_flags: int = INDIRECT,
                rng: random.Random | None = None, reply_len: int = GPIO_REPLY_SIZE
                ) -> tuple[Pending, list[tuple[int, int]]]:
    """Send ``request`` in the readable pieces of ``direct`` and then ``table`` (an indirect table
    the last direct descriptor points at, flags ``pointer_flags``), in chain order; writable
    pieces are pre-filled buffers, zero-length pieces point at bait. With ``rng`` the table's
    entries after entry 0 sit in shuffled slots, linked by ``next``, and the tail's stale ``next``
    points beyond the table. Returns the completed chain and its writable buffers in chain order."""
    readable = sum(p.length for p in [*direct, *(table or [])] if not p.write)
    assert readable == len(request), (readable, len(request))
    bait = c.bait()
    pos = 0
    writables = []

    def desc(p: Piece) -> tuple[int, int, int]:
        nonlocal pos
        flags = WRITE if p.write else 0
        if p.length == 0:
            return bait, 0, flags
        if p.write:
            addr = c.writable(p.length)
            writables.append((addr, p.length))
        else:
            addr = c.readable(request[pos:pos + p.length])
            pos += p.length
        return addr, p.length, flags

    descs = [desc(p) for p in direct]
    if table is not None:
        entries = [desc(p) for p in table]
        slots = list(range(len(entries)))
        if rng is not None:
            rest = slots[1:]
            rng.shuffle(rest)
            slots = [0, *rest]
        laid: list = [None] * len(entries)
        for k, (addr, length, flags) in enumerate(entries):
            if k + 1 < len(entries):
                laid[slots[k]] = (addr, length, flags | NEXT, slots[k + 1])
            else:
                laid[slots[k]] = (addr, length, flags, len(entries) + 3)  # stale, not followed
        t = c.indirect_table(laid)
        descs.append((t, DESC_SIZE * len(laid), pointer_flags))
    return send_chain(env, drv, descs, reply_len), writables


def check_reply(env: DeviceEnv, pending: Pending, writables: list[tuple[int, int]],
                expected: bytes, what: str) -> None:
    """used.len is the reply's length, the reply bytes are in the writable buffers in chain order,
    and every writable byte after them still holds the pre-fill (GPIO-1, VQ-10, contract §5)."""
    assert pending.used_len == len(expected), \
        f"{what}: used.len {pending.used_len}, expected {len(expected)}"
    got = b"".join(env.memory.read(a, n) for a, n in writables)
    assert got[:len(expected)] == expected, \
        f"{what}: reply {got[:len(expected)].hex()}, expected {expected.hex()}"
    assert got[len(expected):] == bytes([FILL]) * (len(got) - len(expected)), \
        f"{what}: written beyond used.len: {got.hex()}"


# -- line state the test keeps itself ---------------------------------------------------------

class Lines:
    """Four lines in states the test sets up and tracks itself, and requests whose replies
    depend on that state, predicted without the model: an OUT line at 1, an IN line whose pin is
    high, a line that toggles between OUT and IN and between 0 and 1, and a NONE line. A request
    whose gpio or value has a non-zero high byte is refused, so that every request byte counts."""

    def __init__(self, env: DeviceEnv, drv):
        n = env.config.ngpio
        assert n >= 4, "the chain tests need four lines"
        self.env, self.drv = env, drv
        self.none, self.inp, self.toggle, self.high = 0, 1, 2, n - 1
        self.direction = {line: env.config.reset_directions[line] for line in range(n)}
        self.latch = dict.fromkeys(range(n), 0)
        self.pin = dict.fromkeys(range(n), 0)

    def set_up(self) -> None:
        """Driver-thread code: put the four lines in their states (Linux's request shapes)."""
        drv = self.drv
        drv.direction_output(self.high, 1)
        drv.direction_input(self.inp)
        self.env.set_input_blocking(self.inp, 1)
        drv.direction_output(self.toggle, 0)
        drv.free(self.none)
        self.direction.update({self.high: Direction.OUT, self.inp: Direction.IN,
                               self.toggle: Direction.OUT, self.none: Direction.NONE})
        self.latch[self.high] = 1
        self.pin[self.inp] = 1
        self.check_pins()

    def pick(self, rng: random.Random, *, sets: bool = True, odd: bool = True) -> tuple[int, int, int]:
        """A request (type, gpio, value) whose reply shows the state it read."""
        t = self.toggle
        choices = [(MsgType.GET_VALUE, self.high, 0), (MsgType.GET_DIRECTION, self.high, 0),
                   (MsgType.GET_DIRECTION, self.inp, 0), (MsgType.GET_VALUE, self.inp, 0),
                   (MsgType.GET_VALUE, self.none, 0), (MsgType.GET_DIRECTION, t, 0),
                   (MsgType.GET_VALUE, t, 0)]
        if sets:
            flipped = Direction.IN if self.direction[t] is Direction.OUT else Direction.OUT
            choices += [(MsgType.SET_VALUE, t, 1 - self.latch[t]),
                        (MsgType.SET_DIRECTION, t, flipped)] * 2
        if odd:
            choices += [(MsgType.GET_DIRECTION, 0x100 | self.high, 0),  # gpio high byte
                        (MsgType.SET_VALUE, t, 0x100 | (1 - self.latch[t])),  # value byte 1
                        (MsgType.SET_VALUE, t, 0x0100_0000),  # value byte 3
                        (MsgType.GET_VALUE | 0x100, self.high, 0)]  # type high byte
        return rng.choice(choices)

    def expect(self, msg: int, gpio: int, value: int) -> bytes:
        """The reply the contract gives (§7), and the state change it makes, for the requests
        ``pick`` makes (no irq types are set on these lines)."""
        if gpio >= self.env.config.ngpio or msg not in tuple(MsgType):
            return bytes([ERR, 0])
        d = self.direction[gpio]
        if msg == MsgType.GET_DIRECTION:
            return bytes([OK, d])
        if msg == MsgType.GET_VALUE:
            if d is Direction.NONE:
                return bytes([ERR, 0])
            return bytes([OK, self.latch[gpio] if d is Direction.OUT else self.pin[gpio]])
        if msg == MsgType.SET_VALUE:
            if value not in (0, 1):
                return bytes([ERR, 0])
            self.latch[gpio] = value
            return bytes([OK, 0])
        if msg == MsgType.SET_DIRECTION:
            if value not in tuple(Direction):
                return bytes([ERR, 0])
            self.direction[gpio] = Direction(value)
            if value == Direction.NONE:
                self.latch[gpio] = 0
            return bytes([OK, 0])
        raise AssertionError(f"no prediction for message {msg}")

    def check_pins(self) -> None:
        """The pins of the tracked lines, read directly: OUT lines drive their latch."""
        oe, o = self.env.pins.output_enables, self.env.pins.outputs
        for line in (self.none, self.inp, self.toggle, self.high):
            want_oe = int(self.direction[line] is Direction.OUT)
            assert (oe >> line & 1, o >> line & 1) == (want_oe, self.latch[line]), \
                f"line {line}: gpio_oe {oe >> line & 1}, gpio_o {o >> line & 1}; expected " \
                f"{want_oe}, {self.latch[line]}"


def reply_of(env: DeviceEnv, drv, msg_type: int, gpio: int, value: int = 0) -> bytes:
    """One request in Linux's shape; its raw reply bytes, whatever the status (used.len 2)."""
    res = env.memory.alloc(GPIO_REPLY_SIZE, 64)
    env.memory.write(res, bytes([FILL]) * GPIO_REPLY_SIZE)
    pending = drv.submit(msg_type, gpio, value, req=env.memory.alloc(GPIO_REQUEST_SIZE, 64), res=res)
    drv.wait(pending)
    assert pending.used_len == GPIO_REPLY_SIZE, f"used.len {pending.used_len}"
    return env.memory.read(res, GPIO_REPLY_SIZE)


def capacity(drv, queue: int = QueueIndex.REQUESTQ) -> int:
    """Requests (or eventq buffers) a queue holds at once: one descriptor each with indirect
    descriptors, else two."""
    vq = drv.vqs[queue]
    return vq.num if vq.indirect else vq.num // 2


def delivered(drv, line: int) -> int:
    return sum(1 for gpio, what in drv.log.events if gpio == line and what == "VALID")


def used_idx(env: DeviceEnv, vq) -> int:
    return env.memory.read_u16(vq.used_addr + RING_IDX_OFFSET)


# -- only Linux's chain shapes ------------------------------------------------------------------

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


@conformance_test("VQ-1", "VQ-4", "VQ-10", "GPIO-1", "GPIO-2", "GPIO-11", "C-5", "C-7",
                  skip=NO_INDIRECT)
async def direct_descriptors_then_an_indirect_table_with_the_rest(dut):
    """The request's first k bytes (every k from 1 to 8, twice) in direct readable descriptors,
    then an INDIRECT pointer, with and without the WRITE flag (which the device ignores), to a
    table that holds the rest of the request and the reply; with k = 8, once the reply's status
    byte is direct too and only the value byte is in the table. Table entries after entry 0 sit
    in shuffled slots."""
    env = await DeviceEnv.start(dut, stall_probability=0.2)
    drv = env.driver()
    rng = seeded(env, "direct-then-indirect")

    def scenario():
        drv.probe()
        lines = Lines(env, drv)
        lines.set_up()
        for trial in range(16):
            msg = lines.pick(rng)
            k = 1 + trial % 8
            pointer_write = (trial + trial // 8) % 2 == 1  # every k with and without WRITE
            direct = [R(n) for n in cut(rng, k)]
            table = [R(n) for n in cut(rng, GPIO_REQUEST_SIZE - k)]
            if k == GPIO_REQUEST_SIZE and trial >= 8:
                direct.append(W(1))
                table = [W(1)]
            else:
                table += [W(n) for n in cut(rng, GPIO_REPLY_SIZE, 2)]
            c = Chain(env)
            what = (f"trial {trial}: {msg}, direct {[p.length for p in direct]} + table "
                    f"{[(p.write, p.length) for p in table]}, pointer WRITE {pointer_write}")
            p, writables = send_shaped(env, drv, c, GPIO_REQUEST_PACKER.pack(*msg), direct, table,
                                       pointer_flags=INDIRECT | (WRITE if pointer_write else 0),
                                       rng=rng)
            check_reply(env, p, writables, lines.expect(*msg), what)
            lines.check_pins()
            c.release()
    await env.run(scenario)


ZERO_PLACES = ("in the request", "after the request", "before the reply", "in the reply",
               "at the head", "at the tail")


def with_zeros(rng: random.Random, places: list[str]) -> list[Piece]:
    """A request and a 2-byte reply as pieces, with zero-length descriptors at ``places``."""
    request = cut(rng, GPIO_REQUEST_SIZE, 4)
    if "in the request" in places and len(request) == 1:
        at = rng.randint(1, GPIO_REQUEST_SIZE - 1)
        request = [at, GPIO_REQUEST_SIZE - at]
    reply = [1, 1] if "in the reply" in places else cut(rng, GPIO_REPLY_SIZE, 2)
    readable = [R(n) for n in request]
    writable = [W(n) for n in reply]
    if "in the request" in places:
        for _ in range(rng.randint(1, 2)):
            readable.insert(rng.randint(1, len(readable) - 1), R(0))
    if "in the reply" in places:
        writable.insert(rng.randint(1, len(writable) - 1), W(0))
    if "after the request" in places:
        readable.append(R(0))
    if "before the reply" in places:
        writable.insert(0, W(0))
    if "at the head" in places:
        readable.insert(0, R(0))
    if "at the tail" in places:
        writable.append(W(0))
    return readable + writable


@conformance_test("VQ-1", "VQ-2", "VQ-3", "VQ-4", "VQ-10", "GPIO-1", "GPIO-2", "C-5", "C-7")
async def zero_length_descriptors_anywhere_in_a_chain(dut):
    """Zero-length descriptors in the middle of the request, between request and reply (readable
    and writable ones), in the middle of the reply, at the head and the tail; direct, all inside
    an indirect table, and split between direct descriptors and a table. They point at memory
    granted to nobody: the device must not touch it, nor end the request or the reply at them."""
    env = await DeviceEnv.start(dut, stall_probability=0.2)
    drv = env.driver()
    rng = seeded(env, "zero-length")
    modes = ("direct",) if NO_INDIRECT else ("direct", "table", "split")

    def scenario():
        drv.probe()
        lines = Lines(env, drv)
        lines.set_up()
        trials = len(ZERO_PLACES) * max(len(modes), 2)
        for trial in range(trials):
            places = [ZERO_PLACES[trial % len(ZERO_PLACES)]]
            if rng.random() < 0.5:
                places.append(rng.choice(ZERO_PLACES))
            mode = modes[trial // len(ZERO_PLACES) % len(modes)]
            pieces = with_zeros(rng, places)
            if mode == "direct":
                direct, table = pieces, None
            elif mode == "table":
                direct, table = [], pieces
                if rng.random() < 0.3:
                    direct = [R(0)]  # a zero-length direct descriptor before the pointer
            else:
                # Any cut that keeps writable descriptors after readable ones; the zero-length
                # ones on either side of it (or in the table) included.
                cuts = [j for j in range(1, len(pieces))
                        if not (any(p.write for p in pieces[:j]) and not all(p.write for p in pieces[j:]))]
                j = rng.choice(cuts)
                direct, table = pieces[:j], pieces[j:]
            msg = lines.pick(rng)
            c = Chain(env)
            what = f"trial {trial} ({mode}, zeros {places}): {msg}, pieces " \
                   f"{[(p.write, p.length) for p in pieces]}"
            p, writables = send_shaped(env, drv, c, GPIO_REQUEST_PACKER.pack(*msg), direct, table,
                                       pointer_flags=INDIRECT | (WRITE if trial % 2 else 0),
                                       rng=rng)
            check_reply(env, p, writables, lines.expect(*msg), what)
            lines.check_pins()
            c.release()
    await env.run(scenario)


@conformance_test("VQ-1", "VQ-4", "VQ-10", "GPIO-1", "GPIO-2", "GPIO-11", "C-5", "C-7")
async def request_and_reply_split_at_every_byte(dut):
    """The 8-byte request in 8 one-byte descriptors and the reply in two one-byte writable ones:
    direct, all in an indirect table, and the first bytes direct with the rest in a table. Every
    request byte matters: the requests include ones that are refused only because of a non-zero
    byte in the high half of a field."""
    env = await DeviceEnv.start(dut, stall_probability=0.2)
    drv = env.driver()
    rng = seeded(env, "every-byte")
    modes = ("direct",) if NO_INDIRECT else ("direct", "table", "split")

    def scenario():
        drv.probe()
        lines = Lines(env, drv)
        lines.set_up()
        pieces = [R(1)] * GPIO_REQUEST_SIZE + [W(1)] * GPIO_REPLY_SIZE
        for trial in range(4 * len(modes) + (4 if NO_INDIRECT else 0)):
            mode = modes[trial % len(modes)]
            j = {"direct": len(pieces), "table": 0,
                 "split": rng.randint(1, GPIO_REQUEST_SIZE)}[mode]
            direct, table = pieces[:j], (pieces[j:] if j < len(pieces) else None)
            msg = lines.pick(rng)
            c = Chain(env)
            p, writables = send_shaped(env, drv, c, GPIO_REQUEST_PACKER.pack(*msg), direct, table,
                                       pointer_flags=INDIRECT | (WRITE if trial % 2 else 0),
                                       rng=rng)
            check_reply(env, p, writables, lines.expect(*msg), f"trial {trial} ({mode}, {j} direct): {msg}")
            lines.check_pins()
            c.release()
    await env.run(scenario)


@conformance_test("VQ-1", "VQ-4", "VQ-10", "GPIO-1", "GPIO-5", "GPIO-6", "C-5", "C-7",
                  skip=NO_NAMES)
async def names_reply_split_over_uneven_writable_descriptors(dut):
    """The 1 + gpio_names_size bytes of the names reply over writable descriptors of uneven
    sizes, 1-byte ones among them, some in an indirect table; every byte in its own descriptor;
    more space than the reply (the rest stays untouched); one byte too little (ERR, what fits)."""
    env = await DeviceEnv.start(dut, stall_probability=0.2)
    drv = env.driver()
    rng = seeded(env, "names-split")
    size = env.config.gpio_names_size
    full = bytes([OK]) + env.config.names_block
    indirect = env.config.offer_indirect_desc

    def uneven(total: int) -> list[int]:
        sizes = []
        while total:
            n = min(total, rng.choice((1, 1, 1, 2, 3, 5, 8, 13, 21, 34)))
            sizes.append(n)
            total -= n
        return sizes

    def scenario():
        drv.probe()
        request = GPIO_REQUEST_PACKER.pack(MsgType.GET_LINE_NAMES, 0, 0)
        variants = [("uneven, direct", uneven(1 + size), False, full),
                    ("uneven, some in a table", uneven(1 + size), True, full),
                    ("one byte each", [1] * (1 + size), True, full),
                    ("three bytes more", uneven(1 + size + 3), True, full),
                    ("one byte short", uneven(size), False, bytes([ERR]) + bytes(size - 1))]
        for name, sizes, use_table, expected in variants:
            writable = [W(n) for n in sizes]
            if name == "three bytes more":
                for _ in range(3):
                    writable.insert(rng.randint(1, len(writable) - 1), W(0))
            readable = [R(n) for n in cut(rng, GPIO_REQUEST_SIZE)]
            if use_table and indirect:
                j = rng.randint(0, len(writable) // 2)
                direct, table = readable + writable[:j], writable[j:]
            else:
                direct, table = readable + writable, None
            c = Chain(env)
            p, writables = send_shaped(env, drv, c, request, direct, table, rng=rng,
                                       pointer_flags=INDIRECT | WRITE, reply_len=len(expected))
            check_reply(env, p, writables, expected, f"names reply, {name}: sizes {sizes}")
            c.release()
    await env.run(scenario)


# -- short runs: small rings wrapped many times --------------------------------------------------

def small_queue_drivers(env: DeviceEnv):
    """A driver per small queue size (each probe resets the device); on a device that offers
    EVENT_IDX, size 4 runs without it, so both notification schemes wrap."""
    for size in SMALL_QUEUE_SIZES:
        features = LINUX_KNOWN_FEATURES
        if size == 4 and env.config.offer_event_idx:
            features &= ~Feature.RING_EVENT_IDX.mask
        yield size, env.driver(queue_size=size, features=features)


def unexpected_errors(env: DeviceEnv, drv) -> list[str]:
    """The driver's error log without what its probe reports for lines that start NONE (Linux
    asks every line for its direction and warns about those)."""
    expected = {f"get_direction failed on line {line}:" for line, d in
                enumerate(env.config.reset_directions) if d is Direction.NONE}
    return [e for e in drv.log.errors if not any(e.startswith(x) for x in expected)]


def check_ring_drained(env: DeviceEnv, drv, queue: int, least: int) -> None:
    """Every chain published on ``queue`` came back, used.idx in memory agrees, the ring wrapped
    at least ``least`` times, and the driver logged no error."""
    vq = drv.vqs[queue]
    assert vq.num in SMALL_QUEUE_SIZES
    assert not vq.in_flight, f"queue {queue}: {len(vq.in_flight)} chains never came back"
    assert vq.last_used_idx == vq.avail_idx_shadow == used_idx(env, vq), \
        (vq.last_used_idx, vq.avail_idx_shadow, used_idx(env, vq))
    assert vq.last_used_idx >= least * vq.num, f"only {vq.last_used_idx} chains on a {vq.num}-entry ring"
    assert not unexpected_errors(env, drv), unexpected_errors(env, drv)


@conformance_test("VQ-5", "VQ-7", "VQ-9", "VQ-10", "VQ-14", "GPIO-7", "C-4", "C-5", "C-7")
async def small_requestqs_wrap_many_times_one_request_at_a_time(dut):
    """Requestq sizes 2, 4 and 8: the probe, then 6 x QueueNum requests one at a time whose
    replies depend on the state the ones before set."""
    env = await DeviceEnv.start(dut, stall_probability=0.1)
    rng = seeded(env, "small-requestq")
    for size, drv in small_queue_drivers(env):
        def scenario():
            drv.probe()
            assert drv.vqs[QueueIndex.REQUESTQ].num == size
            lines = Lines(env, drv)
            lines.set_up()
            for i in range(6 * size):
                msg = lines.pick(rng, odd=i % 4 == 3)
                reply = reply_of(env, drv, *msg)
                assert reply == lines.expect(*msg), f"size {size}, request {i} {msg}: {reply.hex()}"
                lines.check_pins()
            check_ring_drained(env, drv, QueueIndex.REQUESTQ, 6)
        await env.run(scenario)


@conformance_test("VQ-7", "VQ-9", "VQ-10", "VQ-14", "GPIO-7", "GPIO-8", "C-5", "C-7")
async def small_requestqs_wrap_many_times_in_full_batches(dut):
    """Requestq sizes 2, 4 and 8: batches that fill the ring (QueueNum requests with indirect
    descriptors, QueueNum / 2 without) behind one notify, 4 x QueueNum requests in all; requests
    on one line within a batch set and read its value, so order shows."""
    env = await DeviceEnv.start(dut, stall_probability=0.1)
    rng = seeded(env, "small-batches")
    for size, drv in small_queue_drivers(env):
        def scenario():
            drv.probe()
            lines = Lines(env, drv)
            lines.set_up()
            cap = capacity(drv)
            for b in range(4 * size // cap):
                batch = [lines.pick(rng, odd=b % 3 == 2) for _ in range(cap)]
                expected = [lines.expect(*msg) for msg in batch]  # in order, as answered (GPIO-7)
                pendings = []
                for msg in batch:
                    res = env.memory.alloc(GPIO_REPLY_SIZE, 64)
                    env.memory.write(res, bytes([FILL]) * GPIO_REPLY_SIZE)
                    pendings.append(drv.submit(*msg, req=env.memory.alloc(GPIO_REQUEST_SIZE, 64),
                                               res=res, kick=False))
                drv.kick()
                drv.wait(*pendings)
                for msg, p, want in zip(batch, pendings, expected):
                    got = env.memory.read(p.res, GPIO_REPLY_SIZE)
                    assert (p.used_len, got) == (GPIO_REPLY_SIZE, want), \
                        f"size {size}, batch {b}: {msg} -> used.len {p.used_len}, {got.hex()}, " \
                        f"expected {want.hex()}"
                lines.check_pins()
            check_ring_drained(env, drv, QueueIndex.REQUESTQ, 4)
        await env.run(scenario)


@conformance_test("GPIO-15", "GPIO-16", "GPIO-18", "GPIO-19", "VQ-10", "VQ-14", "C-8", skip=NO_IRQ)
async def small_eventqs_wrap_many_times(dut):
    """Eventq (and requestq) sizes 2, 4 and 8: two lines armed EDGE_BOTH, their buffers filling
    a 2-entry eventq; one line toggled 3 x QueueNum + 2 times, the other every other time: each
    edge delivered exactly once on its own line, each buffer queued again."""
    env = await DeviceEnv.start(dut, stall_probability=0.1)
    n = env.config.ngpio
    a, b = 1 % n, (n - 2) % n
    for size, drv in small_queue_drivers(env):
        def scenario():
            drv.probe()
            eventq = drv.vqs[QueueIndex.EVENTQ]
            assert eventq.num == size and capacity(drv, QueueIndex.EVENTQ) >= 2
            level = {a: 0, b: 0}
            for line in (a, b):
                env.set_input_blocking(line, 0)
                drv.request_irq(line, IrqType.EDGE_BOTH)
            toggles = 3 * size + 2
            for i in range(toggles):
                for line in (a, b) if i % 2 else (a,):
                    want = delivered(drv, line) + 1
                    level[line] ^= 1
                    env.set_input_blocking(line, level[line])
                    drv.poll(lambda: delivered(drv, line) >= want)
                    assert delivered(drv, line) == want, f"size {size}, toggle {i} of line {line}"
            for _ in range(3):
                env.transport.advance()
            events = toggles + toggles // 2
            assert (delivered(drv, a), delivered(drv, b)) == (toggles, toggles // 2), \
                (delivered(drv, a), delivered(drv, b))
            # One used element per event, and both lines hold a buffer again.
            assert eventq.last_used_idx == used_idx(env, eventq) == events, \
                (eventq.last_used_idx, used_idx(env, eventq), events)
            assert eventq.avail_idx_shadow == events + 2 and len(eventq.in_flight) == 2
            assert events >= 3 * size
            assert not unexpected_errors(env, drv), unexpected_errors(env, drv)
            for line in (a, b):
                drv.free_irq(line)
        await env.run(scenario)
