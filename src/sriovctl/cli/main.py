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
from sriovctl.errors import PartialError, SriovctlError, UsageError
from sriovctl.untrusted import sanitize_line, shown

if TYPE_CHECKING:
    from sriovctl.host.base import Host
    from sriovctl.model import Inventory


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
            if self.args.root is not None and self.args.sim is not None:
                raise UsageError("--root and --sim: choose one host")
            for opt, value in (("--sim", self.args.sim), ("--root", self.args.root)):
                if value is not None and not value.strip():
                    # An unset variable ("--sim $HOST") must never fall through to the live host.
                    raise UsageError(f"{opt}: empty value {shown(value)}",
                                     hint=f"name a {'simulated host' if opt == '--sim' else 'snapshot'}, "
                                          "or leave the option out for the live host")
            if self.args.sim is not None:
                from sriovctl.host.sim.catalog import open_sim

                self.host = open_sim(self.args.sim)
            elif self.args.root is not None:
                from sriovctl.snapshot import open_root

                self.host = open_root(self.args.root)
            else:
                from sriovctl.host.base import Host

                self.host = Host(root="/", label=os.uname().nodename)
        return self.host

    def inventory(self, stats: bool = False) -> Inventory:
        from sriovctl.inventory import read_inventory

        return read_inventory(self.open_host(), stats=stats)

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

    inv = ctx.inventory(stats=True)
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
    from sriovctl.host.sim.catalog import list_sims, sim_dir

    rows = list_sims()
    if ctx.json:
        ctx.emit_json({"schema_version": 1, "dir": str(sim_dir()), "hosts": [
            {"name": n, "origin": o, "built": b} for n, o, b in rows]})
    else:
        for n, o, b in rows:
            ctx.out.write(f"{n:<16} {o:<9} {'built' if b else 'not built yet'}\n")
    return 0


def cmd_sim_reset(ctx: Ctx) -> int:
    from sriovctl.host.sim.catalog import reset_sim

    root = reset_sim(ctx.args.name)
    ctx.emit_json({"schema_version": 1, "name": ctx.args.name, "dir": str(root)}) if ctx.json else \
        ctx.out.write(f"{ctx.args.name}: reset ({root})\n")
    return 0


def cmd_sim_create(ctx: Ctx) -> int:
    from sriovctl.host.sim.catalog import create_sim

    root = create_sim(ctx.args.name, Path(ctx.args.spec))
    ctx.emit_json({"schema_version": 1, "name": ctx.args.name, "dir": str(root)}) if ctx.json else \
        ctx.out.write(f"{ctx.args.name}: created from {ctx.args.spec} ({root})\n")
    return 0


def cmd_doctor(ctx: Ctx) -> int:
    from sriovctl.doctor import Severity, run_doctor
    from sriovctl.errors import EX_DOCTOR_FAIL, EX_DOCTOR_WARN
    from sriovctl.resolve import resolve_one

    host = ctx.open_host()
    inv = ctx.inventory()
    device = resolve_one(inv, ctx.args.device) if ctx.args.device else None
    report = run_doctor(host, inv, device)
    if ctx.json:
        ctx.emit_json({"schema_version": 1, "host": inv.host, "worst": report.worst.label,
                       "findings": [{"id": f.id, "severity": f.severity.label, "area": f.area, "subject": f.subject,
                                     "message": f.message, "hint": f.hint,
                                     "evidence": [{"source": k, "value": v} for k, v in f.evidence]}
                                    for f in report.findings],
                       "capacity": report.capacity})
    else:
        from sriovctl.cli.render import render_doctor

        render_doctor(inv, report, ctx.out, verbose=ctx.args.verbose)
    return {Severity.FAIL: EX_DOCTOR_FAIL, Severity.WARN: EX_DOCTOR_WARN}.get(report.worst, 0)


def cmd_virt_xml(ctx: Ctx) -> int:
    from sriovctl.pci.address import PciAddress
    from sriovctl.resolve import resolve_one
    from sriovctl.virt.macs import generated_mac
    from sriovctl.virt.xml import Hostdev, HostdevInterface

    a = ctx.args
    inv = ctx.inventory()
    d = resolve_one(inv, a.device)
    if not d.assignability or not d.assignability.assignable:
        reason = d.assignability.reason if d.assignability else "unknown"
        if not a.force:
            from sriovctl.errors import InterlockError

            raise InterlockError(f"{d.address}: not assignable: {reason}", hint="see `sriovctl doctor`; --force writes it anyway")
    dev: Hostdev | HostdevInterface
    if a.hostdev:
        if a.mac or a.vlan is not None or a.profile:
            raise UsageError("--hostdev: a plain hostdev carries no MAC, VLAN or port profile",
                             hint="drop --hostdev for an <interface type='hostdev'>")
        dev = Hostdev.new(d.address)
    else:
        if not d.is_vf:
            raise UsageError(f"{d.address}: not a VF: an <interface type='hostdev'> needs a network VF",
                             hint="use --hostdev for other PCI functions")
        iface = HostdevInterface.new(d.address, a.mac or generated_mac(inv, d))
        if a.vlan is not None:
            iface.set_vlan(a.vlan)
        if a.profile:
            iface.set_port_profile(a.profile)
        pf = inv.devices.get(d.physfn) if d.physfn else None
        if not a.force:
            iface.check_libvirt_rules(pf.driver if pf else None)
        dev = iface
    if a.vfio_driver:
        dev.set_driver_vfio()
    if a.rom_bar is not None:
        dev.set_rom(bar=a.rom_bar == "on")
    if a.alias:
        dev.alias = a.alias
    if a.guest_address:
        dev.guest_address = PciAddress.parse(a.guest_address)
    return _emit_xml(ctx, d.address, dev.to_xml())


def _emit_xml(ctx: Ctx, device: object, xml: str) -> int:
    if ctx.json:
        ctx.emit_json({"schema_version": 1, "device": str(device), "xml": xml})
    else:
        ctx.out.write(xml)
    return 0


def _vf_for_vm(ctx: Ctx, inv: Inventory, name: str) -> Any:
    from sriovctl.resolve import resolve_one

    return _check_vf_for_vm(ctx, resolve_one(inv, name))


def _check_vf_for_vm(ctx: Ctx, d: Any) -> Any:
    if not d.is_vf:
        raise UsageError(f"{d.address}: not a VF", hint="name a VF: PF#N or its address")
    if not (d.assignability and d.assignability.assignable) and not ctx.args.force:
        from sriovctl.errors import InterlockError

        raise InterlockError(f"{d.address}: not assignable: {d.assignability.reason if d.assignability else '?'}",
                             hint="see `sriovctl doctor`; --force to try anyway")
    return d


def _require_pf_up(ctx: Ctx, pf: Any) -> None:
    """libvirt programs a hostdev interface's MAC and VLAN through the PF and refuses while the PF is down
    ("PF is not online", seen in the lab): say so first, with the fix."""
    if pf is None or not pf.netdevs:
        return
    nd = pf.netdevs[0].name
    flags = ctx.open_host().read_text(f"sys/class/net/{nd}/flags")
    if flags is not None and not int(flags, 16) & 0x1:  # IFF_UP
        from sriovctl.errors import UnavailableError

        raise UnavailableError(f"{pf.address} ({nd}): the PF is down: libvirt sets the VF's MAC and VLAN through it",
                               hint=f"bring it up first: ip link set dev {nd} up")


def cmd_virt_attach(ctx: Ctx) -> int:
    from sriovctl.errors import InterlockError
    from sriovctl.host.base import WriteRecord
    from sriovctl.virt import libvirt_api as lv
    from sriovctl.virt.macs import generated_mac
    from sriovctl.virt.xml import Hostdev, HostdevInterface

    a = ctx.args
    inv = ctx.inventory()
    d = _vf_for_vm(ctx, inv, a.device)
    conn = lv.connect(a.connect)
    lv.lookup(conn, a.domain)
    owners = [u for u in lv.domain_uses(conn) if u.address == d.address and u.domain != a.domain]
    if owners and not a.force:
        o = owners[0]
        raise InterlockError(f"{d.address}: already given to domain {o.domain} ({o.state})",
                             hint=f"detach it from {o.domain} first (sriovctl virt detach {o.domain} {a.device})")
    warnings: list[str] = []
    if a.live or not a.config:  # libvirt takes it from its driver now: the host or a guest outside libvirt may use it
        from sriovctl.vf import guard_take

        guard_take(ctx.open_host(), d, [], a.force, warnings, f"refusing to give it to {a.domain}")
    for w in warnings:
        ctx.err.write(w + "\n")
    pf = inv.devices.get(d.physfn) if d.physfn else None
    dev: Hostdev | HostdevInterface
    if a.hostdev:  # a plain PCI hostdev: no MAC or VLAN, nothing programmed through the PF
        if a.mac or a.vlan is not None:
            raise UsageError("--hostdev: a plain hostdev carries no MAC or VLAN",
                             hint="drop --hostdev for an <interface type='hostdev'>")
        dev = Hostdev.new(d.address)
        what = "<hostdev>"
    else:
        dev = iface = HostdevInterface.new(d.address, a.mac or generated_mac(inv, d))
        if a.vlan is not None:
            iface.set_vlan(a.vlan)
        iface.check_libvirt_rules(pf.driver if pf else None)
        what = f"<interface type='hostdev'> with MAC {iface.mac}" + (f", VLAN {a.vlan}" if a.vlan is not None else "")
    pools = lv.pool_networks(conn, d.address, pf.netdevs[0].name if pf and pf.netdevs else None)
    if pools:  # libvirt's hostdev networks do not know about VFs attached directly (seen in the lab)
        ctx.err.write(f"warning: {d.address} is in the pool of libvirt network {', '.join(pools)}: libvirt may "
                      "hand it to another domain too, whose start then fails; use one method per PF\n")
    if not a.hostdev:
        _require_pf_up(ctx, pf)
    xml = dev.to_xml()
    live, config = a.live, a.config
    if a.dry_run:
        host = ctx.open_host()
        host.dry_run = True
        host.writes.append(WriteRecord(f"libvirt:{a.connect}", f"attach to {a.domain} ({_affect(a)}): "
                                       + " ".join(xml.split()), True))
        return _report(ctx, host, [f"{d.address}: would go to {a.domain} on vfio-pci (libvirt's managed attach)"])
    lv.attach(conn, a.domain, xml, live, config)
    msg = f"{d.address}: attached to {a.domain} as {what}"
    ctx.emit_json({"schema_version": 1, "domain": a.domain, "device": str(d.address), "xml": xml}) if ctx.json \
        else ctx.out.write(msg + "\n")
    return 0


def _affect(a: argparse.Namespace) -> str:
    return " and ".join(w for w, on in (("live", a.live), ("config", a.config)) if on) or "current"


def _wait_released(host: Host, d: Any, deadline: float) -> list[str]:
    """Poll who holds the device's VFIO group until nobody does or the deadline passes; the holders left."""
    from sriovctl.inuse import vfio_holders

    while True:
        if host.link_name(f"sys/bus/pci/devices/{d.address}/driver") != "vfio-pci" or d.iommu_group is None:
            return []
        holders = [str(u) for u in vfio_holders(host, d.iommu_group)]
        if not holders or host.monotonic() >= deadline:
            return holders
        host.sleep(0.2)


def _return_to_host_driver(ctx: Ctx, host: Host, d: Any) -> list[str]:
    from sriovctl import vf
    from sriovctl.resolve import resolve_one

    after = ctx.inventory()
    return vf.bind(host, after, resolve_one(after, str(d.address)), "host")


def cmd_virt_detach(ctx: Ctx) -> int:
    from sriovctl.errors import NoInputError, TemporaryError
    from sriovctl.host.base import WriteRecord
    from sriovctl.inuse import vfio_holders
    from sriovctl.resolve import resolve_one
    from sriovctl.virt import libvirt_api as lv

    a = ctx.args
    host, inv = _writer(ctx)
    d = resolve_one(inv, a.device)
    conn = lv.connect(a.connect)
    xml = lv.device_xml_of(conn, a.domain, d.address, live=a.live or not a.config)
    if xml is None:
        raise NoInputError(f"domain {a.domain}: does not use {d.address}", hint="`sriovctl virt list` shows who uses what")
    where = _affect(a)
    if host.dry_run:
        host.writes.append(WriteRecord(f"libvirt:{a.connect}", f"detach from {a.domain} ({where}): "
                                       + " ".join(xml.split()), True))
        return _report(ctx, host, [f"{d.address}: would return to its host driver once QEMU lets go"])
    t0 = host.monotonic()  # the deadline covers libvirt's own wait for the unplug (about 5 s) too
    lv.detach(conn, a.domain, xml, a.live, a.config)
    # libvirt re-binds a managed device to its host driver once QEMU has let go of it — which needs the guest
    # to acknowledge the hot-unplug (with ACPI hotplug a paused or OS-less guest never does: seen in the lab),
    # and libvirt's re-attach itself takes a moment. Wait with a deadline; rebind it ourselves when nobody
    # holds it any more and libvirt did not.
    deadline = t0 + a.wait
    holders: list[str] = []
    while True:
        drv = host.link_name(f"sys/bus/pci/devices/{d.address}/driver")
        if drv != "vfio-pci":
            break  # libvirt's managed re-attach returned it (or it has no driver: bound below)
        holders = [str(u) for u in vfio_holders(host, d.iommu_group)] if d.iommu_group is not None else []
        if not holders and not lv.device_xml_of(conn, a.domain, d.address, live=True):
            break  # QEMU let go, libvirt did not re-attach: we do it below
        if host.monotonic() >= deadline:
            break
        host.sleep(0.2)
    lines = [f"{d.address}: detached from {a.domain} ({where})"]
    if drv not in (None, "vfio-pci"):
        lines.append(f"{d.address}: back on {drv}")
        return _report(ctx, host, lines)
    if holders:
        raise TemporaryError(f"{d.address}: detached from {a.domain}'s definition, but the guest has not released it "
                             f"after {host.monotonic() - t0:.1f} s ({'; '.join(holders)})",
                             hint="a guest OS must acknowledge the unplug; it returns to its host driver when it does, "
                                  "or when the domain stops")
    lines += _return_to_host_driver(ctx, host, d)
    return _report(ctx, host, lines)


def cmd_virt_list(ctx: Ctx) -> int:
    from sriovctl.virt import libvirt_api as lv

    inv = ctx.inventory()
    uses = lv.domain_uses(lv.connect(ctx.args.connect))
    vfs = {v.address for v in inv.vfs}
    rows = sorted((u for u in uses if u.address in vfs or ctx.args.all), key=lambda u: (u.address, u.domain))
    if ctx.json:
        ctx.emit_json({"schema_version": 1, "uses": [{"domain": u.domain, "running": u.running, "state": u.state,
                                                      "address": str(u.address),
                                                      "kind": u.kind, "mac": u.mac} for u in rows]})
        return 0
    if not rows:
        ctx.out.write("no libvirt domain uses a VF\n")
    for u in rows:
        ctx.out.write(f"{u.address}  {u.domain:<20} {u.state:<8} {u.kind:<9} {u.mac or '-'}\n")
    return 0


def cmd_qemu_args(ctx: Ctx) -> int:
    from sriovctl.virt.qemu import PCI_ASSIGN_GONE, device_args

    if ctx.args.pci_assign:
        raise UsageError(PCI_ASSIGN_GONE)
    from sriovctl.resolve import resolve

    inv = ctx.inventory()
    devs = [_check_vf_for_vm(ctx, d) for n in ctx.args.devices for d in resolve(inv, n)]
    seen: set[object] = set()
    for d in devs:
        if d.address in seen:
            raise UsageError(f"{d.address}: named twice", hint="QEMU takes each host device once")
        seen.add(d.address)
    argv = device_args([d.address for d in devs], ctx.args.bus)
    not_vfio = [str(d.address) for d in devs if d.driver != "vfio-pci"]
    if ctx.json:
        ctx.emit_json({"schema_version": 1, "argv": argv, "not_on_vfio": not_vfio})
        return 0
    ctx.out.write(" ".join(argv) + "\n")
    if not_vfio:
        ctx.err.write(f"note: bind first: sriovctl vf bind DEV vfio-pci ({', '.join(not_vfio)})\n")
    return 0


def cmd_qemu_hotplug(ctx: Ctx) -> int:
    from sriovctl import vf
    from sriovctl.host.base import WriteRecord
    from sriovctl.virt import qemu

    a = ctx.args
    host, inv = _writer(ctx)
    d = _vf_for_vm(ctx, inv, a.device)
    with qemu.monitor(a.qmp) as mon:
        bus = qemu.choose_port(mon, a.qmp, d.address, a.bus)
        lines: list[str] = []
        if d.driver == "vfio-pci":  # no bind, whose guard would see another QEMU or a DPDK app holding it
            vf.guard_take(host, d, [], a.force, lines, f"refusing to plug it into QMP {a.qmp}")
        else:
            lines = vf.bind(host, inv, d, "vfio-pci", force=a.force)
        what = f"device_add driver=vfio-pci host={d.address} id={qemu.device_id(d.address)} bus={bus}"
        if host.dry_run:
            host.writes.append(WriteRecord(f"qmp:{a.qmp}", what, True))
            return _report(ctx, host, lines)
        try:
            qemu.hotplug(mon, a.qmp, d.address, bus)
        except SriovctlError:
            if d.driver not in (None, "vfio-pci"):  # we moved it to vfio-pci for this: put it back
                after = ctx.inventory()
                vf.bind(host, after, after.devices[d.address], d.driver)
            raise
        host.writes.append(WriteRecord(f"qmp:{a.qmp}", what, False))
    lines.append(f"{d.address}: plugged into {bus} as {qemu.device_id(d.address)} (vfio-pci)")
    return _report(ctx, host, lines)


def cmd_qemu_unplug(ctx: Ctx) -> int:
    from sriovctl.errors import TemporaryError
    from sriovctl.host.base import WriteRecord
    from sriovctl.resolve import resolve_one
    from sriovctl.virt import qemu

    a = ctx.args
    host, inv = _writer(ctx)
    d = resolve_one(inv, a.device)
    what = f"device_del id={qemu.device_id(d.address)}"
    deadline = host.monotonic() + a.wait
    with qemu.monitor(a.qmp) as mon:
        if host.dry_run:
            qemu.require_plugged(mon, a.qmp, d.address)
            host.writes.append(WriteRecord(f"qmp:{a.qmp}", what, True))
            return _report(ctx, host, [] if a.keep_vfio else
                           [f"{d.address}: would return to its host driver once QEMU lets go"])
        waited = qemu.unplug(mon, a.qmp, d.address, a.wait)
        host.writes.append(WriteRecord(f"qmp:{a.qmp}", what, False))
    lines = [f"{d.address}: unplugged ({qemu.device_id(d.address)}: DEVICE_DELETED after {waited:.2f} s)"]
    if a.keep_vfio:
        lines.append(f"{d.address}: left on {d.driver} (--keep-vfio)")
        return _report(ctx, host, lines)
    holders = _wait_released(host, d, deadline)
    if holders:
        raise TemporaryError(f"{d.address}: unplugged, but still held after {a.wait:g} s ({'; '.join(holders)})",
                             hint=f"`sriovctl vf bind {d.address} host` returns it once QEMU lets go")
    lines += _return_to_host_driver(ctx, host, d)
    return _report(ctx, host, lines)


def cmd_virt_network_xml(ctx: Ctx) -> int:
    from sriovctl.resolve import resolve_one
    from sriovctl.virt.xml import HostdevNetwork

    a = ctx.args
    inv = ctx.inventory()
    pf = resolve_one(inv, a.pf)
    if not pf.is_pf:
        raise UsageError(f"{pf.address}: not an SR-IOV PF")
    if a.vfs:
        net = HostdevNetwork.new(a.name, vfs=[v for v in pf.vfs])
    else:
        if not pf.netdevs:
            raise UsageError(f"{pf.address}: the PF has no netdev to name in <pf dev=…/>", hint="use --vfs")
        net = HostdevNetwork.new(a.name, pf_netdev=pf.netdevs[0].name)
    return _emit_xml(ctx, pf.address, net.to_xml())


# ---------------------------------------------------------------- writing verbs

def _writer(ctx: Ctx) -> tuple[Host, Inventory]:
    host = ctx.open_host()
    host.dry_run = bool(getattr(ctx.args, "dry_run", False))
    return host, ctx.inventory()


# Write records that are not sysfs/config files: netlink requests, commands run, QMP and libvirt operations
_NOT_FILES = ("netlink:", "exec", "qmp:", "libvirt:")


def _writes_json(host: Host) -> list[dict[str, Any]]:
    return [{"path": w.path if w.path.startswith(_NOT_FILES) else "/" + w.path, "value": w.value,
             "dry_run": w.dry_run} for w in host.writes]


def _report(ctx: Ctx, host: Host, lines: list[str], extra: dict[str, Any] | None = None) -> int:
    writes = _writes_json(host)
    if ctx.json:
        ctx.emit_json({"schema_version": 1, "host": host.label, "dry_run": host.dry_run, "messages": lines,
                       "writes": writes, **(extra or {})})
        return 0
    if host.dry_run:
        ctx.out.write("dry run: nothing was changed; these writes would be made:\n")
        for w in writes:
            path, value = str(w["path"]), str(w["value"])
            ctx.out.write(f"  {path}: {value}\n" if path.startswith(_NOT_FILES)
                          else f"  {path} <- {value.strip()!r}\n")
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
    from sriovctl import vf
    from sriovctl.resolve import resolve_one

    host, inv = _writer(ctx)
    pf = resolve_one(inv, ctx.args.pf)
    a = ctx.args
    if a.module_param:
        lines = vf.enable_by_module_param(host, inv, pf, a.count, a.module_param, force=a.force, wait=a.wait)
    else:
        lines = vf.enable(host, inv, pf, a.count, reset=a.reset, wait=a.wait, autoprobe=not a.no_autoprobe,
                          force=a.force, progress=_progress(ctx))
    return _report(ctx, host, lines)


def cmd_vf_disable(ctx: Ctx) -> int:
    from sriovctl import vf
    from sriovctl.resolve import resolve_one

    host, inv = _writer(ctx)
    return _report(ctx, host, vf.disable(host, inv, resolve_one(inv, ctx.args.pf), force=ctx.args.force))


def cmd_vf_set(ctx: Ctx) -> int:
    from sriovctl import vf
    from sriovctl.resolve import resolve

    host, inv = _writer(ctx)
    a = ctx.args
    targets = [d for name in a.devices for d in resolve(inv, name)]
    not_vf = [d for d in targets if not d.is_vf]
    if not_vf:
        raise UsageError(f"{not_vf[0].address}: not a VF", hint="name VFs: PF#N, PF#0-3,5 or their addresses")
    settings = vf.VfSettings(mac=a.mac, vlan=a.vlan, qos=a.qos, proto=a.proto, spoofchk=a.spoofchk, trust=a.trust,
                             state=a.state, min_rate=a.min_rate, max_rate=a.max_rate, query_rss=a.query_rss)
    res = vf.set_attrs(host, inv, targets, settings)
    return _report(ctx, host, res.lines, {"netlink_requests": res.requests})


def cmd_vf_bind(ctx: Ctx) -> int:
    from sriovctl import vf
    from sriovctl.resolve import resolve

    host, inv = _writer(ctx)
    lines: list[str] = []
    for d in resolve(inv, ctx.args.device):
        lines += vf.bind(host, inv, d, ctx.args.driver, force=ctx.args.force)
    return _report(ctx, host, lines)


def cmd_vf_unbind(ctx: Ctx) -> int:
    from sriovctl import vf
    from sriovctl.resolve import resolve

    host, inv = _writer(ctx)
    lines: list[str] = []
    for d in resolve(inv, ctx.args.device):
        lines += vf.unbind(host, inv, d, force=ctx.args.force)
    return _report(ctx, host, lines)


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
    from sriovctl.virt.qemu import QEMU_ID

    if not QEMU_ID.fullmatch(v):
        raise argparse.ArgumentTypeError(f"{shown(v)}: not a QEMU id (a letter, then letters, digits, - . _)")
    return v


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

    def writer(name: str, fn: Callable[[Ctx], int], help_: str) -> argparse.ArgumentParser:
        x: argparse.ArgumentParser = vfs.add_parser(name, help=help_, description=help_)
        x.set_defaults(fn=fn)
        x.add_argument("--dry-run", action="store_true", help="print the writes that would be made, change nothing")
        x.add_argument("--force", action="store_true", help="override the safety interlocks (in use, default route, "
                                                            "not assignable)")
        return x

    x = writer("enable", cmd_vf_enable, "enable N VFs on a PF (sriov_numvfs), waiting until they have settled")
    x.add_argument("pf")
    x.add_argument("count", type=_nonneg_int)
    x.add_argument("--reset", action="store_true", help="change a non-zero count: write 0 first (refused if in use)")
    x.add_argument("--wait", type=float, default=30.0, metavar="SECONDS", help="deadline for the VFs to settle")
    x.add_argument("--no-autoprobe", action="store_true", help="leave the new VFs unbound (sriov_drivers_autoprobe 0)")
    x.add_argument("--module-param", metavar="NAME", help="legacy: reload the PF's driver with NAME=COUNT (igb "
                                                           "max_vfs) and write /etc/modprobe.d/DRIVER.conf")
    x = writer("disable", cmd_vf_disable, "remove all VFs of a PF (refused while any is in use)")
    x.add_argument("pf")
    x = writer("set", cmd_vf_set, "set VF attributes through netlink: PF#N, or PF#0-3,5 for all but --mac")
    x.add_argument("devices", nargs="+")
    x.add_argument("--mac")
    x.add_argument("--vlan", type=_nonneg_int)
    x.add_argument("--qos", type=_nonneg_int)
    x.add_argument("--proto", choices=["802.1Q", "802.1ad"])
    x.add_argument("--spoofchk", type=_onoff, metavar="on|off")
    x.add_argument("--trust", type=_onoff, metavar="on|off")
    x.add_argument("--state", choices=["auto", "enable", "disable"])
    x.add_argument("--min-rate", type=_nonneg_int, metavar="MBPS")
    x.add_argument("--max-rate", type=_nonneg_int, metavar="MBPS")
    x.add_argument("--query-rss", type=_onoff, metavar="on|off")
    x = writer("bind", cmd_vf_bind, "bind a device to vfio-pci, its host driver (`host`) or another driver")
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
        if name == "attach":
            x.add_argument("--mac", help="default: a stable generated 52:54:00 MAC no other VF on the host has")
            x.add_argument("--vlan", type=_nonneg_int)
            x.add_argument("--hostdev", action="store_true",
                           help="a plain <hostdev> (no MAC, VLAN; for VFs the guest configures itself)")
        else:
            x.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                           help="deadline for the VF to be back on its host driver, libvirt's own unplug wait included")
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
                details: list[str] | None = None) -> None:
    """Under --json the output is one JSON document, errors included (schemas/error.json); a partially applied
    change also carries what was done (the vf-action fields)."""
    doc: dict[str, Any] = {"schema_version": 1,
                           "error": {"exit_code": code, "message": message, "hint": hint}}
    host = ctx.host if ctx is not None else None
    if host is not None and details is not None:
        doc.update(host=host.label, dry_run=host.dry_run, messages=details, writes=_writes_json(host))
    out.write(json.dumps(doc) + "\n")


def _wants_json(argv: Sequence[str] | None, ctx: Ctx | None) -> bool:
    if ctx is not None:
        return ctx.json
    return "--json" in (argv if argv is not None else sys.argv[1:])


def run(argv: Sequence[str] | None = None, out: Any = None, err: Any = None) -> tuple[int, Ctx | None]:
    """Run the CLI in-process. Returns (exit code, context) — the context holds the host and its write log."""
    err = err or sys.stderr
    out = out or sys.stdout
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    ctx: Ctx | None = None

    def fail(code: int, message: str, hint: str | None, details: list[str] | None = None) -> None:
        message = sanitize_line(message)
        hint = sanitize_line(hint) if hint else None
        if _wants_json(argv, ctx):
            _error_json(ctx, out, code, message, hint, details)
        elif details:
            out.write("".join(sanitize_line(line) + "\n" for line in details))
        err.write(f"sriovctl: {message}" + (f" (hint: {hint})" if hint else "") + "\n")

    try:
        args = build_parser().parse_args(_hoist_globals(list(argv if argv is not None else sys.argv[1:])))
        ctx = Ctx(args, out, err=err)
        fn: Callable[[Ctx], int] = getattr(args, "fn", cmd_status)
        return fn(ctx), ctx
    except PartialError as e:
        fail(e.exit_code, e.message, e.hint, e.details)
        return e.exit_code, ctx
    except SriovctlError as e:
        if debug:
            import traceback

            traceback.print_exc(file=err)
        fail(e.exit_code, e.message, e.hint)
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


_GLOBAL_FLAGS = ("--json", "--debug")


def _hoist_globals(argv: list[str]) -> list[str]:
    """--json and --debug are accepted anywhere on the line (people type `sriovctl pci decode F --json`)."""
    if "--" in argv:
        cut = argv.index("--")
        head, tail = argv[:cut], argv[cut:]
    else:
        head, tail = argv, []
    flags = [a for a in head if a in _GLOBAL_FLAGS]
    return list(dict.fromkeys(flags)) + [a for a in head if a not in _GLOBAL_FLAGS] + tail


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
