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
from .serve import Server, log_to_file

log = logging.getLogger("virtio_gpio.linux")
BOOT_TIMEOUT = 300
# microvm under TCG may hang calibrating the TSC against the PIT: give the kernel the TSC's rate
KERNEL_ARGS = {"pci": "", "mmio": " tsc_early_khz=2000000 no_timer_check"}  # seconds for the whole guest run
RAM = "256M"


@dataclass
class Step:
    name: str
    ok: bool
    detail: str = ""
    seconds: float | None = None  # wall time since the step before it ended (None: read from output)


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
        lines = [f"{'step':28} result  {'seconds':>7}  detail"]
        lines += [f"{s.name:28} {'ok' if s.ok else 'FAIL':7} "
                  f"{'' if s.seconds is None else f'{s.seconds:.1f}':>7}  {s.detail}" for s in self.steps]
        return "\n".join(lines)


def guest_script(config: DeviceConfig, kern: guest_image.Kernel, event_line: int) -> str:
    text = (Path(__file__).with_name("guest_init.sh")).read_text()
    modules = " ".join(m.stem for m in kern.modules)
    return (text.replace("@NGPIO@", str(config.ngpio)).replace("@MODULES@", modules)
            .replace("@EVENT_LINE@", str(event_line)))


class _Host:
    """The host's half of the guest script: reacts to the guest's "@@" lines."""

    def __init__(self, backend, config: DeviceConfig, run: Run):
        self.backend, self.config, self.run = backend, config, run
        self.detect = ""
        self.info: list[str] = []
        self.ended = False
        self._last = time.monotonic()

    def _add(self, name: str, ok: bool, detail: str = "") -> None:
        now = time.monotonic()
        self.run.steps.append(Step(name, ok, detail, round(now - self._last, 1)))
        self._last = now

    def line(self, text: str) -> None:
        """Play the host's part of one console line; a part that fails is a failed step (named
        after the guest's command), and the guest goes on."""
        words = text.split()
        if not words or words[0] != "@@" or len(words) < 2:
            return
        try:
            self._command(words[1], words[2:])
        except Exception as e:  # the backend went away, a malformed line...
            log.error("the host's part of %r failed: %s", text, e)
            self._add(f"host-{words[1].lower()}", False, f"{type(e).__name__}: {e}")

    def _command(self, cmd: str, args: list[str]) -> None:
        if cmd == "RESULT":
            self._add(args[0], args[1] == "ok", " ".join(args[2:]))
        elif cmd == "SET":
            self.backend.set_input(int(args[0]), int(args[1]))
        elif cmd == "EXPECT":
            line, value = int(args[0]), int(args[1])
            try:
                self.backend.wait_output(line, value, timeout=5)
                self._add(f"gpioset-{line}-{value}", True)
            except TimeoutError as e:
                self._add(f"gpioset-{line}-{value}", False, str(e))
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
                self.backend.set_input(line, level)
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
        self._add("poweroff", self.ended, "" if self.ended else
                  "the guest never reached the end of its script (see the console)")


class ModelBackend:
    """The golden model behind the socket, served from a thread of this process. The RTL's
    counterpart, with the same methods, is ``tb.rtl_serve.RtlBackend``."""

    name = "model"

    def __init__(self, config: DeviceConfig):
        self.config = config

    def start(self, socket_path: Path, out: Path, progress=print) -> None:
        self._handler = log_to_file(out / "backend.log")
        self.server = Server(socket_path, ModelDevice(self.config))
        self._thread = threading.Thread(target=self.server.serve, kwargs={"once": True}, daemon=True)
        self._thread.start()

    def set_input(self, line: int, level: int) -> None:
        self.server.set_input(line, level)

    def wait_output(self, line: int, value: int, timeout: float = 10.0) -> None:
        self.server.wait_output(line, value, timeout)

    def stop(self) -> None:
        self.server.stop()

    def finish(self, timeout: float | None = 10) -> dict:
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.stop()
            self._thread.join(10)
        logging.getLogger("virtio_gpio").removeHandler(self._handler)
        backend = self.server.backend
        return {"error": None, "requests": backend.requests_served if backend else 0,
                "differences": []}


def machine(transport: str, socket_path: Path, out: Path) -> list[str]:
    """QEMU's machine and device options: the PC with virtio-pci, or the microvm with
    virtio-mmio, whose register accesses are traced to ``out/mmio-trace.log``
    (``tb/mmio_replay.py`` replays them). Both share the guest's RAM with the backend."""
    memory = ["-object", f"memory-backend-memfd,id=mem,size={RAM},share=on"]
    chardev = ["-chardev", f"socket,id=vgpio,path={socket_path}"]
    if transport == "pci":
        return ["-M", "pc", *memory, "-numa", "node,memdev=mem", *chardev,
                "-device", "vhost-user-gpio-pci,chardev=vgpio,id=gpio"]
    if transport == "mmio":
        # microvm boots under TCG with the legacy timers (without them it hangs calibrating the
        # TSC); QEMU's virtio-mmio is the legacy (version 1) transport unless told otherwise
        return ["-M", "microvm,pit=on,pic=on,rtc=on,memory-backend=mem", *memory, *chardev,
                "-global", "virtio-mmio.force-legacy=false",
                "-device", "vhost-user-gpio-device,chardev=vgpio,id=gpio",
                "-trace", "virtio_mmio_read", "-trace", "virtio_mmio_write_offset",
                "-D", str(out / "mmio-trace.log")]
    raise ValueError(f"unknown transport {transport!r} (pci, mmio)")


def run_guest(config: DeviceConfig, kernel_version: str, out: Path, *, backend=None,
              cache: Path = guest_image.DEFAULT_CACHE, event_line: int = 2, transport: str = "pci",
              checks=(), progress=print) -> Run:
    """Boot the guest against ``backend`` (default: a ``ModelBackend``) on ``transport`` (pci or
    mmio) and run its script; then each of ``checks`` (the run's folder -> a ``Step``)."""
    backend = backend or ModelBackend(config)
    run = Run(kernel_version, backend.name)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    progress(f"== guest pieces (cached under {cache})")
    q = guest_image.qemu(cache)
    kern = guest_image.kernel(kernel_version, cache)
    initrd = guest_image.initramfs(kern, guest_script(config, kern, event_line), out / "initrd.gz", cache)
    progress(f"   QEMU {q.version}, kernel {kern.abi}, initramfs {initrd.stat().st_size // 1024} KiB "
             f"({time.monotonic() - start:.1f} s)")
    run.seconds["prepare"] = round(time.monotonic() - start, 1)
    socket_path = out / "vhost-user.sock"
    (out / "mmio-trace.log").unlink(missing_ok=True)  # a trace is of this run only
    started = time.monotonic()
    backend.start(socket_path, out, progress=progress)
    run.seconds["backend_start"] = round(time.monotonic() - started, 1)
    run.backend_log = out / "backend.log"
    host = _Host(backend, config, run)
    run.console = out / "console.log"
    cmd = [str(q.binary), *sum((["-L", str(d)] for d in q.data_dirs), []),
           "-m", RAM, "-nic", "none", "-no-reboot", "-display", "none",
           "-serial", "stdio", "-monitor", "none", *machine(transport, socket_path, out),
           "-kernel", str(kern.vmlinuz), "-initrd", str(initrd),
           "-append", "console=ttyS0 quiet panic=-1" + KERNEL_ARGS[transport]]
    progress(f"== booting Linux {kern.abi} on QEMU {q.version} (TCG, virtio-{transport}) with the "
             f"{run.backend} backend")
    boot = time.monotonic()
    proc = None
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
        if proc is None or proc.returncode != 0:
            backend.stop()  # QEMU never connected, or went away without hanging up
        report = backend.finish()
    run.seconds["boot_and_test"] = round(time.monotonic() - boot, 1)
    run.requests = report["requests"]
    host.finish()
    if not any(s.name == "probe" for s in run.steps):
        run.steps.append(Step("probe", False, f"the guest never reported (QEMU exit {proc.returncode}; "
                                              f"see {run.console})"))
    if report["error"]:
        run.steps.append(Step("backend", False, report["error"]))
    if backend.name == "rtl":
        differences = report["differences"]
        run.steps.append(Step("rtl-matches-model", not differences,
                              differences[0] if differences else
                              f"{run.requests} requests, {report.get('cycles', 0)} cycles"))
    for check in checks:  # steps made from the run's files after the guest ended
        run.steps.append(check(out))
    (out / "results.json").write_text(json.dumps(
        {"kernel": kern.abi, "qemu": q.version, "backend": run.backend, "transport": transport,
         "passed": run.passed,
         "requests": run.requests, "seconds": run.seconds,
         "steps": [s.__dict__ for s in run.steps]}, indent=1) + "\n")
    return run
