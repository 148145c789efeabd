"""The real Linux driver drives the device: a guest in QEMU with gpio-virtio and libgpiod's
tools, the golden model behind the vhost-user backend (``virtio-gpio linux``, ``make linux``).
Where a piece of the guest cannot be had (no apt-get, no root for QEMU's libraries), the test is
skipped with the missing piece and the command that brings it, unless
VIRTIO_GPIO_REQUIRE_LINUX is set (CI sets it)."""

import os

import pytest

from virtio_gpio.host import guest_image, linux_vm
from virtio_gpio.model.config import DeviceConfig
from virtio_gpio.model.scenario import DEMO_NAMES
from virtio_gpio.tb.rtl_serve import RtlBackend

CONFIG = DeviceConfig(ngpio=len(DEMO_NAMES), line_names=DEMO_NAMES)


@pytest.mark.req("GPIO-1", "GPIO-5", "GPIO-6", "GPIO-9", "GPIO-15", "GPIO-16", "GPIO-18")
def test_linux_6_1_drives_the_rtl_and_the_model_beside_it_through_vhost_user(tmp_path):
    try:
        run = linux_vm.run_guest(CONFIG, "6.1", tmp_path, backend=RtlBackend(CONFIG), progress=print)
    except guest_image.GuestImageError as e:
        if os.environ.get("VIRTIO_GPIO_REQUIRE_LINUX"):
            raise
        pytest.skip(f"the Linux guest cannot be built here: {e}")
    print(run.table())
    failed = [s for s in run.steps if not s.ok]
    assert run.passed, (f"{len(failed)} steps failed: "
                        + "; ".join(f"{s.name}: {s.detail}" for s in failed)
                        + f" (console: {run.console}, backend log: {run.backend_log})")
    assert len(run.steps) == 1 + 1 + CONFIG.ngpio + 4 * CONFIG.ngpio + 3 + 3 + 1 + 1
    assert run.steps[-1].name == "rtl-matches-model"
