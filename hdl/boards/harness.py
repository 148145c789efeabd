"""The out-of-context harness: the device alone, with every bus and GPIO input driven from a scan
chain and every output folded into one pin, so that synthesis keeps all of its logic live without
placing several hundred I/O pins.

Every device input comes straight from a flip-flop and every output goes straight into one, as it
would behind a registered interconnect, so the reported Fmax is the device's own flop-to-flop
figure. The fold is a pipelined XOR tree (one LUT level per stage) so that it never becomes the
critical path itself. The flow marks the device's module ``keep_hierarchy`` so that synthesis
optimises it without looking through the harness, and reads the device's own cell counts from that
module."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from ...model.config import DeviceConfig
from ..device import VirtioGpioDevice

# Instance names; the flow finds the device's module by its path, HARNESS_INSTANCE.DEVICE_INSTANCE.
HARNESS_INSTANCE = "harness"
DEVICE_INSTANCE = "device"
# Inputs of one XOR stage: a 4-input LUT on both families.
FOLD_FAN_IN = 4


class OutOfContextHarness(wiring.Component):
    scan_in: In(1)
    scan_out: Out(1)

    def __init__(self, config: DeviceConfig):
        self.config = config
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        device = VirtioGpioDevice(self.config)
        m.submodules[DEVICE_INSTANCE] = device

        inputs, outputs = [], []
        for _path, member, value in device.signature.flatten(device):
            (inputs if member.flow == In else outputs).append(value)

        chain = Signal(len(Cat(*inputs)))
        m.d.sync += chain.eq(Cat(self.scan_in, chain[:-1]))
        m.d.comb += Cat(*inputs).eq(chain)

        stage = Signal(len(Cat(*outputs)))
        m.d.sync += stage.eq(Cat(*outputs))
        while len(stage) > 1:
            groups = [stage[i:i + FOLD_FAN_IN] for i in range(0, len(stage), FOLD_FAN_IN)]
            folded = Signal(len(groups))
            m.d.sync += folded.eq(Cat(*(group.xor() for group in groups)))
            stage = folded
        m.d.comb += self.scan_out.eq(stage)
        return m


class OutOfContextTop(wiring.Component):
    """The harness on a platform: its scan pins on the resources ``scan_in`` and ``scan_out``
    (clock and reset come from the platform's default domain)."""

    def __init__(self, config: DeviceConfig):
        self.config = config
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules[HARNESS_INSTANCE] = harness = OutOfContextHarness(self.config)
        m.submodules.scan_in = scan_in = io.Buffer("i", platform.request("scan_in", dir="-"))
        m.submodules.scan_out = scan_out = io.Buffer("o", platform.request("scan_out", dir="-"))
        m.d.comb += [harness.scan_in.eq(scan_in.i), scan_out.o.eq(harness.scan_out)]
        return m
