"""Stable JSON documents for every --json output (schemas in sriovctl/schemas/, changes additive only)."""

from __future__ import annotations

import dataclasses
from typing import Any

from sriovctl.model import AcsFlags, ConfigSpace, Inventory, PciDevice, SriovCap, VfNetlink

SCHEMA_VERSION = 1


def _h(v: int | None, width: int) -> str | None:
    return None if v is None else f"{v:0{width}x}"


def sriov_cap_json(c: SriovCap | None) -> dict[str, Any] | None:
    if c is None:
        return None
    d = dataclasses.asdict(c)
    d["offset"] = f"{c.offset:03x}"
    d["vf_device_id"] = f"{c.vf_device_id:04x}"
    d["vf_bars"] = [{"index": b.index, "address": f"{b.address:016x}", "is_64bit": b.is_64bit,
                     "prefetchable": b.prefetchable} for b in c.vf_bars]
    return d


def _acs_flags(f: AcsFlags) -> dict[str, bool]:
    return dataclasses.asdict(f)


def config_json(c: ConfigSpace | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "size": c.size, "coverage": c.coverage, "vendor_id": _h(c.vendor_id, 4), "device_id": _h(c.device_id, 4),
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
        "ari": None if c.ari is None else {k: (f"{v:03x}" if k == "offset" else v)
                                           for k, v in dataclasses.asdict(c.ari).items()},
        "problems": list(c.problems),
    }


def netlink_json(v: VfNetlink) -> dict[str, Any]:
    return {"mac": v.mac, "vlan": v.vlan, "qos": v.qos, "vlan_proto": v.vlan_proto, "spoofchk": v.spoofchk,
            "trust": v.trust, "link_state": v.link_state, "min_tx_rate": v.min_tx_rate, "max_tx_rate": v.max_tx_rate,
            "rss_query_en": v.rss_query_en, "stats": v.stats}


def device_json(inv: Inventory, d: PciDevice) -> dict[str, Any]:
    a = d.assignability
    grp = inv.groups.get(d.iommu_group) if d.iommu_group is not None else None
    out: dict[str, Any] = {
        "address": str(d.address), "role": "pf" if d.is_pf else "vf" if d.is_vf else "device",
        "vendor_id": _h(d.vendor_id, 4), "device_id": _h(d.device_id, 4),
        "subsystem_vendor_id": _h(d.subsystem_vendor_id, 4), "subsystem_id": _h(d.subsystem_id, 4),
        "class": _h(d.class_code, 6), "revision": _h(d.revision, 2), "vendor_name": d.vendor_name,
        "device_name": d.device_name, "class_name": d.class_name, "driver": d.driver, "module": d.module,
        "driver_override": d.driver_override, "numa_node": d.numa_node,
        "iommu_group": None if grp is None else {"number": grp.number, "members": [str(m) for m in grp.members]},
        "parent": None if d.parent is None else str(d.parent), "nodedev": d.address.nodedev_name,
        "netdevs": [{"name": n.name, "mac": n.mac, "operstate": n.operstate, "mtu": n.mtu, "ifindex": n.ifindex}
                    for n in d.netdevs],
        "assignable": a.assignable if a else False, "assignable_reason": a.reason if a else None,
    }
    if d.is_pf and d.sriov is not None:
        s = d.sriov
        vfs = inv.vfs_of(d)
        out["sriov"] = {"state": s.state.value, "totalvfs": s.totalvfs, "numvfs": s.numvfs, "offset": s.offset,
                        "stride": s.stride, "vf_device": _h(s.vf_device, 4), "drivers_autoprobe": s.drivers_autoprobe,
                        "capability": sriov_cap_json(s.capability)}
        out["vfs"] = [str(v) for v in d.vfs]
        out["assignable_vfs"] = sum(1 for v in vfs if v.assignability and v.assignability.assignable)
    if d.is_vf:
        out["pf"] = str(d.physfn)
        out["vf_index"] = d.vf_index
        out["netlink"] = None if d.netlink is None else netlink_json(d.netlink)
    return out


def status_json(inv: Inventory) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "host": inv.host, "iommu_groups_present": inv.iommu_groups_present,
            "config_readable": inv.config_readable, "notes": list(inv.notes),
            "pfs": [device_json(inv, d) for d in inv.pfs], "vfs": [device_json(inv, d) for d in inv.vfs]}
