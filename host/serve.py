"""``virtio-gpio serve``: the vhost-user backend's socket, one frontend at a time, and the control
interface a test script uses to drive the pins while a VM runs.

The device and its pins belong to the server thread; everything else reaches them through
``call``, which runs a function there between two vhost-user messages. ``Server`` is the Python
API (``set_input``, ``outputs``, ``wait_output``, ``events``).
"""

import logging
import os
import queue
import socket
import time
from concurrent.futures import Future
from pathlib import Path

from .vhost_user import VhostUserGpio, serve_connection

log = logging.getLogger("virtio_gpio.serve")


LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"


def log_to_file(path) -> logging.Handler:
    """Send the backend's log (every ``virtio_gpio`` logger, INFO and up) to ``path`` as well;
    the handler, for ``logging.getLogger("virtio_gpio").removeHandler`` when done."""
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("virtio_gpio")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


class ServeError(RuntimeError):
    """The backend cannot start (the socket is in use, its folder does not exist...)."""


def _listen(path: Path) -> socket.socket:
    if path.exists():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink()  # a socket file left by a backend that died
        except OSError as e:
            raise ServeError(f"{path} exists and is not a socket this backend can replace ({e})")
        else:
            raise ServeError(f"{path} is in use: another backend is listening on it")
        finally:
            probe.close()
    if not path.parent.is_dir():
        raise ServeError(f"the folder of {path} does not exist")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
    except OSError as e:  # a path too long for a unix socket (108 bytes), a read-only folder...
        sock.close()
        raise ServeError(f"cannot listen on {path}: {e}") from None
    sock.listen(1)
    return sock


class Server:
    """A vhost-user backend on ``path`` for ``device`` (``host/devices.py``)."""

    def __init__(self, path, device):
        self.path = Path(path)
        self.device = device
        self.config = device.config
        self._listener = _listen(self.path)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._calls: queue.Queue = queue.Queue()
        self._stopping = False
        self.backend: VhostUserGpio | None = None
        self.events: list[tuple[float, str, object]] = []  # what happened: (time, kind, detail)
        self.connections = 0

    # -- the server thread ------------------------------------------------------------------

    def serve(self, *, once: bool = False) -> None:
        """Accept frontends one after another (just one with ``once``) until ``stop``."""
        log.info("listening on %s (%s backend, %s)", self.path, self.device.name, self.config)
        try:
            while not self._stopping:
                self._listener.settimeout(0.1)
                try:
                    conn, _ = self._listener.accept()
                except TimeoutError:
                    self._run_calls()
                    continue
                conn.settimeout(None)
                self.connections += 1
                self.backend = VhostUserGpio(self.device, self.config, on_event=self._event)
                self._event("connect", self.connections)
                reason = serve_connection(conn, self.backend, poll_extra=[self._wake_r],
                                          on_idle=self._run_calls,
                                          stop_when=lambda: self._stopping)
                self._event("disconnect", reason)
                log.info("frontend gone: %s", reason)
                if once:
                    break
        finally:
            self._listener.close()
            self.path.unlink(missing_ok=True)
            self._run_calls()

    def _event(self, kind: str, detail) -> None:
        self.events.append((time.monotonic(), kind, detail))

    def _run_calls(self) -> None:
        try:
            os.read(self._wake_r, 4096)  # the wake-ups so far (the pipe is non-blocking)
        except BlockingIOError:
            pass
        while True:
            try:
                fn, future = self._calls.get_nowait()
            except queue.Empty:
                break
            try:
                future.set_result(fn())
            except Exception as e:  # handed to the caller
                future.set_exception(e)

    def stop(self) -> None:
        self._stopping = True
        os.write(self._wake_w, b"\0")

    # -- the control interface (any thread) -------------------------------------------------

    def call(self, fn, timeout: float = 5.0):
        """Run ``fn()`` in the server thread and return what it returns."""
        future: Future = Future()
        self._calls.put((fn, future))
        os.write(self._wake_w, b"\0")
        return future.result(timeout)

    def set_input(self, line: int, level: int) -> None:
        """Drive input pin ``line`` to ``level`` (0 or 1)."""
        def drive():
            self._event("input", (line, level))
            self.device.set_input(line, level)
            if self.backend is not None and self.backend.running:
                self.backend.work()
        self.call(drive)

    def outputs(self) -> tuple[int, int]:
        """(gpio_o, gpio_oe): the output latches and which lines are outputs."""
        return self.call(lambda: (self.device.outputs, self.device.output_enables))

    def wait_output(self, line: int, value: int, timeout: float = 10.0) -> None:
        """Return once ``line`` is an output at ``value``; ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            o, oe = self.outputs()
            if oe >> line & 1 and (o >> line & 1) == value:
                return
            time.sleep(0.01)
        o, oe = self.outputs()
        raise TimeoutError(f"line {line} is {'an output at ' + str(o >> line & 1) if oe >> line & 1 else 'not an output'} "
                           f"after {timeout} s, not an output at {value}")

    def requests_served(self) -> int:
        return self.call(lambda: self.backend.requests_served if self.backend else 0)
