"""The host as it is, written in the state file's schema: what `state show` prints. Every key of every VF is
there (null where the PF did not report it); reading it back with desired.parse gives a state that asks for
nothing to change."""

from __future__ import annotations

from typing import Any

from sriovctl.model import Inventory, NetPf, PciDevice, VfNetlink
from sriovctl.state.keys import PF_SETTINGS, VF_DRIVER, VF_ID, VF_KEYS


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
    entry.update(_settings(pf))
    entry["vfs"] = [{VF_ID: v.vf_index, **_vf_keys(v.netlink), VF_DRIVER: v.driver or "none"}
                    for v in inv.vfs_of(pf)]
    return entry


def net_pf(pf: NetPf) -> dict[str, Any]:
    """A PF not on PCI: its VFs have no driver to bind (no driver key)."""
    return {"name": pf.name, **_settings(pf), "vfs": [{VF_ID: v.vf, **_vf_keys(v)} for v in pf.vfs]}


def _settings(pf: PciDevice | NetPf) -> dict[str, Any]:
    """The PF's settings that are facts of the host (state/keys.PF_SETTINGS with a reader), where it has them."""
    return {k.key: value for k in PF_SETTINGS if k.read is not None and (value := k.read(pf)) is not None}


def current_state(inv: Inventory, pfs: list[PciDevice | NetPf] | None = None) -> dict[str, Any]:
    """The state document of ``pfs`` (every SR-IOV PF when None), PCI PFs in address order first."""
    chosen: list[PciDevice | NetPf] = pfs if pfs is not None else [*inv.pfs, *inv.net_pfs.values()]
    return {"pfs": [net_pf(p) if isinstance(p, NetPf) else pci_pf(inv, p) for p in chosen]}
