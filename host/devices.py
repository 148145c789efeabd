"""The devices a vhost-user backend can put behind a VM: each has the register interface of a
virtio-mmio GPIO device (``read``, ``write``, ``step``, ``irq``) over the VM's shared RAM, and the
pins a test script drives and reads."""

from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.device import VirtioGpioDevice

from .guest_ram import SharedGuestRam


class ModelDevice:
    """The golden model, serving the virtqueues straight from the guest's RAM."""

    name = "model"

    def __init__(self, config: DeviceConfig):
        self.config = config
        self.memory = SharedGuestRam(config.dma_addr_width)
        self.model = VirtioGpioDevice(config, self.memory)

    def read(self, offset: int, size: int = 4) -> int:
        return self.model.read(offset, size)

    def write(self, offset: int, value: int, size: int = 4) -> None:
        self.model.write(offset, value, size)

    def step(self) -> None:
        self.model.step()

    @property
    def irq(self) -> bool:
        return self.model.irq

    def next_avail(self, queue: int) -> int:
        """Where the device would go on reading the avail ring (GET_VRING_BASE)."""
        return self.model.queues[queue].last_avail_idx

    def describe_error(self) -> str:
        return "; ".join(e.reason for e in self.model.errors[-3:]) or "no reason recorded"

    # -- the pins ---------------------------------------------------------------------------

    def set_input(self, line: int, level: int) -> None:
        self.model.set_input(line, level)

    @property
    def outputs(self) -> int:
        return self.model.gpio_o

    @property
    def output_enables(self) -> int:
        return self.model.gpio_oe
