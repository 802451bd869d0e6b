"""The reading verbs: each opens the host, calls one operation and renders its result (text, or --json)."""

from __future__ import annotations

from typing import Any, cast

from sriovctl.cli.context import Ctx
from sriovctl.errors import UnavailableError, UsageError
from sriovctl.model import NetPf


def cmd_status(ctx: Ctx) -> int:
    inv = ctx.inventory()
    if ctx.json:
        from sriovctl.cli.jsonout import status_json

        ctx.emit_json(status_json(inv))
        return 0
    from sriovctl.cli.render import render_status

    render_status(inv, ctx.out)
    return 0


def cmd_list(ctx: Ctx) -> int:
    inv = ctx.inventory()
    devs = [d for d in inv.devices.values() if d.is_pf or d.is_vf] if ctx.args.vfs else \
        [d for d in inv.devices.values() if d.is_pf]
    if ctx.args.all:
        devs = list(inv.devices.values())
    from sriovctl.cli.render import lspci_line

    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, ListDocument, ListEntryDoc

        ctx.emit_json(ListDocument(schema_version=SCHEMA_VERSION, host=inv.host, devices=[
            ListEntryDoc(address=str(d.address), short=d.address.short,
                         role="pf" if d.is_pf else "vf" if d.is_vf else "device", line=lspci_line(d)) for d in devs]))
        return 0
    for d in devs:
        ctx.out.write(lspci_line(d) + "\n")
    return 0


def cmd_show(ctx: Ctx) -> int:
    s = ctx.session(stats=True)
    net = s.find_net(ctx.args.device)
    if net is not None:
        return _show_net(ctx, s.inv.host, *net)
    d = s.find(ctx.args.device)
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, ShowDocument
        from sriovctl.cli.jsonout import config_json, device_json

        ctx.emit_json(ShowDocument(schema_version=SCHEMA_VERSION, host=s.inv.host, device=device_json(s.inv, d),
                                   config=config_json(d.config)))
        return 0
    from sriovctl.cli.render import render_show

    render_show(s.inv, d, ctx.out)
    return 0


def _show_net(ctx: Ctx, host: str, pf: NetPf, indices: list[int] | None) -> int:
    """``show`` of a PF not on PCI (its netdev), or of one of its VFs (``PF#N``)."""
    if indices is not None and len(indices) != 1:
        raise UsageError(f"{ctx.args.device}: names {len(indices)} VFs, this verb takes one")
    views = {v.vf: v for v in pf.vfs}
    if indices is not None and indices[0] not in views:
        raise UnavailableError(f"{ctx.args.device}: {pf.name} did not report VF {indices[0]} over netlink",
                               hint="the PF's netlink VF list could not be read")
    from sriovctl.cli.jsonout import net_pf_json, net_vf_json
    from sriovctl.cli.render import render_net_pf, render_net_vf

    if ctx.json:
        doc = net_pf_json(pf) if indices is None else net_vf_json(pf, views[indices[0]])
        from sriovctl.cli.documents import SCHEMA_VERSION, ShowDocument

        ctx.emit_json(ShowDocument(schema_version=SCHEMA_VERSION, host=host, device=doc, config=None))
    elif indices is None:
        render_net_pf(pf, ctx.out)
    else:
        render_net_vf(pf, views[indices[0]], ctx.out)
    return 0


def cmd_tree(ctx: Ctx) -> int:
    from sriovctl.cli.render import render_tree, tree_json

    inv = ctx.inventory()
    if ctx.json:
        ctx.emit_json(tree_json(inv))
        return 0
    render_tree(inv, ctx.out)
    return 0


def cmd_nodedev_list(ctx: Ctx) -> int:
    from sriovctl.ops.reads import nodedev_names

    names = nodedev_names(ctx.inventory())
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, NodedevListDocument

        ctx.emit_json(NodedevListDocument(schema_version=SCHEMA_VERSION, nodedevs=names))
    else:
        ctx.out.write("".join(n + "\n" for n in names))
    return 0


def cmd_nodedev_dumpxml(ctx: Ctx) -> int:
    from sriovctl.ops.reads import nodedev_xml

    s = ctx.session()
    d = s.find(ctx.args.name)
    xml = nodedev_xml(s.inv, d)
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, NodedevXmlDocument

        ctx.emit_json(NodedevXmlDocument(schema_version=SCHEMA_VERSION, name=d.address.nodedev_name, xml=xml))
    else:
        ctx.out.write(xml)
    return 0


def cmd_pci_decode(ctx: Ctx) -> int:
    from sriovctl.cli.jsonout import config_json
    from sriovctl.ops.reads import decode_dump

    decoded = decode_dump(ctx.args.file)
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, DecodedDoc, PciDecodeDocument

        ctx.emit_json(PciDecodeDocument(schema_version=SCHEMA_VERSION, file=ctx.args.file, devices=[
            DecodedDoc(address=None if dd.address is None else str(dd.address), title=dd.title, config=config_json(c))
            for dd, c in decoded]))
        return 0
    from sriovctl.cli.render import render_decoded

    for dd, c in decoded:
        render_decoded(dd.address, dd.title, c, ctx.out)
    return 0


def cmd_snapshot(ctx: Ctx) -> int:
    from pathlib import Path

    from sriovctl.ops.reads import snapshot

    out = Path(ctx.args.out)
    if not out.name.endswith((".tar.gz", ".tgz")):
        raise UsageError(f"{out}: a snapshot is written as .tar.gz", hint="e.g. sriovctl snapshot host1.tar.gz")
    meta = snapshot(ctx.open_host(), out)
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, SnapshotDocument

        ctx.emit_json(SnapshotDocument(schema_version=SCHEMA_VERSION, file=str(out), format=meta["format"],
                                       sriovctl=meta["sriovctl"], source=meta["source"], files=meta["files"],
                                       captured_at=meta["captured_at"]))
    else:
        ctx.out.write(f"{out}: {meta['files']} files from {meta['source']}\n")
    return 0


def cmd_sim_list(ctx: Ctx) -> int:
    from sriovctl.ops.reads import sim_list

    where, rows = sim_list()
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, SimHostDoc, SimListDocument

        ctx.emit_json(SimListDocument(schema_version=SCHEMA_VERSION, dir=where, hosts=[
            SimHostDoc(name=n, origin="built-in" if o == "built-in" else "created", built=b) for n, o, b in rows]))
    else:
        for n, o, b in rows:
            ctx.out.write(f"{n:<16} {o:<9} {'built' if b else 'not built yet'}\n")
    return 0


def cmd_sim_reset(ctx: Ctx) -> int:
    from sriovctl.ops.reads import sim_reset

    root = sim_reset(ctx.args.name)
    _sim_done(ctx, root) if ctx.json else ctx.out.write(f"{ctx.args.name}: reset ({root})\n")
    return 0


def cmd_sim_create(ctx: Ctx) -> int:
    from pathlib import Path

    from sriovctl.ops.reads import sim_create

    root = sim_create(ctx.args.name, Path(ctx.args.spec))
    _sim_done(ctx, root) if ctx.json else ctx.out.write(f"{ctx.args.name}: created from {ctx.args.spec} ({root})\n")
    return 0


def cmd_sim_traffic(ctx: Ctx) -> int:
    from sriovctl.ops.reads import sim_traffic
    from sriovctl.ops.session import Session, open_host

    a = ctx.args
    s = Session(open_host(sim=a.name))
    d = s.find(a.device)
    counts = {k: getattr(a, k) for k in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "broadcast", "multicast",
                                         "rx_dropped", "tx_dropped") if getattr(a, k)}
    after = sim_traffic(s.host, d, counts)
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, SimTrafficDocument

        ctx.emit_json(SimTrafficDocument(schema_version=SCHEMA_VERSION, device=str(d.address), counters=after))
    else:
        ctx.out.write(f"{d.address}: " + " ".join(f"{k} {v}" for k, v in after.items()) + "\n")
    return 0


def _sim_done(ctx: Ctx, root: object) -> None:
    from sriovctl.cli.documents import SCHEMA_VERSION, SimResetDocument

    ctx.emit_json(SimResetDocument(schema_version=SCHEMA_VERSION, name=ctx.args.name, dir=str(root)))


def cmd_doctor(ctx: Ctx) -> int:
    from sriovctl.errors import EX_DOCTOR_FAIL, EX_DOCTOR_WARN
    from sriovctl.ops.reads import doctor

    s = ctx.session()
    device = s.find(ctx.args.device) if ctx.args.device is not None else None
    report = doctor(s.host, s.inv, device)
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, CapacityDoc, DoctorDocument, EvidenceDoc, FindingDoc

        ctx.emit_json(DoctorDocument(
            schema_version=SCHEMA_VERSION, host=s.inv.host, worst=cast(Any, report.worst.label),
            findings=[FindingDoc(id=f.id, severity=cast(Any, f.severity.label), area=cast(Any, f.area),
                                 subject=f.subject, message=f.message, hint=f.hint,
                                 evidence=[EvidenceDoc(source=k, value=v) for k, v in f.evidence])
                      for f in report.findings],
            capacity=[CapacityDoc(pf=c["pf"], netdev=c["netdev"], vfs=c["vfs"], assignable=c["assignable"],
                                  groups=c["groups"]) for c in report.capacity]))
    else:
        from sriovctl.cli.render import render_doctor

        render_doctor(s.inv, report, ctx.out, verbose=ctx.args.verbose)
    return EX_DOCTOR_FAIL if report.worst.label == "fail" else EX_DOCTOR_WARN if report.worst.label == "warn" else 0
