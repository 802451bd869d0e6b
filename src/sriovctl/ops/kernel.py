"""Writing to the kernel and waiting for it: sysfs writes with the kernel's errno turned into our errors, and the
waits (VFs settling, a driver binding, a VFIO group released) on the Host's one deadline poller."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from sriovctl.drivers import is_net
from sriovctl.errors import (
    HostIOError,
    HostPermissionError,
    SriovctlError,
    TemporaryError,
    UnavailableError,
    UsageError,
)
from sriovctl.host import sysfs
from sriovctl.host.base import Host
from sriovctl.inuse import vfio_holders
from sriovctl.model import PciDevice

Progress = Callable[[int, int], None]


def errname(code: int) -> str:
    return "EOPNOTSUPP" if code == errno.EOPNOTSUPP else errno.errorcode.get(code, str(code))


def kernel_error(e: OSError, what: str, value: str) -> SriovctlError:
    """A kernel errno from a sysfs write as our one-line error with a hint."""
    code = e.errno or 0
    msg = f"{what}: kernel refused {value!r}: {errname(code)} ({e.strerror or os.strerror(code)})"
    if code == errno.EBUSY:
        return TemporaryError(msg, hint="VFs are enabled or the device is bound: write 0 first, or unbind it first",
                              remedy="ebusy")
    if code == errno.ERANGE:
        return UsageError(msg, hint="the count must not exceed sriov_totalvfs")
    if code == errno.ENOENT:
        return UnavailableError(msg, hint="no driver with SR-IOV support is bound to the PF")
    if code in (errno.ENOMEM, errno.ENOSPC, errno.EIO):
        return UnavailableError(msg, hint="not enough MMIO space or bus numbers for the VFs: "
                                          "boot with pci=realloc, or enable SR-IOV in the firmware")
    if code in (errno.EPERM, errno.EACCES):
        return HostPermissionError(msg, hint="run as root")
    if code == errno.ENODEV:
        return UnavailableError(msg, hint="the driver does not match this device (check driver_override), or "
                                          "the PF's sriov_drivers_autoprobe is 0 (name the driver)")
    if code == errno.EINVAL:
        return UsageError(msg)
    if code == errno.EOPNOTSUPP:
        return UnavailableError(msg, hint="the driver does not support this")
    return HostIOError(msg)


def write(host: Host, rel: str, value: str, what: str) -> None:
    try:
        host.write(rel, value)
    except SriovctlError:
        raise  # ReadOnlyError is a PermissionError too, but not the kernel's answer
    except OSError as e:
        raise kernel_error(e, what, value.strip()) from None


def settled(host: Host, pf: PciDevice, n: int, autoprobe: bool) -> list[str]:
    """What is not ready yet: VFs missing, not bound, or a network VF without its netdev."""
    _, links = host.read_dir_attrs(sysfs.device(pf.address), (), tuple(sysfs.virtfn(i) for i in range(n)))
    waiting = []
    for i in range(n):
        t = links.get(sysfs.virtfn(i))
        if t is None:
            waiting.append(f"VF {i} missing")
            continue
        va = t.rsplit("/", 1)[-1]
        if not host.exists(sysfs.device_attr(va, sysfs.CONFIG)):
            waiting.append(f"VF {i} ({va}) not in sysfs")
            continue
        if autoprobe:
            drv = host.link_name(sysfs.device_attr(va, sysfs.DRIVER))
            if drv is None:
                waiting.append(f"VF {i} ({va}) not bound yet")
            elif is_net(drv) and not host.listdir(sysfs.net_dir(va)):
                waiting.append(f"VF {i} ({va}) has no netdev yet")
    return waiting


def wait_settled(host: Host, pf: PciDevice, name: str, n: int, autoprobe: bool, timeout: float,
                 progress: Progress | None = None) -> None:
    """Until every VF exists and has settled (no fixed sleep, no udev), or the deadline passes."""
    last: list[str] = []

    def probe() -> bool | None:
        last[:] = settled(host, pf, n, autoprobe)
        if progress:
            progress(n - len(last), n)
        return True if not last else None

    if host.poll(timeout, probe) is None:
        raise TemporaryError(f"{name}: VFs not settled after {timeout:g} s: {'; '.join(last[:3])}"
                             + (f" (+{len(last) - 3} more)" if len(last) > 3 else ""),
                             hint="wait longer and check dmesg", remedy="settle-wait")


def driver_of(host: Host, address: object) -> str | None:
    return host.link_name(sysfs.device_attr(address, sysfs.DRIVER))


def wait_bound(host: Host, d: PciDevice, driver: str | None, wait: float) -> str | None:
    """Until ``driver`` (any driver when None) is bound and, for a network driver, its netdev exists; the driver
    bound at the end (possibly another, or None)."""
    now: list[str | None] = [None]

    def probe() -> str | None:
        now[0] = driver_of(host, d.address)
        ready = now[0] is not None and (driver is None or now[0] == driver)
        if ready and (not is_net(now[0]) or host.listdir(sysfs.net_dir(d.address))):
            return now[0]
        return None

    return host.poll(wait, probe, delay=0.02, max_delay=0.2) or now[0]


def wait_released(host: Host, d: PciDevice, wait: float, still_used: Callable[[], bool] | None = None) -> list[str]:
    """Until nobody holds the device's VFIO group (and ``still_used`` says no more), or the deadline passes; the
    holders left. A device no longer on vfio-pci is released."""
    holders: list[str] = []

    def probe() -> bool | None:
        if driver_of(host, d.address) != "vfio-pci" or d.iommu_group is None:
            holders.clear()
            return True
        holders[:] = [str(u) for u in vfio_holders(host, d.iommu_group)]
        if not holders and not (still_used and still_used()):
            return True
        return None

    host.poll(wait, probe, delay=0.2, max_delay=0.2)
    return holders
