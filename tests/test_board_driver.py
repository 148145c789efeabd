"""The Linux driver model drives the board system through the UART bridge, in Amaranth's simulator:
the same host-side code (``BridgeClient``, ``BridgeTransport``) that drives a real board, talking to
the bit-level UART pins of the simulated system. It proves the board's pieces work together with
real DMA traffic: rings and buffers in the on-chip RAM, replies written back by the device, the
lines on pins."""

import queue
import threading

from amaranth.sim import Simulator

from virtio_gpio.hdl.boards.board_top import BoardSystem
from virtio_gpio.hdl.soc import bridge_protocol as bp
from virtio_gpio.host.board_transport import BridgeTransport
from virtio_gpio.host.bridge_client import BridgeClient
from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.constants import Direction
from virtio_gpio.model.driver.linux_gpio import LinuxVirtioGpioDriver
from soc_sim import CLOCK_PERIOD, receive_bytes, send_bytes

DIVISOR = 4  # clock cycles per UART bit: the shortest the UART allows
MEMORY_BYTES = 16384  # two 4 KiB-aligned rings and the buffers, as on the ULX3S
LED, BUTTON = 0, 1
REPLY_TIMEOUT_S = 120.0  # wall-clock: a reply that never comes fails the test, never hangs it
# Each poll is two bridge round trips (~1000 cycles); a completion takes a few polls at most.
POLL_STEPS = 100


class SimulatedSerialPort:
    """A serial port whose far end is the simulated system's UART: ``write``/``read`` are called
    from the driver's thread, the simulator's testbenches move the bytes."""

    def __init__(self):
        self.outgoing = queue.Queue()
        self.received = bytearray()
        self.arrived = threading.Condition()

    def write(self, data: bytes) -> None:
        self.outgoing.put(bytes(data))

    def read(self, n: int) -> bytes:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= n, timeout=REPLY_TIMEOUT_S)
            data = bytes(self.received[:n])
            del self.received[:n]
            return data

    def deliver(self, byte: int) -> None:
        with self.arrived:
            self.received.append(byte)
            self.arrived.notify_all()


class _Delivering(list):
    """The byte list ``receive_bytes`` fills, handing each byte to the port as it arrives."""

    def __init__(self, port: SimulatedSerialPort):
        super().__init__()
        self.port = port

    def append(self, byte):
        super().append(byte)
        self.port.deliver(byte)


def run_driver_on_board_system(config: DeviceConfig, scenario, *, button: int):
    """Simulate the board system with ``scenario(driver)`` running in a thread as the host;
    returns what the scenario returned and the line levels seen on the pins."""
    system = BoardSystem(config, MEMORY_BYTES, DIVISOR)
    port = SimulatedSerialPort()
    outcome = {}
    pins = {"led": [], "oe": []}

    def host():
        try:
            transport = BridgeTransport(BridgeClient(port), MEMORY_BYTES, poll_pause=0)
            driver = LinuxVirtioGpioDriver(transport, timeout_steps=POLL_STEPS)
            outcome["result"] = scenario(driver)
        except BaseException as e:  # handed to the test's thread below
            outcome["error"] = e

    thread = threading.Thread(target=host, daemon=True)

    async def uart_out(ctx):
        thread.start()
        while thread.is_alive():
            try:
                frame = port.outgoing.get_nowait()
            except queue.Empty:
                await ctx.tick()
                continue
            await send_bytes(ctx, system.rx, frame, DIVISOR)

    async def uart_in(ctx):
        await receive_bytes(ctx, system.tx, DIVISOR, _Delivering(port))

    async def board_pins(ctx):
        # The LED line reads back what it drives; the button line reads the button.
        while True:
            o, oe = ctx.get(system.gpio_o), ctx.get(system.gpio_oe)
            ctx.set(system.gpio_i, (o & oe & (1 << LED)) | (button << BUTTON))
            pins["led"].append(o >> LED & oe >> LED & 1)
            pins["oe"].append(oe >> LED & 1)
            await ctx.tick()

    sim = Simulator(system)
    sim.add_clock(CLOCK_PERIOD)
    sim.add_testbench(uart_out)
    sim.add_testbench(uart_in, background=True)
    sim.add_testbench(board_pins, background=True)
    sim.run()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"], pins


def test_linux_driver_probes_the_board_and_drives_its_lines_over_the_uart():
    config = DeviceConfig(ngpio=2, line_names=("LED", "BTN"), queue_size_max=16)

    def scenario(driver):
        driver.probe()
        names = driver.names
        directions = [driver.get_direction(line) for line in range(config.ngpio)]
        driver.direction_output(LED, 1)
        button = driver.get(BUTTON)
        return names, directions, button, driver.log.errors

    (names, directions, button, errors), pins = run_driver_on_board_system(
        config, scenario, button=1)
    assert names == ["LED", "BTN"]
    assert directions == [Direction.IN, Direction.IN]  # the reset direction
    assert button == 1
    assert errors == []
    # The LED was never driven before the driver made it an output at 1, and is lit at the end.
    first_lit = pins["led"].index(1)
    assert not any(pins["oe"][:first_lit]) and pins["led"][-1] == 1
    assert bp.BITS_PER_BYTE * DIVISOR * 2 < first_lit  # it took real UART traffic to get there
