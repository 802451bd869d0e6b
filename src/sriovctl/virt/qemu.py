"""Handing VFs to QEMU directly: the -device arguments, and hot(un)plug through QMP (qemu.qmp, an optional
extra). The old `-device pci-assign` is gone from QEMU (removed in 2.12): it is vfio-pci now."""

from __future__ import annotations

import time
from typing import Any

from sriovctl.errors import NoInputError, TemporaryError, UnavailableError, UsageError
from sriovctl.pci.address import PciAddress

PCI_ASSIGN_GONE = ("pci-assign (KVM legacy device assignment) was removed from QEMU in 2.12 (and from Linux in 4.12): "
                   "use -device vfio-pci,host=DDDD:BB:DD.F with the VF bound to vfio-pci")


def device_id(a: PciAddress) -> str:
    return f"sriov-{a.bus:02x}-{a.slot:02x}-{a.function:x}"


def device_args(addrs: list[PciAddress], bus: str | None = None) -> list[str]:
    out: list[str] = []
    for a in addrs:
        spec = f"vfio-pci,host={a},id={device_id(a)}" + (f",bus={bus}" if bus else "")
        out += ["-device", spec]
    return out


def _qmp(sock: str) -> Any:
    try:
        from qemu.qmp.legacy import QEMUMonitorProtocol
    except ImportError:
        raise UnavailableError("qemu.qmp is not installed", hint="pip install 'sriovctl[qemu]'") from None
    mon = QEMUMonitorProtocol(sock)
    try:
        mon.connect()
    except (OSError, Exception) as e:  # qemu.qmp raises its own ConnectError
        raise UnavailableError(f"QMP socket {sock}: cannot connect: {e}",
                               hint="start QEMU with -qmp unix:PATH,server=on,wait=off") from None
    return mon


def free_root_ports(mon: Any) -> list[str]:
    """qdev ids of pcie-root-ports with nothing behind them (a q35 guest needs one per hot-plugged device)."""
    free = []
    for bus in mon.cmd("query-pci"):
        for dev in bus.get("devices", []):
            bridge = dev.get("pci_bridge")
            if bridge is not None and dev.get("qdev_id") and not bridge.get("devices"):
                free.append(str(dev["qdev_id"]))
    return free


def hotplug(sock: str, a: PciAddress, bus: str | None = None) -> str:
    mon = _qmp(sock)
    try:
        if bus is None:
            ports = free_root_ports(mon)
            if not ports:
                raise UnavailableError(f"QMP {sock}: no free pcie-root-port to plug {a} into",
                                       hint="start QEMU with a spare port: -device pcie-root-port,id=rp9,chassis=9,slot=9")
            bus = ports[0]
        try:
            mon.cmd("device_add", driver="vfio-pci", host=str(a), id=device_id(a), bus=bus)
        except Exception as e:
            raise UsageError(f"QMP {sock}: device_add of {a} failed: {e}") from None
        return bus
    finally:
        mon.close()


def listed(sock: str, a: PciAddress) -> bool:
    mon = _qmp(sock)
    try:
        want = device_id(a)
        stack = list(mon.cmd("query-pci"))
        while stack:
            b = stack.pop()
            for dev in b.get("devices", []):
                if dev.get("qdev_id") == want:
                    return True
                if dev.get("pci_bridge"):
                    stack.append(dev["pci_bridge"])
        return False
    finally:
        mon.close()


def unplug(sock: str, a: PciAddress, timeout: float = 30.0) -> None:
    mon = _qmp(sock)
    try:
        try:
            mon.cmd("device_del", id=device_id(a))
        except Exception as e:
            raise NoInputError(f"QMP {sock}: no device {device_id(a)} to unplug: {e}") from None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ev = mon.pull_event(wait=max(0.1, deadline - time.monotonic()))
            except TimeoutError:  # qemu.qmp raises instead of returning None
                break
            if ev and ev.get("event") == "DEVICE_DELETED" and ev.get("data", {}).get("device") == device_id(a):
                return
        raise TemporaryError(f"QMP {sock}: {device_id(a)} not deleted after {timeout:g} s",
                             hint="the guest must acknowledge the unplug (a paused or OS-less guest may not)")
    finally:
        mon.close()
