"""The stats read: every VF's netlink view with its traffic counters, and the facts that say where it is
assigned (its driver, its IOMMU group) — what an exporter scrapes every 15 s. No config space, no pci.ids, no
assignability verdict, no identity files: per PCI function one existence check, per PF its VF links, per VF
two links, per PF one RTM_GETLINK with IFLA_VF_STATS. PFs not on PCI (netdevsim) are read as the inventory
reads them."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sriovctl.host import sysfs
from sriovctl.host.base import Host
from sriovctl.inventory import group_number, read_netdev, read_virtfns
from sriovctl.model import NetDev, VfNetlink
from sriovctl.netpfs import read_net_pfs, split_representors, vf_view
from sriovctl.pci.address import PciAddress
from sriovctl.untrusted import is_plain_name, link_name


@dataclass(frozen=True, slots=True)
class VfStat:
    vf: int  # its index on its PF
    address: PciAddress | None  # None: a VF not on PCI (netdevsim)
    driver: str | None
    iommu_group: int | None
    netlink: VfNetlink | None  # None when the PF's netlink view has no entry for it


@dataclass(frozen=True, slots=True)
class PfStats:
    pf: str  # its PCI address, or the netdev of a PF not on PCI
    netdev: str | None  # the netdev its VFs are reached through
    driver: str | None
    numvfs: int
    vfs: tuple[VfStat, ...]


def _pf_stats(host: Host, name: str) -> PfStats | None:
    dev = sysfs.device(name)
    if not host.exists(f"{dev}/{sysfs.SRIOV_NUMVFS}"):
        return None  # not an SR-IOV PF with driver support (a VF, a bridge, anything else)
    v, lk, nets = host.read_dir_tree(dev, (sysfs.SRIOV_NUMVFS,), (sysfs.DRIVER,), sysfs.NET, ())
    raw = v.get(sysfs.SRIOV_NUMVFS, b"").strip()
    numvfs = int(raw) if raw.isdigit() and len(raw) <= 6 else 0
    netdevs = tuple(NetDev(n, None, None, None, None) for n in nets if is_plain_name(n))
    own, _ = split_representors(host, f"{dev}/{sysfs.NET}", netdevs)
    driver = link_name(lk.get(sysfs.DRIVER))
    view = {x.vf: x for x in vf_view(host, own[0].name, True, driver)[0]} if own and numvfs else {}
    vfs = []
    for i, va in read_virtfns(host, dev) if numvfs else ():
        _, vl = host.read_dir_attrs(sysfs.device(str(va)), (), (sysfs.DRIVER, sysfs.IOMMU_GROUP))
        vfs.append(VfStat(i, va, link_name(vl.get(sysfs.DRIVER)), group_number(vl.get(sysfs.IOMMU_GROUP)),
                          view.get(i)))
    return PfStats(name, own[0].name if own else None, driver, numvfs, tuple(vfs))


def read_vf_stats(host: Host) -> list[PfStats]:
    """Every SR-IOV PF's VFs with their counters, PCI PFs in address order, then PFs not on PCI by netdev."""
    out = []
    names = sorted((a, n) for n in host.listdir(sysfs.PCI_DEVICES) if (a := PciAddress.try_parse(n)) is not None)
    vfs: set[PciAddress] = set()  # a PF's VFs come after it in address order: no existence check for them
    for addr, name in names:
        if addr in vfs:
            continue
        pf = _pf_stats(host, name)
        if pf is not None:
            out.append(pf)
            vfs.update(v.address for v in pf.vfs if v.address is not None)
    # a PCI function's netdev is told apart by its own link (sysfs.bus_device_of_netdev): none to skip by name
    for name, npf in sorted(read_net_pfs(host, set(), functools.partial(read_netdev, host), True, True).items()):
        out.append(PfStats(name, name, npf.driver, npf.numvfs or 0,
                           tuple(VfStat(v.vf, None, None, None, v) for v in npf.vfs)))
    return out


__all__ = ["PfStats", "VfStat", "read_vf_stats"]
