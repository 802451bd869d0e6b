"""Host → Inventory: the only reader of "what is" on a host.

Reads sysfs (PCI devices, drivers, IOMMU groups, netdevs) and the config space of PFs and bridges.
Written for thousands of VFs: one pass over sys/bus/pci/devices, plain file reads, no realpath.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

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


def _override(v: dict[str, bytes]) -> str | None:
    """driver_override as set: the kernel shows "(null)" when none is."""
    override = _str(v.get(sysfs.DRIVER_OVERRIDE))
    return None if override in (None, "(null)", "") else override


def group_number(link: str | None) -> int | None:
    """The IOMMU group an iommu_group link names (…/kernel/iommu_groups/N)."""
    group = link_name(link)
    return int(group) if group and group.isdigit() else None


def _read_device(host: Host, name: str) -> _Raw:
    dev = sysfs.device(name)
    v, lk, nets = host.read_dir_tree(dev, sysfs.DEVICE_FILES, sysfs.DEVICE_LINKS, sysfs.NET, sysfs.NETDEV_FILES)
    identity = _uevent_identity(v.get(sysfs.UEVENT))
    if identity is None:  # no uevent, or one without the PCI keys (an older snapshot, a hand-made tree)
        files, links = host.read_dir_attrs(dev, sysfs.IDENTITY_FILES, (sysfs.DRIVER,))
        identity = (_int(files.get(sysfs.VENDOR), 16) or 0, _int(files.get(sysfs.DEVICE), 16) or 0,
                    _int(files.get(sysfs.CLASS), 16) or 0,
                    (_int(files.get(sysfs.SUBSYSTEM_VENDOR), 16), _int(files.get(sysfs.SUBSYSTEM_DEVICE), 16)),
                    link_name(links.get(sysfs.DRIVER)))
    numa = _int(v.get(sysfs.NUMA_NODE))
    physfn = link_name(lk.get(sysfs.PHYSFN))
    return _Raw(
        dev=dev, vendor=identity[0], device=identity[1], cls=identity[2], revision=_int(v.get(sysfs.REVISION), 16) or 0,
        subsystem=identity[3], driver=identity[4], override=_override(v),
        numa=None if numa is None or numa < 0 else numa, group=group_number(lk.get(sysfs.IOMMU_GROUP)),
        physfn=PciAddress.try_parse(physfn) if physfn else None, has_sriov=False, config=None,
        netdevs=_netdevs(nets),
    )


_Identity = tuple[int, int, int, tuple[int | None, int | None], str | None]


def _uevent_identity(raw: bytes | None) -> _Identity | None:
    """(vendor, device, class, (subsystem vendor, subsystem), driver) from a device's uevent; None unless it has
    all three PCI keys, each well formed (a hostile tree's values are refused here, not guessed at)."""
    if not raw:
        return None
    m = _UEVENT.match(raw)  # the kernel's order and spelling: one match; any other layout by its lines
    if m is not None:
        driver, cls, vendor, device, sub_vendor, sub_device = m.groups()
    else:
        keys: dict[bytes, bytes] = {}
        for line in raw.split(b"\n"):
            key, _, value = line.partition(b"=")
            keys[key] = value
        if not all(k in keys for k in (sysfs.UEVENT_CLASS, sysfs.UEVENT_ID, sysfs.UEVENT_SUBSYS_ID)):
            return None
        driver, cls = keys.get(sysfs.UEVENT_DRIVER), keys[sysfs.UEVENT_CLASS]
        (vendor, _, device), (sub_vendor, _, sub_device) = (keys[k].partition(b":") for k in (
            sysfs.UEVENT_ID, sysfs.UEVENT_SUBSYS_ID))
        if not all(_HEX.fullmatch(x) for x in (cls, vendor, device, sub_vendor, sub_device)):
            return None
    ids = int(vendor, 16), int(device, 16), int(cls, 16), (int(sub_vendor, 16), int(sub_device, 16))
    if max(ids[0], ids[1], *ids[3]) > 0xFFFF or ids[2] > 0xFFFFFF:
        return None
    name = driver.decode("utf-8", "replace") if driver is not None else None
    return ids[0], ids[1], ids[2], ids[3], name if is_plain_name(name) else None


# pci_uevent()'s lines after dev_uevent()'s DRIVER= (drivers/pci/pci-driver.c, drivers/base/core.c)
_UEVENT = re.compile(rb"(?:DRIVER=([^\n]*)\n)?PCI_CLASS=([0-9A-Fa-f]{1,6})\nPCI_ID=([0-9A-Fa-f]{1,4}):([0-9A-Fa-f]{1,4})\n"
                     rb"PCI_SUBSYS_ID=([0-9A-Fa-f]{1,4}):([0-9A-Fa-f]{1,4})\n")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,6}")


def read_netdev(host: Host, netdir: str, name: str) -> NetDev:
    return _netdev(name, host.read_dir_attrs(f"{netdir}/{name}", sysfs.NETDEV_FILES)[0])


def _netlink_views(host: Host, raw: dict[PciAddress, _Raw], pf_vfs: dict[PciAddress, tuple[PciAddress, ...]],
                   stats: bool = False) -> dict[PciAddress, VfNetlink]:
    """Each VF's netlink view, from one RTM_GETLINK per PF (absent where it cannot be read)."""
    out: dict[PciAddress, VfNetlink] = {}
    for pf, vfs in pf_vfs.items():
        own = raw[pf].netdevs  # the PF's own: in switchdev mode its net/ lists its VFs' representors too
        if not vfs or not own:
            continue
        view, _ = vf_view(host, own[0].name, stats, raw[pf].driver)
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


def _complete_pf(host: Host, addr: PciAddress, r: _Raw, vf_index: dict[PciAddress, tuple[PciAddress, int]],
                 pf_vfs: dict[PciAddress, tuple[PciAddress, ...]]) -> bool:
    """A function that is not a VF: its parent, its config space; when it is an SR-IOV PF, its VFs (virtfnN
    links, in N order) and its representors. False when its config space is no more than the header."""
    r.parent = _parent(host.readlink(r.dev))
    r.has_sriov = host.exists(f"{r.dev}/{sysfs.SRIOV_TOTALVFS}")
    data = host.read_bytes(f"{r.dev}/{sysfs.CONFIG}", 4096)
    readable = True
    if data is not None and len(data) >= 64:
        r.config = decode(data, what=f"{addr} config")
        readable = r.config.size > 64
    if r.has_sriov or (r.config is not None and r.config.sriov is not None):
        vfs = read_virtfns(host, r.dev)
        vf_index.update((va, (addr, i)) for i, va in vfs)
        pf_vfs[addr] = tuple(va for _, va in vfs)
        r.netdevs, r.representors = split_representors(host, f"{r.dev}/{sysfs.NET}", r.netdevs)
    return readable


def read_virtfns(host: Host, dev: str) -> list[tuple[int, PciAddress]]:
    """A PF's VFs from its virtfnN links: (N, address), in N order; a link naming no PCI address is left out."""
    index = {n: i for n in host.listdir(dev) if (i := sysfs.virtfn_index(n)) is not None}
    _, links = host.read_dir_attrs(dev, (), tuple(index))
    out = []
    for n in sorted(links, key=index.__getitem__):
        va = PciAddress.try_parse(link_name(links[n]) or "")
        if va is not None:
            out.append((index[n], va))
    return out


@dataclass(slots=True)
class _Names:
    """What names a device: the pci.ids (loaded on first use), its driver's module (one readlink per driver)."""

    host: Host
    ids: PciIds | None = None
    ids_note: str | None = None
    modules: dict[str, str | None] = field(default_factory=dict)  # driver → its module

    def load(self) -> PciIds:
        if self.ids is None:
            self.ids, self.ids_note = host_ids(self.host)
        return self.ids

    def module(self, driver: str | None) -> str | None:
        if driver is None:
            return None
        if driver not in self.modules:
            self.modules[driver] = self.host.link_name(sysfs.driver_file(driver, sysfs.MODULE))
        return self.modules[driver]


def _device(host: Host, addr: PciAddress, r: _Raw, names: _Names, escape: Callable[[str], str],
            assignability: Assignability, vf_index: dict[PciAddress, tuple[PciAddress, int]],
            pf_vfs: dict[PciAddress, tuple[PciAddress, ...]], views: dict[PciAddress, VfNetlink],
            reps_by_vf: dict[PciAddress, dict[int, Representor]], like: PciDevice | None = None) -> PciDevice:
    """The model of one device from what was read. ``like``: the same function as read before (a VF whose
    identity the scoped re-read kept): its names are kept too, no pci.ids lookup."""
    pf = vf_index.get(addr)
    rep = reps_by_vf.get(pf[0], {}).get(pf[1]) if pf else None
    if like is not None:
        vendor_name, device_name, class_name = like.vendor_name, like.device_name, like.class_name
    else:
        ids = names.load()
        vendor_name = escape(ids.vendor_str(r.vendor))
        device_name = escape(ids.device(r.vendor, r.device) or f"Device {r.device:04x}")
        class_name = escape(ids.class_str(r.cls))
    return PciDevice(
        address=addr, vendor_id=r.vendor, device_id=r.device, subsystem_vendor_id=r.subsystem[0],
        subsystem_id=r.subsystem[1], class_code=r.cls, revision=r.revision,
        vendor_name=vendor_name, device_name=device_name, class_name=class_name, driver=r.driver,
        module=names.module(r.driver), driver_override=r.override, numa_node=r.numa, iommu_group=r.group,
        parent=r.parent, netdevs=r.netdevs, config=r.config, is_bridge=r.cls >> 8 == 0x0604,
        sriov=_sriov_info(host, r.dev, r.config, r.has_sriov) if addr in pf_vfs else None,
        physfn=pf[0] if pf else r.physfn, vf_index=pf[1] if pf else None, vfs=pf_vfs.get(addr, ()),
        assignability=assignability, netlink=views.get(addr), representors=r.representors, representor=rep,
    )


def read_inventory(host: Host, ids: PciIds | None = None, netlink: bool = True, stats: bool = False) -> Inventory:
    """Everything on the host. ``netlink``: each VF's netlink view (one RTM_GETLINK per PF); ``stats``: with
    the per-VF traffic counters where the kernel reports them (costlier: off for listings)."""
    names = _Names(host, ids)
    names.load()
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
        config_readable = _complete_pf(host, addr, r, vf_index, pf_vfs) and config_readable
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
    escape = _escaped_names() if host.confined else str
    facts = _facts(raw)
    devices = {addr: _device(host, addr, raw[addr], names, escape, _assignability(addr, raw[addr], facts, group_objs),
                             vf_index, pf_vfs, views, reps_by_vf) for addr in sorted(raw)}
    notes = [names.ids_note] if names.ids_note else []
    if not config_readable:
        notes.append(CONFIG_NOTE)
    known = {n.name for r in raw.values() for n in r.netdevs} | {p.name for r in raw.values() for p in r.representors}
    net_pfs = read_net_pfs(host, known, functools.partial(read_netdev, host), netlink, stats)
    return Inventory(host.label, devices, group_objs, bool(host.listdir(sysfs.IOMMU_GROUPS)),
                     config_readable, tuple(notes), net_pfs)


CONFIG_NOTE = ("config space beyond the 64-byte header is readable by root only: "
               "SR-IOV/ACS/ARI capabilities not decoded (run as root)")


def _facts(raw: dict[PciAddress, _Raw]) -> Callable[[PciAddress], tuple[int, str | None] | None]:
    """(class, driver) of a device, for the assignability rule."""
    def get(a: PciAddress) -> tuple[int, str | None] | None:
        r = raw.get(a)
        return None if r is None else (r.cls, r.driver)
    return get


def _read_vf_state(host: Host, va: PciAddress, like: PciDevice, pf: PciAddress) -> _Raw:
    """What can change on a VF that still exists under the same PF at the same address: its driver, its
    driver_override, its IOMMU group, its netdevs — one directory walk, 3 reads. Its identity is its PF's
    (pci_iov_add_virtfn(): vendor from the PF, device from the PF's SR-IOV capability, the same bus and NUMA
    node; class, revision and subsystem are the hardware's): kept from the earlier read."""
    dev = sysfs.device(str(va))
    v, lk, nets = host.read_dir_tree(dev, (sysfs.DRIVER_OVERRIDE,), (sysfs.DRIVER, sysfs.IOMMU_GROUP), sysfs.NET,
                                     sysfs.NETDEV_FILES)
    return _Raw(dev=dev, vendor=like.vendor_id, device=like.device_id, cls=like.class_code, revision=like.revision,
                subsystem=(like.subsystem_vendor_id, like.subsystem_id), driver=link_name(lk.get(sysfs.DRIVER)),
                override=_override(v), numa=like.numa_node, group=group_number(lk.get(sysfs.IOMMU_GROUP)), physfn=pf,
                has_sriov=False, config=None, netdevs=_netdevs(nets))


def _order(a: PciAddress) -> tuple[int, int, int, int]:
    return a.domain, a.bus, a.slot, a.function


def reread_pfs(host: Host, inv: Inventory, pfs: list[PciAddress], stats: bool = False) -> Inventory | None:
    """``inv`` with these PCI PFs read again (what a writer holding their locks needs after another sriovctl
    wrote): each PF, its VFs as they are now (a VF still at its address keeps its identity: only its driver,
    override, group and netdevs are read), the driver of every other member of their IOMMU groups (the
    assignability rule), and one RTM_GETLINK per PF. Nothing else on the host is read. None when a PF is gone
    or is no longer one: the caller reads the whole host."""
    names = _Names(host, modules={d.driver: d.module for d in inv.devices.values() if d.driver is not None})
    raw: dict[PciAddress, _Raw] = {}
    like: dict[PciAddress, PciDevice] = {}
    vf_index: dict[PciAddress, tuple[PciAddress, int]] = {}
    pf_vfs: dict[PciAddress, tuple[PciAddress, ...]] = {}
    for pf in pfs:
        old = inv.devices.get(pf)
        if old is None or not old.is_pf:
            return None
        r = _read_device(host, str(pf))
        if not r.vendor or r.physfn is not None:
            return None
        _complete_pf(host, pf, r, vf_index, pf_vfs)
        if pf not in pf_vfs:
            return None
        raw[pf] = r
        for va in pf_vfs[pf]:
            prev = inv.devices.get(va)
            if prev is not None and prev.physfn == pf:
                raw[va], like[va] = _read_vf_state(host, va, prev, pf), prev
            else:  # a new VF (the count changed): read whole
                raw[va] = _read_device(host, str(va))
            raw[va].parent = r.parent
    gone = {a for pf in pfs for a in inv.devices[pf].vfs} - raw.keys()
    # the groups the re-read devices were or are in: made again; every other group is kept as it was
    touched: set[int] = {g for a in (*raw, *gone) if (d := inv.devices.get(a)) is not None and
                         (g := d.iommu_group) is not None}
    touched |= {r.group for r in raw.values() if r.group is not None}
    members: dict[int, set[PciAddress]] = {n: {m for m in inv.groups[n].members if m not in raw and m not in gone}
                                           if n in inv.groups else set() for n in touched}
    for a, r in raw.items():
        if r.group is not None:
            members[r.group].add(a)
    group_objs = dict(inv.groups)
    for n, m in members.items():
        if m:
            group_objs[n] = IommuGroup(n, tuple(sorted(m, key=_order)))
        else:
            group_objs.pop(n, None)
    if any(n not in inv.groups for n in members):
        group_objs = dict(sorted(group_objs.items()))
    drivers: dict[PciAddress, str | None] = {}  # the other members of those groups: their driver now
    for m in members.values():
        for a in m:
            if a not in raw:
                drivers[a] = host.link_name(sysfs.device_attr(a, sysfs.DRIVER))

    def facts(a: PciAddress) -> tuple[int, str | None] | None:
        if a in raw:
            return raw[a].cls, raw[a].driver
        d = inv.devices.get(a)
        return None if d is None or a in gone else (d.class_code, drivers.get(a, d.driver))

    views = _netlink_views(host, raw, pf_vfs, stats)
    reps_by_vf = {a: {x.vf: x for x in r.representors} for a, r in raw.items() if r.representors}
    escape = _escaped_names() if host.confined else str
    devices = dict(inv.devices)  # a copy keeps the address order without hashing every address again
    for a in gone:
        del devices[a]
    for a, r in raw.items():
        devices[a] = _device(host, a, r, names, escape, _assignability(a, r, facts, group_objs), vf_index, pf_vfs,
                             views, reps_by_vf, like.get(a))
    for a, drv in drivers.items():  # the other members of the touched groups: their driver and verdict now
        d = devices[a]
        r = _Raw(dev="", vendor=d.vendor_id, device=d.device_id, cls=d.class_code, revision=d.revision,
                 subsystem=(None, None), driver=drv, override=None, numa=None, group=d.iommu_group,
                 physfn=d.physfn, has_sriov=False, config=None)
        devices[a] = replace(d, driver=drv, module=names.module(drv), assignability=_assignability(a, r, facts,
                                                                                                   group_objs))
    if gone or len(devices) != len(inv.devices) or any(a not in inv.devices for a in raw):
        devices = dict(sorted(devices.items(), key=lambda kv: _order(kv[0])))  # the VFs changed: address order
    return Inventory(inv.host, devices, group_objs, inv.iommu_groups_present, inv.config_readable, inv.notes,
                     inv.net_pfs)


def _escaped_names() -> Callable[[str], str]:
    """Names recorded on another machine, escaped once each (a snapshot may carry any bytes)."""
    return functools.lru_cache(maxsize=4096)(sanitize_line)


def _assignability(addr: PciAddress, r: _Raw, facts: Callable[[PciAddress], tuple[int, str | None] | None],
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
        o = facts(m)
        if m == addr or o is None or o[0] >> 8 == 0x0604 or o[1] is None or is_vm_safe(o[1]):
            continue
        role = " (its PF)" if r.physfn == m else ""
        blockers.append(f"{m}{role} driven by {o[1]}")
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


__all__ = ["group_number", "netdev_index", "read_inventory", "read_netdev", "read_virtfns", "reread_pfs"]
