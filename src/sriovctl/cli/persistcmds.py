"""`persist install|uninstall|status`: the state kept across reboots and PF resets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sriovctl.cli.context import Ctx

if TYPE_CHECKING:
    from sriovctl.cli.documents import PersistDocument
    from sriovctl.ops.persist import PersistReport


def _host(ctx: Ctx) -> Any:
    return None if ctx.args.destdir is not None else ctx.open_host()


def _doc(rep: PersistReport) -> PersistDocument:
    from sriovctl.cli.documents import SCHEMA_VERSION, PersistDocument

    return PersistDocument(schema_version=SCHEMA_VERSION, root=rep.root, dry_run=rep.dry_run, written=rep.written,
                           unchanged=rep.unchanged, removed=rep.removed, kept=rep.kept, warnings=rep.warnings,
                           files=cast(Any, rep.files))  # the report's words (test_schemas holds them to the Literal)


def _print(ctx: Ctx, rep: PersistReport, verb: str) -> None:
    if ctx.json:
        ctx.emit_json(_doc(rep))
        return
    pre = "would " if rep.dry_run else ""
    for w in rep.warnings:
        ctx.err.write(f"warning: {w}\n")
    for p in rep.written:
        ctx.out.write(f"{pre}write {p}\n")
    for p in rep.removed:
        ctx.out.write(f"{pre}remove {p}\n")
    for p in rep.kept:
        ctx.out.write(f"kept {p}: changed since it was installed\n")
    if verb == "install" and not rep.written:
        ctx.out.write(f"installed already: {len(rep.unchanged)} files as they should be\n")


def cmd_persist_install(ctx: Ctx) -> int:
    from sriovctl.ops.persist import install
    from sriovctl.ops.state import read_state_source

    a = ctx.args
    st, _, text = read_state_source(a.file)
    host = _host(ctx)
    if host is not None:
        host.dry_run = a.dry_run
    _print(ctx, install(host, a.destdir, st, text, a.exec, a.dry_run, a.exporter, a.textfile_dir), "install")
    return 0


def cmd_persist_uninstall(ctx: Ctx) -> int:
    from sriovctl.ops.persist import uninstall

    _print(ctx, uninstall(_host(ctx), ctx.args.destdir, ctx.args.dry_run), "uninstall")
    return 0


def cmd_persist_status(ctx: Ctx) -> int:
    from sriovctl.errors import EX_DRIFTED
    from sriovctl.ops.persist import status

    rep = status(_host(ctx), ctx.args.destdir, ctx.args.exec)
    bad = any(v != "installed" for v in rep.files.values())
    if ctx.json:
        ctx.emit_json(_doc(rep))
        return EX_DRIFTED if bad else 0
    for path, what in rep.files.items():
        ctx.out.write(f"{path}: {what}\n")
    return EX_DRIFTED if bad else 0
