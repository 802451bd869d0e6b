"""sriovctl's command line. One function per verb; global options go before the verb.

Imports beyond argparse are made inside the verbs, so that ``sriovctl --version`` starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from sriovctl import __version__
from sriovctl.errors import SriovctlError, UsageError

if TYPE_CHECKING:
    from sriovctl.host.base import Host
    from sriovctl.model import Inventory


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", hint=f"see `{self.prog} --help`")


@dataclass
class Ctx:
    args: argparse.Namespace
    out: Any = field(default_factory=lambda: sys.stdout)
    host: Host | None = None

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    def open_host(self) -> Host:
        if self.host is None:
            if self.args.root and self.args.sim:
                raise UsageError("--root and --sim: choose one host")
            if self.args.sim:
                from sriovctl.host.simdir import open_sim

                self.host = open_sim(self.args.sim)
            elif self.args.root:
                from sriovctl.snapshot import open_root

                self.host = open_root(self.args.root)
            else:
                from sriovctl.host.base import Host

                self.host = Host(root="/", label=os.uname().nodename)
        return self.host

    def inventory(self) -> Inventory:
        from sriovctl.inventory import read_inventory

        return read_inventory(self.open_host())

    def emit_json(self, doc: dict[str, Any]) -> None:
        # Indented for a person at a terminal; compact (and written by the fast C encoder) for programs.
        tty = hasattr(self.out, "isatty") and self.out.isatty()
        self.out.write(json.dumps(doc, indent=2 if tty else None) + "\n")


# ---------------------------------------------------------------- verbs

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
        ctx.emit_json({"schema_version": 1, "host": inv.host, "devices": [
            {"address": str(d.address), "short": d.address.short, "role": "pf" if d.is_pf else "vf" if d.is_vf else "device",
             "line": lspci_line(d)} for d in devs]})
        return 0
    for d in devs:
        ctx.out.write(lspci_line(d) + "\n")
    return 0


def cmd_show(ctx: Ctx) -> int:
    from sriovctl.resolve import resolve_one

    inv = ctx.inventory()
    d = resolve_one(inv, ctx.args.device)
    if ctx.json:
        from sriovctl.cli.jsonout import config_json, device_json

        ctx.emit_json({"schema_version": 1, "host": inv.host, "device": device_json(inv, d),
                       "config": config_json(d.config)})
        return 0
    from sriovctl.cli.render import render_show

    render_show(inv, d, ctx.out)
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
    from sriovctl.nodedev import nodedev_names

    names = nodedev_names(ctx.inventory())
    if ctx.json:
        ctx.emit_json({"schema_version": 1, "nodedevs": names})
    else:
        ctx.out.write("".join(n + "\n" for n in names))
    return 0


def cmd_nodedev_dumpxml(ctx: Ctx) -> int:
    from sriovctl.nodedev import dumpxml
    from sriovctl.resolve import resolve_one

    inv = ctx.inventory()
    d = resolve_one(inv, ctx.args.name)
    xml = dumpxml(inv, d)
    if ctx.json:
        ctx.emit_json({"schema_version": 1, "name": d.address.nodedev_name, "xml": xml})
    else:
        ctx.out.write(xml)
    return 0


def cmd_pci_decode(ctx: Ctx) -> int:
    from sriovctl.cli.jsonout import config_json
    from sriovctl.pci.config import decode
    from sriovctl.pci.dump import read_dump

    devices = read_dump(Path(ctx.args.file))
    decoded = [(dd, decode(dd.data, what=f"{ctx.args.file}: {dd.address or 'device'}")) for dd in devices]
    if ctx.json:
        ctx.emit_json({"schema_version": 1, "file": ctx.args.file, "devices": [
            {"address": None if dd.address is None else str(dd.address), "title": dd.title, "config": config_json(c)}
            for dd, c in decoded]})
        return 0
    from sriovctl.cli.render import render_decoded

    for dd, c in decoded:
        render_decoded(dd.address, dd.title, c, ctx.out)
    return 0


def cmd_snapshot(ctx: Ctx) -> int:
    from sriovctl.snapshot import capture

    out = Path(ctx.args.out)
    if not out.name.endswith((".tar.gz", ".tgz")):
        raise UsageError(f"{out}: a snapshot is written as .tar.gz", hint="e.g. sriovctl snapshot host1.tar.gz")
    meta = capture(ctx.open_host(), out)
    if ctx.json:
        ctx.emit_json({"schema_version": 1, "file": str(out), **meta})
    else:
        ctx.out.write(f"{out}: {meta['files']} files from {meta['source']}\n")
    return 0


def cmd_sim_list(ctx: Ctx) -> int:
    from sriovctl.host.simdir import list_sims, sim_dir

    rows = list_sims()
    if ctx.json:
        ctx.emit_json({"schema_version": 1, "dir": str(sim_dir()), "hosts": [
            {"name": n, "origin": o, "built": b} for n, o, b in rows]})
    else:
        for n, o, b in rows:
            ctx.out.write(f"{n:<16} {o:<9} {'built' if b else 'not built yet'}\n")
    return 0


def cmd_sim_reset(ctx: Ctx) -> int:
    from sriovctl.host.simdir import reset_sim

    root = reset_sim(ctx.args.name)
    ctx.emit_json({"schema_version": 1, "name": ctx.args.name, "dir": str(root)}) if ctx.json else \
        ctx.out.write(f"{ctx.args.name}: reset ({root})\n")
    return 0


def cmd_sim_create(ctx: Ctx) -> int:
    from sriovctl.host.simdir import create_sim

    root = create_sim(ctx.args.name, Path(ctx.args.spec))
    ctx.emit_json({"schema_version": 1, "name": ctx.args.name, "dir": str(root)}) if ctx.json else \
        ctx.out.write(f"{ctx.args.name}: created from {ctx.args.spec} ({root})\n")
    return 0


# ---------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sriovctl", description="SR-IOV control plane: see, check and configure PFs and VFs.")
    p.add_argument("--version", action="version", version=f"sriovctl {__version__}")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--root", metavar="PATH", help="read a snapshot (directory or .tar.gz) instead of the live host")
    g.add_argument("--sim", metavar="NAME", help="use a simulated host (see `sriovctl sim list`)")
    p.add_argument("--json", action="store_true", help="print JSON (schemas: sriovctl/schemas/)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    def verb(name: str, fn: Callable[[Ctx], int], help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    verb("status", cmd_status, "PFs with VF counts and assignable counts, then VFs (the default verb)")
    sp = verb("list", cmd_list, "lspci-style lines for PFs (and VFs)")
    sp.add_argument("--vfs", action="store_true", help="also list VFs")
    sp.add_argument("--all", action="store_true", help="every PCI device")
    sp = verb("show", cmd_show, "everything known about one device, with its decoded capabilities")
    sp.add_argument("device", help="0000:0b:10.0, 0b:10.0, netdev, pci_0000_0b_10_0 or PF#N")
    verb("tree", cmd_tree, "root complex → ports → switches → PFs → VFs, with IOMMU groups and ACS")

    nd = sub.add_parser("nodedev", help="libvirt node-device names and XML")
    nds = nd.add_subparsers(dest="nodedev_verb", metavar="VERB", parser_class=_Parser, required=True)
    x = nds.add_parser("list", help="node-device names (pci_DDDD_BB_DD_F)")
    x.set_defaults(fn=cmd_nodedev_list)
    x = nds.add_parser("dumpxml", help="node-device XML as libvirt prints it")
    x.add_argument("name")
    x.set_defaults(fn=cmd_nodedev_dumpxml)

    pc = sub.add_parser("pci", help="PCI tools")
    pcs = pc.add_subparsers(dest="pci_verb", metavar="VERB", parser_class=_Parser, required=True)
    x = pcs.add_parser("decode", help="decode a config-space dump (lspci -x/-xxx/-xxxx text or a binary config file)")
    x.add_argument("file")
    x.set_defaults(fn=cmd_pci_decode)

    sp = verb("snapshot", cmd_snapshot, "capture what sriovctl reads into OUT.tar.gz (for --root elsewhere)")
    sp.add_argument("out")

    sm = sub.add_parser("sim", help="simulated hosts")
    sms = sm.add_subparsers(dest="sim_verb", metavar="VERB", parser_class=_Parser, required=True)
    x = sms.add_parser("list", help="built-in and created simulated hosts")
    x.set_defaults(fn=cmd_sim_list)
    x = sms.add_parser("reset", help="rebuild a simulated host from its spec")
    x.add_argument("name")
    x.set_defaults(fn=cmd_sim_reset)
    x = sms.add_parser("create", help="create a simulated host from a spec")
    x.add_argument("name")
    x.add_argument("--from", dest="spec", required=True, metavar="SPEC.yaml")
    x.set_defaults(fn=cmd_sim_create)
    return p


def run(argv: Sequence[str] | None = None, out: Any = None, err: Any = None) -> tuple[int, Ctx | None]:
    """Run the CLI in-process. Returns (exit code, context) — the context holds the host and its write log."""
    err = err or sys.stderr
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    ctx: Ctx | None = None
    try:
        args = build_parser().parse_args(argv)
        ctx = Ctx(args, out or sys.stdout)
        fn: Callable[[Ctx], int] = getattr(args, "fn", cmd_status)
        return fn(ctx), ctx
    except SriovctlError as e:
        if debug:
            import traceback

            traceback.print_exc(file=err)
        hint = f" (hint: {e.hint})" if e.hint else ""
        err.write(f"sriovctl: {e.message}{hint}\n")
        return e.exit_code, ctx
    except SystemExit as e:  # --help, --version
        return int(e.code or 0), ctx
    except KeyboardInterrupt:
        err.write("sriovctl: interrupted\n")
        return 130, ctx
    except BrokenPipeError:
        return 0, ctx
    except Exception as e:  # a bug: say so in one line, traceback with --debug
        if debug:
            import traceback

            traceback.print_exc(file=err)
        err.write(f"sriovctl: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)\n")
        return os.EX_SOFTWARE, ctx


def main(argv: Sequence[str] | None = None) -> int:
    code, _ = run(argv)
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
