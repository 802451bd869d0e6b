"""Device names accepted everywhere: ``0000:0b:10.0``, ``0b:10.0``, a netdev name, a libvirt node-device
name ``pci_0000_0b_10_0``, and ``PF#N`` for the N-th VF of a PF (N as in ``virtfnN``, 0-based), with
ranges ``PF#0-3,5`` where a verb takes several."""

from __future__ import annotations

import re

from sriovctl.errors import NoInputError, UsageError
from sriovctl.inventory import netdev_index
from sriovctl.model import Inventory, NetPf, PciDevice
from sriovctl.pci.address import PciAddress
from sriovctl.untrusted import is_netdev_name, shown

# ASCII digits only (\d and int() take Arabic-Indic and other digits), at most 5 of them: a VF index is below
# 65536 (TotalVFs is 16 bits), so nothing longer can name a VF and nothing is expanded before it is bounded.
_RANGE = re.compile(r"[0-9]{1,5}(-[0-9]{1,5})?(,[0-9]{1,5}(-[0-9]{1,5})?){0,255}", re.ASCII)
MAX_VF_INDEX = 0xFFFF


def parse_indices(text: str, what: str, limit: int = MAX_VF_INDEX + 1, owner: str = "") -> list[int]:
    """``3``, ``0-3,5``, ``3-5,0`` → indices in the order written, each once (``--macs-from`` hands out MACs in
    that order: ``#3-5,0`` gives VF 0 the fourth). Bounded before anything is expanded: each index < ``limit`` (the PF's
    VF count when known), at most 256 parts."""
    if not _RANGE.fullmatch(text):
        raise UsageError(f"{shown(what)}: VF index {shown(text)} is not N, N-M or a comma list of those (at most 256)",
                         hint="e.g. enp11s0f0#3 or enp11s0f0#0-3,5")
    spans: list[tuple[int, int]] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        lo, hi = int(a), int(b or a)
        if hi < lo:
            raise UsageError(f"{shown(what)}: VF range {part!r} runs backwards")
        if hi >= limit:
            raise NoInputError(f"{shown(what)}: {owner}no VF {hi}",
                               hint="enable VFs first" if not limit else f"VF indices run 0..{limit - 1}")
        spans.append((lo, hi))
    return list(dict.fromkeys(i for lo, hi in spans for i in range(lo, hi + 1)))


def format_indices(indices: list[int]) -> str:
    """Sorted indices as the range text parse_indices reads: [0, 1, 2, 3, 5] → ``0-3,5``."""
    parts: list[str] = []
    for i in indices:
        if parts and "-" in parts[-1] and int(parts[-1].split("-")[1]) == i - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{i}"
        elif parts and "-" not in parts[-1] and int(parts[-1]) == i - 1:
            parts[-1] = f"{parts[-1]}-{i}"
        else:
            parts.append(str(i))
    return ",".join(parts)


def resolve_one(inv: Inventory, name: str) -> PciDevice:
    devs = resolve(inv, name)
    if len(devs) != 1:
        raise UsageError(f"{shown(name)}: names {len(devs)} devices, this verb takes one")
    return devs[0]


def resolve(inv: Inventory, name: str) -> list[PciDevice]:
    if "#" in name:
        base, _, idx = name.partition("#")
        pf = _resolve_plain(inv, base, name)
        if not pf.is_pf:
            raise UsageError(f"{shown(name)}: {shown(base)} ({pf.address}) is not an SR-IOV PF")
        numvfs = len(pf.vfs)
        wanted = parse_indices(idx, name, numvfs, owner=f"{pf.address} has {numvfs} VFs, ")
        return [inv.devices[pf.vfs[i]] for i in wanted]
    return [_resolve_plain(inv, name, name)]


def resolve_net(inv: Inventory, name: str) -> tuple[NetPf, list[int] | None] | None:
    """A PF that is not on PCI, named by its netdev (``eni10np1``), with the VF indices after ``#`` (None when
    the name has none); None when the name is not such a PF's."""
    base, hash_, idx = name.partition("#")
    pf = inv.net_pfs.get(base)
    if pf is None:
        return None
    if not hash_:
        return pf, None
    count = len(pf.vfs) if pf.vfs else pf.numvfs or 0
    return pf, parse_indices(idx, name, count, owner=f"{pf.name} has {count} VFs, ")


def _resolve_plain(inv: Inventory, text: str, whole: str) -> PciDevice:
    addr = PciAddress.parse(text) if ":" in text or text.startswith("pci_") else None
    if addr is not None:
        dev = inv.devices.get(addr)
        if dev is None:
            raise NoInputError(f"{shown(whole)}: no PCI device {addr} on {inv.host}",
                               hint="`sriovctl list` shows the devices")
        return dev
    if is_netdev_name(text):
        nd = netdev_index(inv).get(text)
        if nd is not None:
            return inv.devices[nd]
        net = inv.net_pfs.get(text)
        if net is not None:
            raise UsageError(f"{shown(whole)}: {text} is a PF not on PCI ({net.devlink}): this verb needs a PCI device",
                             hint="its VFs take `vf set`, `show`, `status`, `tree` and `pf eswitch`")
        raise NoInputError(f"{shown(whole)}: no PCI device or network interface named {shown(text)} on {inv.host}",
                           hint="use a PCI address (0000:0b:10.0), a netdev name, pci_DDDD_BB_DD_F or PF#N")
    raise UsageError(f"{shown(whole)}: not a device name",
                     hint="use a PCI address (0000:0b:10.0), a netdev name, pci_DDDD_BB_DD_F or PF#N")
