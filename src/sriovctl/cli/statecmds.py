"""The desired-state verbs: `state show|validate|plan|apply|status`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sriovctl.cli.context import Ctx
from sriovctl.errors import UsageError
from sriovctl.model import NetPf, PciDevice

if TYPE_CHECKING:
    pass


def cmd_state_show(ctx: Ctx) -> int:
    from sriovctl.ops.state import show, to_yaml

    s = ctx.session()
    chosen: list[PciDevice | NetPf] | None = None
    if ctx.args.pfs:
        chosen = []
        for name in ctx.args.pfs:
            d = s.find_pf(name)
            if isinstance(d, PciDevice) and not d.is_pf:
                raise UsageError(f"{name}: not an SR-IOV PF", hint="`sriovctl status` lists the PFs")
            chosen.append(d)
    doc = show(s.inv, chosen)
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, StateShowDocument

        ctx.emit_json(StateShowDocument(schema_version=SCHEMA_VERSION, host=s.inv.host,
                                        state=cast(Any, doc)))  # state/current.py's dict, in the schema's shape
    else:
        ctx.out.write(to_yaml(doc))
    return 0


def cmd_state_validate(ctx: Ctx) -> int:
    from sriovctl.ops.state import read_state

    st = read_state(ctx.args.file)
    entries = sum(len(p.vfs or ()) for p in st.pfs)
    vfs = sum(len(v.ids) for p in st.pfs for v in p.vfs or ())
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, StateValidateDocument

        ctx.emit_json(StateValidateDocument(schema_version=SCHEMA_VERSION, source=ctx.args.file, pfs=len(st.pfs),
                                            vf_entries=entries, vfs=vfs))
    else:
        ctx.out.write(f"{ctx.args.file}: valid: {len(st.pfs)} PFs, {entries} VF entries ({vfs} VFs)\n")
    return 0


DEFAULT_STATE = "/etc/sriovctl/state.yaml"  # where `persist install` stores it


def _change_line(c: dict[str, Any]) -> str:
    what = c["kind"] + (f" {c['attr']}" if c.get("attr") else "")
    return f"  {what} {c['target']}: {_v(c['before'])} → {_v(c['after'])} ({c['why']})"


def _v(x: object) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "on" if x else "off"
    return str(x)


def _print_plan(ctx: Ctx, doc: dict[str, Any]) -> None:
    if doc["converged"]:
        ctx.out.write("no changes\n")
        return
    ctx.out.write(f"{len(doc['changes'])} changes on {', '.join(doc['pfs'])}:\n")
    for c in doc["changes"]:
        ctx.out.write(_change_line(c) + "\n")
    if doc["impact"]:
        ctx.out.write("impact:\n")
        for i in doc["impact"]:
            who = f"; in use: {'; '.join(i['who'])}" if i["who"] else ""
            ctx.out.write(f"  {i['kind']} {i['target']}: {i['why']}{who}\n")


def cmd_state_plan(ctx: Ctx) -> int:
    from sriovctl.ops.state import plan, read_state_file

    st, _ = read_state_file(ctx.args.file)
    sp = plan(ctx.open_host(), st, ctx.args.pfs or None)
    doc = sp.to_json()
    if ctx.json:
        before, after = sp.documents()
        from sriovctl.cli.documents import SCHEMA_VERSION, StatePlanDocument

        ctx.emit_json(StatePlanDocument(
            schema_version=SCHEMA_VERSION, host=ctx.open_host().label, source=ctx.args.file,
            operation=doc["operation"], changes=doc["changes"], notices=doc["notices"], converged=doc["converged"],
            impact=doc["impact"], pfs=doc["pfs"], before=cast(Any, before), after=cast(Any, after)))
    else:
        _print_plan(ctx, doc)
    return 0


def cmd_state_apply(ctx: Ctx) -> int:
    from sriovctl.cli.writes import writes_json
    from sriovctl.ops.state import ApplyOptions, apply, read_state_file

    a = ctx.args
    st, digest = read_state_file(a.file)
    host = ctx.open_host()
    host.dry_run = a.dry_run
    out = apply(host, st, digest, ApplyOptions(force=a.force, wait=a.wait), a.pfs or None)
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, StateApplyDocument

        o = out.to_json()
        ctx.emit_json(StateApplyDocument(
            schema_version=SCHEMA_VERSION, host=host.label, source=a.file, dry_run=host.dry_run,
            messages=out.messages, writes_log=writes_json(host), plan=o["plan"], applied=o["applied"],
            result=o["result"], error=o["error"], rolled_back=o["rolled_back"], restored=o["restored"],
            recovered=o["recovered"], netlink_requests=o["netlink_requests"], writes=o["writes"]))
        return 0
    if host.dry_run and not out.plan.converged:
        ctx.out.write("dry run: nothing was changed; the plan:\n")
        _print_plan(ctx, out.plan.to_json())
        return 0
    for line in out.messages:
        ctx.out.write(line + "\n")
    if not out.plan.converged:
        ctx.out.write(f"{len(out.applied)} changes applied: {out.writes} writes, {out.netlink_requests} netlink "
                      "requests\n")
    return 0


def cmd_state_status(ctx: Ctx) -> int:
    from sriovctl.ops.state import status_of

    host = ctx.open_host()
    report = status_of(host, ctx.args.file or None)
    doc, path, rec = report.doc, report.source, report.record
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, StateStatusDocument

        status_doc = StateStatusDocument(
            schema_version=SCHEMA_VERSION, host=host.label, source=path, record=doc["record"],
            pending_journals=doc["pending_journals"], in_sync=doc["in_sync"], drifted=doc["drifted"],
            changes=doc["changes"], pools_not_in_state=doc["pools_not_in_state"])
        if "same_as_applied" in doc:
            status_doc["same_as_applied"] = doc["same_as_applied"]
        ctx.emit_json(status_doc)
        return report.exit_code
    last = (f"last apply: {rec.get('result')} ({rec.get('source')})" + (f": {rec['error']}" if rec.get("error") else "")
            if rec else "last apply: none recorded")
    for pool in doc["pools_not_in_state"]:
        ctx.err.write(f"note: pool {pool}: VFs are allocated from it, but the state has no such pool "
                      "(they stay their owners' until released)\n")
    if report.verdict == "no-state":
        ctx.out.write(f"no state file ({DEFAULT_STATE} absent, none named); {last}\n")
        return report.exit_code
    if report.verdict == "drifted":
        ctx.out.write(f"{path}: drifted: {len(doc['changes'])} changes to converge; {last}\n")
        for c in doc["changes"][:20]:
            ctx.out.write(_change_line(c) + "\n")
    elif report.verdict == "not-last-applied":
        ctx.out.write(f"{path}: the host matches it, but it is not the last state applied; {last}\n")
    else:  # in sync, or in sync with this state's last apply failed (its record says so)
        ctx.out.write(f"{path}: in sync; {last}\n")
    if doc["pending_journals"]:
        ctx.out.write(f"interrupted applies (journals): {', '.join(doc['pending_journals'])}: the next apply "
                      "rolls forward\n")
    return report.exit_code


def cmd_state_import(ctx: Ctx) -> int:
    from sriovctl.ops.state import import_files, to_yaml

    kind, doc = import_files(ctx.args.files)
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, StateImportDocument

        ctx.emit_json(StateImportDocument(schema_version=SCHEMA_VERSION, source=ctx.args.files,
                                          kind=cast(Any, kind), state=doc))
    else:
        ctx.out.write(f"# imported from {kind}: {' '.join(ctx.args.files)}\n" + to_yaml(doc))
    return 0


def cmd_state_export(ctx: Ctx) -> int:
    from sriovctl.ops.state import export, write_beside

    a = ctx.args
    if a.configmap is not None and a.kind != "device-plugin":
        raise UsageError(f"--configmap {a.configmap}: only for device-plugin, not {a.kind}")
    source, text = export(ctx.open_host(), a.kind, a.file, configmap_node=a.configmap, part=a.part,
                          namespace=a.namespace)
    if a.output is not None:
        write_beside(a.output, text)
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, StateExportDocument

        ctx.emit_json(StateExportDocument(schema_version=SCHEMA_VERSION, source=source, kind=a.kind,
                                          output=a.output, text=text))
    elif a.output is None:
        ctx.out.write(text)
    return 0
