"""The host as it is, written in the state file's schema: what `state show` prints. Every key of every VF is
there (null where the PF did not report it); reading it back with desired.parse gives a state that asks for
nothing to change."""

from __future__ import annotations

from typing import Any

from sriovctl.model import Inventory, NetPf, PciDevice, VfNetlink
from sriovctl.state.keys import VF_DRIVER, VF_ID, VF_KEYS


def _vf_keys(view: VfNetlink | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, attr in VF_KEYS.items():
        value = getattr(view, attr.key) if view is not None else None
        if attr.key == "vlan_proto" and isinstance(value, str):
            value = value.lower()  # nmstate's spelling: 802.1q, 802.1ad
        out[key] = value
    return out


def pci_pf(inv: Inventory, pf: PciDevice) -> dict[str, Any]:
    assert pf.sriov is not None
    entry: dict[str, Any] = {"name": pf.netdevs[0].name} if pf.netdevs else {"pci-address": str(pf.address)}
    entry["total-vfs"] = pf.sriov.numvfs or 0
    entry["create"] = "sysfs"
    if pf.sriov.drivers_autoprobe is not None:
        entry["drivers-autoprobe"] = pf.sriov.drivers_autoprobe
    entry["vfs"] = [{VF_ID: v.vf_index, **_vf_keys(v.netlink), VF_DRIVER: v.driver or "none"}
                    for v in inv.vfs_of(pf)]
    return entry


def net_pf(pf: NetPf) -> dict[str, Any]:
    """A PF not on PCI: its VFs have no driver to bind (no driver key)."""
    return {"name": pf.name, "total-vfs": pf.numvfs or 0, "create": "sysfs",
            "vfs": [{VF_ID: v.vf, **_vf_keys(v)} for v in pf.vfs]}


def current_state(inv: Inventory, pfs: list[PciDevice | NetPf] | None = None) -> dict[str, Any]:
    """The state document of ``pfs`` (every SR-IOV PF when None), PCI PFs in address order first."""
    chosen: list[PciDevice | NetPf] = pfs if pfs is not None else [*inv.pfs, *inv.net_pfs.values()]
    return {"pfs": [net_pf(p) if isinstance(p, NetPf) else pci_pf(inv, p) for p in chosen]}
