"""Starting the RTL vhost-user backend (``tb.rtl_backend``): build the device for a configuration
(cached), then run the simulation that serves the socket, in the foreground (``serve --backend
rtl``) or beside a VM (``RtlBackend``, for ``virtio-gpio linux``), talking to it through its control
socket. Everything a run leaves (simulator log, backend log, report, waves) goes into one folder.
"""

import json
import os
import threading
import time
from pathlib import Path

from virtio_gpio.host.control import ControlClient
from virtio_gpio.model.config import DeviceConfig

from . import configs, regression, simulator
from .dut import Dut
from .env import SEED_ENV
from .rtl_backend import SERVE_ENV, ServeSettings

BUILD_NAME = "vhost-user"
START_TIMEOUT = 120  # seconds from the simulator's start to a listening socket


class RtlBackendError(RuntimeError):
    """The RTL backend did not start or ended badly; the message says where to look."""


def build(config: DeviceConfig, *, simulator_name: str = simulator.DEFAULT_SIMULATOR,
          waves: bool = False, build_dir: Path = regression.DEFAULT_BUILD_DIR,
          dut: Dut | None = None, progress=print) -> simulator.Build:
    """Our device for ``config``, or the external ``dut`` (described by ``config``)."""
    what = dut.report_info()["label"] if dut is not None else "the device"
    progress(f"== building {what} for the RTL backend with "
             f"{simulator.describe(simulator_name)['name']} (cached when unchanged)")
    _, built = regression.build_config(BUILD_NAME, config, build_dir, waves=waves,
                                       simulator_name=simulator_name, dut=dut)
    progress(f"   build {'reused' if built.cached else 'done'} in {built.seconds:.1f} s")
    return built


def settings_for(out: Path, socket_path: Path, *, control: Path | None = None,
                 once: bool = True) -> ServeSettings:
    """A run's settings, everything it leaves in ``out``. The simulation runs in its build folder,
    so every path it is given is absolute."""
    out = out.resolve()
    return ServeSettings(socket=str(socket_path.resolve()), log=str(out / "backend.log"),
                         control=str((control or out / "control.sock").resolve()),
                         report=str(out / "backend-report.json"), once=once)


def read_report(settings: ServeSettings) -> dict:
    """What the run wrote to its report (requests, cycles, differences, error), over the values
    of a run that wrote none."""
    report = {"error": None, "requests": 0, "differences": [], "cycles": 0}
    path = Path(settings.report)
    if path.is_file():
        report |= json.loads(path.read_text())
    return report


def run(built: simulator.Build, config: DeviceConfig, settings: ServeSettings, out: Path, *,
        seed: int = 1, waves: bool = False) -> simulator.RunResult:
    """Run the serving simulation until it ends (the frontend hung up, or ``stop``)."""
    Path(settings.report).unlink(missing_ok=True)  # a report is of this run only
    env = {configs.CONFIG_ENV: configs.to_json(config), SEED_ENV: str(seed),
           SERVE_ENV: settings.to_env()}
    env.update({k: v for k, v in os.environ.items() if k.startswith("VIRTIO_GPIO_") and k not in env})
    return simulator.run(built, "virtio_gpio.tb.rtl_backend", testcase="serve_vhost_user",
                         extra_env=env, junit_path=out / "simulation.xml", waves=waves)


class RtlBackend:
    """The RTL backend in a simulation of its own, beside a VM: ``start`` returns once it listens;
    the control methods (``set_input``, ``wait_output``...) go through its control socket; ``finish``
    waits for the simulation to end and returns its report."""

    name = "rtl"

    def __init__(self, config: DeviceConfig, *, simulator_name: str = simulator.DEFAULT_SIMULATOR,
                 seed: int = 1, waves: bool = False, build_dir: Path = regression.DEFAULT_BUILD_DIR,
                 dut: Dut | None = None):
        self.config, self.simulator_name, self.seed, self.waves = config, simulator_name, seed, waves
        self.build_dir, self.dut = build_dir, dut
        self.control: ControlClient | None = None
        self._thread: threading.Thread | None = None
        self._result: simulator.RunResult | Exception | None = None

    def start(self, socket_path: Path, out: Path, progress=print) -> None:
        built = build(self.config, simulator_name=self.simulator_name, waves=self.waves,
                      build_dir=self.build_dir, dut=self.dut, progress=progress)
        out.mkdir(parents=True, exist_ok=True)
        self.settings = settings = settings_for(out, socket_path)

        def simulate():
            try:
                self._result = run(built, self.config, settings, out.resolve(), seed=self.seed,
                                   waves=self.waves)
            except Exception as e:  # handed to finish()
                self._result = e
        self.control = ControlClient(settings.control)
        self._thread = threading.Thread(target=simulate, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        # the server listens on the vhost-user socket first, then on the control socket; a socket
        # file alone may be left from an earlier run, so the control socket must answer
        while not (Path(settings.socket).exists() and self._answers()):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                report = self.finish(timeout=0)
                raise RtlBackendError(f"the RTL backend did not start listening on {socket_path}: "
                                      f"{report.get('error') or self._why()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            self.control.requests_served()
            return True
        except OSError:
            return False

    def _why(self) -> str:
        if isinstance(self._result, Exception):
            return str(self._result)
        if self._result is not None:
            return self._result.summary()
        return "it is still starting (see the simulator log in the run's folder)"

    # -- the control interface (as host.serve.Server's) ------------------------------------

    def set_input(self, line: int, level: int) -> None:
        self.control.set_input(line, level)

    def wait_output(self, line: int, value: int, timeout: float = 10.0) -> None:
        self.control.wait_output(line, value, timeout)

    def stop(self) -> None:
        if self.control is not None and self._thread is not None and self._thread.is_alive():
            try:
                self.control.stop()
            except OSError:
                pass  # already gone

    def finish(self, timeout: float | None = 60) -> dict:
        """Wait for the simulation to end (``stop`` it after ``timeout`` seconds); its report
        (requests, cycles, differences), with an ``error`` when it ended badly."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self.stop()
                self._thread.join(30)
        report = read_report(self.settings)
        if isinstance(self._result, Exception):
            report["error"] = report["error"] or str(self._result)
        elif self._result is not None and self._result.failed:
            report["error"] = report["error"] or f"the serving simulation failed: {self._result.summary()}"
        report["simulator_log"] = str(self._result.log_path) if isinstance(
            self._result, simulator.RunResult) else None
        return report
