"""Human rendering: tables and trees with rich (colour only on a terminal)."""

from __future__ import annotations

import os
from typing import Any

from sriovctl.model import (
    ACS_BITS,
    ACS_SHORT,
    ConfigSpace,
    Inventory,
    NetPf,
    PciAddress,
    PciDevice,
    VfNetlink,
)

_ACS_SHORT = ACS_SHORT


def _console(out: Any) -> Any:
    from rich.console import Console

    tty = hasattr(out, "isatty") and out.isatty()
    width = None if tty else int(os.environ.get("COLUMNS", "160"))
    return Console(file=out, width=width, highlight=False, soft_wrap=False,
                   no_color=not tty or "NO_COLOR" in os.environ, force_terminal=tty)


def lspci_line(d: PciDevice) -> str:
    rev = f" (rev {d.revision:02x})" if d.revision else ""
    return f"{d.address.short} {d.class_name}: {d.vendor_name} {d.device_name}{rev}"


def _netdev(d: PciDevice) -> str:
    return ",".join(n.name for n in d.netdevs) or "-"


def _group(d: PciDevice) -> str:
    return "-" if d.iommu_group is None else str(d.iommu_group)


def render_status(inv: Inventory, out: Any) -> None:
    from rich.table import Table

    c = _console(out)
    c.print(f"[bold]{inv.host}[/]: {len(inv.pfs)} SR-IOV PFs, {len(inv.vfs)} VFs, "
            f"IOMMU groups {'present' if inv.iommu_groups_present else '[red]absent[/]'}")
    for n in inv.notes:
        c.print(f"[yellow]note:[/] {n}")
    t = Table(title="Physical Functions", title_justify="left", box=None, header_style="bold")
    for col in ("PF", "netdev", "driver", "device", "VFs", "assignable", "SR-IOV", "NUMA", "group"):
        t.add_column(col)
    for pf in inv.pfs:
        s = pf.sriov
        assert s is not None
        vfs = inv.vfs_of(pf)
        ok = sum(1 for v in vfs if v.assignability and v.assignability.assignable)
        counts = f"{s.numvfs if s.numvfs is not None else '?'}/{s.totalvfs if s.totalvfs is not None else '?'}"
        t.add_row(str(pf.address), _netdev(pf), pf.driver or "-", pf.device_name, counts,
                  f"{ok}/{len(vfs)}" if vfs else "-", s.state.value,
                  "-" if pf.numa_node is None else str(pf.numa_node), _group(pf))
    c.print(t)
    if inv.vfs:
        v = Table(title="Virtual Functions", title_justify="left", box=None, header_style="bold")
        for col in ("VF", "PF#N", "netdev", "driver", "group", "assignable"):
            v.add_column(col)
        for vf in inv.vfs:
            owner = inv.devices.get(vf.physfn) if vf.physfn else None
            pfname = owner.netdevs[0].name if owner and owner.netdevs else str(vf.physfn)
            a = vf.assignability
            v.add_row(str(vf.address), f"{pfname}#{vf.vf_index}", _netdev(vf), vf.driver or "-", _group(vf),
                      ("[green]yes[/]" if a and a.assignable else f"[red]no[/]: {a.reason if a else '?'}"))
        c.print(v)
    if inv.net_pfs:
        render_net_status(inv, c)


def render_net_status(inv: Inventory, c: Any) -> None:
    """PFs not on PCI (netdevsim) and their VFs' netlink values."""
    from rich.table import Table

    t = Table(title="PFs not on PCI (netlink only)", title_justify="left", box=None, header_style="bold")
    for col in ("netdev", "device", "driver", "VFs", "read", "representors"):
        t.add_column(col)
    for pf in inv.net_pfs.values():
        t.add_row(pf.name, pf.devlink, pf.driver or "-", str(pf.numvfs if pf.numvfs is not None else "?"),
                  str(len(pf.vfs)), str(len(pf.representors)))
    c.print(t)
    v = Table(title="Their VFs", title_justify="left", box=None, header_style="bold")
    for col in ("PF#N", "mac", "vlan", "spoofchk", "trust", "link", "representor"):
        v.add_column(col)
    for pf in inv.net_pfs.values():
        reps = pf.by_vf()
        for x in pf.vfs:
            rep = reps.get(x.vf)
            v.add_row(f"{pf.name}#{x.vf}", x.mac or "-", f"{x.vlan} qos {x.qos} {x.vlan_proto}" if x.vlan else "-",
                      _onoff(x.spoofchk), _onoff(x.trust), x.link_state or "-", rep.name if rep else "-")
    c.print(v)


def _print_rows(c: Any, rows: list[tuple[str, str]]) -> None:
    """``show``'s aligned name/value lines."""
    w = max(len(k) for k, _ in rows)
    for k, val in rows:
        c.print(f"  {k:<{w}}  {val}", markup=False)


def _onoff(b: bool | None) -> str:
    return "-" if b is None else ("on" if b else "off")


def render_show(inv: Inventory, d: PciDevice, out: Any) -> None:
    c = _console(out)
    role = "PF" if d.is_pf else "VF" if d.is_vf else "device"
    c.print(f"[bold]{lspci_line(d)}[/]  ({role})")
    rows: list[tuple[str, str]] = [
        ("address", f"{d.address}  (nodedev {d.address.nodedev_name})"),
        ("ids", f"{d.vendor_id:04x}:{d.device_id:04x} class {d.class_code:06x} rev {d.revision:02x}"
                + (f" subsystem {d.subsystem_vendor_id:04x}:{d.subsystem_id:04x}"
                   if d.subsystem_vendor_id is not None and d.subsystem_id is not None else "")),
        ("driver", f"{d.driver or '(none)'}" + (f" (module {d.module})" if d.module else "")
                   + (f", driver_override {d.driver_override}" if d.driver_override else "")),
        ("netdev", ", ".join(f"{n.name} {n.mac or ''} {n.operstate or ''} mtu {n.mtu}" for n in d.netdevs) or "-"),
        ("NUMA node", "-" if d.numa_node is None else str(d.numa_node)),
        ("IOMMU group", "-" if d.iommu_group is None else
         f"{d.iommu_group}: " + " ".join(str(m) for m in inv.groups[d.iommu_group].members)),
        ("upstream", str(d.parent) if d.parent else "root bus"),
    ]
    if d.assignability:
        rows.append(("assignable", ("yes: " if d.assignability.assignable else "no: ") + d.assignability.reason))
    if d.is_vf:
        rows.append(("PF", f"{d.physfn} (VF index {d.vf_index})"))
        nl = d.netlink
        if nl is not None:
            rows.append(("netlink", vf_line(nl)))
            if nl.stats:
                rows.append(("VF stats", ", ".join(f"{k} {n}" for k, n in nl.stats.items())))
        owner = inv.devices.get(d.physfn) if d.physfn else None
        if owner is not None and owner.representors:
            rows.append(("representor", d.representor.name if d.representor else "-"))
    if d.is_pf and d.sriov:
        s = d.sriov
        rows.append(("SR-IOV", f"{s.state.value}: numvfs {s.numvfs} of totalvfs {s.totalvfs}, offset {s.offset}, "
                               f"stride {s.stride}, VF device {'-' if s.vf_device is None else f'{s.vf_device:04x}'}, "
                               f"drivers_autoprobe {s.drivers_autoprobe}"))
        rows.append(("VFs", " ".join(str(v) for v in d.vfs) or "-"))
        if d.representors:
            rows.append(("representors", " ".join(f"{r.name}=VF{r.vf}" for r in d.representors)))
    _print_rows(c, rows)
    if d.config is not None:
        out.write("\n")
        render_decoded(None, "", d.config, out, indent="  ")


def vf_line(v: VfNetlink) -> str:
    """One VF as `ip link` lists it."""
    vlan = f"vlan {v.vlan} qos {v.qos} {v.vlan_proto}" if v.vlan else "no vlan"
    return (f"mac {v.mac}, {vlan}, spoof checking {_onoff(v.spoofchk)}, trust {_onoff(v.trust)}, "
            f"link-state {v.link_state or '-'}, rate min {v.min_tx_rate} max {v.max_tx_rate} Mbit/s")


def render_net_pf(pf: NetPf, out: Any) -> None:
    c = _console(out)
    c.print(f"[bold]{pf.name}[/]  (PF not on PCI: {pf.bus} device {pf.device})")
    n = pf.netdev
    rows = [("netdev", f"{n.name} {n.mac or ''} {n.operstate or ''} mtu {n.mtu} ifindex {n.ifindex}"),
            ("driver", pf.driver or "(none)"), ("devlink", pf.devlink),
            ("SR-IOV", f"numvfs {pf.numvfs}, IFLA_NUM_VF {pf.num_vf}, {len(pf.vfs)} VFs read over netlink"),
            ("switch", f"port {pf.port_name or '-'}, switch id {pf.switch_id or '-'}"),
            ("representors", f"{len(pf.representors)}" if pf.representors else "none (legacy mode)")]
    _print_rows(c, rows)
    reps = pf.by_vf()
    for v in pf.vfs:
        rep = reps.get(v.vf)
        c.print(f"  vf {v.vf}: {vf_line(v)}" + (f", representor {rep.name}" if rep else ""), markup=False)


def render_net_vf(pf: NetPf, v: VfNetlink, out: Any) -> None:
    c = _console(out)
    c.print(f"[bold]{pf.name}#{v.vf}[/]  (VF {v.vf} of {pf.name}, {pf.bus} device {pf.device}: not a PCI function)")
    rep = pf.by_vf().get(v.vf)
    c.print(f"  netlink         {vf_line(v)}", markup=False)
    c.print(f"  representor     {rep.name if rep else '-'}", markup=False)
    if v.stats:
        c.print("  VF stats        " + ", ".join(f"{k} {n}" for k, n in v.stats.items()), markup=False)


def _flags(obj: Any, names: tuple[str, ...]) -> str:
    return " ".join(f"{_ACS_SHORT.get(n, n)}{'+' if getattr(obj, n) else '-'}" for n in names)


def render_decoded(addr: PciAddress | None, title: str, c: ConfigSpace, out: Any, indent: str = "") -> None:
    w = out.write
    if addr is not None or title:
        w(f"{indent}{addr.short if addr else '??:??.?'} {title}\n")
    w(f"{indent}  header: {c.vendor_id:04x}:{c.device_id:04x} class {c.class_code:06x} rev {c.revision:02x} "
      f"type {c.header_type}{' multi-function' if c.multifunction else ''}, {c.size} bytes ({c.coverage})\n")
    if c.primary_bus is not None:
        w(f"{indent}  bus: primary {c.primary_bus:02x}, secondary {c.secondary_bus:02x}, "
          f"subordinate {c.subordinate_bus:02x}\n")
    if c.pcie:
        w(f"{indent}  PCIe: {c.pcie.port_type_name} (cap v{c.pcie.version} at {c.pcie.offset:02x})\n")
    caps = " ".join(f"[{x.offset:02x}] {x.name}" for x in c.capabilities)
    if caps:
        w(f"{indent}  capabilities: {caps}\n")
    ext = " ".join(f"[{x.offset:03x} v{x.version}] {x.name}" for x in c.ext_capabilities)
    if ext:
        w(f"{indent}  extended: {ext}\n")
    if c.sriov:
        s = c.sriov
        w(f"{indent}  SR-IOV [{s.offset:03x}]:\n")
        w(f"{indent}    IOVCap: Migration{'+' if s.migration_capable else '-'} "
          f"ARIPreserved{'+' if s.ari_capable_hierarchy_preserved else '-'} "
          f"10BitTagReq{'+' if s.vf_10bit_tag_requester_supported else '-'} "
          f"Interrupt Message Number: {s.migration_interrupt_message_number:03x}\n")
        w(f"{indent}    IOVCtl: Enable{'+' if s.vf_enable else '-'} Migration{'+' if s.migration_enable else '-'} "
          f"Interrupt{'+' if s.migration_interrupt_enable else '-'} MSE{'+' if s.vf_mse else '-'} "
          f"ARIHierarchy{'+' if s.ari_capable_hierarchy else '-'} "
          f"10BitTagReq{'+' if s.vf_10bit_tag_requester_enable else '-'}\n")
        w(f"{indent}    IOVSta: Migration{'+' if s.migration_status else '-'}\n")
        w(f"{indent}    Initial VFs: {s.initial_vfs}, Total VFs: {s.total_vfs}, Number of VFs: {s.num_vfs}, "
          f"Function Dependency Link: {s.function_dependency_link:02x}\n")
        w(f"{indent}    VF offset: {s.vf_offset}, stride: {s.vf_stride}, Device ID: {s.vf_device_id:04x}\n")
        w(f"{indent}    Supported Page Size: {s.supported_page_sizes:08x}, System Page Size: {s.system_page_size:08x}\n")
        for b in s.vf_bars:
            w(f"{indent}    VF BAR {b.index}: {b.address:016x} ({'64' if b.is_64bit else '32'}-bit, "
              f"{'' if b.prefetchable else 'non-'}prefetchable)\n")
        if not s.vf_bars:
            w(f"{indent}    VF BARs: none assigned\n")
        w(f"{indent}    VF Migration: offset: {s.migration_state_offset:08x}, BIR: {s.migration_state_bir}\n")
    if c.acs:
        w(f"{indent}  ACS [{c.acs.offset:03x}]:\n{indent}    ACSCap: {_flags(c.acs.capability, ACS_BITS)}\n"
          f"{indent}    ACSCtl: {_flags(c.acs.control, ACS_BITS)}\n")
    if c.ari:
        a = c.ari
        w(f"{indent}  ARI [{a.offset:03x}]: MFVC{'+' if a.mfvc_function_groups else '-'} "
          f"ACS{'+' if a.acs_function_groups else '-'}, Next Function: {a.next_function}; "
          f"control MFVC{'+' if a.mfvc_enable else '-'} ACS{'+' if a.acs_enable else '-'}, "
          f"Function Group: {a.function_group}\n")
    for p in c.problems:
        w(f"{indent}  warning: {p}\n")


def render_doctor(inv: Inventory, report: Any, out: Any, verbose: bool = False) -> None:
    from rich.markup import escape

    c = _console(out)
    style = {"ok": "green", "info": "cyan", "warn": "yellow", "fail": "bold red"}
    titles = {"platform": "Platform (IOMMU, kernel, CPU)", "device": "Devices (SR-IOV capability)",
              "isolation": "Isolation (ACS, IOMMU groups, assignability)"}
    c.print(f"[bold]sriovctl doctor[/] — {escape(inv.host)}")
    for area, title in titles.items():
        items = [f for f in report.findings if f.area == area]
        if not items:
            continue
        c.print(f"\n[bold underline]{title}[/]")
        for f in items:
            sev = f.severity.label
            c.print(f"  [{style[sev]}]{sev.upper():4}[/] {escape(f.subject)}: {escape(f.message)}  [dim]({f.id})[/]")
            if verbose or f.severity.value >= 2:
                for k, v in f.evidence:
                    c.print(f"         [dim]{escape(k)}: {escape(v)}[/]")
            if f.hint and f.severity.value >= 2:
                c.print(f"         hint: {escape(f.hint)}")
    if report.capacity:
        c.print("\n[bold underline]Capacity[/]")
        for cap in report.capacity:
            name = cap["netdev"] or cap["pf"]
            c.print(f"  {name}: {cap['vfs']} VFs, {cap['assignable']} assignable ({cap['groups']} groups)")
    worst = report.worst.label
    c.print(f"\nresult: [{style[worst]}]{worst}[/]")


# ---------------------------------------------------------------- tree

def _children(inv: Inventory) -> dict[PciAddress | None, list[PciDevice]]:
    kids: dict[PciAddress | None, list[PciDevice]] = {}
    for d in inv.devices.values():
        if d.is_vf:
            continue  # VFs are shown under their PF
        kids.setdefault(d.parent, []).append(d)
    return kids


def _acs_label(d: PciDevice) -> str | None:
    if not d.is_bridge or d.config is None:
        return None
    if d.config.pcie is None:
        return None
    if d.config.acs is None:
        return "no ACS"
    on = [_ACS_SHORT[n] for n in ACS_BITS if getattr(d.config.acs.control, n)]
    return "ACS " + (" ".join(on) if on else "present, all off")


def _label(d: PciDevice) -> str:
    parts = [f"{d.address.short} {d.vendor_name} {d.device_name}"]
    if d.config and d.config.pcie and d.is_bridge:
        parts.append(f"({d.config.pcie.port_type_name})")
    acs = _acs_label(d)
    if acs:
        parts.append(f"[{acs}]")
    if d.driver:
        parts.append(f"driver {d.driver}")
    if d.netdevs:
        parts.append(_netdev(d))
    if d.iommu_group is not None:
        parts.append(f"group {d.iommu_group}")
    if d.is_pf and d.sriov:
        parts.append(f"SR-IOV {d.sriov.numvfs}/{d.sriov.totalvfs} VFs")
    return " ".join(parts)


def _node_json(inv: Inventory, d: PciDevice, kids: dict[PciAddress | None, list[PciDevice]]) -> dict[str, Any]:
    node: dict[str, Any] = {
        "address": str(d.address), "role": "pf" if d.is_pf else "vf" if d.is_vf else
        ("bridge" if d.is_bridge else "device"),
        "name": f"{d.vendor_name} {d.device_name}", "driver": d.driver, "iommu_group": d.iommu_group,
        "port_type": d.config.pcie.port_type_name if d.config and d.config.pcie else None,
        "acs": _acs_label(d), "children": [_node_json(inv, k, kids) for k in kids.get(d.address, [])],
    }
    if d.is_pf:
        node["vfs"] = [_node_json(inv, inv.devices[v], kids) for v in d.vfs if v in inv.devices]
    if d.is_vf:
        node["vf_index"] = d.vf_index
        node["assignable"] = bool(d.assignability and d.assignability.assignable)
        if d.representor is not None:
            node["representor"] = d.representor.name
    return node


def _roots(inv: Inventory, kids: dict[PciAddress | None, list[PciDevice]]) -> dict[str, list[PciDevice]]:
    roots: dict[str, list[PciDevice]] = {}
    for d in kids.get(None, []):
        roots.setdefault(f"pci{d.address.domain:04x}:{d.address.bus:02x}", []).append(d)
    return roots


def tree_json(inv: Inventory) -> dict[str, Any]:
    kids = _children(inv)
    from sriovctl.cli.documents import SCHEMA_VERSION
    from sriovctl.cli.jsonout import net_pf_json

    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "host": inv.host, "root_buses": [
        {"name": name, "children": [_node_json(inv, d, kids) for d in devs]}
        for name, devs in sorted(_roots(inv, kids).items())]}
    if inv.net_pfs:
        doc["net_pfs"] = [net_pf_json(p) for p in inv.net_pfs.values()]
    return doc


def render_tree(inv: Inventory, out: Any) -> None:
    from rich.tree import Tree

    kids = _children(inv)
    c = _console(out)

    def add(t: Any, d: PciDevice) -> None:
        node = t.add(_label(d), highlight=False)
        for k in kids.get(d.address, []):
            add(node, k)
        for v in d.vfs:
            vf = inv.devices.get(v)
            if vf:
                a = vf.assignability
                mark = "assignable" if a and a.assignable else f"not assignable: {a.reason if a else '?'}"
                rep = vf.representor
                node.add(f"VF {vf.vf_index}: {_label(vf)} — {mark}" + (f" — representor {rep.name}" if rep else ""),
                         highlight=False)

    for name, devs in sorted(_roots(inv, kids).items()):
        t = Tree(f"[bold]{name}[/] (root complex)", highlight=False)
        for d in devs:
            add(t, d)
        c.print(t)
    for pf in inv.net_pfs.values():
        t = Tree(f"[bold]{pf.devlink}[/] (not on PCI)", highlight=False)
        node = t.add(f"{pf.name} driver {pf.driver or '-'} SR-IOV {pf.numvfs} VFs", highlight=False)
        reps = pf.by_vf()
        for v in pf.vfs:
            r = reps.get(v.vf)
            node.add(f"VF {v.vf}: mac {v.mac}" + (f" — representor {r.name}" if r else ""), highlight=False)
        c.print(t)
