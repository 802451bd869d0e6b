"""sriovctl's command line. One function per verb; global options go before the verb.

Imports beyond argparse are made inside the verbs, so that ``sriovctl --version`` starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from sriovctl import __version__
from sriovctl.errors import PartialError, SriovctlError, UsageError
from sriovctl.untrusted import sanitize_line, shown

if TYPE_CHECKING:
    from sriovctl.model import Inventory
    from sriovctl.ops.plan import Notice, Outcome
    from sriovctl.ops.session import Host, Session
    from sriovctl.ops.virt import AttachOptions


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("sriovctl").strip()
        raise UsageError(f"{where}: {message}" if where else message, hint=f"see `{self.prog} --help`")


@dataclass
class Ctx:
    args: argparse.Namespace
    out: Any = field(default_factory=lambda: sys.stdout)
    host: Host | None = None
    err: Any = field(default_factory=lambda: sys.stderr)  # warnings and notes

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    def open_host(self) -> Host:
        if self.host is None:
            from sriovctl.ops.session import open_host

            if self.args.root is not None and self.args.sim is not None:
                raise UsageError("--root and --sim: choose one host")
            for opt, value in (("--sim", self.args.sim), ("--root", self.args.root)):
                if value is not None and not value.strip():
                    # An unset variable ("--sim $HOST") must never fall through to the live host.
                    raise UsageError(f"{opt}: empty value {shown(value)}",
                                     hint=f"name a {'simulated host' if opt == '--sim' else 'snapshot'}, "
                                          "or leave the option out for the live host")

            self.host = open_host(self.args.sim, self.args.root)
        return self.host

    def session(self, stats: bool = False) -> Session:
        from sriovctl.ops.session import Session

        host = self.open_host()
        host.dry_run = bool(getattr(self.args, "dry_run", False))
        return Session(host, stats=stats)

    def inventory(self, stats: bool = False) -> Inventory:
        return self.session(stats).inv

    def emit_json(self, doc: Mapping[str, Any]) -> None:
        # Indented for a person at a terminal; compact (and written by the fast C encoder) for programs.
        tty = hasattr(self.out, "isatty") and self.out.isatty()
        self.out.write(json.dumps(doc, indent=2 if tty else None) + "\n")

    def doc(self, **fields: Any) -> dict[str, Any]:
        from sriovctl.cli.documents import SCHEMA_VERSION

        return {"schema_version": SCHEMA_VERSION, **fields}


# ---------------------------------------------------------------- reading verbs

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
        ctx.emit_json(ctx.doc(host=inv.host, devices=[
            {"address": str(d.address), "short": d.address.short, "role": "pf" if d.is_pf else "vf" if d.is_vf else "device",
             "line": lspci_line(d)} for d in devs]))
        return 0
    for d in devs:
        ctx.out.write(lspci_line(d) + "\n")
    return 0


def cmd_show(ctx: Ctx) -> int:
    s = ctx.session(stats=True)
    d = s.find(ctx.args.device)
    if ctx.json:
        from sriovctl.cli.jsonout import config_json, device_json

        ctx.emit_json(ctx.doc(host=s.inv.host, device=device_json(s.inv, d), config=config_json(d.config)))
        return 0
    from sriovctl.cli.render import render_show

    render_show(s.inv, d, ctx.out)
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
        ctx.emit_json(ctx.doc(nodedevs=names))
    else:
        ctx.out.write("".join(n + "\n" for n in names))
    return 0


def cmd_nodedev_dumpxml(ctx: Ctx) -> int:
    from sriovctl.ops.reads import nodedev_xml

    s = ctx.session()
    d = s.find(ctx.args.name)
    xml = nodedev_xml(s.inv, d)
    if ctx.json:
        ctx.emit_json(ctx.doc(name=d.address.nodedev_name, xml=xml))
    else:
        ctx.out.write(xml)
    return 0


def cmd_pci_decode(ctx: Ctx) -> int:
    from sriovctl.cli.jsonout import config_json
    from sriovctl.ops.reads import decode_dump

    decoded = decode_dump(ctx.args.file)
    if ctx.json:
        ctx.emit_json(ctx.doc(file=ctx.args.file, devices=[
            {"address": None if dd.address is None else str(dd.address), "title": dd.title, "config": config_json(c)}
            for dd, c in decoded]))
        return 0
    from sriovctl.cli.render import render_decoded

    for dd, c in decoded:
        render_decoded(dd.address, dd.title, c, ctx.out)
    return 0


def cmd_snapshot(ctx: Ctx) -> int:
    from sriovctl.ops.reads import snapshot

    out = Path(ctx.args.out)
    if not out.name.endswith((".tar.gz", ".tgz")):
        raise UsageError(f"{out}: a snapshot is written as .tar.gz", hint="e.g. sriovctl snapshot host1.tar.gz")
    meta = snapshot(ctx.open_host(), out)
    if ctx.json:
        ctx.emit_json(ctx.doc(file=str(out), **meta))
    else:
        ctx.out.write(f"{out}: {meta['files']} files from {meta['source']}\n")
    return 0


def cmd_sim_list(ctx: Ctx) -> int:
    from sriovctl.ops.reads import sim_list

    where, rows = sim_list()
    if ctx.json:
        ctx.emit_json(ctx.doc(dir=where, hosts=[{"name": n, "origin": o, "built": b} for n, o, b in rows]))
    else:
        for n, o, b in rows:
            ctx.out.write(f"{n:<16} {o:<9} {'built' if b else 'not built yet'}\n")
    return 0


def cmd_sim_reset(ctx: Ctx) -> int:
    from sriovctl.ops.reads import sim_reset

    root = sim_reset(ctx.args.name)
    ctx.emit_json(ctx.doc(name=ctx.args.name, dir=str(root))) if ctx.json else \
        ctx.out.write(f"{ctx.args.name}: reset ({root})\n")
    return 0


def cmd_sim_create(ctx: Ctx) -> int:
    from sriovctl.ops.reads import sim_create

    root = sim_create(ctx.args.name, Path(ctx.args.spec))
    ctx.emit_json(ctx.doc(name=ctx.args.name, dir=str(root))) if ctx.json else \
        ctx.out.write(f"{ctx.args.name}: created from {ctx.args.spec} ({root})\n")
    return 0


def cmd_doctor(ctx: Ctx) -> int:
    from sriovctl.errors import EX_DOCTOR_FAIL, EX_DOCTOR_WARN
    from sriovctl.ops.reads import doctor

    s = ctx.session()
    device = s.find(ctx.args.device) if ctx.args.device else None
    report = doctor(s.host, s.inv, device)
    if ctx.json:
        ctx.emit_json(ctx.doc(host=s.inv.host, worst=report.worst.label,
                              findings=[{"id": f.id, "severity": f.severity.label, "area": f.area, "subject": f.subject,
                                         "message": f.message, "hint": f.hint,
                                         "evidence": [{"source": k, "value": v} for k, v in f.evidence]}
                                        for f in report.findings],
                              capacity=report.capacity))
    else:
        from sriovctl.cli.render import render_doctor

        render_doctor(s.inv, report, ctx.out, verbose=ctx.args.verbose)
    return EX_DOCTOR_FAIL if report.worst.label == "fail" else EX_DOCTOR_WARN if report.worst.label == "warn" else 0


# ---------------------------------------------------------------- libvirt and QEMU

def cmd_virt_xml(ctx: Ctx) -> int:
    from sriovctl.ops.virt import XmlOptions, device_xml

    a = ctx.args
    s = ctx.session()
    d = s.find(a.device)
    xml = device_xml(s.inv, d, XmlOptions(mac=a.mac, vlan=a.vlan, profile=a.profile, hostdev=a.hostdev,
                                          vfio_driver=a.vfio_driver,
                                          rom_bar=None if a.rom_bar is None else a.rom_bar == "on",
                                          alias=a.alias, guest_address=a.guest_address, force=a.force))
    return _emit_xml(ctx, d.address, xml)


def _emit_xml(ctx: Ctx, device: object, xml: str) -> int:
    if ctx.json:
        ctx.emit_json(ctx.doc(device=str(device), xml=xml))
    else:
        ctx.out.write(xml)
    return 0


def cmd_virt_network_xml(ctx: Ctx) -> int:
    from sriovctl.ops.virt import network_xml

    s = ctx.session()
    pf = s.find(ctx.args.pf)
    return _emit_xml(ctx, pf.address, network_xml(pf, ctx.args.name, ctx.args.vfs))


def _attach_options(a: argparse.Namespace) -> AttachOptions:
    from sriovctl.ops.virt import AttachOptions

    return AttachOptions(live=a.live, config=a.config, connect=a.connect, mac=getattr(a, "mac", None),
                         vlan=getattr(a, "vlan", None), hostdev=getattr(a, "hostdev", False), force=a.force,
                         wait=getattr(a, "wait", 10.0))


def cmd_virt_attach(ctx: Ctx) -> int:
    from sriovctl.ops.virt import attach

    a = ctx.args
    s = ctx.session()
    # warnings of an attach go to stderr as they arise (before a later refusal): stdout is the result
    outcome = attach(s, a.domain, a.device, _attach_options(a), lambda n: ctx.err.write(_notice(ctx, n) + "\n"))
    if s.host.dry_run:
        return _report(ctx, s.host, outcome, notices=False)
    ctx.emit_json(ctx.doc(domain=a.domain, device=outcome.plan.changes[0].after, xml=outcome.extra["xml"],
                          plan=outcome.plan.to_json(), outcome=outcome.to_json())) if ctx.json \
        else ctx.out.write("\n".join(outcome.messages) + "\n")
    return 0


def cmd_virt_detach(ctx: Ctx) -> int:
    from sriovctl.ops.virt import detach

    s = ctx.session()
    return _report(ctx, s.host, detach(s, ctx.args.domain, ctx.args.device, _attach_options(ctx.args)))


def cmd_virt_list(ctx: Ctx) -> int:
    from sriovctl.ops.virt import domain_uses

    inv = ctx.inventory()
    uses: list[Any] = domain_uses(ctx.args.connect)
    vfs = {v.address for v in inv.vfs}
    rows = sorted((u for u in uses if u.address in vfs or ctx.args.all), key=lambda u: (u.address, u.domain))
    if ctx.json:
        ctx.emit_json(ctx.doc(uses=[{"domain": u.domain, "running": u.running, "state": u.state,
                                     "address": str(u.address), "kind": u.kind, "mac": u.mac} for u in rows]))
        return 0
    if not rows:
        ctx.out.write("no libvirt domain uses a VF\n")
    for u in rows:
        ctx.out.write(f"{u.address}  {u.domain:<20} {u.state:<8} {u.kind:<9} {u.mac or '-'}\n")
    return 0


def cmd_qemu_args(ctx: Ctx) -> int:
    from sriovctl.ops.virt import qemu_args

    if ctx.args.pci_assign:
        raise UsageError("pci-assign (KVM legacy device assignment) was removed from QEMU in 2.12 (and from Linux "
                         "in 4.12): use -device vfio-pci,host=DDDD:BB:DD.F with the VF bound to vfio-pci")
    s = ctx.session()
    devs = [d for n in ctx.args.devices for d in s.find_all(n)]
    argv, not_vfio = qemu_args(s.inv, devs, ctx.args.bus, ctx.args.force)
    if ctx.json:
        ctx.emit_json(ctx.doc(argv=argv, not_on_vfio=not_vfio))
        return 0
    ctx.out.write(" ".join(argv) + "\n")
    if not_vfio:
        ctx.err.write(f"note: bind first: sriovctl vf bind DEV vfio-pci ({', '.join(not_vfio)})\n")
    return 0


def cmd_qemu_hotplug(ctx: Ctx) -> int:
    from sriovctl.ops.virt import hotplug

    a = ctx.args
    s = ctx.session()
    return _report(ctx, s.host, hotplug(s, a.device, a.qmp, a.bus, a.force))


def cmd_qemu_unplug(ctx: Ctx) -> int:
    from sriovctl.ops.virt import unplug

    a = ctx.args
    s = ctx.session()
    return _report(ctx, s.host, unplug(s, a.device, a.qmp, a.wait, a.keep_vfio))


# ---------------------------------------------------------------- writing verbs

def _notice(ctx: Ctx, n: Notice) -> str:
    """A plan's notice in the CLI's words."""
    if n.kind == "forced":
        return f"warning: --force: {n.text}"
    if n.kind == "deprecated":
        return f"warning: {n.text.replace('sriov_numvfs is', 'sriov_numvfs (without --module-param) is')}"
    return f"warning: {n.text}"


def _writes_json(host: Host) -> list[dict[str, Any]]:
    return [{"path": w.path, "value": w.value, "dry_run": w.dry_run} for w in host.writes]


def _report(ctx: Ctx, host: Host, outcome: Outcome | list[Outcome], notices: bool = True) -> int:
    """A writing verb's result: the notices and messages (and, in a dry run, the writes it would make); with
    --json one document holding them, the plan and (when applied) the outcome."""
    outcomes = outcome if isinstance(outcome, list) else [outcome]
    lines = [line for o in outcomes for line in
             ([_notice(ctx, n) for n in o.plan.notices] if notices else []) + o.messages]
    if ctx.json:
        from sriovctl.ops.plan import merge

        merged = merge(outcomes)
        ctx.emit_json(ctx.doc(host=host.label, dry_run=host.dry_run, messages=lines, writes=_writes_json(host),
                              **merged.extra, plan=merged.plan.to_json(),
                              outcome=None if host.dry_run else merged.to_json()))
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
    from sriovctl.ops.vfcount import EnableOptions, apply_count, apply_module_param, plan_enable, plan_module_param

    a = ctx.args
    s = ctx.session()
    pf = s.find(a.pf)
    opts = EnableOptions(reset=a.reset, autoprobe=not a.no_autoprobe, force=a.force, wait=a.wait,
                         progress=_progress(ctx))
    with s.locked(pf.address, a.wait) as inv:
        pf = inv.devices[pf.address]
        if a.module_param:
            plan = plan_module_param(s.host, inv, pf, a.count, a.module_param, a.force)
            return _report(ctx, s.host, apply_module_param(s.host, pf, plan, a.count, a.wait))
        plan = plan_enable(s.host, inv, pf, a.count, opts)
        return _report(ctx, s.host, apply_count(s.host, pf, plan, opts))


def cmd_vf_disable(ctx: Ctx) -> int:
    from sriovctl.ops.vfcount import EnableOptions, apply_count, plan_disable

    s = ctx.session()
    pf = s.find(ctx.args.pf)
    with s.locked(pf.address, ctx.args.wait) as inv:
        pf = inv.devices[pf.address]
        plan = plan_disable(s.host, inv, pf, ctx.args.force)
        return _report(ctx, s.host, apply_count(s.host, pf, plan, EnableOptions(force=ctx.args.force)))


def cmd_vf_set(ctx: Ctx) -> int:
    from sriovctl.ops.session import pf_of
    from sriovctl.ops.vfattrs import VfSettings, apply_set, plan_set, validate_same

    a = ctx.args
    s = ctx.session()
    targets = [d for name in a.devices for d in s.find_all(name)]
    not_vf = [d for d in targets if not d.is_vf]
    if not_vf:
        raise UsageError(f"{not_vf[0].address}: not a VF", hint="name VFs: PF#N, PF#0-3,5 or their addresses")
    settings = VfSettings(**{k: getattr(a, k) for k in VfSettings.field_names()})
    validate_same(targets, settings)
    with s.locked(pf_of(targets[0]), a.wait) as inv:
        fresh = [inv.devices[d.address] for d in targets]
        return _report(ctx, s.host, apply_set(s.host, plan_set(s.host, inv, [(v, settings) for v in fresh])))


def _per_device(ctx: Ctx, unbind: bool) -> int:
    from sriovctl.ops.binding import BindOptions, apply_binding, plan_bind, plan_unbind
    from sriovctl.ops.plan import Plan

    a = ctx.args
    s = ctx.session()
    opts = BindOptions(force=a.force, wait=a.wait)
    outcomes = []
    devices = s.find_all(a.device)
    with s.locked_all(devices, a.wait) as inv:  # one lock per PF for the whole range: no writer in between
        for d in devices:
            d = inv.devices[d.address]
            plan = Plan("vf-unbind" if unbind else "vf-bind", s.host.label)
            if unbind:
                plan_unbind(s.host, inv, d, a.force, plan)
            else:
                plan_bind(s.host, inv, d, a.driver, opts, plan)
            outcomes.append(apply_binding(s.host, inv, plan, opts, unbind=unbind))
    return _report(ctx, s.host, outcomes)


def cmd_vf_bind(ctx: Ctx) -> int:
    return _per_device(ctx, unbind=False)


def cmd_vf_unbind(ctx: Ctx) -> int:
    return _per_device(ctx, unbind=True)


def _onoff(v: str) -> bool:
    if v in ("on", "1", "true", "yes"):
        return True
    if v in ("off", "0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{v!r}: expected on or off")


def _nonneg_int(v: str) -> int:
    """A number of ASCII digits (decimal, or 0x hex): int() alone takes other scripts' digits, '_' and spaces."""
    import re

    if re.fullmatch(r"[0-9]{1,10}", v, re.ASCII):
        return int(v)
    if re.fullmatch(r"0[xX][0-9a-fA-F]{1,8}", v, re.ASCII):
        return int(v, 16)
    raise argparse.ArgumentTypeError(f"{shown(v)}: not a non-negative number")


def _qemu_id(v: str) -> str:
    """A QEMU id (virt/qemu.py QEMU_ID): no ',' or '=' that would add options of its own."""
    from sriovctl.ops.virt import is_qemu_id

    if not is_qemu_id(v):
        raise argparse.ArgumentTypeError(f"{shown(v)}: not a QEMU id (a letter, then letters, digits, - . _)")
    return v


# ---------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    from sriovctl.attrs import VF_ATTRS

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
    x: argparse.ArgumentParser = nds.add_parser("list", help="node-device names (pci_DDDD_BB_DD_F)")
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

    sp = verb("doctor", cmd_doctor, "can this host do SR-IOV safely, and which VFs can really go to separate VMs?")
    sp.add_argument("device", nargs="?", help="limit device findings to one PF or VF")
    sp.add_argument("-v", "--verbose", action="store_true", help="show evidence for every finding, not only problems")

    vfp = sub.add_parser("vf", help="create, configure and bind VFs")
    vfs = vfp.add_subparsers(dest="vf_verb", metavar="VERB", parser_class=_Parser, required=True)

    def writer(name: str, fn: Callable[[Ctx], int], help_: str, wait: float = 10.0,
               wait_help: str = "deadline for another sriovctl's change of this PF to end (its lock)",
               ) -> argparse.ArgumentParser:
        x: argparse.ArgumentParser = vfs.add_parser(name, help=help_, description=help_)
        x.set_defaults(fn=fn)
        x.add_argument("--dry-run", action="store_true", help="print the plan and the writes it would make, "
                                                              "change nothing")
        x.add_argument("--force", action="store_true", help="override the safety interlocks (in use, default route, "
                                                            "not assignable)")
        x.add_argument("--wait", type=float, default=wait, metavar="SECONDS", help=wait_help)
        return x

    x = writer("enable", cmd_vf_enable, "enable N VFs on a PF (sriov_numvfs), waiting until they have settled", 30.0,
               "deadline for the VFs to settle (and for another sriovctl's change of this PF to end)")
    x.add_argument("pf")
    x.add_argument("count", type=_nonneg_int)
    x.add_argument("--reset", action="store_true", help="change a non-zero count: write 0 first (refused if in use)")
    x.add_argument("--no-autoprobe", action="store_true", help="leave the new VFs unbound (sriov_drivers_autoprobe 0)")
    x.add_argument("--module-param", metavar="NAME", help="legacy: reload the PF's driver with NAME=COUNT (igb "
                                                           "max_vfs) and write /etc/modprobe.d/DRIVER.conf")
    x = writer("disable", cmd_vf_disable, "remove all VFs of a PF (refused while any is in use)")
    x.add_argument("pf")
    x = writer("set", cmd_vf_set, "set VF attributes through netlink: PF#N, or PF#0-3,5 for all but --mac")
    x.add_argument("devices", nargs="+")
    for attr in VF_ATTRS:  # one table: attrs.py
        types: dict[str, Callable[[str], Any]] = {"mac": str, "int": _nonneg_int, "bool": _onoff, "choice": str}
        kind = types[attr.kind.value]
        x.add_argument(attr.flag, dest=attr.key, type=kind, metavar=attr.metavar,
                       choices=list(attr.choices) or None, help=attr.help + (f" ({attr.nmstate})" if attr.nmstate else ""))
    x = writer("bind", cmd_vf_bind, "bind a device to vfio-pci, its host driver (`host`) or another driver", 10.0,
               "deadline for the driver to bind (and for another sriovctl's change of this PF to end)")
    x.add_argument("device")
    x.add_argument("driver", help="vfio-pci, host, or a driver name")
    x = writer("unbind", cmd_vf_unbind, "unbind a device from its driver")
    x.add_argument("device")

    vp = sub.add_parser("virt", help="libvirt XML for VFs")
    vps = vp.add_subparsers(dest="virt_verb", metavar="VERB", parser_class=_Parser, required=True)
    x = vps.add_parser("xml", help="<interface type='hostdev'> (or <hostdev> with --hostdev) for a VF")
    x.set_defaults(fn=cmd_virt_xml)
    x.add_argument("device")
    x.add_argument("--mac", help="default: a stable generated 52:54:00 MAC no other VF on the host has")
    x.add_argument("--vlan", type=_nonneg_int)
    x.add_argument("--profile", metavar="PROFILEID", help="802.1Qbh port profile (Cisco enic only)")
    x.add_argument("--hostdev", action="store_true", help="<hostdev mode='subsystem' type='pci'> instead")
    x.add_argument("--vfio-driver", action="store_true", help="add <driver name='vfio'/>")
    x.add_argument("--rom-bar", choices=["on", "off"])
    x.add_argument("--alias", help="user alias, ua-…")
    x.add_argument("--guest-address", metavar="DDDD:BB:DD.F", help="the device's address inside the guest")
    x.add_argument("--force", action="store_true", help="write it even if libvirt or the IOMMU would refuse")
    for name, fn, help_ in (("attach", cmd_virt_attach, "give a VF to a libvirt domain as <interface type='hostdev'>"),
                            ("detach", cmd_virt_detach, "take a VF back from a libvirt domain (and back to its host driver)")):
        x = vps.add_parser(name, help=help_, description=help_)
        x.set_defaults(fn=fn)
        x.add_argument("domain")
        x.add_argument("device")
        x.add_argument("--live", action="store_true", help="the running domain")
        x.add_argument("--config", action="store_true",
                       help="its persistent definition (with --live: both; neither: libvirt's current state)")
        x.add_argument("--connect", default="qemu:///system", metavar="URI")
        x.add_argument("--force", action="store_true")
        x.add_argument("--dry-run", action="store_true", help="print the libvirt operation and the writes, change nothing")
        x.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                       help="deadline for the VF to be back on its host driver, libvirt's own unplug wait included"
                       if name == "detach" else "deadline for another sriovctl's change of this PF to end")
        if name == "attach":
            x.add_argument("--mac", help="default: a stable generated 52:54:00 MAC no other VF on the host has")
            x.add_argument("--vlan", type=_nonneg_int)
            x.add_argument("--hostdev", action="store_true",
                           help="a plain <hostdev> (no MAC, VLAN; for VFs the guest configures itself)")
    x = vps.add_parser("list", help="which libvirt domain uses which VF")
    x.set_defaults(fn=cmd_virt_list)
    x.add_argument("--connect", default="qemu:///system", metavar="URI")
    x.add_argument("--all", action="store_true", help="every PCI hostdev, not only VFs")
    x = vps.add_parser("network-xml", help="a libvirt hostdev network handing out this PF's VFs")
    x.set_defaults(fn=cmd_virt_network_xml)
    x.add_argument("pf")
    x.add_argument("--name", required=True)
    x.add_argument("--vfs", action="store_true", help="list the VFs explicitly instead of <pf dev=…/>")

    qp = sub.add_parser("qemu", help="VFs for QEMU directly (vfio-pci, QMP)")
    qps = qp.add_subparsers(dest="qemu_verb", metavar="VERB", parser_class=_Parser, required=True)
    x = qps.add_parser("args", help="-device vfio-pci,host=… arguments")
    x.set_defaults(fn=cmd_qemu_args)
    x.add_argument("devices", nargs="+")
    x.add_argument("--bus", type=_qemu_id)
    x.add_argument("--pci-assign", action="store_true", help=argparse.SUPPRESS)
    x.add_argument("--force", action="store_true")
    for name, fn in (("hotplug", cmd_qemu_hotplug), ("unplug", cmd_qemu_unplug)):
        x = qps.add_parser(name, help=f"{name} a VF through QMP")
        x.set_defaults(fn=fn)
        x.add_argument("device")
        x.add_argument("--qmp", required=True, metavar="SOCKET")
        x.add_argument("--force", action="store_true")
        if name == "hotplug":
            x.add_argument("--bus", metavar="PORT", type=_qemu_id,
                           help="a free pcie-root-port's id (default: the first free one)")
        else:
            x.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                           help="deadline for the guest to release it (DEVICE_DELETED)")
            x.add_argument("--keep-vfio", action="store_true", help="leave it on vfio-pci (default: its host driver)")
        x.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")

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


def _error_json(ctx: Ctx | None, out: Any, code: int, message: str, hint: str | None,
                details: list[str] | None = None, outcome: Any = None) -> None:
    """Under --json the output is one JSON document, errors included (schemas/error.json); a partially applied
    change also carries what was done (the vf-action fields, with the plan and the outcome)."""
    from sriovctl.cli.documents import SCHEMA_VERSION

    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION,
                           "error": {"exit_code": code, "message": message, "hint": hint}}
    host = ctx.host if ctx is not None else None
    if host is not None and details is not None:
        doc.update(host=host.label, dry_run=host.dry_run, messages=details, writes=_writes_json(host))
        if outcome is not None:
            doc.update(plan=outcome.plan.to_json(), outcome=outcome.to_json())
    out.write(json.dumps(doc) + "\n")


def run(argv: Sequence[str] | None = None, out: Any = None, err: Any = None) -> tuple[int, Ctx | None]:
    """Run the CLI in-process. Returns (exit code, context) — the context holds the host and its write log."""
    err = err or sys.stderr
    out = out or sys.stdout
    raw = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in raw
    ctx: Ctx | None = None
    args: argparse.Namespace | None = None

    def fail(code: int, message: str, hint: str | None, details: list[str] | None = None, outcome: Any = None) -> None:
        message = sanitize_line(message)
        hint = sanitize_line(hint) if hint else None
        if ctx.json if ctx is not None else "--json" in raw:
            _error_json(ctx, out, code, message, hint, details, outcome)
        elif details:
            out.write("".join(sanitize_line(line) + "\n" for line in details))
        err.write(f"sriovctl: {message}" + (f" (hint: {hint})" if hint else "") + "\n")

    try:
        from sriovctl.cli.remedies import words

        args = build_parser().parse_args(hoist_globals(raw))
        ctx = Ctx(args, out, err=err)
        fn: Callable[[Ctx], int] = getattr(args, "fn", cmd_status)
        return fn(ctx), ctx
    except PartialError as e:
        fail(e.exit_code, *words(e, args), e.details, e.outcome)
        return e.exit_code, ctx
    except SriovctlError as e:
        if debug:
            import traceback

            traceback.print_exc(file=err)
        fail(e.exit_code, *words(e, args))
        return e.exit_code, ctx
    except SystemExit as e:  # --help, --version; a signal turned into an exit (main)
        return int(e.code or 0), ctx
    except KeyboardInterrupt:
        fail(130, "interrupted", None)
        return 130, ctx
    except BrokenPipeError:
        return 0, ctx
    except (MemoryError, RecursionError) as e:  # input that slipped past a limit: say so, not "internal error"
        fail(os.EX_DATAERR, f"input too large or too deeply nested ({type(e).__name__})",
             "see docs/SECURITY.md for the limits")
        return os.EX_DATAERR, ctx
    except Exception as e:  # a bug: say so in one line, traceback with --debug
        if debug:
            import traceback

            traceback.print_exc(file=err)
        fail(os.EX_SOFTWARE, f"internal error: {type(e).__name__}: {e}", "run with --debug for the traceback")
        return os.EX_SOFTWARE, ctx


GLOBAL_FLAGS = ("--json", "--debug")  # global options without a value
GLOBAL_OPTIONS = ("--sim", "--root")  # global options with one


def hoist_globals(argv: list[str]) -> list[str]:
    """Global options are accepted anywhere on the line (people type `sriovctl pci decode F --json`, `sriovctl vf
    enable PF 4 --sim lab`): they are moved before the verb, so no verb's parser sees them and none of its
    defaults can overwrite them. Everything after `--` is left alone; a value option given twice with two
    different values is refused."""
    if "--" in argv:
        cut = argv.index("--")
        head, tail = argv[:cut], argv[cut:]
    else:
        head, tail = argv, []
    flags: list[str] = []
    values: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(head):
        a = head[i]
        name, eq, value = a.partition("=")
        if a in GLOBAL_FLAGS:
            if a not in flags:
                flags.append(a)
        elif name in GLOBAL_OPTIONS and (eq or i + 1 < len(head)):
            if not eq:
                i += 1
                value = head[i]
            if name in values and values[name] != value:
                raise UsageError(f"{name} given twice: {shown(values[name])} and {shown(value)}", hint="name one host")
            values[name] = value
        else:
            rest.append(a)
        i += 1
    return flags + [x for k, v in values.items() for x in (k, v)] + rest + tail


def _exit_on_signal(signum: int, _frame: Any) -> None:
    """SIGTERM/SIGHUP end the run like Ctrl-C does: cleanup (atexit: extracted snapshots) still runs."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    import signal

    os.umask(os.umask(0o022) | 0o022)  # we run as root: what we create is never group- or world-writable
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    code, _ = run(argv)
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
