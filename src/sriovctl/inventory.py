"""Host → Inventory: the only reader of "what is" on a host.

Reads sysfs (PCI devices, drivers, IOMMU groups, netdevs) and the config space of PFs and bridges.
Written for thousands of VFs: one pass over sys/bus/pci/devices, plain file reads, no realpath.
"""

from __future__ import annotations

from sriovctl.host.base import Host
from sriovctl.model import (
    VM_SAFE_DRIVERS,
    Assignability,
    Inventory,
    IommuGroup,
    NetDev,
    PciDevice,
    SriovInfo,
    SriovState,
)
from sriovctl.pci.address import PciAddress
from sriovctl.pci.config import ConfigSpace, decode
from sriovctl.pci.ids import PciIds, system_ids

DEVICES = "sys/bus/pci/devices"


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
    return None if raw is None else raw.decode("utf-8", "replace").strip()


_DEV_FILES = ("vendor", "device", "class", "revision", "subsystem_vendor", "subsystem_device", "driver_override",
              "numa_node", "sriov_totalvfs")
_DEV_LINKS = ("driver", "physfn", "iommu_group")
_NET_FILES = ("address", "operstate", "mtu", "ifindex")


def _netdevs(host: Host, dev: str) -> tuple[NetDev, ...]:
    out = []
    for name in host.listdir(f"{dev}/net"):
        v, _ = host.read_dir_attrs(f"{dev}/net/{name}", _NET_FILES)
        out.append(NetDev(name, _str(v.get("address")), _str(v.get("operstate")), _int(v.get("mtu")),
                          _int(v.get("ifindex"))))
    return tuple(out)


def _parent(link: str | None) -> PciAddress | None:
    if not link:
        return None
    parts = link.rstrip("/").split("/")
    return PciAddress.try_parse(parts[-2]) if len(parts) >= 2 else None


def read_inventory(host: Host, ids: PciIds | None = None) -> Inventory:
    ids = ids or system_ids()
    names = host.listdir(DEVICES)
    module_of_driver: dict[str, str | None] = {}
    raw: dict[PciAddress, dict[str, object]] = {}
    config_readable = True
    for name in names:
        addr = PciAddress.try_parse(name)
        if addr is None:
            continue
        dev = f"{DEVICES}/{name}"
        v, lk = host.read_dir_attrs(dev, _DEV_FILES, _DEV_LINKS)
        vendor = _int(v.get("vendor"), 16) or 0
        device = _int(v.get("device"), 16) or 0
        cls = _int(v.get("class"), 16) or 0
        driver = lk["driver"].rsplit("/", 1)[-1] if "driver" in lk else None
        if driver is not None and driver not in module_of_driver:
            module_of_driver[driver] = host.link_name(f"sys/bus/pci/drivers/{driver}/module")
        physfn = lk["physfn"].rsplit("/", 1)[-1] if "physfn" in lk else None
        has_sriov = "sriov_totalvfs" in v
        is_bridge = cls >> 8 == 0x0604
        config: ConfigSpace | None = None
        if physfn is None:
            data = host.read_bytes(f"{dev}/config", 4096)
            if data is not None and len(data) >= 64:
                config = decode(data, what=f"{addr} config")
                if config.size <= 64:
                    config_readable = False
        override = _str(v.get("driver_override"))
        group = lk["iommu_group"].rsplit("/", 1)[-1] if "iommu_group" in lk else None
        numa = _int(v.get("numa_node"))
        raw[addr] = dict(
            vendor=vendor, device=device, cls=cls, driver=driver, physfn=physfn, has_sriov=has_sriov,
            is_bridge=is_bridge, config=config, override=None if override in (None, "(null)", "") else override,
            group=int(group) if group and group.isdigit() else None, numa=None if numa is None or numa < 0 else numa,
            parent=_parent(host.readlink(f"{DEVICES}/{name}")), dev=dev,
            sub=(_int(v.get("subsystem_vendor"), 16), _int(v.get("subsystem_device"), 16)),
            rev=_int(v.get("revision"), 16) or 0,
        )

    # PF ↔ VF links
    vf_index: dict[PciAddress, tuple[PciAddress, int]] = {}
    pf_vfs: dict[PciAddress, tuple[PciAddress, ...]] = {}
    for addr, r in raw.items():
        cfg = r["config"]
        if r["has_sriov"] or (isinstance(cfg, ConfigSpace) and cfg.sriov is not None):
            links = sorted((int(n[6:]), n) for n in host.listdir(str(r["dev"])) if n.startswith("virtfn")
                           and n[6:].isdigit())
            vfs = []
            for idx, n in links:
                va = PciAddress.try_parse(host.link_name(f"{r['dev']}/{n}") or "")
                if va is not None:
                    vfs.append(va)
                    vf_index[va] = (addr, idx)
            pf_vfs[addr] = tuple(vfs)

    groups: dict[int, list[PciAddress]] = {}
    for addr, r in raw.items():
        if r["group"] is not None:
            groups.setdefault(int(str(r["group"])), []).append(addr)
    group_objs = {n: IommuGroup(n, tuple(sorted(m))) for n, m in sorted(groups.items())}
    iommu_present = bool(host.listdir("sys/kernel/iommu_groups"))

    devices: dict[PciAddress, PciDevice] = {}
    for addr in sorted(raw):
        r = raw[addr]
        cfg = r["config"] if isinstance(r["config"], ConfigSpace) else None
        vendor, device, cls = int(str(r["vendor"])), int(str(r["device"])), int(str(r["cls"]))
        dev = str(r["dev"])
        sriov = None
        if addr in pf_vfs:
            sriov = _sriov_info(host, dev, cfg, bool(r["has_sriov"]))
        pf = vf_index.get(addr)
        driver = r["driver"] if isinstance(r["driver"], str) else None
        devices[addr] = PciDevice(
            address=addr, vendor_id=vendor, device_id=device,
            subsystem_vendor_id=r["sub"][0], subsystem_id=r["sub"][1],  # type: ignore[index]
            class_code=cls, revision=int(str(r["rev"])),
            vendor_name=ids.vendor_str(vendor), device_name=ids.device(vendor, device) or f"Device {device:04x}",
            class_name=ids.class_str(cls), driver=driver, module=module_of_driver.get(driver) if driver else None,
            driver_override=r["override"] if isinstance(r["override"], str) else None,
            numa_node=r["numa"] if isinstance(r["numa"], int) else None,
            iommu_group=r["group"] if isinstance(r["group"], int) else None,
            parent=r["parent"] if isinstance(r["parent"], PciAddress) else None,
            netdevs=_netdevs(host, dev), config=cfg, is_bridge=bool(r["is_bridge"]), sriov=sriov,
            physfn=pf[0] if pf else None, vf_index=pf[1] if pf else None, vfs=pf_vfs.get(addr, ()),
        )
    # VFs whose physfn link exists but whose PF did not list them (should not happen): link by physfn
    for addr, r in raw.items():
        if r["physfn"] and devices[addr].physfn is None:
            p = PciAddress.try_parse(str(r["physfn"]))
            devices[addr] = _replace(devices[addr], physfn=p)

    for addr, d in list(devices.items()):
        devices[addr] = _replace(d, assignability=assignability(d, devices, group_objs))
    notes = []
    if not config_readable:
        notes.append("config space beyond the 64-byte header is readable by root only: "
                     "SR-IOV/ACS/ARI capabilities not decoded (run as root)")
    return Inventory(host.label, devices, group_objs, iommu_present, config_readable, tuple(notes))


def _replace(d: PciDevice, **kw: object) -> PciDevice:
    from dataclasses import replace

    return replace(d, **kw)  # type: ignore[arg-type]


def _sriov_info(host: Host, dev: str, cfg: ConfigSpace | None, has_sysfs: bool) -> SriovInfo:
    cap = cfg.sriov if cfg else None
    if not has_sysfs:
        return SriovInfo(None, None, None, None, None, None, SriovState.NO_DRIVER_SUPPORT, cap)
    numvfs = host.read_int(f"{dev}/sriov_numvfs")
    vfd = _hex(host, f"{dev}/sriov_vf_device")
    ap = host.read_int(f"{dev}/sriov_drivers_autoprobe")
    if cfg is None or (cfg.size <= 64 and cap is None):
        state = SriovState.UNKNOWN if numvfs is None else (SriovState.ENABLED if numvfs else SriovState.DISABLED)
    else:
        state = SriovState.ENABLED if numvfs else SriovState.DISABLED
    return SriovInfo(host.read_int(f"{dev}/sriov_totalvfs"), numvfs, host.read_int(f"{dev}/sriov_offset"),
                     host.read_int(f"{dev}/sriov_stride"), vfd, None if ap is None else bool(ap), state, cap)


def assignability(d: PciDevice, devices: dict[PciAddress, PciDevice],
                  groups: dict[int, IommuGroup]) -> Assignability:
    """The one rule: a device can go to a VM only if every other member of its IOMMU group is a PCI
    bridge/port or is bound to vfio-pci, pci-stub or no driver."""
    if d.is_bridge:
        return Assignability(False, "a PCI bridge/port is not assigned to VMs")
    if d.iommu_group is None:
        return Assignability(False, "no IOMMU group (the IOMMU is off or missing)")
    blockers = []
    for m in groups[d.iommu_group].members:
        if m == d.address:
            continue
        o = devices[m]
        if o.is_bridge or o.driver is None or o.driver in VM_SAFE_DRIVERS:
            continue
        role = " (its PF)" if d.physfn == m else ""
        blockers.append(f"{m}{role} driven by {o.driver}")
    if blockers:
        return Assignability(False, f"shares IOMMU group {d.iommu_group} with " + ", ".join(blockers))
    if len(groups[d.iommu_group].members) == 1:
        return Assignability(True, f"alone in IOMMU group {d.iommu_group}")
    return Assignability(True, f"IOMMU group {d.iommu_group}: the other members are bridges or not driven by the host")


def netdev_index(inv: Inventory) -> dict[str, PciAddress]:
    return {n.name: d.address for d in inv.devices.values() for n in d.netdevs}


__all__ = ["assignability", "netdev_index", "read_inventory"]
