"""`virtio-gpio board` refuses bad input with a message and exit status 2, before touching a port."""

import pytest

from virtio_gpio.cli import main


@pytest.mark.parametrize("argv, message", [
    (["--port", "/nonexistent/tty0"], "cannot open /nonexistent/tty0"),
    (["--port", "/nonexistent/tty0", "--board", "de0nano"], "unknown board 'de0nano'"),
    (["--port", "/nonexistent/tty0", "--set", "3=2"], "--set takes LINE=0 or LINE=1"),
    (["--port", "/nonexistent/tty0", "--set", "LED0=1"], "--set takes LINE=0 or LINE=1"),
])
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    assert main(["board", *argv]) == 2
    assert message in capsys.readouterr().err
