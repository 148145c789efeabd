"""The random campaign: constrained-random traffic and faults against the RTL, scoreboarded by the
golden model in lock-step, with functional coverage (tb/coverage.py).

One cocotb test, ``random_campaign``, runs episodes until it has completed the profile's number of
requests. An episode draws features, queue sizes, ring placement and memory back-pressure, probes
the device with the Linux driver model and then runs random operations: batches of requests of
random types, lines, values and chain shapes; pin changes under random irq types, with lines armed
and masked; register traffic (InterruptStatus reads, partial ACKs, spare notifies, reads anywhere);
suppressed and wanted notifications; completions racing the interrupt ACK; notifies, resets and
QueueReady = 0 in the middle of a burst. With faults on, most episodes end in one fault: a malformed
chain or ring of every contract §5 kind, random bytes in a descriptor or indirect table, an error
response on a read or a write, a refused queue configuration, random register writes.

What every run checks besides the lock-step comparison (the environment's, on every access):
registers answer (the AXI-Lite agent times out otherwise); each fault ends in DEVICE_NEEDS_RESET
and a clean episode never does; Status = 0 always completes (Status and QueueReady read 0); every
request completes, once (the driver model refuses a used id it does not own), with used.len the
bytes the contract says; no DMA outside what the driver granted (the firewall).

The run's seed is the only source of randomness: ``VIRTIO_GPIO_SEED``, printed at the start; the
profile comes from ``VIRTIO_GPIO_CAMPAIGN`` (JSON, see ``Profile``) and the figures and coverage go
to the JSON file it names.
"""

import json
import os
import random
from dataclasses import asdict, dataclass, field

from cocotb.task import resume

from virtio_gpio.model.constants import (
    DescFlags, DeviceStatus, Feature, InterruptStatus, IrqType, MsgType, QueueIndex,
)
from virtio_gpio.model.driver.linux_gpio import (
    LINUX_KNOWN_FEATURES, DriverTimeout, LinuxVirtioGpioDriver, Pending,
)
from virtio_gpio.model.layouts import (
    DESC_PACKER, DESC_SIZE, GPIO_REPLY_SIZE, GPIO_REQUEST_PACKER, GPIO_REQUEST_SIZE,
    RING_HEADER_SIZE, RING_IDX_OFFSET, Reg,
)
from virtio_gpio.model.memory import AccessKind, BusResponse, Perm

from . import configs
from . import coverage as cov
from .conformance.rings import malformed_chains, table as descriptor_table
from .env import DeviceEnv, EventBetweenReadAndAck
from .requirements import conformance_test

PROFILE_ENV = "VIRTIO_GPIO_CAMPAIGN"
NEXT, WRITE, INDIRECT = int(DescFlags.NEXT), int(DescFlags.WRITE), int(DescFlags.INDIRECT)
NEEDS_RESET = DeviceStatus.DEVICE_NEEDS_RESET
OWNER = "campaign"
TIMEOUT_STEPS = 60
SLOT_BYTES = 64             # request area and reply area of a buffer slot (each)
HARMLESS = GPIO_REQUEST_PACKER.pack(MsgType.GET_DIRECTION, 0, 0)
STALLS = (0.0, 0.0, 0.1, 0.3, 0.5)
LATENCIES = (1, 1, 2, 4, 8, 16)
# Register writes the random-register fault never makes: QueueReady = 1 and a notify would send
# the device to whatever random ring addresses were written (the driver granted none of them).
RANDOM_WRITE_EXCLUDED = (Reg.QUEUE_READY, Reg.QUEUE_NOTIFY)


@dataclass
class Profile:
    requests: int = 400       # run episodes until this many requests have completed
    faults: bool = True       # end most episodes with a fault
    marathon: bool = False    # one episode on a 2-entry queue, past the 16-bit index wrap
    out: str | None = None    # where the figures and the coverage go (JSON)

    @classmethod
    def from_env(cls) -> "Profile":
        return cls(**json.loads(os.environ.get(PROFILE_ENV, "{}")))


@dataclass
class Tally:
    episodes: int = 0
    requests: int = 0
    malformed_rings: int = 0
    bus_errors: int = 0
    register_faults: int = 0
    resets: int = 0
    mid_burst_writes: int = 0
    pin_changes: int = 0
    irq_events: int = 0
    cycles: int = 0
    faults: dict[str, int] = field(default_factory=dict)


class CampaignFailure(AssertionError):
    """An invariant of the campaign broke (the lock-step comparison raises ``Mismatch``)."""


def message_name(msg_type: int) -> str:
    try:
        return MsgType(msg_type).name
    except ValueError:
        return "unknown"


@dataclass
class Request:
    """A request the campaign made, with what it needs to check and free it."""
    msg_type: int
    full_len: int            # reply length the contract gives this request
    space: int               # writable bytes of the chain
    shape: str
    pending: Pending
    grants: list = field(default_factory=list)
    slot: tuple[int, int] | None = None  # (request area, reply area)


class Campaign:
    """Runs in the driver's thread: every register access goes through the environment."""

    def __init__(self, env: DeviceEnv, profile: Profile):
        self.env, self.profile = env, profile
        self.config = env.config
        self.rng = random.Random(f"{env.seed}:campaign")
        self.tally = Tally()
        self.race = EventBetweenReadAndAck(env)
        self.t = env.transport
        self.log = env.dut._log
        self.names_size = self.config.gpio_names_size
        # a reply area takes the names reply with room to spare (a writable space longer than the reply)
        self.reply_bytes = max(SLOT_BYTES, -(-(1 + self.names_size + 8) // 64) * 64)
        self.drv: LinuxVirtioGpioDriver | None = None  # the episode's driver, None between episodes
        self._fault_bag: list[str] = []

    # -- episodes --------------------------------------------------------------------------

    def run(self) -> Tally:
        self.episode()
        while self.tally.requests < self.profile.requests and not self.profile.marathon:
            self.episode()
        return self.tally

    def _draw_features(self) -> int:
        features = LINUX_KNOWN_FEATURES
        for f in (Feature.RING_INDIRECT_DESC, Feature.RING_EVENT_IDX, Feature.GPIO_F_IRQ):
            if self.rng.random() < 0.25:
                features &= ~f.mask
        return features

    def _draw_queue_size(self, large: bool = False) -> int:
        sizes = [1 << k for k in range(1, self.config.queue_size_max.bit_length())]
        if large:
            return self.rng.choice(sizes[4:] or sizes)
        return self.rng.choice(sizes[:4] * 3 + sizes)  # small ones often: rings wrap many times

    def episode(self) -> None:
        rng, env, tally = self.rng, self.env, self.tally
        tally.episodes += 1
        env.dma.stall_probability = rng.choice(STALLS)
        env.dma.read_latency = rng.choice(LATENCIES)
        env.memory.alloc(rng.randrange(1, 6) * 4096 + rng.randrange(64) * 64)  # ring placement
        fault = self._draw_fault() if self.profile.faults and not self.profile.marathon else None
        self.log.debug("episode %d: stall %.1f, latency %d, fault %s", tally.episodes,
                       env.dma.stall_probability, env.dma.read_latency, fault)
        if fault == "queue_config":
            self.queue_config_fault()
            self.reset_device(faulted=True)
            return
        # A long episode runs on a large ring until it has gone round once.
        long_episode = not self.profile.marathon and rng.random() < 0.1
        queue_size = (2 if self.profile.marathon else
                      self._draw_queue_size(large=True) if long_episode else self._draw_queue_size())
        features = self._draw_features()
        if fault == "indirect_not_negotiated":
            features &= ~Feature.RING_INDIRECT_DESC.mask
        elif fault and ("indirect" in fault or fault == "more_than_queue_num"):
            features |= Feature.RING_INDIRECT_DESC.mask
        drv = LinuxVirtioGpioDriver(self.race, features=features, queue_size=queue_size,
                                    timeout_steps=TIMEOUT_STEPS, irq_handler=self._service)
        drv.probe()
        self.log.debug("probed: features %#x, queue sizes %s", drv.features, [vq.num for vq in drv.vqs])
        self.drv, self.slots = drv, self._slots(drv)
        self.wraps = {vq.index: vq.last_used_idx // vq.num for vq in drv.vqs}
        self.events_seen, self.invalid_seen = 0, 0
        self.irq_lines = self._arm_irq_lines() if drv.has(Feature.GPIO_F_IRQ) else []
        if self.profile.marathon:
            self.marathon()
            self.reset_device(faulted=False)
            return
        if long_episode:
            start = self.tally.requests
            while self.tally.requests - start <= queue_size + 16:
                self.random_operation()
        else:  # an episode that ends in a fault is kept short: a fault costs a reset and a probe
            for _ in range(rng.randint(0, 5) if fault else rng.randint(2, 12)):
                self.random_operation()
                if self.tally.requests >= self.profile.requests:
                    break
        if fault is None:
            self._reap()
            self._check_wraps()
            self.reset_device(faulted=False)
        else:  # the driver model may own none of what a fault left on the rings: no reaping
            self.reset_device(faulted=self.inject(fault))

    def _slots(self, drv) -> list[tuple[int, int]]:
        """One request area and one reply area per chain the requestq can hold."""
        mem = self.env.memory
        return [(mem.alloc(SLOT_BYTES, 64), mem.alloc(self.reply_bytes, 64))
                for _ in range(drv.vqs[QueueIndex.REQUESTQ].num)]

    def reset_device(self, faulted: bool) -> None:
        """Status = 0 must complete: Status and every QueueReady read 0 afterwards. Before it,
        DEVICE_NEEDS_RESET must be set exactly when the episode injected a fault."""
        t = self.t
        status = t.read(Reg.STATUS)
        if bool(status & NEEDS_RESET) != faulted:
            raise CampaignFailure(f"Status {status:#x} at the end of an episode "
                                  f"{'with' if faulted else 'without'} a fault (GEN-4, C-6)")
        t.write(Reg.STATUS, 0)
        if (status := t.read(Reg.STATUS)) != 0:
            raise CampaignFailure(f"Status reads {status:#x} after the reset (GEN-3, MMIO-5)")
        for q in (QueueIndex.REQUESTQ, QueueIndex.EVENTQ):
            t.write(Reg.QUEUE_SEL, q)
            if t.read(Reg.QUEUE_READY):
                raise CampaignFailure(f"queue {q} still ready after the reset (MMIO-5)")
        if self.drv is not None:
            for vq in self.drv.vqs:
                vq.release()
            self.drv = None
        self.env.memory.firewall.revoke_owner(OWNER)
        self.env.memory.clear_errors()
        self.tally.resets += 1

    # -- random operations -----------------------------------------------------------------

    def random_operation(self) -> None:
        ops = [(self.requests, 8), (self.pin_activity, 3), (self.register_traffic, 2),
               (self.quiet_completions, 2), (self.notify_mid_burst, 0.3)]
        if self.irq_lines:
            ops += [(self.irq_reconfigure, 2), (self.mask_and_unmask, 2)]
        ops += [(self.ack_race, 0.5)]
        op = self.rng.choices([o for o, _ in ops], weights=[w for _, w in ops])[0]
        self.log.debug("operation %s", op.__name__)
        op()
        self._check_wraps()

    def _random_request(self) -> tuple[int, int, int]:
        rng, n = self.rng, self.config.ngpio
        roll = rng.random()
        if roll < 0.06:
            return rng.choice((0, 7, 0x55, 0xFFFF)), rng.randrange(n), rng.getrandbits(32)
        if roll < 0.1:
            return (rng.choice(list(MsgType)), rng.choice((n, n + 1, 0xFFFF)), rng.randrange(3))
        if roll < 0.13:
            return MsgType.GET_LINE_NAMES, 0, 0
        plain = [g for g in range(n) if g not in self.irq_lines]
        if not plain or rng.random() < 0.3:
            # any line, the ones whose irq the driver manages included: requests that change nothing
            return rng.choice((MsgType.GET_VALUE, MsgType.GET_DIRECTION)), rng.randrange(n), 0
        gpio = rng.choice(plain)
        msg = rng.choice((MsgType.GET_DIRECTION, MsgType.SET_DIRECTION, MsgType.GET_VALUE,
                          MsgType.SET_VALUE, MsgType.SET_IRQ_TYPE))
        value = {MsgType.SET_DIRECTION: rng.choice((0, 1, 2, 2, 1, 3, 0x100)),
                 MsgType.SET_VALUE: rng.choice((0, 1, 1, 0, 2)),
                 MsgType.SET_IRQ_TYPE: rng.choice((0, 1, 2, 3, 4, 8, 5, 0x10))}.get(msg, 0)
        return msg, gpio, value

    def _full_reply_len(self, msg_type: int, readable: int) -> int:
        if msg_type == MsgType.GET_LINE_NAMES and readable >= GPIO_REQUEST_SIZE:
            return 1 + self.names_size
        return GPIO_REPLY_SIZE

    def _draw_space(self, full: int) -> int:
        roll = self.rng.random()
        if roll < 0.05:
            return 0
        if roll < 0.12 and full > 1:
            return self.rng.randrange(1, full)
        return full + self.rng.choice((0, 0, 0, 3))

    def requests(self, count: int | None = None) -> list[Request]:
        """A batch of random requests over random shapes, one or two kicks, all completed and
        checked."""
        vq = self.drv.vqs[QueueIndex.REQUESTQ]
        count = count or self.rng.randint(1, min(16, vq.num))
        # Sometimes in two parts, the second added and kicked right after the first notify, before
        # the device has published avail_event: EVENT_IDX lets the driver skip that kick. (The
        # device has not read avail.idx yet either, so it sees both parts at once; a race in which
        # it has would need the model to step mid-work, which lock-step cannot do.)
        parts = (count, 0) if count < 2 or self.rng.random() < 0.6 else (count // 2, count - count // 2)
        batch = []
        for part in parts:
            if part:
                batch += [r for _ in range(part) if (r := self._submit()) is not None]
                self._kick(vq)
        self.complete(batch)
        return batch

    def _submit(self, msg: tuple[int, int, int] | None = None, shape: str | None = None) -> Request | None:
        """Make one request available (not notified); None when the ring has no room for it."""
        drv, rng, mem = self.drv, self.rng, self.env.memory
        vq = drv.vqs[QueueIndex.REQUESTQ]
        if not self.slots or vq.num_free < (1 if vq.indirect else 2):
            return None
        msg_type, gpio, value = msg or self._random_request()
        fixed = shape is not None  # a request a scenario needs: well-formed, with room for its reply
        readable = GPIO_REQUEST_SIZE if fixed or rng.random() > 0.03 else rng.randrange(GPIO_REQUEST_SIZE)
        full = self._full_reply_len(msg_type, readable)
        space = full if fixed else self._draw_space(full)
        slot = rng.randrange(len(self.slots))
        req, res = self.slots.pop(slot)
        mem.write(req, GPIO_REQUEST_PACKER.pack(msg_type, gpio, value))
        mem.write(res, bytes([0xAA]) * self.reply_bytes)
        pending = Pending(gpio, res, space)
        shapes = ["linux"] + (["split_request", "split_reply", "zero_length"] * 2)
        if drv.has(Feature.RING_INDIRECT_DESC):
            shapes += ["direct_then_indirect", "indirect_split"]
        shape = shape or (rng.choice(shapes) if rng.random() < 0.5 else "linux")
        if shape == "linux" and (readable != GPIO_REQUEST_SIZE or space == 0):
            shape = "split_request"
        r = Request(msg_type, full, space, shape, pending, slot=(req, res))
        self.log.debug("request %s gpio %d value %#x: %d readable, %d writable bytes, %s",
                       message_name(msg_type), gpio, value, readable, space, shape)
        if shape == "linux":
            pending.head = vq.add([(req, readable)], [(res, space)], pending)
            if vq.indirect:
                r.shape = "linux_indirect"
            return r
        for _ in range(4):  # a chain holds at most QueueNum buffer descriptors (contract §5)
            pieces = self._pieces(req, readable, 0, shape) + self._pieces(res, space, WRITE, shape)
            if len(pieces) + (shape == "zero_length") <= vq.num:
                break
        else:
            pieces, shape = [(req, readable, 0), (res, space, WRITE)][:vq.num], "split_request"
            r.shape = shape
        if shape == "zero_length" or not pieces:  # a chain has at least one descriptor
            at = rng.randrange(len(pieces) + 1)
            pieces.insert(at, (req if at == 0 or not pieces[at - 1][2] & WRITE else res, 0,
                               pieces[at - 1][2] & WRITE if at else 0))
        fw = mem.firewall
        r.grants = [fw.grant(a, n, Perm.WRITE if f & WRITE else Perm.READ, OWNER)
                    for a, n, f in pieces if n]
        if shape in ("direct_then_indirect", "indirect_split"):
            keep = rng.randrange(1, len(pieces)) if shape == "direct_then_indirect" and len(pieces) > 1 else 0
            direct, inside = pieces[:keep], pieces[keep:]
            table = mem.alloc(DESC_SIZE * len(inside), DESC_SIZE)
            for i, (a, n, f) in enumerate(inside):
                last = i == len(inside) - 1
                vq.write_desc(table, i, a, n, f if last else f | NEXT, i + 1)
            r.grants.append(fw.grant(table, DESC_SIZE * len(inside), Perm.READ, OWNER))
            pieces = direct + [(table, DESC_SIZE * len(inside), INDIRECT)]
            if not keep:
                r.shape = "indirect_split"
        if len(pieces) > vq.num_free:
            for g in r.grants:
                fw.revoke(g)
            self.slots.append((req, res))
            return None
        pending.head = vq.add_chain(pieces, pending)
        return r

    SPLITS = {"split_request": (0,), "split_reply": (WRITE,), "indirect_split": (0, WRITE),
              "direct_then_indirect": (0, WRITE)}

    def _pieces(self, base: int, length: int, flags: int, shape: str) -> list[tuple[int, int, int]]:
        """``[base, base + length)`` as descriptors, split at random points where the shape says."""
        if not length:
            return []
        cuts = {0, length}
        if flags in self.SPLITS.get(shape, ()) and length > 1:
            cuts |= {self.rng.randrange(1, length) for _ in range(self.rng.randint(1, 3))}
        points = sorted(cuts)
        return [(base + a, b - a, flags) for a, b in zip(points, points[1:])]

    def _kick(self, vq) -> None:
        mechanism = "event_idx" if vq.event_idx else "flags"
        if vq.kick_prepare():
            self.t.write(Reg.QUEUE_NOTIFY, vq.index)
            cov.sample_notification("driver_kick", mechanism, "notified")
        else:
            cov.sample_notification("driver_kick", mechanism, "suppressed")

    def _reap(self) -> None:
        drv = self.drv
        drv.reap_requestq()
        if drv.has(Feature.GPIO_F_IRQ):
            drv.reap_eventq()
        self._count_events()

    def _count_events(self) -> None:
        log = self.drv.log
        for _ in range(len(log.events) - self.events_seen):
            cov.sample_irq_outcome("VALID")
        for _ in range(len(log.invalid) - self.invalid_seen):
            cov.sample_irq_outcome("INVALID")
        self.tally.irq_events += len(log.events) - self.events_seen
        self.events_seen, self.invalid_seen = len(log.events), len(log.invalid)

    def complete(self, batch: list[Request]) -> None:
        """Wait until every request of ``batch`` is back (reaping without relying on interrupts,
        which partial ACKs may have cleared), then check and free each."""
        drv = self.drv

        def done():
            self._reap()
            return all(r.pending.done for r in batch)
        mem = self.env.memory
        try:
            drv.poll(done)
        except DriverTimeout:
            vq = drv.vqs[QueueIndex.REQUESTQ]
            lost = [r for r in batch if not r.pending.done]
            raise CampaignFailure(
                f"{len(lost)} of {len(batch)} requests never completed ({', '.join(r.shape for r in lost)}): "
                f"Status {self.t.read(Reg.STATUS):#x}, avail.idx {vq.avail_idx_shadow}, used.idx "
                f"{mem.read_u16(vq.used_addr + RING_IDX_OFFSET)}; the model's last device error: "
                f"{self.env.model.errors[-1].reason if self.env.model.errors else None} (VQ-8, C-5)") from None
        for r in batch:
            expected = min(r.full_len, r.space)
            if r.pending.used_len != expected:
                raise CampaignFailure(
                    f"{message_name(r.msg_type)} with {r.space} writable bytes ({r.shape}): used.len "
                    f"{r.pending.used_len}, the contract says {expected} (GPIO-1, VQ-10, C-7)")
            for g in r.grants:
                mem.firewall.revoke(g)
            self.slots.append(r.slot)
            cov.sample_reply_space("full" if r.space >= r.full_len else "short" if r.space else "none")
            if r.space:
                status = mem.read(r.pending.res, 1)[0]
                cov.sample_request(message_name(r.msg_type), "OK" if status == 0 else "ERR")
            cov.sample_shape(r.shape)
        self.tally.requests += len(batch)

    def _check_wraps(self) -> None:
        drv = self.drv
        if drv is None:
            return
        for vq in drv.vqs:
            laps = vq.last_used_idx // vq.num
            if laps != self.wraps[vq.index]:
                if laps < self.wraps[vq.index]:
                    cov.sample_wrap("index_65536")
                cov.sample_wrap(str(vq.num))
                self.wraps[vq.index] = laps

    # -- pins and irqs ---------------------------------------------------------------------

    def _arm_irq_lines(self) -> list[int]:
        drv, rng = self.drv, self.rng
        eventq = drv.vqs[QueueIndex.EVENTQ]
        room = eventq.num if eventq.indirect else eventq.num // 2  # one buffer per armed line
        most = max(1, min(room, self.config.ngpio // 2))
        lines = rng.sample(range(self.config.ngpio), rng.randint(1, most))
        for g in lines:
            drv.direction_input(g)
            drv.request_irq(g, rng.choice(cov_irq_types()))
        return lines

    def _toggle(self, g: int) -> None:
        """Change pin ``g`` on both sides, sampling the irq state the change met."""
        env = self.env
        level = 1 - (env.pins.inputs >> g & 1)
        line = env.model.gpio.lines[g]
        irq_type, held = line.irq_type, line.held_buffer is not None
        env.set_input_blocking(g, level)
        self.tally.pin_changes += 1
        if irq_type != IrqType.NONE:
            cov.sample_pin_change(irq_type.name, "armed" if held else "masked",
                                  "rising" if level else "falling")

    def _service(self, g: int) -> None:
        """The interrupt handler clears a level interrupt's source, as a real one must (with the
        level still active, the requeued buffer would come straight back: an interrupt storm)."""
        irq_type = self.env.model.gpio.lines[g].irq_type
        level = self.env.pins.inputs >> g & 1
        if (irq_type == IrqType.LEVEL_HIGH and level) or (irq_type == IrqType.LEVEL_LOW and not level):
            self._toggle(g)

    def pin_activity(self) -> None:
        rng = self.rng
        for _ in range(rng.randint(1, 4)):
            g = (rng.choice(self.irq_lines) if self.irq_lines and rng.random() < 0.7
                 else rng.randrange(self.config.ngpio))
            self._toggle(g)
            if rng.random() < 0.4:  # again, before the driver has given the line a new buffer
                self._toggle(g)
            if rng.random() < 0.5:
                self.drv.idle(1)
                self._reap()
        self.drv.idle(1)
        self._reap()

    def irq_reconfigure(self) -> None:
        drv, rng = self.drv, self.rng
        g = rng.choice(self.irq_lines)
        line = drv.irq_lines[g]
        roll = rng.random()
        if line.disabled:
            drv.request_irq(g, rng.choice(cov_irq_types()))
        elif roll < 0.3:
            drv.free_irq(g)
        else:
            drv.irq_set_type(g, rng.choice(cov_irq_types()))  # a change of type, no NONE between
            drv.irq_bus_sync_unlock(g)
        drv.idle(1)
        self._reap()

    def mask_and_unmask(self) -> None:
        """Mask a line in the driver: its next event is not given a new buffer, so the device
        holds none and latches what happens meanwhile; unmask later."""
        drv, rng = self.drv, self.rng
        g = rng.choice(self.irq_lines)
        line = drv.irq_lines[g]
        if line.disabled:
            return
        if line.masked:
            drv.irq_unmask(g)
        else:
            drv.irq_mask(g)
        drv.idle(1)
        self._reap()

    # -- register traffic ------------------------------------------------------------------

    def register_traffic(self) -> None:
        rng, t = self.rng, self.t
        for _ in range(rng.randint(1, 6)):
            roll = rng.random()
            if roll < 0.35:
                status = t.read(Reg.INTERRUPT_STATUS)
                if status and rng.random() < 0.7:
                    t.write(Reg.INTERRUPT_ACK, status & rng.choice((1, 2, 3)))  # maybe partial
            elif roll < 0.55:
                t.write(Reg.QUEUE_NOTIFY, rng.choice([vq.index for vq in self.drv.vqs]))
            elif roll < 0.75:
                t.read(Reg.CONFIG + rng.randrange(0, 8, 2), 2)
            else:
                t.read(rng.randrange(0, 0x100, 4))
        self._reap()

    def quiet_completions(self) -> None:
        """Requests with the device's interrupt suppressed or not (avail.flags NO_INTERRUPT, or
        used_event out of reach with EVENT_IDX): InterruptStatus must say which."""
        drv, t, rng = self.drv, self.t, self.rng
        vq = drv.vqs[QueueIndex.REQUESTQ]
        if t.irq:
            drv.handle_interrupt()
        self._reap()
        if t.read(Reg.INTERRUPT_STATUS) & InterruptStatus.USED_BUFFER:
            return  # an eventq completion arrived meanwhile: nothing to learn here
        suppress = rng.random() < 0.6
        mem = self.env.memory
        if vq.event_idx:
            used_event = (vq.last_used_idx + (0x8000 if suppress else 0)) & 0xFFFF
            mem.write_u16(vq.avail_addr + vq.geometry.used_event, used_event)
        else:
            vq.set_avail_flags(1 if suppress else 0)
        batch = [r for _ in range(rng.randint(1, min(8, vq.num)))
                 if (r := self._submit((rng.choice((MsgType.GET_VALUE, MsgType.GET_DIRECTION)),
                                        rng.randrange(self.config.ngpio), 0), "linux")) is not None]
        self._kick(vq)
        self._advance_until(lambda: (mem.read_u16(vq.used_addr + RING_IDX_OFFSET)
                                     - vq.last_used_idx) & 0xFFFF >= len(batch))
        raised = bool(t.read(Reg.INTERRUPT_STATUS) & InterruptStatus.USED_BUFFER)
        mechanism = "event_idx" if vq.event_idx else "flags"
        if batch and raised == suppress and not self._eventq_completed():
            raise CampaignFailure(f"{len(batch)} completions with the interrupt "
                                  f"{'suppressed' if suppress else 'wanted'} ({mechanism}): "
                                  f"InterruptStatus bit 0 is {int(raised)} (VQ-5, VQ-7)")
        if batch:
            cov.sample_notification("device_interrupt", mechanism, "notified" if raised else "suppressed")
        if not vq.event_idx:
            vq.set_avail_flags(0)
        self.complete(batch)

    def _advance_until(self, done) -> bool:
        """Let the device run, at most TIMEOUT_STEPS settles, without the driver taking an
        interrupt, until ``done()``; returns whether it held."""
        return self.t.advance_until(done, TIMEOUT_STEPS)

    def _eventq_completed(self) -> bool:
        drv = self.drv
        return drv.has(Feature.GPIO_F_IRQ) and drv.vqs[QueueIndex.EVENTQ].more_used()

    def ack_race(self) -> None:
        """A completion between the driver's InterruptStatus read and its ACK: on the requestq
        (a request made and notified then), or on the eventq (a pin edge on an armed line)."""
        drv, env, rng = self.drv, self.env, self.rng
        armed = [g for g in self.irq_lines
                 if env.model.gpio.lines[g].irq_type == IrqType.EDGE_BOTH
                 and env.model.gpio.lines[g].held_buffer is not None and not drv.irq_lines[g].masked]
        queue = "eventq" if armed and rng.random() < 0.5 else "requestq"
        late: list[Request] = []
        events_before = len(drv.log.events)

        def event():
            if queue == "eventq":
                self._toggle(rng.choice(armed))
            elif (r := self._submit((MsgType.GET_DIRECTION, 0, 0), "linux")) is not None:
                late.append(r)
                self._kick(drv.vqs[QueueIndex.REQUESTQ])
        first = self._submit((MsgType.GET_VALUE, rng.randrange(self.config.ngpio), 0), "linux")
        if first is None:
            return
        self.race.arm(event)
        self._kick(drv.vqs[QueueIndex.REQUESTQ])
        drv.poll(lambda: self.race.fired or first.pending.done)
        fired = self.race.fired
        self.race.arm(None)
        if fired:
            self.complete([first] + late)
            if queue == "eventq":
                drv.poll(lambda: (self._reap(), len(drv.log.events) > events_before)[1])
            cov.sample_race(queue)
        else:
            self.complete([first])

    def notify_mid_burst(self) -> None:
        """A notify while a burst is on the bus must change nothing (the environment compares)."""
        self._mid_burst("notify", (Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ), abandons=False)

    def _mid_burst(self, what: str, write: tuple[int, int], *, abandons: bool) -> None:
        env, drv, rng = self.env, self.drv, self.rng
        vq = drv.vqs[QueueIndex.REQUESTQ]
        if drv.t.irq:
            drv.handle_interrupt()
        self.t.write(Reg.QUEUE_SEL, QueueIndex.REQUESTQ)
        batch = [r for _ in range(min(6, vq.num)) if (r := self._submit(
            (MsgType.GET_DIRECTION, rng.randrange(self.config.ngpio), 0), "linux")) is not None]
        vq.kick_prepare()  # the notify is the interrupted write's start
        stall, latency = env.dma.stall_probability, env.dma.read_latency
        env.dma.stall_probability, env.dma.read_latency = 0.3, 30
        try:
            met = resume(env.interrupt_work)((Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ), *write,
                                             delay_cycles=rng.randrange(1, 120), abandons=abandons)
        finally:
            env.dma.stall_probability, env.dma.read_latency = stall, latency
        self.tally.mid_burst_writes += 1
        if met:
            cov.sample_mid_burst(what)
        if not abandons:
            self.complete(batch)

    # -- faults ----------------------------------------------------------------------------

    OTHER_FAULTS = ("garbage", "bus_error", "queue_config", "random_registers", "reset_mid_burst",
                    "queue_ready_mid_burst", "avail_idx_jump", "indirect_not_negotiated",
                    "more_than_queue_num")

    def _fault_kinds(self) -> list[str]:
        """Every fault this configuration can take: the contract's malformed chains by name and
        the other kinds."""
        config = self.config
        kinds = [n for n, _ in malformed_chains() if config.offer_indirect_desc or "indirect" not in n]
        kinds += [k for k in self.OTHER_FAULTS if config.offer_indirect_desc or k != "more_than_queue_num"]
        if config.dma_addr_width == 64:
            kinds.remove("zero_length_beyond_dma_space")
        return kinds

    def _draw_fault(self) -> str | None:
        """Most episodes end in a fault, drawn from a shuffled bag of every kind: each kind comes
        once per round, so a short run still meets them all."""
        if self.rng.random() >= 0.8:
            return None
        if not self._fault_bag:
            self._fault_bag = self._fault_kinds()
            self.rng.shuffle(self._fault_bag)
        return self._fault_bag.pop()

    def inject(self, fault: str) -> bool:
        """Inject ``fault``; returns whether it must have set DEVICE_NEEDS_RESET."""
        self._reap()
        self.tally.faults[fault] = self.tally.faults.get(fault, 0) + 1
        self.log.debug("fault %s", fault)
        if fault == "reset_mid_burst":
            self._mid_burst("reset", (Reg.STATUS, 0), abandons=True)
            return False
        if fault == "queue_ready_mid_burst":
            self._mid_burst("queue_ready_0", (Reg.QUEUE_READY, 0), abandons=True)
            return False
        if fault == "random_registers":
            self.random_registers()
            return bool(self.t.read(Reg.STATUS) & NEEDS_RESET)
        if fault == "bus_error":
            return self.bus_error()
        if fault == "garbage":
            return self.garbage()
        cause = self.malformed(fault)
        if cause is None:
            return False
        self._expect_needs_reset(cause)
        self.tally.malformed_rings += 1
        return True

    def _expect_needs_reset(self, cause: str) -> None:
        t, drv = self.t, self.drv
        # No interrupt handling while waiting: the driver model owns none of a fault's heads.
        if not self._advance_until(lambda: bool(t.read(Reg.STATUS) & NEEDS_RESET)):
            raise CampaignFailure(f"{cause}: no DEVICE_NEEDS_RESET (GEN-4, C-5, C-6)")
        if not (t.read(Reg.INTERRUPT_STATUS) & InterruptStatus.CONFIG_CHANGE or drv.log.config_changes):
            raise CampaignFailure(f"{cause}: DEVICE_NEEDS_RESET without a configuration-change "
                                  f"interrupt (GEN-4, C-6)")
        cov.sample_device_error(cause)

    def malformed(self, fault: str) -> str | None:
        """Publish one malformed chain or ring on the requestq; returns its contract name."""
        drv, env, rng = self.drv, self.env, self.rng
        vq = drv.vqs[QueueIndex.REQUESTQ]
        mem = env.memory
        if vq.in_flight:
            return None  # the hand-written descriptors below take slots from 0 up

        def grant(addr, size, perm):
            mem.firewall.grant(addr, size, perm, OWNER)
        if fault == "avail_idx_jump":
            jump = (vq.avail_idx_shadow + vq.num + 1 + rng.randrange(100)) & 0xFFFF
            mem.write_u16(vq.avail_addr + RING_IDX_OFFSET, jump)
            self.t.write(Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ)
            return "avail_idx_jump"
        if fault == "indirect_not_negotiated":
            req, res = self.slots[0]
            grant(req, 8, Perm.READ)
            grant(res, 2, Perm.WRITE)
            t = descriptor_table(mem, grant, [(req, 8, NEXT, 1), (res, 2, WRITE, 0)])
            vq.write_desc(vq.desc_addr, 0, t, 2 * DESC_SIZE, INDIRECT, 0)
            name, head = "indirect_not_negotiated", 0
        elif fault == "more_than_queue_num":
            req, res = self.slots[0]
            grant(req, 8, Perm.READ)
            grant(res, SLOT_BYTES, Perm.WRITE)
            # QueueNum + 1 buffers: one direct, then a table of QueueNum (episode() negotiated
            # indirect for this fault: a direct chain cannot be longer without a loop)
            last = vq.num - 1
            t = descriptor_table(mem, grant, [(res + i % SLOT_BYTES, 1, WRITE | (NEXT if i < last else 0), i + 1)
                                              for i in range(vq.num)])
            vq.write_desc(vq.desc_addr, 0, req, 8, NEXT, 1)
            vq.write_desc(vq.desc_addr, 1, t, vq.num * DESC_SIZE, INDIRECT, 0)
            name, head = "more_than_queue_num", 0
        else:
            name = fault
            head = dict(malformed_chains())[fault](vq, mem, grant)
        self.log.debug("malformed chain %s", name)
        vq.publish(head)
        self.t.write(Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ)
        return name

    def garbage(self) -> bool:
        """Random descriptors (and maybe a random indirect table) published as a chain. Every
        buffer they name is granted as its flags say, and every readable byte holds a harmless
        request, so the device may serve it or call it malformed; either way nothing else."""
        drv, env, rng = self.drv, self.env, self.rng
        vq = drv.vqs[QueueIndex.REQUESTQ]
        mem = env.memory
        if vq.in_flight:
            return False
        area = mem.alloc(4 * SLOT_BYTES, 64)
        mem.write(area, HARMLESS * (4 * SLOT_BYTES // len(HARMLESS)))
        limit = 1 << self.config.dma_addr_width

        def address():
            roll = rng.random()
            if roll < 0.85:
                return area + rng.randrange(0, 3 * SLOT_BYTES, 8)
            if roll < 0.93:
                return rng.randrange(0, limit - 64) & ~7   # unmapped, most likely
            return rng.choice((limit - 8, (1 << 64) - 16))  # at or beyond the end of the space

        def entry():
            flags = rng.choice((0, NEXT, WRITE, WRITE | NEXT, INDIRECT, INDIRECT | NEXT,
                                rng.getrandbits(16)))
            length = rng.choice((0, 8, 16, 32, 64, rng.getrandbits(32)))
            return address(), length, flags, rng.randrange(vq.num + 2)

        table = None
        if rng.random() < 0.5:
            table = mem.alloc(DESC_SIZE * 8, DESC_SIZE)
            for i in range(8):
                vq.write_desc(table, i, *entry())
        for i in range(vq.num):
            a, n, f, nxt = entry()
            if table is not None and rng.random() < 0.3:
                a, n, f = table, rng.choice((DESC_SIZE * 8, DESC_SIZE * rng.randint(1, 8), 24, 0)), INDIRECT
            vq.write_desc(vq.desc_addr, i, a, n, f, nxt)
        head = rng.randrange(vq.num)
        self._grant_named(vq, head)
        used_before = mem.read_u16(vq.used_addr + RING_IDX_OFFSET)
        vq.publish(head)
        self.t.write(Reg.QUEUE_NOTIFY, QueueIndex.REQUESTQ)
        for _ in range(2):  # no interrupt handling: the driver model owns none of these heads
            self.t.advance()
        self.tally.malformed_rings += 1
        if self.t.read(Reg.STATUS) & NEEDS_RESET:
            self._expect_needs_reset("garbage")
            return True
        if mem.read_u16(vq.used_addr + RING_IDX_OFFSET) != (used_before + 1) & 0xFFFF:
            raise CampaignFailure("a chain of random descriptors was neither served nor refused "
                                  "(DEVICE_NEEDS_RESET) (VQ-8, C-5)")
        return False

    def _grant_named(self, vq, head: int) -> None:
        """Grant every buffer and table the descriptors from ``head`` name, as far as a device
        may follow them (QueueNum descriptors, one level of indirect tables)."""
        mem, fw = self.env.memory, self.env.memory.firewall
        limit = 1 << self.config.dma_addr_width

        def grant(addr, size, perm):
            end = min(addr + size, limit)
            if size and addr < limit and end > addr:
                fw.grant(addr, end - addr, perm, OWNER)

        def walk(table, count, index, depth):
            for _ in range(vq.num):
                # an entry the device cannot read ends its walk (an error response)
                if index >= count or not mem.is_mapped(table + DESC_SIZE * index, DESC_SIZE):
                    return
                addr, length, flags, nxt = DESC_PACKER.unpack(mem.read(table + DESC_SIZE * index, DESC_SIZE))
                if flags & INDIRECT and depth == 0:
                    grant(addr, length, Perm.READ)
                    walk(addr, min(length // DESC_SIZE, vq.num), 0, 1)
                else:
                    grant(addr, length, Perm.WRITE if flags & WRITE else Perm.READ)
                if not flags & NEXT:
                    return
                index = nxt
        walk(vq.desc_addr, vq.num, head, 0)

    def bus_error(self) -> bool:
        """An error response to a read or a write the next request needs."""
        drv, env, rng = self.drv, self.env, self.rng
        vq = drv.vqs[QueueIndex.REQUESTQ]
        r = self._submit((MsgType.GET_DIRECTION, 0, 0), "linux")
        if r is None:
            return False
        req, res = r.slot
        targets = {"avail": (vq.avail_addr, RING_HEADER_SIZE + 2 * vq.num, AccessKind.READ),
                   "desc": (vq.desc_addr, vq.geometry.desc_table_size, AccessKind.READ),
                   "request": (req, 8, AccessKind.READ),
                   "reply": (res, 2, AccessKind.WRITE),
                   "used": (vq.used_addr, vq.geometry.used_ring_size, AccessKind.WRITE)}
        target = rng.choice(sorted(targets))
        addr, size, kind = targets[target]
        env.memory.inject_error(addr, size, rng.choice((BusResponse.SLVERR, BusResponse.DECERR)), kind)
        self._kick(vq)
        self.tally.bus_errors += 1
        self._expect_needs_reset("bus_error_read" if kind is AccessKind.READ else "bus_error_write")
        return True

    def random_registers(self) -> None:
        rng, t = self.rng, self.t
        self.tally.register_faults += 1
        for _ in range(rng.randint(1, 8)):
            offset = rng.randrange(0, 0x200, 4)
            if offset in RANDOM_WRITE_EXCLUDED:
                continue
            t.write(offset, rng.getrandbits(32))
            t.read(rng.randrange(0, 0x200, 4))

    def queue_config_fault(self) -> None:
        """A queue configuration the device refuses at QueueReady = 1 (contract §4): QueueNum
        not a power of two, or a misaligned ring; announced once DRIVER_OK is set."""
        t, rng, mem = self.t, self.rng, self.env.memory
        t.write(Reg.STATUS, 0)
        t.write(Reg.STATUS, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER)
        t.write(Reg.DRIVER_FEATURES_SEL, 1)
        t.write(Reg.DRIVER_FEATURES, Feature.VERSION_1.mask >> 32)
        t.write(Reg.DRIVER_FEATURES_SEL, 0)
        t.write(Reg.DRIVER_FEATURES, 0)
        status = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK
        t.write(Reg.STATUS, status)
        t.write(Reg.QUEUE_SEL, QueueIndex.REQUESTQ)
        base = mem.alloc(8192, 4096)
        if rng.random() < 0.5:
            cause = "queue_num_not_power_of_two"
            t.write(Reg.QUEUE_SIZE, rng.choice([n for n in (3, 5, 6, 7, 12) if n < self.config.queue_size_max] or [3]))
            offsets = (0, 4096 - 64, 4096 + 1024)
        else:
            cause = "ring_misaligned"
            t.write(Reg.QUEUE_SIZE, 2)
            offsets = rng.choice(((8, 4096 - 64, 4096), (0, 4096 - 63, 4096), (0, 4096 - 64, 4096 + 2)))
        for reg, off in zip((Reg.QUEUE_DESC_LOW, Reg.QUEUE_DRIVER_LOW, Reg.QUEUE_DEVICE_LOW), offsets):
            t.write(reg, (base + off) & 0xFFFF_FFFF)
            t.write(reg + 4, (base + off) >> 32)
        t.write(Reg.QUEUE_READY, 1)
        if not t.read(Reg.STATUS) & NEEDS_RESET:
            raise CampaignFailure(f"{cause}: QueueReady = 1 did not set DEVICE_NEEDS_RESET (C-4, GEN-4)")
        if t.read(Reg.INTERRUPT_STATUS):
            raise CampaignFailure(f"{cause}: an interrupt before DRIVER_OK (GEN-4, DRV-5)")
        t.write(Reg.STATUS, status | DeviceStatus.DRIVER_OK)
        if t.read(Reg.INTERRUPT_STATUS) != InterruptStatus.CONFIG_CHANGE:
            raise CampaignFailure(f"{cause}: no configuration-change interrupt at DRIVER_OK (GEN-4)")
        cov.sample_device_error(cause)
        self.tally.malformed_rings += 1
        self.tally.faults["queue_config"] = self.tally.faults.get("queue_config", 0) + 1

    # -- the 16-bit wrap -------------------------------------------------------------------

    def marathon(self) -> None:
        """Past 65536 requests on a 2-entry queue without a reset: both indices wrap."""
        vq = self.drv.vqs[QueueIndex.REQUESTQ]
        start = self.tally.requests
        while self.tally.requests - start < (1 << 16) + 2 * vq.num:
            self.requests(vq.num)
            self._check_wraps()
            if self.tally.requests % 4096 < vq.num:
                self.env.dut._log.info("marathon: %d requests", self.tally.requests - start)


def cov_irq_types() -> list[IrqType]:
    return [IrqType[name] for name in cov.IRQ_TYPES]


@conformance_test("GPIO-1", "GPIO-7", "GPIO-16", "VQ-1", "VQ-2", "VQ-3", "VQ-5", "VQ-7", "VQ-8",
                  "VQ-10", "VQ-14", "GEN-3", "GEN-4", "C-5", "C-6", "C-7")
async def random_campaign(dut):
    profile = Profile.from_env()
    env = await DeviceEnv.start(dut)
    env.memory.log_dma = env.memory.shadow.log_dma = False  # nothing reads the log; it would grow
    dut._log.info("random campaign: seed %d, %s", env.seed, profile)
    campaign = Campaign(env, profile)
    failure = None
    try:
        await env.run(campaign.run)
    except BaseException as e:  # the figures of a failed run say how far it got
        failure = f"{type(e).__name__}: {e}"
        raise
    finally:
        campaign.tally.cycles = env.cycles
        if profile.out:
            data = {"seed": env.seed, "profile": asdict(profile), "tally": asdict(campaign.tally),
                    "failure": failure, "config": json.loads(configs.to_json(env.config))}
            coverage_path = profile.out + ".coverage.yml"
            data["coverage"] = cov.export(coverage_path)
            with open(profile.out, "w") as f:
                json.dump(data, f, indent=1)

