"""The libvirt and QEMU verbs: XML, attach/detach, QMP hot(un)plug — one operation each (ops/virt.py)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, cast

from sriovctl.cli.context import Ctx
from sriovctl.cli.writes import notice_text, report
from sriovctl.errors import UsageError

if TYPE_CHECKING:
    from sriovctl.ops.virt import AttachOptions


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
        from sriovctl.cli.documents import SCHEMA_VERSION, VirtXmlDocument

        ctx.emit_json(VirtXmlDocument(schema_version=SCHEMA_VERSION, device=str(device), xml=xml))
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
                         wait=getattr(a, "wait", 10.0), pool=getattr(a, "pool", None))


def cmd_virt_attach(ctx: Ctx) -> int:
    from sriovctl.errors import UsageError
    from sriovctl.ops.virt import attach, attach_from_pool

    a = ctx.args
    if (a.device is None) == (a.pool is None):
        raise UsageError("virt attach: name a VF or --pool POOL (one of them)")
    s = ctx.session()
    # warnings of an attach go to stderr as they arise (before a later refusal): stdout is the result
    notify = lambda n: ctx.err.write(notice_text(ctx, n) + "\n")  # noqa: E731
    o = _attach_options(a)
    outcome = attach(s, a.domain, a.device, o, notify) if a.pool is None else attach_from_pool(s, a.domain, o, notify)
    if s.host.dry_run:
        return report(ctx, s.host, outcome, notices=False)
    if not ctx.json:
        ctx.out.write("\n".join(outcome.messages) + "\n")
        return 0
    from sriovctl.cli.documents import SCHEMA_VERSION, VirtAttachDocument

    ctx.emit_json(VirtAttachDocument(schema_version=SCHEMA_VERSION, domain=a.domain,
                                     device=outcome.plan.changes[0].after, xml=outcome.extra["xml"],
                                     plan=cast(Any, outcome.plan.to_json()), outcome=cast(Any, outcome.to_json())))
    return 0


def cmd_virt_detach(ctx: Ctx) -> int:
    from sriovctl.ops.virt import detach

    s = ctx.session()
    return report(ctx, s.host, detach(s, ctx.args.domain, ctx.args.device, _attach_options(ctx.args)))


def cmd_virt_list(ctx: Ctx) -> int:
    from sriovctl.ops.virt import domain_uses

    inv = ctx.inventory()
    uses: list[Any] = domain_uses(ctx.args.connect)
    vfs = {v.address for v in inv.vfs}
    rows = sorted((u for u in uses if u.address in vfs or ctx.args.all), key=lambda u: (u.address, u.domain))
    if ctx.json:
        from sriovctl.cli.documents import SCHEMA_VERSION, DomainUseDoc, VirtListDocument

        ctx.emit_json(VirtListDocument(schema_version=SCHEMA_VERSION, uses=[
            DomainUseDoc(domain=u.domain, running=u.running, state=u.state, address=str(u.address), kind=u.kind,
                         mac=u.mac) for u in rows]))
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
        from sriovctl.cli.documents import SCHEMA_VERSION, QemuArgsDocument

        ctx.emit_json(QemuArgsDocument(schema_version=SCHEMA_VERSION, argv=argv, not_on_vfio=not_vfio))
        return 0
    ctx.out.write(" ".join(argv) + "\n")
    if not_vfio:
        ctx.err.write(f"note: bind first: sriovctl vf bind DEV vfio-pci ({', '.join(not_vfio)})\n")
    return 0


def cmd_qemu_hotplug(ctx: Ctx) -> int:
    from sriovctl.ops.virt import hotplug

    a = ctx.args
    s = ctx.session()
    return report(ctx, s.host, hotplug(s, a.device, a.qmp, a.bus, a.force))


def cmd_qemu_unplug(ctx: Ctx) -> int:
    from sriovctl.ops.virt import unplug

    a = ctx.args
    s = ctx.session()
    return report(ctx, s.host, unplug(s, a.device, a.qmp, a.wait, a.keep_vfio))
