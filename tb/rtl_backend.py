"""The simulated RTL as a vhost-user backend's device (``serve --backend rtl``), with the golden model
running beside it in lock-step, so that a real guest's driver drives both.

This is a cocotb test module: ``serve_vhost_user`` starts the device environment (clock, reset, bus
agents; ``DeviceEnv``), then runs ``host.serve.Server`` in a thread bridged into the simulation.
``RtlDevice`` is the device interface the vhost-user code programs (``read``, ``write``, ``step``,
``irq``, pins), and each of its calls resumes the simulation (``cocotb.task.resume``); between
calls simulated time stands still. The RTL's DMA is served from the VM's shared RAM
(``MirroredGuestRam``).

A difference between the RTL and the model (a register value, the irq line, the pins, the bytes
each side wrote, DMA outside guest RAM, the order of writes and rises) is logged and recorded in
``differences``; the model stops there (the two sides can no longer be compared), and the RTL
alone goes on serving the guest, so that the guest's own checks still come out. The settings
arrive in ``SERVE_ENV`` (JSON, written by ``tb.rtl_serve``); the report (requests, differences,
cycles) is written where they say.
"""

import json
import logging
import os
from dataclasses import dataclass

import cocotb
from cocotb.task import bridge, resume

from virtio_gpio.host.control import ControlSocket
from virtio_gpio.host.serve import ServeError, Server, log_to_file
from virtio_gpio.host.vhost_user import ProtocolError

from . import configs
from .env import DeviceEnv
from .guest_ram_mirror import MirroredGuestRam

SERVE_ENV = "VIRTIO_GPIO_SERVE"
log = logging.getLogger("virtio_gpio.rtl")


@dataclass
class ServeSettings:
    socket: str
    log: str                    # the backend's log file (besides the simulator's log)
    control: str | None = None
    report: str | None = None   # where the JSON report goes
    once: bool = True           # end when the first frontend hangs up

    def to_env(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_env(cls) -> "ServeSettings":
        text = os.environ.get(SERVE_ENV)
        if text is None:
            raise RuntimeError(f"{SERVE_ENV} is not set: start this through `virtio-gpio serve "
                               f"--backend rtl` (tb.rtl_serve)")
        return cls(**json.loads(text))


class RtlDevice:
    """The RTL behind the vhost-user code; every method is called from the server's thread."""

    name = "rtl"

    def __init__(self, env: DeviceEnv):
        self.env = env
        self.config = env.config
        self.memory: MirroredGuestRam = env.memory
        self.differences: list[str] = []

    @property
    def lockstep(self) -> bool:
        return self.env.check

    def _run(self, coroutine_function, *args):
        """Resume the simulation for ``coroutine_function(*args)``. On a difference the model is
        left behind and the call is made again on the RTL alone: every call is safe to repeat from
        its start (reads have no side effects; a difference is found before a write is made)."""
        try:
            return resume(coroutine_function)(*args)
        except AssertionError as e:  # Mismatch, or the irq line against InterruptStatus
            self.differences.append(f"cycle {self.env.cycles}: "
                                    + " ".join(line.strip() for line in str(e).splitlines()))
            if not self.lockstep:  # the RTL alone breaks a rule the environment checks
                raise ProtocolError(f"the RTL cannot go on serving: {e}") from None
            log.error("the RTL and the model disagree at cycle %d; the model stops here, the "
                      "RTL goes on alone:\n%s", self.env.cycles, e)
            self.env.check = False
        return self._run(coroutine_function, *args)

    def read(self, offset: int, size: int = 4) -> int:
        return self._run(self.env.read, offset, size)

    def write(self, offset: int, value: int, size: int = 4) -> None:
        self._run(self.env.write, offset, value, size)

    def step(self) -> None:
        self._run(self.env.settle)
        self.memory.next_round()

    @property
    def irq(self) -> bool:
        return self.env.irq_level  # sampled when the RTL last went quiet

    def next_avail(self, queue: int) -> int | None:
        """GET_VRING_BASE. Virtio-mmio has no register for the device's avail index; in lock-step
        the model's is the RTL's (every write and completion agreed). After a difference: None
        (unknown; the vhost-user code then answers the ring's used.idx)."""
        return self.env.model.queues[queue].last_avail_idx if self.lockstep else None

    def describe_error(self) -> str:
        if not self.lockstep:
            return "no reason known (the RTL has no error register; the model is not in lock-step)"
        return ("; ".join(e.reason for e in self.env.model.errors[-3:])
                or "the model beside it recorded no device error")

    # -- the pins ---------------------------------------------------------------------------

    def set_input(self, line: int, level: int) -> None:
        self._run(self.env.set_input, line, level)

    async def _pins(self) -> tuple[int, int]:
        return self.env.pins.outputs, self.env.pins.output_enables

    @property
    def outputs(self) -> int:
        return resume(self._pins)()[0]

    @property
    def output_enables(self) -> int:
        return resume(self._pins)()[1]


@cocotb.test()
async def serve_vhost_user(dut):
    """Serve a VM's virtio GPIO device with the RTL (and the model beside it) until the frontend
    hangs up, or the control socket's ``stop``."""
    settings = ServeSettings.from_env()
    log_to_file(settings.log)
    config = configs.current()
    env = await DeviceEnv.start(dut, config, memory=MirroredGuestRam(config.dma_addr_width))
    device = RtlDevice(env)
    report = {"error": None, "requests": 0, "differences": device.differences, "cycles": 0,
              "connections": 0}
    try:
        server = Server(settings.socket, device)
        control = ControlSocket(settings.control, server) if settings.control else None
    except ServeError as e:
        report["error"] = str(e)
        _write(settings.report, report)
        raise
    try:
        await bridge(server.serve)(once=settings.once)
    finally:
        if control is not None:
            control.close()
        report.update(requests=server.backend.requests_served if server.backend else 0,
                      cycles=env.cycles, connections=server.connections)
        _write(settings.report, report)
    log.info("served %d requests in %d cycles; %d differences between RTL and model",
             report["requests"], report["cycles"], len(device.differences))


def _write(path: str | None, report: dict) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
