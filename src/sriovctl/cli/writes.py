"""The writing verbs (vf enable|disable|set|bind|unbind) and how a writing verb's result is shown: notices and
messages, the writes of a dry run, and with --json the plan and the outcome."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from sriovctl.cli.context import Ctx
from sriovctl.errors import UsageError

if TYPE_CHECKING:
    from sriovctl.cli.documents import WriteDoc
    from sriovctl.ops.plan import Notice, Outcome
    from sriovctl.ops.session import Host


def notice_text(ctx: Ctx, n: Notice) -> str:
    """A plan's notice in the CLI's words."""
    if n.kind == "forced":
        return f"warning: --force: {n.text}"
    if n.kind == "deprecated":
        return f"warning: {n.text.replace('sriov_numvfs is', 'sriov_numvfs (without --module-param) is')}"
    return f"warning: {n.text}"


def writes_json(host: Host) -> list[WriteDoc]:
    return [{"path": w.path, "value": w.value, "dry_run": w.dry_run} for w in host.writes]


def report(ctx: Ctx, host: Host, outcome: Outcome | list[Outcome], notices: bool = True) -> int:
    """A writing verb's result: the notices and messages (and, in a dry run, the writes it would make); with
    --json one document holding them, the plan and (when applied) the outcome."""
    outcomes = outcome if isinstance(outcome, list) else [outcome]
    lines = [line for o in outcomes for line in
             ([notice_text(ctx, n) for n in o.plan.notices] if notices else []) + o.messages]
    if ctx.json:
        from sriovctl.ops.plan import merge

        merged = merge(outcomes)
        from sriovctl.cli.documents import SCHEMA_VERSION, VfActionDocument

        doc = VfActionDocument(schema_version=SCHEMA_VERSION, host=host.label, dry_run=host.dry_run, messages=lines,
                               writes=writes_json(host), plan=cast(Any, merged.plan.to_json()),
                               outcome=None if host.dry_run else cast(Any, merged.to_json()))
        extra = dict(merged.extra)
        if "netlink_requests" in extra:
            doc["netlink_requests"] = extra.pop("netlink_requests")
        if "xml" in extra:
            doc["xml"] = extra.pop("xml")
        assert not extra, f"an outcome field the vf-action document does not name: {sorted(extra)}"
        ctx.emit_json(doc)
        return 0
    if host.dry_run:
        ctx.out.write("dry run: nothing was changed; these writes would be made:\n")
        for w in host.writes:
            ctx.out.write(f"  {w.path}: {w.value}\n" if w.kind != "file" else f"  {w.path} <- {w.value.strip()!r}\n")
    for line in lines:
        ctx.out.write(line + "\n")
    return 0


def _progress(ctx: Ctx) -> Callable[[int, int], None] | None:
    if ctx.json or not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return None
    from rich.progress import Progress

    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "p" not in bar:
            bar["p"] = Progress(transient=True)
            bar["p"].start()
            bar["t"] = bar["p"].add_task("VFs settling", total=total)
        bar["p"].update(bar["t"], completed=done)
        if done >= total:
            bar["p"].stop()
    return update


def cmd_vf_enable(ctx: Ctx) -> int:
    from sriovctl.ops.vfcount import EnableOptions, enable

    a = ctx.args
    opts = EnableOptions(reset=a.reset, autoprobe=not a.no_autoprobe, force=a.force, wait=a.wait,
                         progress=_progress(ctx))
    s = ctx.session()
    return report(ctx, s.host, enable(s, a.pf, a.count, opts, a.module_param))


def cmd_vf_disable(ctx: Ctx) -> int:
    from sriovctl.ops.vfcount import EnableOptions, disable

    s = ctx.session()
    return report(ctx, s.host, disable(s, ctx.args.pf, EnableOptions(force=ctx.args.force, wait=ctx.args.wait)))


def cmd_vf_set(ctx: Ctx) -> int:
    from sriovctl.ops.vfattrs import VfSettings, set_named

    a = ctx.args
    s = ctx.session()
    settings = VfSettings(**{k: getattr(a, k) for k in VfSettings.field_names()})
    if a.macs_from is not None and settings.mac is not None:
        raise UsageError("--mac and --macs-from: choose one", hint="--mac for one VF, --macs-from for a range")
    return report(ctx, s.host, set_named(s, a.devices, settings, a.macs_from, a.force, a.wait))


def _per_device(ctx: Ctx, unbinding: bool) -> int:
    from sriovctl.ops.binding import BindOptions, bind_named

    a = ctx.args
    s = ctx.session()
    opts = BindOptions(force=a.force, wait=a.wait)
    return report(ctx, s.host, bind_named(s, a.device, None if unbinding else a.driver, opts))


def cmd_vf_bind(ctx: Ctx) -> int:
    return _per_device(ctx, unbinding=False)


def cmd_vf_unbind(ctx: Ctx) -> int:
    return _per_device(ctx, unbinding=True)


def cmd_pf_eswitch(ctx: Ctx) -> int:
    from sriovctl.ops.eswitch import set_mode

    a = ctx.args
    s = ctx.session()
    return report(ctx, s.host, set_mode(s, a.pf, a.mode, a.force, a.wait))
