"""Host → Inventory: the only reader of "what is" on a host.

Reads sysfs (PCI devices, drivers, IOMMU groups, netdevs) and the config space of PFs and bridges.
Written for thousands of VFs: one pass over sys/bus/pci/devices, plain file reads, no realpath.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from sriovctl.drivers import is_vm_safe
from sriovctl.host import sysfs
from sriovctl.host.base import Host
from sriovctl.host.netlink import VfNetlink
from sriovctl.model import (
    Assignability,
    Inventory,
    IommuGroup,
    NetDev,
    PciDevice,
    Representor,
    SriovInfo,
    SriovState,
)
from sriovctl.netpfs import read_net_pfs, split_representors, vf_view
from sriovctl.pci.address import PciAddress
from sriovctl.pci.config import ConfigSpace, decode
from sriovctl.pci.ids import HOST_IDS, IDS_LIMIT, LayeredIds, PciIds, system_ids
from sriovctl.untrusted import is_plain_name, link_name, sanitize_line


def _hex(host: Host, rel: str) -> int | None:
    t = host.read_text(rel)
    if not t:
        return None
    try:
        return int(t, 16)
    except ValueError:
        return None


def _int(raw: bytes | None, base: int = 10) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw.strip() or b"x", base)
    except ValueError:
        return None


def _str(raw: bytes | None) -> str | None:
    """An attribute's text, with control characters escaped (a snapshot from elsewhere may hold any bytes)."""
    return None if raw is None else sanitize_line(raw.decode("utf-8", "replace").strip())




def _netdevs(found: dict[str, dict[str, bytes]]) -> tuple[NetDev, ...]:
    return tuple(_netdev(name, v) for name, v in found.items()
                 if is_plain_name(name))  # else not a name the kernel gives a netdev (dev_valid_name): a hostile tree


def _netdev(name: str, v: dict[str, bytes]) -> NetDev:
    return NetDev(name, _str(v.get("address")), _str(v.get("operstate")), _int(v.get("mtu")), _int(v.get("ifindex")))


def _parent(link: str | None) -> PciAddress | None:
    if not link:
        return None
    parts = link.rstrip("/").split("/")
    return PciAddress.try_parse(parts[-2]) if len(parts) >= 2 else None


@dataclass(slots=True)
class _Raw:
    """What one pass over a device's sysfs directory found."""

    dev: str
    vendor: int
    device: int
    cls: int
    revision: int
    subsystem: tuple[int | None, int | None]
    driver: str | None
    override: str | None
    numa: int | None
    group: int | None
    physfn: PciAddress | None
    has_sriov: bool
    config: ConfigSpace | None
    parent: PciAddress | None = None
    netdevs: tuple[NetDev, ...] = ()
    representors: tuple[Representor, ...] = ()


def _read_device(host: Host, name: str) -> _Raw:
    dev = sysfs.device(name)
    v, lk, nets = host.read_dir_tree(dev, sysfs.DEVICE_FILES, sysfs.DEVICE_LINKS, sysfs.NET, sysfs.NETDEV_FILES)
    override = _str(v.get(sysfs.DRIVER_OVERRIDE))
    group = link_name(lk.get(sysfs.IOMMU_GROUP))
    numa = _int(v.get(sysfs.NUMA_NODE))
    physfn = link_name(lk.get(sysfs.PHYSFN))
    return _Raw(
        dev=dev, vendor=_int(v.get(sysfs.VENDOR), 16) or 0, device=_int(v.get(sysfs.DEVICE), 16) or 0,
        cls=_int(v.get(sysfs.CLASS), 16) or 0, revision=_int(v.get(sysfs.REVISION), 16) or 0,
        subsystem=(_int(v.get(sysfs.SUBSYSTEM_VENDOR), 16), _int(v.get(sysfs.SUBSYSTEM_DEVICE), 16)),
        driver=link_name(lk.get(sysfs.DRIVER)), override=None if override in (None, "(null)", "") else override,
        numa=None if numa is None or numa < 0 else numa,
        group=int(group) if group and group.isdigit() else None,
        physfn=PciAddress.try_parse(physfn) if physfn else None, has_sriov=False, config=None,
        netdevs=_netdevs(nets),
    )


def _read_netdev(host: Host, netdir: str, name: str) -> NetDev:
    return _netdev(name, host.read_dir_attrs(f"{netdir}/{name}", sysfs.NETDEV_FILES)[0])


def _netlink_views(host: Host, raw: dict[PciAddress, _Raw], pf_vfs: dict[PciAddress, tuple[PciAddress, ...]],
                   stats: bool = False) -> dict[PciAddress, VfNetlink]:
    """Each VF's netlink view, from one RTM_GETLINK per PF (absent where it cannot be read)."""
    out: dict[PciAddress, VfNetlink] = {}
    for pf, vfs in pf_vfs.items():
        own = raw[pf].netdevs  # the PF's own: in switchdev mode its net/ lists its VFs' representors too
        if not vfs or not own:
            continue
        view, _ = vf_view(host, own[0].name, stats)
        for v in view:
            if 0 <= v.vf < len(vfs):
                out[vfs[v.vf]] = v
    return out


def host_ids(host: Host) -> tuple[PciIds, str | None]:
    """The names of this host's devices: a snapshot's or a simulated host's own (recorded where it was captured,
    or from its spec), else this machine's pci.ids; with a note when there are none at all."""
    if host.confined:
        raw = host.read_bytes(HOST_IDS, IDS_LIMIT)
        if raw:
            return LayeredIds(PciIds(raw.decode("utf-8", "replace")), system_ids()), None
    ids = system_ids()
    if ids.empty:
        return ids, ("no pci.ids on this machine: devices are named by number "
                     "(install the pciutils package, or hwdata)")
    return ids, None


def read_inventory(host: Host, ids: PciIds | None = None, netlink: bool = True, stats: bool = False) -> Inventory:
    """Everything on the host. ``netlink``: each VF's netlink view (one RTM_GETLINK per PF); ``stats``: with
    the per-VF traffic counters where the kernel reports them (costlier: off for listings)."""
    ids_note = None
    if ids is None:
        ids, ids_note = host_ids(host)
    raw: dict[PciAddress, _Raw] = {}
    for name in host.listdir(sysfs.PCI_DEVICES):
        addr = PciAddress.try_parse(name)
        if addr is not None:
            raw[addr] = _read_device(host, name)

    config_readable = True
    vf_index: dict[PciAddress, tuple[PciAddress, int]] = {}
    pf_vfs: dict[PciAddress, tuple[PciAddress, ...]] = {}
    for addr, r in raw.items():
        if r.physfn is not None:
            continue  # a VF: its config space adds nothing here, its parent is its PF's
        r.parent = _parent(host.readlink(r.dev))
        r.has_sriov = host.exists(f"{r.dev}/{sysfs.SRIOV_TOTALVFS}")
        data = host.read_bytes(f"{r.dev}/{sysfs.CONFIG}", 4096)
        if data is not None and len(data) >= 64:
            r.config = decode(data, what=f"{addr} config")
            config_readable = config_readable and r.config.size > 64
        if r.has_sriov or (r.config is not None and r.config.sriov is not None):
            index = {n: i for n in host.listdir(r.dev) if (i := sysfs.virtfn_index(n)) is not None}
            _, links = host.read_dir_attrs(r.dev, (), tuple(index))
            vfs = []
            for n in sorted(links, key=index.__getitem__):
                va = PciAddress.try_parse(link_name(links[n]) or "")
                if va is not None:
                    vfs.append(va)
                    vf_index[va] = (addr, index[n])
            pf_vfs[addr] = tuple(vfs)
            r.netdevs, r.representors = split_representors(host, f"{r.dev}/{sysfs.NET}", r.netdevs)
    for r in raw.values():
        if r.physfn is not None and r.physfn in raw:
            r.parent = raw[r.physfn].parent

    groups: dict[int, list[PciAddress]] = {}
    for addr, r in raw.items():
        if r.group is not None:
            groups.setdefault(r.group, []).append(addr)
    group_objs = {n: IommuGroup(n, tuple(sorted(m))) for n, m in sorted(groups.items())}

    views = _netlink_views(host, raw, pf_vfs, stats) if netlink else {}
    reps_by_vf = {a: {x.vf: x for x in r.representors} for a, r in raw.items() if r.representors}
    names = _escaped_names() if host.confined else str
    modules: dict[str, str | None] = {}
    devices: dict[PciAddress, PciDevice] = {}
    for addr in sorted(raw):
        r = raw[addr]
        if r.driver is not None and r.driver not in modules:
            modules[r.driver] = host.link_name(sysfs.driver_file(r.driver, sysfs.MODULE))
        pf = vf_index.get(addr)
        rep = reps_by_vf.get(pf[0], {}).get(pf[1]) if pf else None
        devices[addr] = PciDevice(
            address=addr, vendor_id=r.vendor, device_id=r.device, subsystem_vendor_id=r.subsystem[0],
            subsystem_id=r.subsystem[1], class_code=r.cls, revision=r.revision,
            vendor_name=names(ids.vendor_str(r.vendor)),
            device_name=names(ids.device(r.vendor, r.device) or f"Device {r.device:04x}"),
            class_name=names(ids.class_str(r.cls)), driver=r.driver, module=modules.get(r.driver) if r.driver else None,
            driver_override=r.override, numa_node=r.numa, iommu_group=r.group, parent=r.parent,
            netdevs=r.netdevs, config=r.config, is_bridge=r.cls >> 8 == 0x0604,
            sriov=_sriov_info(host, r.dev, r.config, r.has_sriov) if addr in pf_vfs else None,
            physfn=pf[0] if pf else r.physfn, vf_index=pf[1] if pf else None, vfs=pf_vfs.get(addr, ()),
            assignability=_assignability(addr, r, raw, group_objs), netlink=views.get(addr),
            representors=r.representors, representor=rep,
        )
    notes = [ids_note] if ids_note else []
    if not config_readable:
        notes.append("config space beyond the 64-byte header is readable by root only: "
                     "SR-IOV/ACS/ARI capabilities not decoded (run as root)")
    known = {n.name for r in raw.values() for n in r.netdevs} | {p.name for r in raw.values() for p in r.representors}
    net_pfs = read_net_pfs(host, known, functools.partial(_read_netdev, host), netlink, stats)
    return Inventory(host.label, devices, group_objs, bool(host.listdir(sysfs.IOMMU_GROUPS)),
                     config_readable, tuple(notes), net_pfs)


def _escaped_names() -> Callable[[str], str]:
    """Names recorded on another machine, escaped once each (a snapshot may carry any bytes)."""
    return functools.lru_cache(maxsize=4096)(sanitize_line)


def _assignability(addr: PciAddress, r: _Raw, raw: dict[PciAddress, _Raw],
                   groups: dict[int, IommuGroup]) -> Assignability:
    """The one rule: a device can go to a VM only if every other member of its IOMMU group is a PCI
    bridge/port or is bound to vfio-pci, pci-stub or no driver."""
    if r.cls >> 8 == 0x0604:
        return Assignability(False, "a PCI bridge/port is not assigned to VMs")
    if r.group is None:
        return Assignability(False, "no IOMMU group (the IOMMU is off or missing)")
    blockers = []
    members = groups[r.group].members
    for m in members:
        o = raw.get(m)
        if m == addr or o is None or o.cls >> 8 == 0x0604 or o.driver is None or is_vm_safe(o.driver):
            continue
        role = " (its PF)" if r.physfn == m else ""
        blockers.append(f"{m}{role} driven by {o.driver}")
    if blockers:
        return Assignability(False, f"shares IOMMU group {r.group} with " + ", ".join(blockers))
    if len(members) == 1:
        return Assignability(True, f"alone in IOMMU group {r.group}")
    return Assignability(True, f"IOMMU group {r.group}: the other members are bridges or not driven by the host")


def _sriov_info(host: Host, dev: str, cfg: ConfigSpace | None, has_sysfs: bool) -> SriovInfo:
    cap = cfg.sriov if cfg else None
    if not has_sysfs:
        return SriovInfo(None, None, None, None, None, None, SriovState.NO_DRIVER_SUPPORT, cap)
    numvfs = host.read_int(f"{dev}/{sysfs.SRIOV_NUMVFS}")
    vfd = _hex(host, f"{dev}/{sysfs.SRIOV_VF_DEVICE}")
    ap = host.read_int(f"{dev}/{sysfs.SRIOV_DRIVERS_AUTOPROBE}")
    if cfg is None or (cfg.size <= 64 and cap is None):
        state = SriovState.UNKNOWN if numvfs is None else (SriovState.ENABLED if numvfs else SriovState.DISABLED)
    else:
        state = SriovState.ENABLED if numvfs else SriovState.DISABLED
    return SriovInfo(host.read_int(f"{dev}/{sysfs.SRIOV_TOTALVFS}"), numvfs, host.read_int(f"{dev}/{sysfs.SRIOV_OFFSET}"),
                     host.read_int(f"{dev}/{sysfs.SRIOV_STRIDE}"), vfd, None if ap is None else bool(ap), state, cap)


def netdev_index(inv: Inventory) -> dict[str, PciAddress]:
    return {n.name: d.address for d in inv.devices.values() for n in d.netdevs}


__all__ = ["netdev_index", "read_inventory"]
