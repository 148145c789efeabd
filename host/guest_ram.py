"""A VM's RAM, shared by a vhost-user frontend (QEMU) as file descriptors, seen as the golden
model's ``GuestMemory``: guest-physical addresses map into the regions of the memory table.

The frontend gives each region as (guest-physical address, size, the frontend's own virtual address
of it, offset into the fd). Descriptors hold guest-physical addresses; ring addresses in
SET_VRING_ADDR are the frontend's virtual ones, which ``guest_physical`` translates.
"""

import mmap
import os
from bisect import bisect_right
from dataclasses import dataclass

from virtio_gpio.model.memory import GuestMemory, Perm


class MemoryTableError(ValueError):
    """A memory table the device cannot use; the message says why and what to do."""


@dataclass
class Region:
    guest_phys_addr: int
    size: int
    user_addr: int
    mmap_offset: int
    view: mmap.mmap

    @property
    def end(self) -> int:
        return self.guest_phys_addr + self.size


class SharedGuestRam(GuestMemory):
    """The regions of one memory table; the device (the golden model or the RTL's DMA port) may
    touch all of them, as a device on a real bus could (the firewall grants each region)."""

    def __init__(self, addr_width: int):
        super().__init__(addr_width)
        self.regions: list[Region] = []
        self.log_dma = False  # a VM runs for hours: no log of every access

    def add_region(self, guest_phys_addr: int, size: int, user_addr: int, mmap_offset: int,
                   fd: int) -> Region:
        if size <= 0:
            raise MemoryTableError(f"a memory region of size {size}")
        if guest_phys_addr + size > self.limit:
            raise MemoryTableError(
                f"guest RAM [{guest_phys_addr:#x}, +{size:#x}) lies beyond the device's "
                f"{self.addr_width}-bit DMA reach: give the VM less memory (below 4 GiB), or use "
                f"a configuration with 64-bit DMA (--dma-addr-width 64)")
        try:
            view = mmap.mmap(fd, size + mmap_offset, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError) as e:
            raise MemoryTableError(f"cannot map guest RAM [{guest_phys_addr:#x}, +{size:#x}): {e} "
                                   f"(is the VM's memory shared? QEMU needs -object "
                                   f"memory-backend-memfd,...,share=on)") from None
        finally:
            os.close(fd)
        region = Region(guest_phys_addr, size, user_addr, mmap_offset, view)
        self.regions.append(region)
        self.regions.sort(key=lambda r: r.guest_phys_addr)
        self.firewall.grant(guest_phys_addr, size, Perm.READ | Perm.WRITE, "guest RAM")
        return region

    def close(self) -> None:
        for r in self.regions:
            r.view.close()
        self.regions.clear()
        self.firewall.revoke_owner("guest RAM")

    def guest_physical(self, user_addr: int, size: int = 1) -> int:
        """The guest-physical address of the frontend's virtual address ``user_addr``."""
        for r in self.regions:
            if r.user_addr <= user_addr and user_addr + size <= r.user_addr + r.size:
                return r.guest_phys_addr + (user_addr - r.user_addr)
        raise MemoryTableError(f"address {user_addr:#x} is in no region of the memory table")

    def _region(self, addr: int, size: int) -> Region | None:
        i = bisect_right([r.guest_phys_addr for r in self.regions], addr) - 1
        if i >= 0 and addr + size <= self.regions[i].end:
            return self.regions[i]
        return None

    def is_mapped(self, addr: int, size: int) -> bool:
        return size > 0 and self._region(addr, size) is not None

    def _read(self, addr: int, size: int) -> bytes:
        r = self._region(addr, size)
        start = r.mmap_offset + addr - r.guest_phys_addr
        return r.view[start:start + size]

    def _write(self, addr: int, data: bytes) -> None:
        r = self._region(addr, len(data))
        start = r.mmap_offset + addr - r.guest_phys_addr
        r.view[start:start + len(data)] = data
