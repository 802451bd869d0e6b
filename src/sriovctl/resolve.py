"""Device names accepted everywhere: ``0000:0b:10.0``, ``0b:10.0``, a netdev name, a libvirt node-device
name ``pci_0000_0b_10_0``, and ``PF#N`` for the N-th VF of a PF (N as in ``virtfnN``, 0-based), with
ranges ``PF#0-3,5`` where a verb takes several."""

from __future__ import annotations

import re

from sriovctl.errors import NoInputError, UsageError
from sriovctl.inventory import netdev_index
from sriovctl.model import Inventory, PciDevice
from sriovctl.pci.address import PciAddress

_RANGE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_NETDEV = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")


def parse_indices(text: str, what: str) -> list[int]:
    if not _RANGE.match(text):
        raise UsageError(f"{what}: VF index {text!r} is not N, N-M or a comma list of those",
                         hint="e.g. enp11s0f0#3 or enp11s0f0#0-3,5")
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        lo, hi = int(a), int(b or a)
        if hi < lo:
            raise UsageError(f"{what}: VF range {part!r} runs backwards")
        out.extend(range(lo, hi + 1))
    return sorted(set(out))


def resolve_one(inv: Inventory, name: str) -> PciDevice:
    devs = resolve(inv, name)
    if len(devs) != 1:
        raise UsageError(f"{name}: names {len(devs)} devices, this verb takes one")
    return devs[0]


def resolve(inv: Inventory, name: str) -> list[PciDevice]:
    if "#" in name:
        base, _, idx = name.partition("#")
        pf = _resolve_plain(inv, base, name)
        if not pf.is_pf:
            raise UsageError(f"{name}: {base} ({pf.address}) is not an SR-IOV PF")
        wanted = parse_indices(idx, name)
        numvfs = len(pf.vfs)
        bad = [i for i in wanted if i >= numvfs]
        if bad:
            raise NoInputError(f"{name}: {pf.address} has {numvfs} VFs, no VF {bad[0]}",
                               hint=f"VF indices run 0..{numvfs - 1}" if numvfs else "enable VFs first")
        return [inv.devices[pf.vfs[i]] for i in wanted]
    return [_resolve_plain(inv, name, name)]


def _resolve_plain(inv: Inventory, text: str, whole: str) -> PciDevice:
    addr = PciAddress.parse(text) if ":" in text or text.startswith("pci_") else None
    if addr is not None:
        dev = inv.devices.get(addr)
        if dev is None:
            raise NoInputError(f"{whole}: no PCI device {addr} on {inv.host}",
                               hint="`sriovctl list` shows the devices")
        return dev
    if _NETDEV.match(text):
        nd = netdev_index(inv).get(text)
        if nd is not None:
            return inv.devices[nd]
        raise NoInputError(f"{whole}: no PCI device or network interface named {text!r} on {inv.host}",
                           hint="use a PCI address (0000:0b:10.0), a netdev name, pci_DDDD_BB_DD_F or PF#N")
    raise UsageError(f"{whole}: not a device name",
                     hint="use a PCI address (0000:0b:10.0), a netdev name, pci_DDDD_BB_DD_F or PF#N")
