"""Stable generated MACs for VFs handed to VMs: the QEMU/KVM prefix 52:54:00, derived from the host and the
VF's address, and never one that another VF or interface on the host already has."""

from __future__ import annotations

import hashlib

from sriovctl.model import Inventory, PciDevice


def macs_in_use(inv: Inventory) -> set[str]:
    used = {n.mac.lower() for d in inv.devices.values() for n in d.netdevs if n.mac}
    used |= {d.netlink.mac.lower() for d in inv.vfs if d.netlink and d.netlink.mac}
    return used - {"00:00:00:00:00:00"}


def generated_mac(inv: Inventory, vf: PciDevice) -> str:
    used = macs_in_use(inv)
    for n in range(1000):
        h = hashlib.sha256(f"{inv.host}/{vf.address}/{n}".encode()).digest()
        mac = "52:54:00:" + ":".join(f"{b:02x}" for b in h[:3])
        if mac not in used:
            return mac
    raise RuntimeError("no free MAC after 1000 tries")  # pragma: no cover - 16M addresses
