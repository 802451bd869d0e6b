"""`sriovctl pool list|show|allocate|release|reconcile`: VFs handed out from the stored state's pools
(ops/pools.py), atomically per PF, given back clean."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sriovctl.cli.context import Ctx

if TYPE_CHECKING:
    from sriovctl.cli.documents import PoolAllocationDoc
    from sriovctl.ops.pools import Allocation


def _doc(a: Allocation) -> PoolAllocationDoc:
    from sriovctl.cli.documents import PoolAllocationDoc

    return PoolAllocationDoc(address=a.address, pf=a.key, vf=a.vf, pool=a.pool, owner=cast(Any, a.owner.to_json()),
                             state=cast(Any, a.state))


def _emit(ctx: Ctx, verb: str, allocs: list[Allocation], notes: list[str]) -> None:
    from sriovctl.cli.documents import SCHEMA_VERSION, PoolDocument

    if ctx.json:
        doc = PoolDocument(schema_version=SCHEMA_VERSION, verb=cast(Any, verb), allocations=[_doc(a) for a in allocs],
                           notes=notes)
        if verb == "allocate":
            doc["allocation"] = doc["allocations"][0]
        ctx.emit_json(doc)
        return
    for n in notes:
        ctx.err.write(f"note: {n}\n")
    for a in allocs:
        what = {"allocate": "allocated", "release": "released"}.get(verb, a.state)
        what = f"would be {what}" if ctx.args.pool_verb in ("allocate", "release") and ctx.args.dry_run else what
        ctx.out.write(f"{a.address}  pool {a.pool}  {what} {'to' if verb != 'release' else 'from'} {a.owner.label}\n")


def cmd_pool_allocate(ctx: Ctx) -> int:
    from sriovctl.ops.pools import Owner, allocate, check_owner

    a = ctx.args
    owner = check_owner(a.owner_kind, a.owner)
    if a.owner_pid is not None:
        owner = Owner(owner.kind, owner.name, pid=a.owner_pid)
    host = ctx.open_host()
    host.dry_run = a.dry_run
    done = allocate(host, a.pool, owner, numa=a.numa, near=a.near, policy=a.policy, mac=a.mac, vlan=a.vlan,
                    wait=a.wait)
    _emit(ctx, "allocate", [done.allocation], done.notes)
    return 0


def cmd_pool_release(ctx: Ctx) -> int:
    from sriovctl.errors import UsageError
    from sriovctl.ops.pools import release

    a = ctx.args
    if (a.device is None) == (a.owner is None):
        raise UsageError("pool release: name a VF or --owner NAME (one of them)")
    host = ctx.open_host()
    host.dry_run = a.dry_run
    done = release(host, address=a.device, owner=a.owner, wait=a.wait, force=a.force)
    _emit(ctx, "release", done, [])
    return 0


def cmd_pool_list(ctx: Ctx) -> int:
    from sriovctl.ops.pools import all_records

    recs = all_records(ctx.open_host())
    _emit(ctx, "list", [x for r in recs.values() for x in sorted(r.values(), key=lambda y: y.vf)], [])
    return 0


def cmd_pool_show(ctx: Ctx) -> int:
    from sriovctl.ops.pools import show

    pools = show(ctx.open_host())
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, PoolShowDocument

        ctx.emit_json(PoolShowDocument(schema_version=SCHEMA_VERSION, pools=cast(Any, pools)))
        return 0
    if not pools:
        ctx.out.write("no pools (add `pool: NAME` to VF entries of the stored state)\n")
    for name, nodes in pools.items():
        for node, c in sorted(nodes.items()):
            ctx.out.write(f"{name:<16} NUMA {node:>2}  free {c['free']:>4}  pending {c['pending']:>3}  "
                          f"allocated {c['allocated']:>4}  releasing {c['releasing']:>3}  "
                          f"unavailable {c['unavailable']:>4}\n")
    return 0


def cmd_pool_reconcile(ctx: Ctx) -> int:
    from sriovctl.errors import EX_DRIFTED
    from sriovctl.ops.pools import reconcile

    findings, fixed = reconcile(ctx.open_host(), apply=ctx.args.apply, wait=ctx.args.wait)
    left = [f for f in findings if not (f.fixable and f.address in fixed)]
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, PoolFindingDoc, PoolReconcileDocument

        ctx.emit_json(PoolReconcileDocument(schema_version=SCHEMA_VERSION, fixed=fixed, findings=[
            PoolFindingDoc(kind=cast(Any, f.kind), address=f.address, message=f.message, fixable=f.fixable)
            for f in findings]))
    else:
        for f in findings:
            done = " (freed)" if f.fixable and f.address in fixed else ""
            ctx.out.write(f"{f.kind}: {f.message}{done}\n")
        if not findings:
            ctx.out.write("records match the host\n")
    return EX_DRIFTED if left else 0


def _stored(ctx: Ctx, text: str, rep: object) -> int:
    from sriovctl.cli.persistcmds import _print

    if not ctx.json:
        ctx.out.write(text if ctx.args.dry_run else "")
    _print(ctx, rep, "install")  # type: ignore[arg-type]
    return 0


def cmd_pool_create(ctx: Ctx) -> int:
    from sriovctl.ops.pools import create

    a = ctx.args
    host = ctx.open_host()
    host.dry_run = a.dry_run
    text, rep = create(host, a.name, a.vfs, a.driver, a.dry_run)
    return _stored(ctx, text, rep)


def cmd_pool_delete(ctx: Ctx) -> int:
    from sriovctl.ops.pools import delete

    a = ctx.args
    host = ctx.open_host()
    host.dry_run = a.dry_run
    text, rep = delete(host, a.name, a.force, a.dry_run)
    return _stored(ctx, text, rep)
