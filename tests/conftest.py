"""Shared fixtures: a device model wired to guest memory and the Linux driver model."""

from dataclasses import dataclass

import pytest

from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.device import VirtioGpioDevice
from virtio_gpio.model.driver.linux_gpio import LinuxVirtioGpioDriver, negotiate_features
from virtio_gpio.model.layouts import Reg
from virtio_gpio.model.memory import GuestMemory
from virtio_gpio.model.transport import ModelTransport


@dataclass
class Bench:
    config: DeviceConfig
    memory: GuestMemory
    device: VirtioGpioDevice
    transport: ModelTransport
    driver: LinuxVirtioGpioDriver

    def read(self, offset: int, size: int = 4) -> int:
        return self.device.read(offset, size)

    def write(self, offset: int, value: int, size: int = 4) -> None:
        self.device.write(offset, value, size)

    def negotiate(self, features: int) -> bool:
        """The feature negotiation of virtio.c on the device model (``negotiate_features``)."""
        return negotiate_features(self, features)

    def notify(self, queue: int) -> None:
        self.device.write(Reg.QUEUE_NOTIFY, queue)
        self.device.step()

    def assert_clean_dma(self) -> None:
        """Every device access so far stayed inside what the driver handed over (contract §5)."""
        assert self.memory.firewall.violations == [], "\n".join(map(str, self.memory.firewall.violations))


def make_bench(config: DeviceConfig | None = None, *, probe: bool = True, **driver_kwargs) -> Bench:
    config = config or DeviceConfig()
    memory = GuestMemory(config.dma_addr_width)
    device = VirtioGpioDevice(config, memory)
    transport = ModelTransport(device)
    driver = LinuxVirtioGpioDriver(transport, **driver_kwargs)
    if probe:
        driver.probe()
    return Bench(config, memory, device, transport, driver)


@pytest.fixture
def bench() -> Bench:
    """A probed default device (32 lines, every optional feature offered and negotiated)."""
    return make_bench()


# Where a simulator is missing, its tests are skipped with the reason and the install command in
# pytest's summary; where this variable names it (CI does, for icarus), they fail instead, so a
# missing simulator can never pass CI unseen.
REQUIRED_SIMULATORS_ENV = "VIRTIO_GPIO_REQUIRE_SIMULATORS"


def require_simulator(name: str) -> None:
    """Skip (or, when required, fail) the calling test unless simulator ``name`` can run here."""
    import os

    from virtio_gpio.tb import simulator
    try:
        simulator.check(name)
    except simulator.SimulatorMissing as e:
        if name in os.environ.get(REQUIRED_SIMULATORS_ENV, "").split(","):
            pytest.fail(f"{e} ({REQUIRED_SIMULATORS_ENV} requires it)")
        pytest.skip(str(e))
