"""The control socket of ``virtio-gpio serve --control PATH``: what a test script written in any
language needs while a VM runs against the backend, one text line per command and one per answer.

====================  ==================================================================
``set LINE 0|1``      drive input pin LINE                      -> ``ok``
``get LINE``          the pin as the host sees it               -> ``out 0|1``, ``in``, ``none``
``wait LINE 0|1 [S]`` until LINE is an output at that value     -> ``ok`` or ``error timeout ...``
``outputs``           gpio_o and gpio_oe as hex                 -> ``0x05 0x07``
``requests``          requests the guest has made so far        -> ``42``
``events``            what happened, one line each, then ``end``
``differences``       where the RTL and the model beside it disagreed (``--backend rtl``),
                      one per line, then ``end``
``stop``              stop serving (the backend exits)              -> ``ok``
====================  ==================================================================

Anything else is answered ``error ...``; the connection stays usable.
"""

import logging
import socket
import threading
from pathlib import Path

from .serve import Server, _listen

log = logging.getLogger("virtio_gpio.control")


def answer(server: Server, line: str) -> str:
    words = line.split()
    try:
        if not words:
            raise ValueError("empty command")
        cmd = words[0]
        args = [int(w, 0) for w in words[1:3]] + [float(w) for w in words[3:]]
        n = server.config.ngpio
        if args and not 0 <= args[0] < n:
            raise ValueError(f"line {args[0]} does not exist (ngpio {n})")
        if cmd == "set" and len(args) == 2 and args[1] in (0, 1):
            server.set_input(args[0], args[1])
            return "ok"
        if cmd == "get" and len(args) == 1:
            o, oe = server.outputs()
            return f"out {o >> args[0] & 1}" if oe >> args[0] & 1 else "in"
        if cmd == "wait" and len(args) in (2, 3) and args[1] in (0, 1):
            server.wait_output(args[0], args[1], args[2] if len(args) == 3 else 10.0)
            return "ok"
        if cmd == "outputs" and not args:
            o, oe = server.outputs()
            return f"{o:#x} {oe:#x}"
        if cmd == "requests" and not args:
            return str(server.requests_served())
        if cmd == "events" and not args:
            return _listing(f"{t:.3f} {kind} {detail}" for t, kind, detail in server.events)
        if cmd == "differences" and not args:
            return _listing(" | ".join(d.splitlines())
                            for d in getattr(server.device, "differences", ()))
        if cmd == "stop" and not args:
            server.stop()
            return "ok"
        raise ValueError(f"unknown command or arguments: {line.strip()!r} (set, get, wait, "
                         f"outputs, requests, events, differences, stop)")
    except TimeoutError as e:
        return f"error timeout {e}"
    except ValueError as e:
        return f"error {e}"


LISTINGS = ("events", "differences")  # answered with several lines, then "end"


def _listing(lines) -> str:
    return "".join(f"{line}\n" for line in lines) + "end"


class ControlSocket:
    """Serves ``answer`` on a unix socket, a thread per client."""

    def __init__(self, path, server: Server):
        self.path, self.server = Path(path), server
        self._sock = _listen(self.path)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rw", encoding="ascii", newline="\n") as f:
            for line in f:
                f.write(answer(self.server, line) + "\n")
                f.flush()

    def close(self) -> None:
        self._sock.close()
        self.path.unlink(missing_ok=True)


def command(path, line: str, timeout: float = 30.0) -> str:
    """Send one command to a control socket and return its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        with s.makefile("rw", encoding="ascii", newline="\n") as f:
            f.write(line.strip() + "\n")
            f.flush()
            first = f.readline().rstrip("\n")
            if (line.split() or [""])[0] not in LISTINGS:
                return first
            lines = [first]
            while lines[-1] != "end":
                lines.append(f.readline().rstrip("\n"))
            return "\n".join(lines[:-1])


class ControlError(RuntimeError):
    """The backend answered a command with ``error ...``."""


class ControlClient:
    """The control socket as a Python object, with ``host.serve.Server``'s control methods."""

    def __init__(self, path):
        self.path = Path(path)

    def _ok(self, line: str, timeout: float = 30.0) -> str:
        answer_ = command(self.path, line, timeout)
        if answer_.startswith("error timeout"):
            raise TimeoutError(answer_.removeprefix("error timeout "))
        if answer_.startswith("error"):
            raise ControlError(f"{line!r}: {answer_}")
        return answer_

    def set_input(self, line: int, level: int) -> None:
        self._ok(f"set {line} {level}")

    def outputs(self) -> tuple[int, int]:
        o, oe = self._ok("outputs").split()
        return int(o, 16), int(oe, 16)

    def wait_output(self, line: int, value: int, timeout: float = 10.0) -> None:
        self._ok(f"wait {line} {value} {timeout}", timeout + 30)

    def requests_served(self) -> int:
        return int(self._ok("requests"))

    def differences(self) -> list[str]:
        text = self._ok("differences")
        return text.splitlines() if text else []

    def stop(self) -> None:
        self._ok("stop")
