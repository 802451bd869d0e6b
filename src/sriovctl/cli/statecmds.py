"""`state show` and `state validate`: the desired-state verbs (issue 13) that read only."""

from __future__ import annotations

from sriovctl.cli.context import Ctx
from sriovctl.errors import UsageError
from sriovctl.model import NetPf, PciDevice


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
        ctx.emit_json(ctx.doc(host=s.inv.host, state=doc))
    else:
        ctx.out.write(to_yaml(doc))
    return 0


def cmd_state_validate(ctx: Ctx) -> int:
    from sriovctl.ops.state import read_state

    st = read_state(ctx.args.file)
    entries = sum(len(p.vfs or ()) for p in st.pfs)
    vfs = sum(len(v.ids) for p in st.pfs for v in p.vfs or ())
    if ctx.json:
        ctx.emit_json(ctx.doc(source=ctx.args.file, pfs=len(st.pfs), vf_entries=entries, vfs=vfs))
    else:
        ctx.out.write(f"{ctx.args.file}: valid: {len(st.pfs)} PFs, {entries} VF entries ({vfs} VFs)\n")
    return 0
