"""``virtio-gpio linux``: boot a Linux guest in QEMU with the real gpio-virtio driver on the
vhost-user backend, run libgpiod's tools in it (``guest_init.sh``), and play the host's side of
each step from the guest's console: drive the input pins, check the output pins, make edges.

Every step gets a named result; the guest's console and the backend's log are kept in the run's
folder. KVM is not assumed: TCG (``-M pc``) boots in a few seconds of guest time.
"""

import json
import logging
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from virtio_gpio.model.config import DeviceConfig

from . import guest_image
from .devices import ModelDevice
from .serve import Server

BOOT_TIMEOUT = 300  # seconds for the whole guest run
RAM = "256M"


@dataclass
class Step:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Run:
    kernel: str
    backend: str
    steps: list[Step] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    requests: int = 0
    console: Path | None = None
    backend_log: Path | None = None

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    def table(self) -> str:
        lines = [f"{'step':28} result  detail"]
        lines += [f"{s.name:28} {'ok' if s.ok else 'FAIL':7} {s.detail}" for s in self.steps]
        return "\n".join(lines)


def guest_script(config: DeviceConfig, kern: guest_image.Kernel, event_line: int) -> str:
    text = (Path(__file__).with_name("guest_init.sh")).read_text()
    modules = " ".join(m.stem for m in kern.modules)
    return (text.replace("@NGPIO@", str(config.ngpio)).replace("@MODULES@", modules)
            .replace("@EVENT_LINE@", str(event_line)))


class _Host:
    """The host's half of the guest script: reacts to the guest's "@@" lines."""

    def __init__(self, server: Server, config: DeviceConfig, run: Run):
        self.server, self.config, self.run = server, config, run
        self.detect = ""
        self.info: list[str] = []
        self.ended = False

    def line(self, text: str) -> None:
        words = text.split()
        if not words or words[0] != "@@":
            return
        cmd, args = words[1], words[2:]
        if cmd == "RESULT":
            self.run.steps.append(Step(args[0], args[1] == "ok", " ".join(args[2:])))
        elif cmd == "SET":
            self.server.set_input(int(args[0]), int(args[1]))
        elif cmd == "EXPECT":
            line, value = int(args[0]), int(args[1])
            try:
                self.server.wait_output(line, value, timeout=5)
                self.run.steps.append(Step(f"gpioset-{line}-{value}", True))
            except TimeoutError as e:
                self.run.steps.append(Step(f"gpioset-{line}-{value}", False, str(e)))
        elif cmd == "PULSE":
            self._pulse(int(args[0]), args[1], int(args[2]))
        elif cmd == "GPIODETECT":
            self.detect = " ".join(args)
        elif cmd == "GPIOINFO":
            self.info.append(" ".join(args))
        elif cmd == "END":
            self.ended = True

    def _pulse(self, line: int, kind: str, n: int) -> None:
        # paced: the driver re-queues its eventq buffer after each event, and an edge while the
        # line is masked is latched only once
        levels = {"rising": (1, 0), "falling": (0, 1), "both": (1, 0)}[kind]
        for _ in range(n):
            for level in levels:
                self.server.set_input(line, level)
                time.sleep(0.4)

    def finish(self) -> None:
        """The checks made from what the guest printed."""
        want = f"gpiochip0 [virtio0] ({self.config.ngpio} lines)"
        self.run.steps.insert(1, Step("gpiodetect", want in self.detect, self.detect))
        names = self.config.line_names or ("",) * self.config.ngpio
        for i, name in enumerate(names):
            shown = next((s for s in self.info if s.startswith(f"line {i}:")), "")
            expected = f'"{name}"' if name else "unnamed"
            self.run.steps.insert(2 + i, Step(f"gpioinfo-{i}", expected in shown, shown))
        self.run.steps.append(Step("poweroff", self.ended, "" if self.ended else
                                   "the guest never reached the end of its script (see the console)"))


def run_guest(config: DeviceConfig, kernel_version: str, out: Path, *,
              cache: Path = guest_image.DEFAULT_CACHE, event_line: int = 2, progress=print) -> Run:
    run = Run(kernel_version, "model")
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    progress(f"== guest pieces (cached under {cache})")
    q = guest_image.qemu(cache)
    kern = guest_image.kernel(kernel_version, cache)
    run.seconds["prepare"] = round(time.monotonic() - start, 1)
    initrd = guest_image.initramfs(kern, guest_script(config, kern, event_line), out / "initrd.gz", cache)
    progress(f"   QEMU {q.version}, kernel {kern.abi}, initramfs {initrd.stat().st_size // 1024} KiB "
             f"({time.monotonic() - start:.1f} s)")

    run.backend_log = out / "backend.log"
    handler = logging.FileHandler(run.backend_log, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    logging.getLogger("virtio_gpio").addHandler(handler)
    logging.getLogger("virtio_gpio").setLevel(logging.INFO)
    socket_path = out / "vhost-user.sock"
    server = Server(socket_path, ModelDevice(config))
    thread = threading.Thread(target=server.serve, kwargs={"once": True}, daemon=True)
    thread.start()
    host = _Host(server, config, run)
    run.console = out / "console.log"
    cmd = [str(q.binary), *sum((["-L", str(d)] for d in q.data_dirs), []),
           "-M", "pc", "-m", RAM, "-nic", "none", "-no-reboot", "-display", "none",
           "-serial", "stdio", "-monitor", "none",
           "-object", f"memory-backend-memfd,id=mem,size={RAM},share=on", "-numa", "node,memdev=mem",
           "-chardev", f"socket,id=vgpio,path={socket_path}",
           "-device", "vhost-user-gpio-pci,chardev=vgpio,id=gpio",
           "-kernel", str(kern.vmlinuz), "-initrd", str(initrd),
           "-append", "console=ttyS0 quiet panic=-1"]
    progress(f"== booting Linux {kern.abi} on QEMU {q.version} (TCG) with the {run.backend} backend")
    boot = time.monotonic()
    try:
        with open(run.console, "w") as console:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    errors="replace")
            timer = threading.Timer(BOOT_TIMEOUT, proc.kill)
            timer.start()
            for text in proc.stdout:
                console.write(text)
                console.flush()
                host.line(text.strip())
            proc.wait()
            timer.cancel()
    finally:
        server.stop()
        thread.join(10)
        logging.getLogger("virtio_gpio").removeHandler(handler)
    run.seconds["boot_and_test"] = round(time.monotonic() - boot, 1)
    run.requests = server.backend.requests_served if server.backend else 0
    host.finish()
    if not any(s.name == "probe" for s in run.steps):
        run.steps.append(Step("probe", False, f"the guest never reported (QEMU exit {proc.returncode}; "
                                              f"see {run.console})"))
    (out / "results.json").write_text(json.dumps(
        {"kernel": kern.abi, "qemu": q.version, "backend": run.backend, "passed": run.passed,
         "requests": run.requests, "seconds": run.seconds,
         "steps": [s.__dict__ for s in run.steps]}, indent=1) + "\n")
    return run
