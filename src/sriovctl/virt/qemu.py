"""Handing VFs to QEMU directly: the -device arguments, and hot(un)plug through QMP (qemu.qmp, an optional
extra). The old `-device pci-assign` is gone from QEMU (removed in 2.12): it is vfio-pci now."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sriovctl.errors import FieldError, NoInputError, RefusedError, TemporaryError, UnavailableError, UsageError
from sriovctl.pci.address import PciAddress
from sriovctl.untrusted import shown

PCI_ASSIGN_GONE = ("pci-assign (KVM legacy device assignment) was removed from QEMU in 2.12 (and from Linux in 4.12): "
                   "use -device vfio-pci,host=DDDD:BB:DD.F with the VF bound to vfio-pci")

# q35 machines since QEMU 6.1 hot-plug into pcie-root-ports through ACPI; an unplug then waits for the guest
# OS to eject the device. With native PCIe hotplug (this global), QEMU removes a device at once from a slot
# whose power the guest never switched on — a paused or OS-less guest (measured in the lab: 0.05 s vs never).
NATIVE_PCIE_HOTPLUG = ("-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off")


def device_id(a: PciAddress) -> str:
    return f"sriov-{a.bus:02x}-{a.slot:02x}-{a.function:x}"


# A QEMU id: a letter, then letters, digits, - . _. Option values are comma-separated key=value pairs, so a ','
# or '=' in one would add options of its own (--bus 'rp1,host=0000:00:00.0').
QEMU_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}", re.ASCII)


def device_args(addrs: list[PciAddress], bus: str | None = None) -> list[str]:
    if bus is not None and not QEMU_ID.fullmatch(bus):
        raise FieldError("bus", "QEMU bus", shown(bus), "not a QEMU id", hint="a letter, then letters, digits, - . _ (no , or =)")
    out: list[str] = []
    for a in addrs:
        spec = f"vfio-pci,host={a},id={device_id(a)}" + (f",bus={bus}" if bus else "")
        out += ["-device", spec]
    return out


@contextmanager
def monitor(sock: str) -> Iterator[Any]:
    """A QMP connection to a running QEMU, closed on the way out."""
    try:
        from qemu.qmp.legacy import QEMUMonitorProtocol
    except ImportError:
        raise UnavailableError("qemu.qmp is not installed", hint="pip install 'sriovctl[qemu]'") from None
    mon = QEMUMonitorProtocol(sock)
    try:
        mon.connect()
    except Exception as e:  # OSError, or qemu.qmp's own ConnectError
        raise UnavailableError(f"QMP socket {sock}: cannot connect: {e}",
                               hint="start QEMU with -qmp unix:PATH,server=on,wait=off") from None
    try:
        yield mon
    finally:
        mon.close()


def _devices(mon: Any) -> Iterator[dict[str, Any]]:
    """Every device of query-pci, behind bridges and ports too."""
    stack = list(mon.cmd("query-pci"))
    while stack:
        bus = stack.pop()
        for dev in bus.get("devices", []):
            yield dev
            if dev.get("pci_bridge"):
                stack.append(dev["pci_bridge"])


def free_root_ports(mon: Any) -> list[str]:
    """qdev ids of pcie-root-ports with nothing behind them (a q35 guest needs one per hot-plugged device)."""
    return [str(d["qdev_id"]) for d in _devices(mon)
            if d.get("pci_bridge") is not None and d.get("qdev_id") and not d["pci_bridge"].get("devices")]


def is_plugged(mon: Any, a: PciAddress) -> bool:
    return any(d.get("qdev_id") == device_id(a) for d in _devices(mon))


def choose_port(mon: Any, sock: str, a: PciAddress, bus: str | None) -> str:
    if is_plugged(mon, a):
        raise UsageError(f"QMP {sock}: {a} is already plugged in as {device_id(a)}")
    if bus is not None:
        return bus
    ports = free_root_ports(mon)
    if not ports:
        raise UnavailableError(f"QMP {sock}: no free pcie-root-port to plug {a} into",
                               hint="start QEMU with a spare port: -device pcie-root-port,id=rp9,chassis=9,slot=9")
    return ports[0]


def hotplug(mon: Any, sock: str, a: PciAddress, bus: str) -> None:
    try:
        mon.cmd("device_add", driver="vfio-pci", host=str(a), id=device_id(a), bus=bus)
    except Exception as e:
        raise RefusedError(f"QMP {sock}: device_add of {a} failed: {e}") from None


def listed(sock: str, a: PciAddress) -> bool:
    with monitor(sock) as mon:
        return is_plugged(mon, a)


def require_plugged(mon: Any, sock: str, a: PciAddress) -> None:
    if not is_plugged(mon, a):
        raise NoInputError(f"QMP {sock}: no device {device_id(a)} to unplug", hint="`sriovctl qemu hotplug` names "
                           "its devices sriov-BB-DD-F; query-pci lists what the guest has")


def unplug(mon: Any, sock: str, a: PciAddress, timeout: float, clock: Any = time.monotonic) -> float:
    """device_del, then wait for DEVICE_DELETED (the guest must let go first; QMP events are pulled with a timeout,
    on ``clock``: the Host's). Returns the seconds waited."""
    require_plugged(mon, sock, a)
    t0 = clock()
    try:
        mon.cmd("device_del", id=device_id(a))
    except Exception as e:
        raise RefusedError(f"QMP {sock}: device_del of {device_id(a)} failed: {e}") from None
    deadline = t0 + timeout
    while clock() < deadline:
        try:
            ev = mon.pull_event(wait=max(0.1, deadline - clock()))
        except TimeoutError:  # qemu.qmp raises instead of returning None
            break
        if ev and ev.get("event") == "DEVICE_DELETED" and ev.get("data", {}).get("device") == device_id(a):
            return float(clock() - t0)
    raise TemporaryError(f"QMP {sock}: {device_id(a)} not deleted after {timeout:g} s: the guest has not released it",
                         hint="the guest OS must acknowledge the unplug (a paused or OS-less guest cannot, unless "
                              "QEMU runs with native PCIe hotplug: " + " ".join(NATIVE_PCIE_HOTPLUG) + ")")
