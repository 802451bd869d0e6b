"""Which PF on this host a state entry means. A selector that matches nothing is an error naming the entry's
path (fail closed: a state written for another host or another slot is not applied to whatever is there)."""

from __future__ import annotations

from dataclasses import dataclass

from sriovctl.model import Inventory, NetPf, PciDevice, pf_key, pf_label
from sriovctl.pci.address import PciAddress
from sriovctl.state.desired import DesiredState, PfSelector, PfState, StateError


@dataclass(frozen=True)
class Matched:
    """A state entry and the PF it selects (a PCI PF, or a PF not on PCI by its netdev)."""

    entry: PfState
    pf: PciDevice | NetPf

    @property
    def key(self) -> str:
        """The PF's lock key (its address; a PF not on PCI: its device's)."""
        return pf_key(self.pf)

    @property
    def label(self) -> str:
        return pf_label(self.pf)


def select(inv: Inventory, sel: PfSelector) -> PciDevice | NetPf | None:
    """The PF a selector names on this host, or None. ``vendor``+``device``+``index``: the index-th SR-IOV PF
    with those IDs in PCI address order (stable across boots, unlike netdev names)."""
    if sel.name is not None:
        for pf in inv.pfs:
            if any(n.name == sel.name for n in pf.netdevs):
                return pf
        return inv.net_pfs.get(sel.name)
    if sel.pci_address is not None:
        d = inv.devices.get(PciAddress.parse(sel.pci_address))
        return d if d is not None and d.is_pf else None
    same = sorted((p for p in inv.pfs if p.vendor_id == sel.vendor and p.device_id == sel.device),
                  key=lambda p: p.address)
    return same[sel.index] if sel.index is not None and sel.index < len(same) else None


def match_all(inv: Inventory, state: DesiredState, only: list[PciDevice | NetPf] | None = None) -> list[Matched]:
    """Each entry with its PF. ``only``: the entries for these PFs (`state apply FILE PF…`, the udev rule); the
    other entries are still checked to match something only when ``only`` is None."""
    out: list[Matched] = []
    owner: dict[str, str] = {}
    for entry in state.pfs:
        pf = select(inv, entry.selector)
        if pf is None:
            if only is not None:
                continue
            raise StateError(state.source, entry.path, f"no SR-IOV PF on this host matches {entry.selector}",
                             hint="`sriovctl state show` names the PFs this host has")
        m = Matched(entry, pf)
        if m.key in owner:
            raise StateError(state.source, entry.path, f"selects the same PF ({m.label}) as {owner[m.key]}")
        owner[m.key] = entry.path
        if only is None or m.key in {pf_key(o) for o in only}:
            out.append(m)
    return out
