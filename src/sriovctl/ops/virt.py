"""VFs for VMs: libvirt XML, attach/detach through libvirt (managed: libvirt moves the VF to vfio-pci and back),
and QEMU directly (-device arguments, QMP hot(un)plug) — with the interlocks, the waits and the rollback."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from sriovctl.errors import InterlockError, NoInputError, SriovctlError, TemporaryError, UnavailableError, UsageError
from sriovctl.host import sysfs
from sriovctl.host.base import Host, WriteKind
from sriovctl.model import Inventory, PciAddress, PciDevice, Use, UseKind
from sriovctl.ops.binding import NATIVE, BindOptions, bind
from sriovctl.ops.guards import guard_take, require_assignable
from sriovctl.ops.kernel import driver_of, wait_released
from sriovctl.ops.plan import Change, ChangeKind, Notice, NoticeKind, Outcome, Plan
from sriovctl.ops.session import Session


@dataclass(frozen=True, slots=True)
class XmlOptions:
    mac: str | None = None
    vlan: int | None = None
    profile: str | None = None
    hostdev: bool = False
    vfio_driver: bool = False
    rom_bar: bool | None = None
    alias: str | None = None
    guest_address: str | None = None
    force: bool = False


def device_xml(inv: Inventory, d: PciDevice, o: XmlOptions) -> str:
    """<interface type='hostdev'> (or <hostdev> with ``hostdev``) for a device, checked against libvirt's rules."""
    from sriovctl.virt.macs import generated_mac
    from sriovctl.virt.xml import Hostdev, HostdevInterface

    require_assignable(d, o.force, Plan("virt-xml", inv.host), str(d.address), remedy="force-write")
    dev: Hostdev | HostdevInterface
    if o.hostdev:
        if o.mac or o.vlan is not None or o.profile:
            raise UsageError("a plain hostdev carries no MAC, VLAN or port profile",
                             hint="an <interface type='hostdev'> does", remedy="no-hostdev")
        dev = Hostdev.new(d.address)
    else:
        if not d.is_vf:
            raise UsageError(f"{d.address}: not a VF: an <interface type='hostdev'> needs a network VF",
                             hint="a plain <hostdev> takes other PCI functions", remedy="hostdev")
        iface = HostdevInterface.new(d.address, o.mac or generated_mac(inv, d))
        if o.vlan is not None:
            iface.set_vlan(o.vlan)
        if o.profile:
            iface.set_port_profile(o.profile)
        pf = inv.devices.get(d.physfn) if d.physfn else None
        if not o.force:
            iface.check_libvirt_rules(pf.driver if pf else None)
        dev = iface
    if o.vfio_driver:
        dev.set_driver_vfio()
    if o.rom_bar is not None:
        dev.set_rom(bar=o.rom_bar)
    if o.alias:
        dev.alias = o.alias
    if o.guest_address:
        dev.guest_address = PciAddress.parse(o.guest_address)
    return dev.to_xml()


def network_xml(d: PciDevice, name: str, list_vfs: bool) -> str:
    """A libvirt hostdev network handing out a PF's VFs (listed, or through <pf dev=…/>)."""
    from sriovctl.virt.xml import HostdevNetwork

    if not d.is_pf:
        raise UsageError(f"{d.address}: not an SR-IOV PF")
    if list_vfs:
        return HostdevNetwork.new(name, vfs=list(d.vfs)).to_xml()
    if not d.netdevs:
        raise UsageError(f"{d.address}: the PF has no netdev to name in <pf dev=…/>", hint="list the VFs instead",
                         remedy="list-vfs")
    return HostdevNetwork.new(name, pf_netdev=d.netdevs[0].name).to_xml()


def vf_for_vm(d: PciDevice, force: bool) -> PciDevice:
    if not d.is_vf:
        raise UsageError(f"{d.address}: not a VF", hint="name a VF: PF#N or its address")
    require_assignable(d, force, Plan("vm", ""), str(d.address), remedy="force-try")
    return d


def qemu_args(inv: Inventory, devs: list[PciDevice], bus: str | None, force: bool) -> tuple[list[str], list[str]]:
    """(-device arguments, the devices not on vfio-pci yet)."""
    from sriovctl.virt.qemu import device_args

    seen: set[PciAddress] = set()
    for d in devs:
        vf_for_vm(d, force)
        if d.address in seen:
            raise UsageError(f"{d.address}: named twice", hint="QEMU takes each host device once")
        seen.add(d.address)
    return device_args([d.address for d in devs], bus), [str(d.address) for d in devs if d.driver != "vfio-pci"]


def is_qemu_id(text: str) -> bool:
    """A QEMU id: no ',' or '=' that would add options of its own."""
    from sriovctl.virt.qemu import QEMU_ID

    return QEMU_ID.fullmatch(text) is not None


def domain_uses(uri: str) -> list[object]:
    from sriovctl.virt import libvirt_api as lv

    return list(lv.domain_uses(lv.connect(uri)))


# ---------------------------------------------------------------- libvirt attach / detach

@dataclass(frozen=True, slots=True)
class AttachOptions:
    live: bool = False
    config: bool = False
    connect: str = "qemu:///system"
    mac: str | None = None
    vlan: int | None = None
    hostdev: bool = False
    force: bool = False
    wait: float = 10.0  # detach: the VF back on its host driver (libvirt's own unplug wait included); the lock
    pool: str | None = None  # attach: take a VF of this pool for the domain (allocated to it first)

    @property
    def affect(self) -> str:
        return " and ".join(w for w, on in (("live", self.live), ("config", self.config)) if on) or "current"


def _require_pf_up(host: Host, pf: PciDevice | None) -> None:
    """libvirt programs a hostdev interface's MAC and VLAN through the PF and refuses while the PF is down
    ("PF is not online", seen in the lab): say so first, with the fix."""
    if pf is None or not pf.netdevs:
        return
    nd = pf.netdevs[0].name
    flags = host.read_text(sysfs.netdev_attr(nd, sysfs.NETDEV_FLAGS))
    if flags is not None and not int(flags, 16) & 0x1:  # IFF_UP
        raise UnavailableError(f"{pf.address} ({nd}): the PF is down: libvirt sets the VF's MAC and VLAN through it",
                               hint=f"bring it up first: ip link set dev {nd} up")


def attach(session: Session, domain: str, device: str, o: AttachOptions,
           notify: Callable[[Notice], None] | None = None) -> Outcome:
    """Give a VF to a libvirt domain. ``notify`` hears each notice as it arises (before a later refusal)."""
    from sriovctl.virt import libvirt_api as lv
    from sriovctl.virt.macs import generated_mac
    from sriovctl.virt.xml import Hostdev, HostdevInterface

    host, inv = session.host, session.inv
    d = vf_for_vm(session.find(device), o.force)
    conn = lv.connect(o.connect)
    lv.lookup(conn, domain)
    plan = Plan("virt-attach", host.label)
    owners = [u for u in lv.domain_uses(conn) if u.address == d.address and u.domain != domain]
    if owners and not o.force:
        w = owners[0]
        raise InterlockError(f"{d.address}: already given to domain {w.domain} ({w.state})",
                             hint=f"detach it from {w.domain} first", remedy="detach-first",
                             holders=(Use(UseKind.LIBVIRT, w.domain, f"libvirt domain {w.domain} ({w.state})"),))
    if o.live or not o.config:  # libvirt takes it from its driver now: the host or a guest outside libvirt may use it
        guard_take(host, d, [], o.force, plan, f"refusing to give it to {domain}",
                   pool_owner=domain if o.pool is not None else None)
        for n in plan.notices:
            if notify is not None:
                notify(n)
    pf = inv.devices.get(d.physfn) if d.physfn else None
    dev: Hostdev | HostdevInterface
    if o.hostdev:  # a plain PCI hostdev: no MAC or VLAN, nothing programmed through the PF
        if o.mac or o.vlan is not None:
            raise UsageError("a plain hostdev carries no MAC or VLAN", hint="an <interface type='hostdev'> does",
                             remedy="no-hostdev")
        dev = Hostdev.new(d.address)
        what = "<hostdev>"
    else:
        dev = iface = HostdevInterface.new(d.address, o.mac or generated_mac(inv, d))
        if o.vlan is not None:
            iface.set_vlan(o.vlan)
        iface.check_libvirt_rules(pf.driver if pf else None)
        what = f"<interface type='hostdev'> with MAC {iface.mac}" + (f", VLAN {o.vlan}" if o.vlan is not None else "")
    pools = lv.pool_networks(conn, d.address, pf.netdevs[0].name if pf and pf.netdevs else None)
    if pools:  # libvirt's hostdev networks do not know about VFs attached directly (seen in the lab)
        pool = Notice(NoticeKind.SHARED_POOL, f"{d.address} is in the pool of libvirt network {', '.join(pools)}: "
                      "libvirt may hand it to another domain too, whose start then fails; use one method per PF")
        plan.notices.append(pool)
        if notify:
            notify(pool)
    if not o.hostdev:
        _require_pf_up(host, pf)
    xml = dev.to_xml()
    change = Change(ChangeKind.LIBVIRT_ATTACH, domain, None, str(d.address), f"{what} ({o.affect})")
    plan.changes.append(change)
    out = Outcome(plan, extra={"xml": xml})
    value = f"attach to {domain} ({o.affect}): " + " ".join(xml.split())
    if host.dry_run:
        host.record(WriteKind.LIBVIRT, o.connect, value)
        out.messages.append(f"{d.address}: would go to {domain} on vfio-pci (libvirt's managed attach)")
        return out
    with session.locked(d.physfn or d.address, o.wait):
        lv.attach(conn, domain, xml, o.live, o.config)
        host.record(WriteKind.LIBVIRT, o.connect, value)
    out.applied.append(change)
    out.messages.append(f"{d.address}: attached to {domain} as {what}")
    return out


def _return_to_host_driver(session: Session, d: PciDevice, out: Outcome) -> None:
    inv = session.reread()
    res = bind(session.host, inv, inv.devices[d.address], NATIVE, BindOptions())
    out.plan.notices.extend(res.plan.notices)
    out.applied.extend(res.applied)
    out.messages.extend(res.messages)


def attach_from_pool(session: Session, domain: str, o: AttachOptions,
                     notify: Callable[[Notice], None] | None = None) -> Outcome:
    """A VF of pool ``o.pool`` allocated to ``domain`` (recorded atomically), then attached; the allocation is
    released again if the attach fails. libvirt's managed interface sets its MAC and VLAN and binds it."""
    from sriovctl.ops import pools

    assert o.pool is not None
    if session.host.dry_run:
        raise UsageError("virt attach --pool --dry-run: which VF a pool gives is decided when it is allocated",
                         hint="`sriovctl pool show` lists what is free")
    from sriovctl.virt import libvirt_api as lv

    uuid = str(lv.lookup(lv.connect(o.connect), domain).UUIDString())  # the domain must exist before a VF goes out
    got = pools.allocate(session.host, o.pool, pools.Owner("libvirt", domain, uuid=uuid), wait=o.wait)
    address = got.allocation.address
    try:
        out = attach(session, domain, address, o, notify)
    except BaseException:
        with contextlib.suppress(SriovctlError):
            pools.release(session.host, address=address, force=True, wait=o.wait)
        raise
    out.messages[:0] = [f"{address}: allocated from pool {o.pool} to {domain}", *got.notes]
    out.extra["pool"] = o.pool
    return out


def detach(session: Session, domain: str, device: str, o: AttachOptions) -> Outcome:
    """Take a VF back from a domain; one allocated to it from a pool is then released (reset to the pool's
    defaults, rebound, freed) — or kept, with a message, while something still holds it."""
    out = _detach(session, domain, device, o)
    if session.host.dry_run:
        return out
    from sriovctl.ops import pools

    d = session.find(device)
    recs = pools.all_records(session.host)
    mine = [a for r in recs.values() for a in r.values() if a.address == str(d.address)
            and a.owner.kind == "libvirt" and a.owner.name == domain]
    if mine:
        try:
            pools.release(session.host, address=str(d.address), wait=o.wait)
            out.messages.append(f"{d.address}: released to pool {mine[0].pool} (reset to its defaults)")
        except SriovctlError as e:
            out.messages.append(f"{d.address}: still allocated to {domain} from pool {mine[0].pool}: {e.message}")
    return out


def _detach(session: Session, domain: str, device: str, o: AttachOptions) -> Outcome:
    from sriovctl.virt import libvirt_api as lv

    host = session.host
    d = session.find(device)
    conn = lv.connect(o.connect)
    xml = lv.device_xml_of(conn, domain, d.address, live=o.live or not o.config)
    if xml is None:
        raise NoInputError(f"domain {domain}: does not use {d.address}", hint="the list of libvirt users shows who "
                           "uses what", remedy="virt-list")
    change = Change(ChangeKind.LIBVIRT_DETACH, domain, str(d.address), None, f"detach ({o.affect})")
    plan = Plan("virt-detach", host.label, [change])
    out = Outcome(plan)
    value = f"detach from {domain} ({o.affect}): " + " ".join(xml.split())
    if host.dry_run:
        host.record(WriteKind.LIBVIRT, o.connect, value)
        out.messages.append(f"{d.address}: would return to its host driver once QEMU lets go")
        return out
    with session.locked(d.physfn or d.address, o.wait):
        t0 = host.monotonic()  # the deadline covers libvirt's own wait for the unplug (about 5 s) too
        lv.detach(conn, domain, xml, o.live, o.config)
        host.record(WriteKind.LIBVIRT, o.connect, value)
        out.applied.append(change)
        # libvirt re-binds a managed device to its host driver once QEMU has let go of it — which needs the guest
        # to acknowledge the hot-unplug (with ACPI hotplug a paused or OS-less guest never does: seen in the lab),
        # and libvirt's re-attach itself takes a moment. Wait with a deadline; rebind it ourselves when nobody
        # holds it any more and libvirt did not.
        holders = wait_released(host, d, max(0.0, o.wait - (host.monotonic() - t0)),
                                lambda: lv.device_xml_of(conn, domain, d.address, live=True) is not None)
        drv = driver_of(host, d.address)
        out.messages.append(f"{d.address}: detached from {domain} ({o.affect})")
        if drv not in (None, "vfio-pci"):
            out.messages.append(f"{d.address}: back on {drv}")
            return out
        if holders:
            raise TemporaryError(f"{d.address}: detached from {domain}'s definition, but the guest has not released "
                                 f"it after {host.monotonic() - t0:.1f} s ({'; '.join(holders)})",
                                 hint="a guest OS must acknowledge the unplug; it returns to its host driver when it "
                                      "does, or when the domain stops")
        _return_to_host_driver(session, d, out)
    return out


# ---------------------------------------------------------------- QEMU through QMP

def hotplug(session: Session, device: str, sock: str, bus: str | None, force: bool) -> Outcome:
    from sriovctl.virt import qemu

    host = session.host
    first = vf_for_vm(session.find(device), force)
    plan = Plan("qemu-hotplug", host.label)
    out = Outcome(plan)
    with qemu.monitor(sock) as mon, session.locked(first.physfn or first.address, 10.0) as inv:
        # bind-or-guard is decided from the VF as it is under the lock (the inventory is read again when another
        # sriovctl wrote meanwhile): a VF bound to vfio-pci, or destroyed, since it was resolved is seen here
        now = inv.devices.get(first.address)
        if now is None or now.physfn != first.physfn:
            raise TemporaryError(f"{first.address}: gone or changed while this waited for its PF's lock",
                                 hint="check the PF's VFs, then run it again")
        d = vf_for_vm(now, force)
        port = qemu.choose_port(mon, sock, d.address, bus)
        if d.driver == "vfio-pci":  # no bind, whose guard would see another QEMU or a DPDK app holding it
            guard_take(host, d, [], force, plan, f"refusing to plug it into QMP {sock}")
        else:
            res = bind(host, inv, d, "vfio-pci", BindOptions(force=force))
            plan.notices.extend(res.plan.notices)
            plan.changes.extend(res.plan.changes)
            out.applied.extend(res.applied)
            out.messages.extend(res.messages)
        qid = qemu.device_id(d.address)
        change = Change(ChangeKind.QMP_DEVICE_ADD, sock, None, qid, f"vfio-pci host={d.address} bus={port}")
        plan.changes.append(change)
        what = f"device_add driver=vfio-pci host={d.address} id={qid} bus={port}"
        if host.dry_run:
            host.record(WriteKind.QMP, sock, what)
            return out
        try:
            qemu.hotplug(mon, sock, d.address, port)
        except SriovctlError:
            if d.driver not in (None, "vfio-pci"):  # we moved it to vfio-pci for this: put it back
                after = session.reread()
                bind(host, after, after.devices[d.address], d.driver, BindOptions(force=True))
            raise
        host.record(WriteKind.QMP, sock, what)
        out.applied.append(change)
    out.messages.append(f"{d.address}: plugged into {port} as {qid} (vfio-pci)")
    return out


def unplug(session: Session, device: str, sock: str, wait: float, keep_vfio: bool) -> Outcome:
    from sriovctl.virt import qemu

    host = session.host
    d = session.find(device)
    qid = qemu.device_id(d.address)
    change = Change(ChangeKind.QMP_DEVICE_DEL, sock, qid, None, "unplug asked for")
    plan = Plan("qemu-unplug", host.label, [change])
    out = Outcome(plan)
    what = f"device_del id={qid}"
    deadline = host.monotonic() + wait
    with qemu.monitor(sock) as mon:
        if host.dry_run:
            qemu.require_plugged(mon, sock, d.address)
            host.record(WriteKind.QMP, sock, what)
            if not keep_vfio:
                out.messages.append(f"{d.address}: would return to its host driver once QEMU lets go")
            return out
        with session.locked(d.physfn or d.address, wait):
            waited = qemu.unplug(mon, sock, d.address, wait, clock=host.monotonic)
            host.record(WriteKind.QMP, sock, what)
    out.applied.append(change)
    out.messages.append(f"{d.address}: unplugged ({qid}: DEVICE_DELETED after {waited:.2f} s)")
    if keep_vfio:
        out.messages.append(f"{d.address}: left on {d.driver}")
        return out
    holders = wait_released(host, d, max(0.0, deadline - host.monotonic()))
    if holders:
        raise TemporaryError(f"{d.address}: unplugged, but still held after {wait:g} s ({'; '.join(holders)})",
                             hint="binding it to its host driver returns it once QEMU lets go", remedy="bind-host")
    with session.locked(d.physfn or d.address, wait):
        _return_to_host_driver(session, d, out)
    return out
