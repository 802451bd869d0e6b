"""Stable JSON documents for every --json output: built as the types in cli/documents.py (mypy checks each
field), from which cli/schemagen.py writes sriovctl/schemas/. Changes additive only."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from sriovctl.attrs import VF_ATTRS
from sriovctl.cli.documents import (
    SCHEMA_VERSION,
    AcsFlagsDoc,
    ConfigDoc,
    DeviceDoc,
    NetDevDoc,
    NetPfDoc,
    NetVfDoc,
    PfDoc,
    RepresentorDoc,
    SriovCapDoc,
    StatusDocument,
    VfDoc,
    VfNetlinkDoc,
)
from sriovctl.model import (
    AcsFlags,
    ConfigSpace,
    Inventory,
    NetDev,
    NetPf,
    PciDevice,
    Representor,
    SriovCap,
    VfNetlink,
)


def _h(v: int | None, width: int) -> str | None:
    return None if v is None else f"{v:0{width}x}"


def sriov_cap_json(c: SriovCap | None) -> SriovCapDoc | None:
    if c is None:
        return None
    d: dict[str, Any] = dataclasses.asdict(c)  # every field of the dataclass (test_schemas holds the type to it)
    d["offset"] = f"{c.offset:03x}"
    d["vf_device_id"] = f"{c.vf_device_id:04x}"
    d["vf_bars"] = [{"index": b.index, "address": f"{b.address:016x}", "is_64bit": b.is_64bit,
                     "prefetchable": b.prefetchable} for b in c.vf_bars]
    return cast(SriovCapDoc, d)


def _acs_flags(f: AcsFlags) -> AcsFlagsDoc:
    return cast(AcsFlagsDoc, dataclasses.asdict(f))


def config_json(c: ConfigSpace | None) -> ConfigDoc | None:
    if c is None:
        return None
    doc: ConfigDoc = {
        "size": c.size, "coverage": cast(Any, c.coverage), "vendor_id": _h(c.vendor_id, 4), "device_id": _h(c.device_id, 4),
        "command": _h(c.command, 4), "status": _h(c.status, 4), "revision": _h(c.revision, 2),
        "class": _h(c.class_code, 6), "header_type": c.header_type, "multifunction": c.multifunction,
        "subsystem_vendor_id": _h(c.subsystem_vendor_id, 4), "subsystem_id": _h(c.subsystem_id, 4),
        "primary_bus": c.primary_bus, "secondary_bus": c.secondary_bus, "subordinate_bus": c.subordinate_bus,
        "capabilities": [{"offset": f"{x.offset:02x}", "id": f"{x.id:02x}", "name": x.name} for x in c.capabilities],
        "extended_capabilities": [{"offset": f"{x.offset:03x}", "id": f"{x.id:04x}", "version": x.version,
                                   "name": x.name} for x in c.ext_capabilities],
        "pcie": None if c.pcie is None else {"offset": f"{c.pcie.offset:02x}", "version": c.pcie.version,
                                             "port_type": c.pcie.port_type_name},
        "sriov": sriov_cap_json(c.sriov),
        "acs": None if c.acs is None else {"offset": f"{c.acs.offset:03x}", "capability": _acs_flags(c.acs.capability),
                                           "control": _acs_flags(c.acs.control),
                                           "egress_control_vector_size": c.acs.egress_control_vector_size},
        "ari": None if c.ari is None else cast(Any, {k: (f"{v:03x}" if k == "offset" else v)
                                                     for k, v in dataclasses.asdict(c.ari).items()}),
        "problems": list(c.problems),
    }
    return doc


def netlink_json(v: VfNetlink) -> VfNetlinkDoc:
    doc = {a.key: getattr(v, a.key) for a in VF_ATTRS}  # attrs.VF_ATTRS: the one list of VF attributes
    return cast(VfNetlinkDoc, {**{k: doc[k] for k in VfNetlinkDoc.__annotations__ if k in doc}, "stats": v.stats})


def netdev_json(n: NetDev) -> NetDevDoc:
    return {"name": n.name, "mac": n.mac, "operstate": n.operstate, "mtu": n.mtu, "ifindex": n.ifindex}


def device_json(inv: Inventory, d: PciDevice) -> PfDoc | VfDoc | DeviceDoc:
    a = d.assignability
    grp = inv.groups.get(d.iommu_group) if d.iommu_group is not None else None
    out: DeviceDoc = {
        "address": str(d.address), "role": "pf" if d.is_pf else "vf" if d.is_vf else "device",
        "vendor_id": f"{d.vendor_id:04x}", "device_id": f"{d.device_id:04x}",
        "subsystem_vendor_id": _h(d.subsystem_vendor_id, 4), "subsystem_id": _h(d.subsystem_id, 4),
        "class": f"{d.class_code:06x}", "revision": f"{d.revision:02x}", "vendor_name": d.vendor_name,
        "device_name": d.device_name, "class_name": d.class_name, "driver": d.driver, "module": d.module,
        "driver_override": d.driver_override, "numa_node": d.numa_node,
        "iommu_group": None if grp is None else {"number": grp.number, "members": [str(m) for m in grp.members]},
        "parent": None if d.parent is None else str(d.parent), "nodedev": d.address.nodedev_name,
        "netdevs": [netdev_json(n) for n in d.netdevs],
        "assignable": a.assignable if a else False, "assignable_reason": a.reason if a else None,
    }
    if d.is_pf and d.sriov is not None:
        s = d.sriov
        vfs = inv.vfs_of(d)
        # mypy wants NotRequired keys spelled out beside a ** expansion; "representors" is added below
        pf = PfDoc(**out, sriov={  # type: ignore[typeddict-item]
            "state": cast(Any, s.state.value), "totalvfs": s.totalvfs, "numvfs": s.numvfs, "offset": s.offset,
            "stride": s.stride, "vf_device": _h(s.vf_device, 4), "drivers_autoprobe": s.drivers_autoprobe,
            "capability": sriov_cap_json(s.capability)},
            vfs=[str(v) for v in d.vfs],
            assignable_vfs=sum(1 for v in vfs if v.assignability and v.assignability.assignable))
        if d.representors:
            pf["representors"] = [representor_json(r) for r in d.representors]
        return pf
    if d.is_vf:
        owner = inv.devices.get(d.physfn) if d.physfn is not None else None
        vf = VfDoc(**out, pf=str(d.physfn), vf_index=d.vf_index or 0,  # type: ignore[typeddict-item]
                   netlink=None if d.netlink is None else netlink_json(d.netlink))
        if owner is not None and owner.representors:
            vf["representor"] = None if d.representor is None else d.representor.name
        return vf
    return out


def status_json(inv: Inventory) -> StatusDocument:
    doc: StatusDocument = {
        "schema_version": SCHEMA_VERSION, "host": inv.host, "iommu_groups_present": inv.iommu_groups_present,
        "config_readable": inv.config_readable, "notes": list(inv.notes),
        "pfs": [cast(PfDoc, device_json(inv, d)) for d in inv.pfs],
        "vfs": [cast(VfDoc, device_json(inv, d)) for d in inv.vfs]}
    if inv.net_pfs:
        doc["net_pfs"] = [net_pf_json(p) for p in inv.net_pfs.values()]
    return doc


def representor_json(r: Representor) -> RepresentorDoc:
    return {"name": r.name, "pf_number": r.pf_number, "vf": r.vf, "switch_id": r.switch_id, "ifindex": r.ifindex}


def net_vf_json(pf: NetPf, v: VfNetlink, reps: dict[int, Representor] | None = None) -> NetVfDoc:
    """``reps``: the PF's representors by VF (NetPf.by_vf), built once when walking all its VFs."""
    rep = (pf.by_vf() if reps is None else reps).get(v.vf)
    return {"role": "net-vf", "pf": pf.name, "vf_index": v.vf, "netlink": netlink_json(v),
            "representor": None if rep is None else rep.name}


def net_pf_json(pf: NetPf) -> NetPfDoc:
    reps = pf.by_vf()
    return {"role": "net-pf", "name": pf.name, "bus": pf.bus, "device": pf.device, "devlink": pf.devlink,
            "driver": pf.driver,
            "netdev": netdev_json(pf.netdev),
            "numvfs": pf.numvfs, "num_vf": pf.num_vf, "port_name": pf.port_name, "switch_id": pf.switch_id,
            "vfs": [net_vf_json(pf, v, reps) for v in pf.vfs],
            "representors": [representor_json(r) for r in pf.representors]}
