"""What a Linux guest with the real gpio-virtio driver needs, fetched from Debian's packages and
cached under ``build/linux/``: QEMU 10 (bookworm-backports, unpacked: QEMU 7.2 never offers
VIRTIO_GPIO_F_IRQ to the guest), a distribution kernel, the gpio-virtio module built out of tree
from the matching ``linux-source`` (no Debian kernel enables CONFIG_GPIO_VIRTIO), and an
initramfs of busybox, libgpiod's tools (1.6), the virtio modules and the guest's test script.

Packages come through apt, so the machine's own mirror is used: the backports suite through a
private apt configuration (its own sources list, lists and cache) built from the system's sources,
which leaves the system's apt alone. Everything is downloaded and unpacked under the cache, the
kernel headers included; only QEMU's runtime libraries are installed (``apt-get install``, as
root), and only when missing.
"""

import gzip
import lzma
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE = Path("build") / "linux"
KERNELS = {"6.1": "bookworm", "6.12": "bookworm-backports"}  # driver version -> suite
VIRTIO_MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
                  "virtio_pci", "virtio_mmio")
TOOLS = ("busybox-static", "gpiod", "libgpiod2")


class GuestImageError(RuntimeError):
    """A piece of the guest cannot be had; the message names it and the command that brings it."""


def _run(cmd, **kw) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode:
        raise GuestImageError(f"`{' '.join(map(str, cmd))}` failed: {done.stderr.strip()[-800:]}")
    return done.stdout


def _system_mirror() -> str:
    """The Debian mirror the system's apt uses (so no host name is written here)."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not path.is_file():
            continue
        text = path.read_text()
        for uri in re.findall(r"^URIs:\s*(\S+)", text, re.M) + re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", text, re.M):
            if uri.rstrip("/").endswith("/debian"):
                return uri
    raise GuestImageError("no Debian bookworm mirror in the system's apt sources")


def _apt_config(cache: Path, suite: str) -> dict[str, str]:
    """The environment for apt commands on ``suite``: the system's for bookworm, a private
    configuration for the backports."""
    if suite == "bookworm":
        return {}
    root = (cache / "apt" / suite).resolve()
    for sub in ("lists/partial", "cache/archives/partial"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "sources.list").write_text(
        f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {_system_mirror()} {suite} main\n")
    conf = root / "apt.conf"
    conf.write_text(f'Dir::Etc::SourceList "{root / "sources.list"}";\nDir::Etc::SourceParts "/dev/null";\n'
                    f'Dir::State::Lists "{root / "lists"}";\nDir::Cache "{root / "cache"}";\n')
    env = {"APT_CONFIG": str(conf)}
    if not any((root / "lists").glob("*Packages*")):
        _run(["apt-get", "update", "-qq"], env=os.environ | env)
    return env


def _download(packages, dest: Path, env: dict) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    if shutil.which("apt-get") is None:
        raise GuestImageError("apt-get is not available: the Linux guest is built from Debian packages")
    _run(["apt-get", "download", "-qq", *packages], cwd=dest, env=os.environ | env)
    return sorted(dest.glob("*.deb"))


def _policy(package: str, env: dict) -> str:
    out = _run(["apt-cache", "policy", package], env=os.environ | env)
    match = re.search(r"Candidate:\s*(\S+)", out)
    if not match or match.group(1) == "(none)":
        raise GuestImageError(f"no candidate for {package} in apt")
    return match.group(1)


def _install(packages) -> None:
    """Install system packages (root), where they are missing."""
    missing = [p for p in packages
               if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode]
    if not missing:
        return
    if os.geteuid() != 0:
        raise GuestImageError(f"missing system packages {' '.join(missing)}: "
                              f"sudo apt-get install {' '.join(missing)}")
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
         env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"})


@dataclass(frozen=True)
class Qemu:
    binary: Path
    data_dirs: tuple[Path, ...]
    version: str


def qemu(cache: Path = DEFAULT_CACHE) -> Qemu:
    """QEMU 10 from bookworm-backports, unpacked under the cache (its libraries installed)."""
    env = _apt_config(cache, "bookworm-backports")
    version = _policy("qemu-system-x86", env)
    root = cache / "qemu" / version.replace(":", "_")
    binary = root / "usr" / "bin" / "qemu-system-x86_64"
    if not binary.is_file():
        debs = _download(["qemu-system-x86", "qemu-system-common", "qemu-system-data", "seabios"],
                         root.parent / f"{root.name}-debs", env)
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(root)])
    depends = _run(["dpkg-deb", "-f", str(next((root.parent / f"{root.name}-debs").glob("qemu-system-x86_*.deb"))),
                    "Depends"])
    _install([d.split("(")[0].split("|")[0].strip() for d in depends.split(",")
              if not d.strip().startswith(("qemu-", "seabios", "ipxe"))])
    return Qemu(binary, (root / "usr/share/qemu", root / "usr/share/seabios"), version)


@dataclass(frozen=True)
class Kernel:
    driver: str       # "6.1" or "6.12"
    abi: str          # e.g. 6.1.0-50-amd64
    vmlinuz: Path
    modules: tuple[Path, ...]  # in load order, gpio-virtio last


def kernel(driver: str = "6.1", cache: Path = DEFAULT_CACHE) -> Kernel:
    """The distribution kernel of ``driver``, its virtio modules (those not built in), and
    gpio-virtio built from the same source release against its headers, which are unpacked
    under the cache, not installed."""
    if driver not in KERNELS:
        raise GuestImageError(f"unknown kernel {driver!r}; known: {', '.join(KERNELS)}")
    env = _apt_config(cache, KERNELS[driver])
    depends = _run(["apt-cache", "depends", "linux-headers-amd64"], env=os.environ | env)
    abis = re.findall(r"linux-headers-(\d[\w.+-]*-amd64)", depends)
    abi = next((a for a in abis if a.startswith(driver + ".")), None)
    if abi is None:
        raise GuestImageError(f"no {driver} kernel in {KERNELS[driver]} (linux-headers-amd64 "
                              f"depends on {', '.join(abis) or 'nothing'})")
    release = abi.removesuffix("-amd64")
    work = (cache / "kernel" / abi).resolve()
    image, mods = work / "image", work / "modules"
    module = mods / "gpio-virtio.ko"
    if not module.is_file():
        shutil.rmtree(mods, ignore_errors=True)
        debs = _download([f"linux-image-{abi}", f"linux-source-{driver}", f"linux-headers-{abi}",
                          f"linux-headers-{release}-common", _kbuild_package(driver, release, env)],
                         work / "debs", env)
        for deb in debs:
            if deb.name.startswith("linux-image"):
                _run(["dpkg-deb", "-x", str(deb), str(image)])
            elif deb.name.startswith(("linux-headers", "linux-kbuild")):
                _run(["dpkg-deb", "-x", str(deb), str(work / "headers")])
        headers = work / "headers" / "usr" / "src" / f"linux-headers-{abi}"
        makefile = headers / "Makefile"  # it includes the common part by its installed path
        makefile.write_text(makefile.read_text().replace("/usr/src/", f"{work / 'headers'}/usr/src/"))
        source = next(d for d in debs if d.name.startswith("linux-source"))
        _build_module(source, driver, work / "build", headers)
        mods.mkdir(parents=True, exist_ok=True)
        shutil.copy(work / "build" / "gpio-virtio.ko", module)
    for name in VIRTIO_MODULES:  # those built as modules; Debian's 6.12 has virtio and virtio-pci built in
        found = sorted(image.glob(f"**/kernel/drivers/virtio/{name}.ko*"))
        if found and not (mods / f"{name}.ko").is_file():
            data = found[0].read_bytes()
            (mods / f"{name}.ko").write_bytes(lzma.decompress(data) if found[0].suffix == ".xz" else data)
    loaded = [mods / f"{m}.ko" for m in VIRTIO_MODULES if (mods / f"{m}.ko").is_file()]
    return Kernel(driver, abi, image / "boot" / f"vmlinuz-{abi}", tuple(loaded) + (module,))


def _kbuild_package(driver: str, release: str, env: dict) -> str:
    """linux-kbuild-6.1 in bookworm, linux-kbuild-<release> in the backports."""
    for name in (f"linux-kbuild-{release}", f"linux-kbuild-{driver}"):
        if subprocess.run(["apt-cache", "show", name], capture_output=True,
                          env=os.environ | env).returncode == 0:
            return name
    raise GuestImageError(f"no linux-kbuild package for {release}")


def _build_module(source_deb: Path, driver: str, out: Path, headers: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(source_deb)], stdout=subprocess.PIPE)
    inner = subprocess.Popen(["tar", "-xO", f"./usr/src/linux-source-{driver}.tar.xz"],
                             stdin=tar.stdout, stdout=subprocess.PIPE)
    _run(["tar", "-xJ", "-C", str(out), "--wildcards", "*/drivers/gpio/gpio-virtio.c"],
         stdin=inner.stdout)
    tar.wait(), inner.wait()
    shutil.copy(next(out.glob("*/drivers/gpio/gpio-virtio.c")), out / "gpio-virtio.c")
    (out / "Kbuild").write_text("obj-m := gpio-virtio.o\n")
    # no BTF for the module: pahole is not needed, and the guest does not use it
    _run(["make", "-s", "-C", str(headers), f"M={out}", "modules", "CONFIG_DEBUG_INFO_BTF_MODULES="])


def tools(cache: Path = DEFAULT_CACHE) -> Path:
    """busybox and libgpiod's tools, unpacked."""
    root = cache / "tools"
    if not (root / "root" / "usr" / "bin" / "gpiomon").is_file():
        for deb in _download(list(TOOLS), root / "debs", {}):
            _run(["dpkg-deb", "-x", str(deb), str(root / "root")])
    return root / "root"


def initramfs(kern: Kernel, init: str, out: Path, cache: Path = DEFAULT_CACHE) -> Path:
    """A gzip'd newc archive: busybox, the gpiod tools and the libraries they link, the modules
    under /mods, and ``init`` as /init."""
    t = tools(cache)
    files: dict[str, tuple[int, bytes]] = {
        "bin/busybox": (0o755, (t / "bin" / "busybox").read_bytes()),
        "init": (0o755, init.encode())}
    for tool in sorted((t / "usr" / "bin").glob("gpio*")):
        files[f"bin/{tool.name}"] = (0o755, tool.read_bytes())
    for lib in sorted((t / "usr" / "lib" / "x86_64-linux-gnu").glob("libgpiod.so.2*")):
        files[f"usr/lib/x86_64-linux-gnu/{lib.name}"] = (0o644, lib.resolve().read_bytes())
    for lib in re.findall(r"(/lib\S*)", _run(["ldd", str(t / "usr" / "bin" / "gpioinfo")])):
        files[lib.lstrip("/")] = (0o755, Path(lib).resolve().read_bytes())
    for m in kern.modules:
        files[f"mods/{m.name}"] = (0o644, m.read_bytes())
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wb", compresslevel=1) as f:
        f.write(_newc(files, dirs=("proc", "sys", "dev", "tmp")))
    return out


def _newc(files: dict[str, tuple[int, bytes]], dirs=()) -> bytes:
    """The cpio "newc" format the kernel unpacks: a header, the name, the data, 4-byte aligned."""
    out = bytearray()
    entries = {}
    for name in files:
        parts = name.split("/")
        for i in range(1, len(parts)):
            entries.setdefault("/".join(parts[:i]), (stat.S_IFDIR | 0o755, b""))
    for d in dirs:
        entries.setdefault(d, (stat.S_IFDIR | 0o755, b""))
    entries.update({n: (stat.S_IFREG | mode, data) for n, (mode, data) in files.items()})
    for ino, (name, (mode, data)) in enumerate(sorted(entries.items()) + [("TRAILER!!!", (0, b""))], 1):
        encoded = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        out += b"070701" + "".join(f"{x:08x}" for x in fields).encode() + encoded
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)
