"""virtio-gpio in hardware: gateware (``virtio_gpio.hdl``), golden model (``virtio_gpio.model``)
and cocotb testbench (``virtio_gpio.tb``)."""
