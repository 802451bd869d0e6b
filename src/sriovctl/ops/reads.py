"""The reading operations front ends call: doctor, libvirt node devices, config-space dumps, snapshots and the
simulated-host catalog. Each returns data; nothing here writes to a host but sim_traffic, which counts traffic
on a simulated one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sriovctl.host.base import Host
from sriovctl.model import Inventory, PciDevice

if TYPE_CHECKING:
    from sriovctl.doctor import Report
    from sriovctl.pci.config import ConfigSpace
    from sriovctl.pci.dump import DumpedDevice
    from sriovctl.snapshot import SnapshotMeta


def doctor(host: Host, inv: Inventory, device: PciDevice | None) -> Report:
    from sriovctl.doctor import run_doctor

    return run_doctor(host, inv, device)


def nodedev_names(inv: Inventory) -> list[str]:
    from sriovctl.nodedev import nodedev_names as names

    return names(inv)


def nodedev_xml(inv: Inventory, d: PciDevice) -> str:
    from sriovctl.nodedev import dumpxml

    return dumpxml(inv, d)


def decode_dump(path: str) -> list[tuple[DumpedDevice, ConfigSpace]]:
    """Every device in an lspci -x/-xxx/-xxxx text or a binary config file, decoded."""
    from sriovctl.pci.config import decode
    from sriovctl.pci.dump import read_dump

    return [(dd, decode(dd.data, what=f"{path}: {dd.address or 'device'}")) for dd in read_dump(Path(path))]


def snapshot(host: Host, out: Path) -> SnapshotMeta:
    from sriovctl.snapshot import capture

    return capture(host, out)


def sim_list() -> tuple[str, list[tuple[str, str, bool]]]:
    """(the simulated hosts' directory, (name, origin, built) for each)."""
    from sriovctl.host.sim.catalog import list_sims, sim_dir

    return str(sim_dir()), list_sims()


def sim_reset(name: str) -> Path:
    from sriovctl.host.sim.catalog import reset_sim

    return reset_sim(name)


def sim_traffic(host: Host, vf: PciDevice, counts: dict[str, int]) -> dict[str, int]:
    """Count traffic on a simulated VF (host/sim/traffic.py); the device's counters after it."""
    from sriovctl.errors import UsageError
    from sriovctl.host.sim.host import SimHost
    from sriovctl.host.sim.traffic import advance

    if not isinstance(host, SimHost):
        raise UsageError(f"{host.label}: not a simulated host")
    if not vf.is_vf:
        raise UsageError(f"{vf.address}: not a VF", hint="name a VF: its address or PF#N")
    return advance(host.tree, vf.address, counts)


def sim_create(name: str, spec: Path) -> Path:
    from sriovctl.host.sim.catalog import create_sim

    return create_sim(name, spec)
