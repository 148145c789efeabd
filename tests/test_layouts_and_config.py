"""Layouts, constants and the configuration object (contract §1-§2; GEN-5, GEN-7, GEN-10).

The layouts are checked twice: against the sizes the spec gives, and against the Linux uapi headers
compiled with the system C compiler, an oracle written independently of this project."""

import shutil
import subprocess

import pytest
from hypothesis import given, strategies as st

from virtio_gpio.model import layouts as L
from virtio_gpio.model.config import ConfigError, DeviceConfig
from virtio_gpio.model.constants import (
    IMPLEMENTED_FEATURES, DescFlags, DeviceStatus, Direction, Feature, IrqStatus, IrqType, MsgType,
    ReplyStatus,
)


@pytest.mark.req("C-1")
def test_wire_sizes_match_the_spec():
    assert (L.DESC_SIZE, L.USED_ELEM_SIZE, L.CONFIG_SPACE_SIZE) == (16, 8, 8)
    assert (L.GPIO_REQUEST_SIZE, L.GPIO_REPLY_SIZE, L.IRQ_REQUEST_SIZE, L.IRQ_REPLY_SIZE) == (8, 2, 2, 1)
    geo = L.RingGeometry(256)
    assert geo.avail_ring_size == 6 + 2 * 256 and geo.used_ring_size == 6 + 8 * 256
    assert geo.used_event == 4 + 2 * 256 and geo.avail_event == 4 + 8 * 256
    assert L.gpio_names_reply(41).sizeof() == 42  # the spec's 10-line example: 41-byte block


def test_register_window_struct_agrees_with_the_offsets():
    assert L.MmioControlRegisters.sizeof() == L.Reg.CONFIG
    built = L.MmioControlRegisters.build({r.name.lower(): r.offset for r in L.REGISTERS})
    for reg in L.REGISTERS:
        assert int.from_bytes(built[reg.offset:reg.offset + 4], "little") == reg.offset


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_fast_packers_agree_with_the_construct_layouts(a, b, c, d):
    assert L.DESC_PACKER.pack(a, b, c, d) == L.VirtqDesc.build(dict(addr=a, len=b, flags=c, next=d))
    assert L.USED_ELEM_PACKER.pack(b, b ^ 1) == L.VirtqUsedElem.build(dict(id=b, len=b ^ 1))
    assert L.GPIO_REQUEST_PACKER.pack(c, d, b) == L.GpioRequest.build(dict(type=c, gpio=d, value=b))
    assert L.DESC_PACKER.size == L.DESC_SIZE and L.GPIO_REQUEST_PACKER.size == L.GPIO_REQUEST_SIZE


@pytest.mark.parametrize("new,event,old,expected", [
    (1, 0, 0, True), (2, 0, 1, False), (5, 3, 2, True), (5, 4, 4, True), (5, 5, 4, False),
    (0, 0xFFFF, 0xFFFF, True), (1, 0xFFFF, 0xFFFE, True), (0, 0xFFFE, 0xFFFF, False),
])
def test_need_event_is_the_spec_formula(new, event, old, expected):
    # (u16)(new - event - 1) < (u16)(new - old), worked by hand for each row
    assert L.need_event(event, new, old) is expected


# -- the Linux uapi headers as an independent oracle ---------------------------------------------

HEADER_CHECKS = {
    "VIRTIO_MMIO_MAGIC_VALUE": L.Reg.MAGIC_VALUE, "VIRTIO_MMIO_VERSION": L.Reg.VERSION,
    "VIRTIO_MMIO_DEVICE_ID": L.Reg.DEVICE_ID, "VIRTIO_MMIO_VENDOR_ID": L.Reg.VENDOR_ID,
    "VIRTIO_MMIO_DEVICE_FEATURES": L.Reg.DEVICE_FEATURES,
    "VIRTIO_MMIO_DEVICE_FEATURES_SEL": L.Reg.DEVICE_FEATURES_SEL,
    "VIRTIO_MMIO_DRIVER_FEATURES": L.Reg.DRIVER_FEATURES,
    "VIRTIO_MMIO_DRIVER_FEATURES_SEL": L.Reg.DRIVER_FEATURES_SEL,
    "VIRTIO_MMIO_QUEUE_SEL": L.Reg.QUEUE_SEL, "VIRTIO_MMIO_QUEUE_NUM_MAX": L.Reg.QUEUE_SIZE_MAX,
    "VIRTIO_MMIO_QUEUE_NUM": L.Reg.QUEUE_SIZE, "VIRTIO_MMIO_QUEUE_READY": L.Reg.QUEUE_READY,
    "VIRTIO_MMIO_QUEUE_NOTIFY": L.Reg.QUEUE_NOTIFY,
    "VIRTIO_MMIO_INTERRUPT_STATUS": L.Reg.INTERRUPT_STATUS,
    "VIRTIO_MMIO_INTERRUPT_ACK": L.Reg.INTERRUPT_ACK, "VIRTIO_MMIO_STATUS": L.Reg.STATUS,
    "VIRTIO_MMIO_QUEUE_DESC_LOW": L.Reg.QUEUE_DESC_LOW, "VIRTIO_MMIO_QUEUE_DESC_HIGH": L.Reg.QUEUE_DESC_HIGH,
    "VIRTIO_MMIO_QUEUE_AVAIL_LOW": L.Reg.QUEUE_DRIVER_LOW,
    "VIRTIO_MMIO_QUEUE_AVAIL_HIGH": L.Reg.QUEUE_DRIVER_HIGH,
    "VIRTIO_MMIO_QUEUE_USED_LOW": L.Reg.QUEUE_DEVICE_LOW, "VIRTIO_MMIO_QUEUE_USED_HIGH": L.Reg.QUEUE_DEVICE_HIGH,
    "VIRTIO_MMIO_SHM_SEL": L.Reg.SHM_SEL, "VIRTIO_MMIO_SHM_LEN_LOW": L.Reg.SHM_LEN_LOW,
    "VIRTIO_MMIO_SHM_LEN_HIGH": L.Reg.SHM_LEN_HIGH, "VIRTIO_MMIO_SHM_BASE_LOW": L.Reg.SHM_BASE_LOW,
    "VIRTIO_MMIO_SHM_BASE_HIGH": L.Reg.SHM_BASE_HIGH,
    "VIRTIO_MMIO_CONFIG_GENERATION": L.Reg.CONFIG_GENERATION, "VIRTIO_MMIO_CONFIG": L.Reg.CONFIG,
    "VIRTIO_MMIO_INT_VRING": 1, "VIRTIO_MMIO_INT_CONFIG": 2,
    "VIRTIO_CONFIG_S_ACKNOWLEDGE": DeviceStatus.ACKNOWLEDGE, "VIRTIO_CONFIG_S_DRIVER": DeviceStatus.DRIVER,
    "VIRTIO_CONFIG_S_DRIVER_OK": DeviceStatus.DRIVER_OK,
    "VIRTIO_CONFIG_S_FEATURES_OK": DeviceStatus.FEATURES_OK,
    "VIRTIO_CONFIG_S_NEEDS_RESET": DeviceStatus.DEVICE_NEEDS_RESET, "VIRTIO_CONFIG_S_FAILED": DeviceStatus.FAILED,
    "VIRTIO_F_VERSION_1": Feature.VERSION_1, "VIRTIO_F_ACCESS_PLATFORM": Feature.ACCESS_PLATFORM,
    "VIRTIO_F_RING_PACKED": Feature.RING_PACKED, "VIRTIO_F_ORDER_PLATFORM": Feature.ORDER_PLATFORM,
    "VIRTIO_F_NOTIFICATION_DATA": Feature.NOTIFICATION_DATA, "VIRTIO_F_IN_ORDER": Feature.IN_ORDER,
    "VIRTIO_RING_F_INDIRECT_DESC": Feature.RING_INDIRECT_DESC, "VIRTIO_RING_F_EVENT_IDX": Feature.RING_EVENT_IDX,
    "VRING_DESC_F_NEXT": DescFlags.NEXT, "VRING_DESC_F_WRITE": DescFlags.WRITE,
    "VRING_DESC_F_INDIRECT": DescFlags.INDIRECT, "VRING_USED_F_NO_NOTIFY": 1,
    "VRING_AVAIL_F_NO_INTERRUPT": 1,
    "VIRTIO_GPIO_F_IRQ": Feature.GPIO_F_IRQ,
    "VIRTIO_GPIO_MSG_GET_NAMES": MsgType.GET_LINE_NAMES, "VIRTIO_GPIO_MSG_GET_DIRECTION": MsgType.GET_DIRECTION,
    "VIRTIO_GPIO_MSG_SET_DIRECTION": MsgType.SET_DIRECTION, "VIRTIO_GPIO_MSG_GET_VALUE": MsgType.GET_VALUE,
    "VIRTIO_GPIO_MSG_SET_VALUE": MsgType.SET_VALUE, "VIRTIO_GPIO_MSG_IRQ_TYPE": MsgType.SET_IRQ_TYPE,
    "VIRTIO_GPIO_STATUS_OK": ReplyStatus.OK, "VIRTIO_GPIO_STATUS_ERR": ReplyStatus.ERR,
    "VIRTIO_GPIO_DIRECTION_NONE": Direction.NONE, "VIRTIO_GPIO_DIRECTION_OUT": Direction.OUT,
    "VIRTIO_GPIO_DIRECTION_IN": Direction.IN,
    "VIRTIO_GPIO_IRQ_TYPE_NONE": IrqType.NONE, "VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING": IrqType.EDGE_RISING,
    "VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING": IrqType.EDGE_FALLING,
    "VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH": IrqType.EDGE_BOTH,
    "VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH": IrqType.LEVEL_HIGH, "VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW": IrqType.LEVEL_LOW,
    "VIRTIO_GPIO_IRQ_STATUS_INVALID": IrqStatus.INVALID, "VIRTIO_GPIO_IRQ_STATUS_VALID": IrqStatus.VALID,
    "sizeof(struct virtio_gpio_config)": L.CONFIG_SPACE_SIZE,
    "offsetof(struct virtio_gpio_config, gpio_names_size)": 4,
    "sizeof(struct virtio_gpio_request)": L.GPIO_REQUEST_SIZE,
    "sizeof(struct virtio_gpio_response)": L.GPIO_REPLY_SIZE,
    "sizeof(struct virtio_gpio_irq_request)": L.IRQ_REQUEST_SIZE,
    "sizeof(struct virtio_gpio_irq_response)": L.IRQ_REPLY_SIZE,
    "sizeof(struct vring_desc)": L.DESC_SIZE, "sizeof(struct vring_used_elem)": L.USED_ELEM_SIZE,
}


@pytest.fixture(scope="module")
def linux_header_values(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("g++")
    headers = ("linux/virtio_mmio.h", "linux/virtio_gpio.h", "linux/virtio_ring.h", "linux/virtio_config.h")
    src = "".join(f"#include <{h}>\n" for h in headers) + "#include <stddef.h>\n#include <stdio.h>\nint main(void){\n"
    for expr in HEADER_CHECKS:  # a macro this header release lacks prints "missing"
        line = f'printf("%lu\\n", (unsigned long)({expr}));\n'
        src += line if "(" in expr else f'#ifdef {expr}\n{line}#else\nputs("missing");\n#endif\n'
    src += "return 0;}\n"
    work = tmp_path_factory.mktemp("uapi")
    (work / "probe.c").write_text(src)
    if cc is None:
        pytest.skip("no C compiler to read the Linux uapi headers")
    build = subprocess.run([cc, "-x", "c", "-o", str(work / "probe"), str(work / "probe.c")],
                           capture_output=True, text=True)
    if build.returncode:
        pytest.skip(f"Linux uapi headers not usable here: {build.stderr.strip().splitlines()[:1]}")
    out = subprocess.run([str(work / "probe")], capture_output=True, text=True, check=True).stdout
    return dict(zip(HEADER_CHECKS, out.split()))


@pytest.mark.parametrize("name", list(HEADER_CHECKS))
def test_constant_agrees_with_linux_uapi_headers(linux_header_values, name):
    if linux_header_values[name] == "missing":
        pytest.skip(f"{name} is not in this release of the Linux uapi headers")
    assert int(linux_header_values[name]) == int(HEADER_CHECKS[name])


# -- the configuration object ---------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    (dict(ngpio=0), "ngpio must be an integer in 1..1024"),
    (dict(ngpio=1025), "ngpio must be an integer in 1..1024"),
    (dict(queue_size_max=3), "queue_size_max must be a power of two"),
    (dict(queue_size_max=1), "queue_size_max must be a power of two"),
    (dict(queue_size_max=65536), "queue_size_max must be a power of two"),
    (dict(dma_addr_width=48), "dma_addr_width must be 32 or 64"),
    (dict(dma_data_width=128), "dma_data_width must be 32 or 64"),
    (dict(vendor_id=1 << 32), "vendor_id must be a 32-bit"),
    (dict(ngpio=2, line_names=("a",)), "line_names has 1 entries for 2 lines"),
    (dict(ngpio=2, line_names=("a", "a")), "is used twice"),
    (dict(ngpio=2, line_names=("a", "b\u00e9")), "7-bit ASCII"),
    (dict(ngpio=2, line_names=("a\0", "b")), "7-bit ASCII"),
    (dict(ngpio=2, reset_direction=Direction.OUT), "must be Direction.IN or Direction.NONE"),
    (dict(ngpio=2, reset_direction=(Direction.IN,)), "reset_direction has 1 entries for 2 lines"),
])
def test_bad_parameters_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        DeviceConfig(**kwargs)


@pytest.mark.req("GPIO-5", "GPIO-6")
def test_names_block_has_one_nul_terminated_entry_per_line():
    cfg = DeviceConfig(ngpio=4, line_names=("led", "", "btn", ""))
    assert cfg.names_block == b"led\0\0btn\0\0"
    assert cfg.gpio_names_size == 10
    assert cfg.config_space == bytes([4, 0, 0, 0, 10, 0, 0, 0])


@pytest.mark.req("GPIO-4")
def test_no_names_means_gpio_names_size_zero():
    cfg = DeviceConfig(ngpio=300)
    assert cfg.gpio_names_size == 0 and cfg.config_space == bytes([0x2C, 0x01, 0, 0, 0, 0, 0, 0])


def test_empty_names_are_not_duplicates():
    assert DeviceConfig(ngpio=3, line_names=("", "", "x")).gpio_names_size == 4


@pytest.mark.req("C-2", "GEN-7", "GEN-10", "GEN-5")
@pytest.mark.parametrize("flags", [0, 1, 2, 4, 8, 16, 31])
def test_offered_features_are_version_1_plus_the_chosen_implemented_bits(flags):
    names = ["offer_irq", "offer_indirect_desc", "offer_event_idx", "offer_access_platform",
             "offer_order_platform"]
    bits = [Feature.GPIO_F_IRQ, Feature.RING_INDIRECT_DESC, Feature.RING_EVENT_IDX,
            Feature.ACCESS_PLATFORM, Feature.ORDER_PLATFORM]
    cfg = DeviceConfig(**{n: bool(flags >> i & 1) for i, n in enumerate(names)})
    expected = Feature.VERSION_1.mask | sum(b.mask for i, b in enumerate(bits) if flags >> i & 1)
    assert cfg.offered_features == expected
    offered = {f for f in Feature if cfg.offered_features & f.mask}
    assert offered <= IMPLEMENTED_FEATURES
    assert not offered & {Feature.SR_IOV, Feature.ADMIN_VQ, Feature.RING_PACKED, Feature.NOTIFY_ON_EMPTY,
                          Feature.ANY_LAYOUT, Feature.RING_RESET, Feature.SUSPEND, Feature.IN_ORDER,
                          Feature.NOTIFICATION_DATA}


def test_default_configuration_matches_the_contract():
    cfg = DeviceConfig()
    assert (cfg.ngpio, cfg.queue_size_max, cfg.dma_addr_width, cfg.dma_data_width) == (32, 256, 32, 32)
    assert cfg.reset_directions == (Direction.IN,) * 32 and cfg.line_names is None
    assert cfg.offered_features == sum(f.mask for f in IMPLEMENTED_FEATURES)
