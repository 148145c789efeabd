"""Identity, register map, feature negotiation, status and reset (contract §1-§4)."""

from itertools import combinations

from virtio_gpio.model.constants import (
    DEVICE_ID_GPIO, MAGIC_VALUE, MMIO_VERSION, DeviceStatus, Feature, QueueIndex,
)
from virtio_gpio.model.driver.linux_gpio import ConfigRead, negotiate_features
from virtio_gpio.model.layouts import CONFIG_SPACE_SIZE, Reg

from ..dut import expected_ports
from ..env import DeviceEnv
from ..requirements import conformance_test

OPTIONAL = (Feature.GPIO_F_IRQ, Feature.RING_INDIRECT_DESC, Feature.RING_EVENT_IDX,
            Feature.ACCESS_PLATFORM, Feature.ORDER_PLATFORM)


def negotiate(env: DeviceEnv, features: int) -> bool:
    """Reset, then virtio.c's steps up to FEATURES_OK; returns whether FEATURES_OK was accepted."""
    env.transport.write(Reg.STATUS, 0)
    return negotiate_features(env.transport, features)


@conformance_test("MMIO-1", "MMIO-2", "MMIO-3", "GEN-9", "GEN-10", "GPIO-3", "GPIO-4", "GPIO-5",
                  "GPIO-6", "C-1")
async def linux_probe_modern_config_reads(dut):
    env = await DeviceEnv.start(dut)
    drv = env.driver(config_read=ConfigRead.MODERN)
    await env.run(drv.probe)
    assert drv.ngpio == env.config.ngpio
    assert drv.names == (list(env.config.line_names) if env.config.line_names else None)
    assert env.model.live


@conformance_test("MMIO-15", "GPIO-3", "C-3")
async def linux_probe_bytewise_config_reads(dut):
    env = await DeviceEnv.start(dut)
    drv = env.driver(config_read=ConfigRead.BYTEWISE)
    await env.run(drv.probe)
    assert drv.ngpio == env.config.ngpio
    assert drv.gpio_names_size == env.config.gpio_names_size


@conformance_test("MMIO-1", "MMIO-6", "MMIO-9", "MMIO-11", "MMIO-14", "MMIO-15", "C-3")
async def every_register_offset_at_every_width(dut):
    """Each naturally aligned 1-, 2- and 4-byte read of the control registers and the config
    space, for every DeviceFeaturesSel, QueueSel and SHMSel worth trying; the scoreboard compares
    each value with the model."""
    env = await DeviceEnv.start(dut)
    t = env.transport

    def sweep():
        assert t.read(Reg.MAGIC_VALUE) == MAGIC_VALUE
        assert t.read(Reg.VERSION) == MMIO_VERSION
        assert t.read(Reg.DEVICE_ID) == DEVICE_ID_GPIO
        for sel in (0, 1, 2, 0xFFFF_FFFF):
            t.write(Reg.DEVICE_FEATURES_SEL, sel)
            t.read(Reg.DEVICE_FEATURES)
            t.write(Reg.QUEUE_SEL, sel)
            t.read(Reg.QUEUE_SIZE_MAX)
            t.read(Reg.QUEUE_READY)
            t.write(Reg.SHM_SEL, sel)
            for reg in (Reg.SHM_LEN_LOW, Reg.SHM_LEN_HIGH, Reg.SHM_BASE_LOW, Reg.SHM_BASE_HIGH):
                assert t.read(reg) == 0xFFFF_FFFF
        for offset in range(0, Reg.CONFIG + CONFIG_SPACE_SIZE + 8, 4):
            t.read(offset)
        for offset in range(Reg.CONFIG, Reg.CONFIG + CONFIG_SPACE_SIZE + 4):
            for size in (1, 2):
                if offset % size == 0:
                    t.read(offset, size)
        t.read(0xFFC)
    await env.run(sweep)


@conformance_test("GEN-5", "GEN-6", "GEN-7", "GEN-8", "GEN-10", "DRV-10", "C-2")
async def any_offered_subset_is_accepted_and_nothing_else(dut):
    env = await DeviceEnv.start(dut)
    offered = env.config.offered_features
    optional = [f for f in OPTIONAL if offered & f.mask]

    def subsets():
        for k in range(len(optional) + 1):
            for chosen in combinations(optional, k):
                features = Feature.VERSION_1.mask | sum(f.mask for f in chosen)
                assert negotiate(env, features), f"refused {features:#x}"
        assert not negotiate(env, 0), "accepted a driver without VERSION_1"
        for extra in (Feature.RING_PACKED, Feature.IN_ORDER, Feature.NOTIFICATION_DATA,
                      *[f for f in OPTIONAL if not offered & f.mask]):
            assert not negotiate(env, offered | extra.mask), f"accepted unoffered {extra.name}"
        # A non-zero write at DriverFeaturesSel >= 2 is refused too.
        t = env.transport
        t.write(Reg.STATUS, 0)
        t.write(Reg.DRIVER_FEATURES_SEL, 2)
        t.write(Reg.DRIVER_FEATURES, 1)
        t.write(Reg.DRIVER_FEATURES_SEL, 1)
        t.write(Reg.DRIVER_FEATURES, Feature.VERSION_1.mask >> 32)
        t.write(Reg.STATUS, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK)
        assert not t.read(Reg.STATUS) & DeviceStatus.FEATURES_OK
    await env.run(subsets)


@conformance_test("MMIO-5", "MMIO-10", "MMIO-12", "GEN-2", "GEN-3", "C-4")
async def reset_clears_queues_interrupts_and_lines(dut):
    env = await DeviceEnv.start(dut)
    drv = env.driver()

    def scenario():
        drv.probe()
        drv.direction_output(0, 1)
        t = env.transport
        t.write(Reg.STATUS, 0)
        assert t.read(Reg.STATUS) == 0  # on the very next access (GEN-2)
        assert t.read(Reg.INTERRUPT_STATUS) == 0
        for q in (QueueIndex.REQUESTQ, QueueIndex.EVENTQ):
            t.write(Reg.QUEUE_SEL, q)
            assert t.read(Reg.QUEUE_READY) == 0
        t.write(Reg.QUEUE_SEL, QueueIndex.REQUESTQ)
        # QueueReady reads back what was written (MMIO-10), even when QueueNum 0 makes it a
        # device error (contract §4).
        t.write(Reg.QUEUE_READY, 1)
        assert t.read(Reg.QUEUE_READY) == 1
        t.write(Reg.QUEUE_READY, 0)
        assert t.read(Reg.QUEUE_READY) == 0
    await env.run(scenario)
    assert env.pins.output_enables == 0 and env.pins.outputs == 0


@conformance_test("C-3", "DRV-1", "DRV-2", "MMIO-12")
async def control_registers_ignore_partial_writes_and_answer_narrow_reads(dut):
    """Below 0x100 only full 32-bit writes count: 8- and 16-bit writes at every lane of the
    registers a driver writes change nothing (each is followed by reads the scoreboard compares
    with the model); 8- and 16-bit reads of every control register return the lanes of the word."""
    env = await DeviceEnv.start(dut)
    t = env.transport
    writable = (Reg.DEVICE_FEATURES_SEL, Reg.DRIVER_FEATURES, Reg.DRIVER_FEATURES_SEL,
                Reg.QUEUE_SEL, Reg.QUEUE_SIZE, Reg.QUEUE_READY, Reg.QUEUE_NOTIFY,
                Reg.INTERRUPT_ACK, Reg.STATUS, Reg.QUEUE_DESC_LOW, Reg.SHM_SEL)

    def scenario():
        t.write(Reg.STATUS, 0)
        t.write(Reg.STATUS, DeviceStatus.ACKNOWLEDGE)
        for reg in writable:
            for size in (1, 2):
                for lane in range(0, 4, size):
                    t.write(reg + lane, 0xFF, size)
                    assert t.read(Reg.STATUS) == DeviceStatus.ACKNOWLEDGE, \
                        f"{size}-byte write at {reg + lane:#05x} changed Status"
                    t.read(Reg.QUEUE_SIZE_MAX)
                    t.read(Reg.DEVICE_FEATURES)
        assert t.read(Reg.QUEUE_READY) == 0
        for offset in range(0, Reg.CONFIG, 4):
            for size in (1, 2):
                for lane in range(0, 4, size):
                    t.read(offset + lane, size)
    await env.run(scenario)


@conformance_test("C-9")
async def ports_are_the_documented_ones(dut):
    """The port list an external implementation must expose (docs/ports.md), with its widths."""
    env = await DeviceEnv.start(dut)
    widths = {name: port.width for name, port in expected_ports(env.config).items()}
    wrong = {name: (len(getattr(dut, name)) if hasattr(dut, name) else None, width)
             for name, width in widths.items()
             if not hasattr(dut, name) or len(getattr(dut, name)) != width}
    assert not wrong, f"ports missing or of the wrong width (found, documented): {wrong}"
