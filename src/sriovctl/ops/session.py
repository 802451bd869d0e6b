"""A host opened for an operation: the host itself (live, snapshot or simulated), its inventory, and — for a
writing operation — the PF's lock, under which the inventory is read again if another sriovctl wrote since."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from sriovctl.errors import UsageError
from sriovctl.host.base import Host
from sriovctl.inventory import read_inventory, reread_pfs
from sriovctl.model import Inventory, NetPf, PciDevice
from sriovctl.pci.address import PciAddress
from sriovctl.resolve import resolve, resolve_net, resolve_one


def open_host(sim: str | None = None, root: str | None = None) -> Host:
    """The simulated host ``sim``, the snapshot ``root``, or (neither) the live host."""
    if root is not None and sim is not None:
        raise UsageError("a simulated host and a snapshot: choose one host")
    if sim is not None:  # "" and " " are refused below (open_sim's name check, open_root's empty path)
        from sriovctl.host.sim.catalog import open_sim

        return open_sim(sim)
    if root is not None:
        from sriovctl.snapshot import open_root

        return open_root(root)
    return Host(root="/", label=os.uname().nodename)


class Session:
    """One host and what was read of it. Writing operations change it under :meth:`locked`."""

    def __init__(self, host: Host, stats: bool = False) -> None:
        self.host = host
        self.stats = stats
        self._stamp = host.ledger_stamp()
        self.inv: Inventory = read_inventory(host, stats=stats)
        self.scoped_rereads = 0  # locked sections that read only their PFs again

    def find(self, name: str) -> PciDevice:
        return resolve_one(self.inv, name)

    def find_all(self, name: str) -> list[PciDevice]:
        return resolve(self.inv, name)

    def find_pf(self, name: str) -> PciDevice | NetPf:
        """A device by name, or a PF not on PCI by its netdev (naming one of its VFs is refused: not a PF).
        The caller checks that a PCI device is a PF: each says what it needs one for."""
        net = self.find_net(name)
        if net is None:
            return self.find(name)
        if net[1] is not None:
            raise UsageError(f"{name}: a VF, not a PF", hint=f"name the PF: {net[0].name}")
        return net[0]

    def find_net(self, name: str) -> tuple[NetPf, list[int] | None] | None:
        """A PF not on PCI named by its netdev, with the VF indices after ``#``; None when it is not one."""
        return resolve_net(self.inv, name)

    def reread(self, keys: list[str] | None = None) -> Inventory:
        """The host read again: only the PFs of these lock keys when they are PCI PFs (their VFs, the drivers
        of their IOMMU groups' members: inventory.reread_pfs), else all of it."""
        self._stamp = self.host.ledger_stamp()
        pfs = [a for k in keys or () if (a := PciAddress.try_parse(k)) is not None]
        if keys and len(pfs) == len(keys):
            scoped = reread_pfs(self.host, self.inv, pfs, stats=self.stats)
            if scoped is not None:
                self.inv = scoped
                self.scoped_rereads += 1
                return self.inv
        self.inv = read_inventory(self.host, stats=self.stats)
        return self.inv

    def locked(self, pf: object, wait: float) -> contextlib.AbstractContextManager[Inventory]:
        """Hold PF ``pf``'s lock (up to ``wait`` seconds to get it); the inventory is read again when another
        sriovctl process logged a write since it was read, so the plan is made from what is there now."""
        return self._locked([str(pf)], wait)

    def locked_keys(self, keys: list[str], wait: float) -> contextlib.AbstractContextManager[Inventory]:
        """The locks of these PF keys (addresses; a PF not on PCI: its NetPf.lock), taken in sorted order."""
        return self._locked(sorted(set(keys)), wait)

    def locked_all(self, devices: list[PciDevice], wait: float) -> contextlib.AbstractContextManager[Inventory]:
        """The locks of every PF these devices belong to, held for the whole operation."""
        return self._locked(sorted({str(pf_of(d)) for d in devices}), wait)

    @contextlib.contextmanager
    def _locked(self, keys: list[str], wait: float) -> Iterator[Inventory]:
        """Locks taken in address order (two processes asking for the same PFs cannot deadlock)."""
        with contextlib.ExitStack() as stack:
            for key in keys:
                stack.enter_context(self.host.pf_lock(key, wait))
            if not self.host.dry_run and self.host.ledger_stamp() != self._stamp:
                self.reread(keys)
            yield self.inv


def pf_of(d: PciDevice) -> object:
    """The lock that guards a device: its PF's for a VF, its own otherwise."""
    return d.physfn if d.physfn is not None else d.address


__all__ = ["Host", "Session", "open_host", "pf_of"]
