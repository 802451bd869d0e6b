"""How many VFs a PF has: enable N (sriov_numvfs), disable, and the legacy module-parameter way — for a PCI
PF and for a PF not on PCI (netdevsim, named by its netdev: its device's sriov_numvfs on its own bus). The one
VF-count step (:func:`write_count`) is used by `vf enable`, `vf disable` and the desired-state engine.

:func:`enable` and :func:`disable` are the entry points a front end calls with names: the PF's lock, the PF
resolved again under it, one in-use scan, the plan, the writes, the outcome."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sriovctl import drivers
from sriovctl.errors import (
    FieldError,
    SriovctlError,
    TemporaryError,
    UnavailableError,
    UsageError,
    VerificationError,
)
from sriovctl.host import sysfs
from sriovctl.host.base import Host
from sriovctl.inventory import read_inventory
from sriovctl.model import Inventory, NetPf, PciDevice, device_name, pf_key, pf_label, pf_numvfs
from sriovctl.ops.guards import refuse_if_in_use, refuse_or_note
from sriovctl.ops.kernel import Progress, wait_settled, write
from sriovctl.ops.plan import Change, ChangeKind, Notice, NoticeKind, Outcome, Plan

if TYPE_CHECKING:
    from sriovctl.ops.session import Session

AnyPf = PciDevice | NetPf


@dataclass(frozen=True, slots=True)
class EnableOptions:
    reset: bool = False  # a non-zero count may be changed: 0 is written first
    autoprobe: bool = True  # new VFs bind to their driver (sriov_drivers_autoprobe)
    force: bool = False
    wait: float = 30.0  # seconds for the VFs to settle (and for the PF's lock)
    progress: Progress | None = None


def require_pf(pf: PciDevice) -> None:
    if not pf.is_pf or pf.sriov is None:
        raise UsageError(f"{device_name(pf)}: not an SR-IOV PF", hint="the status view lists the PFs", remedy="pfs")
    if pf.sriov.totalvfs is None:
        raise UnavailableError(f"{device_name(pf)}: SR-IOV capability present but the kernel exposes no "
                               "sriov_totalvfs",
                               hint="the driver lacks SR-IOV support, or SR-IOV is disabled in the firmware")


def count_attr(pf: AnyPf) -> str:
    """The PF's sriov_numvfs: under its PCI address, or under its device on its own bus (netdevsim)."""
    if isinstance(pf, NetPf):
        return sysfs.bus_device_attr(pf.bus, pf.device, sysfs.SRIOV_NUMVFS)
    return sysfs.device_attr(pf.address, sysfs.SRIOV_NUMVFS)


def write_count(host: Host, pf: AnyPf, n: int, label: str) -> None:
    """The one VF-count write: sriov_numvfs (the kernel's sriov_numvfs_store, or netdevsim's
    nsim_bus_dev_numvfs_store: both refuse a non-zero to non-zero change with EBUSY)."""
    try:
        write(host, count_attr(pf), str(n), f"{label}: sriov_numvfs")
    except SriovctlError as e:
        if isinstance(pf, NetPf):  # not the PCI core: its MMIO and bus-number hints do not apply
            e.hint = drivers.driver(pf.driver).count_hint or "see the driver's messages in dmesg"
        raise


def write_autoprobe(host: Host, pf: PciDevice, on: bool, label: str) -> None:
    write(host, sysfs.device_attr(pf.address, sysfs.SRIOV_DRIVERS_AUTOPROBE), "1" if on else "0",
          f"{label}: sriov_drivers_autoprobe")


def _vfs_of(inv: Inventory, pf: AnyPf) -> list[PciDevice]:
    return [] if isinstance(pf, NetPf) else inv.vfs_of(pf)  # a netdevsim VF is no device anything can hold


def plan_enable(host: Host, inv: Inventory, pf: AnyPf, n: int, opts: EnableOptions) -> Plan:
    name = pf_label(pf)
    if isinstance(pf, NetPf):
        total = None  # netdevsim has no sriov_totalvfs (its max_vfs is in debugfs): the kernel's answer decides
    else:
        require_pf(pf)
        assert pf.sriov is not None
        total = pf.sriov.totalvfs
    cur = pf_numvfs(pf)
    if n < 1 or (total is not None and n > total):
        raise UsageError(f"{name}: cannot enable {n} VFs: sriov_totalvfs is {total}", hint=f"choose 1..{total}",
                         remedy="count")
    plan = Plan("vf-enable", host.label)
    if cur == n and not opts.reset:
        plan.notes.append(f"{name}: {n} VFs already enabled, nothing to do")
        return plan
    if cur and not opts.reset:
        raise UsageError(f"{name}: cannot set {n} VFs: {cur} already enabled",
                         hint="write 0 first: that destroys the existing VFs (refused if any is in use)",
                         remedy="reset")
    target = pf_key(pf)
    if cur:
        refuse_if_in_use(host, _vfs_of(inv, pf), f"{name}: destroying {cur} VFs", opts.force, plan)
        plan.changes.append(Change(ChangeKind.VF_COUNT, target, cur, 0, "the kernel changes a non-zero count only "
                                   "through 0 (sriov_numvfs_store: EBUSY)"))
    if isinstance(pf, PciDevice) and pf.sriov is not None:
        ap = pf.sriov.drivers_autoprobe
        if ap is not None and ap != opts.autoprobe:
            plan.changes.append(Change(ChangeKind.AUTOPROBE, target, ap, opts.autoprobe,
                                       "new VFs are bound to their driver" if opts.autoprobe else
                                       "new VFs stay unbound"))
    plan.changes.append(Change(ChangeKind.VF_COUNT, target, 0, n, f"{n} VFs asked for"))
    return plan


def plan_disable(host: Host, inv: Inventory, pf: AnyPf, force: bool) -> Plan:
    if isinstance(pf, PciDevice):
        require_pf(pf)
    plan = Plan("vf-disable", host.label)
    cur = pf_numvfs(pf)
    if not cur:
        plan.notes.append(f"{pf_label(pf)}: no VFs enabled, nothing to do")
        return plan
    refuse_if_in_use(host, _vfs_of(inv, pf), f"{pf_label(pf)}: destroying {cur} VFs", force, plan)
    plan.changes.append(Change(ChangeKind.VF_COUNT, pf_key(pf), cur, 0, "VFs disabled on request"))
    return plan


def apply_count(host: Host, pf: AnyPf, plan: Plan, opts: EnableOptions) -> Outcome:
    """Apply a vf-enable / vf-disable plan: the writes in order, then the wait for the VFs to settle (PCI: they
    exist and are bound), then the count read back."""
    out = Outcome(plan, messages=list(plan.notes))
    name = pf_label(pf)
    autoprobe = True
    if isinstance(pf, PciDevice) and pf.sriov and pf.sriov.drivers_autoprobe is not None:
        autoprobe = pf.sriov.drivers_autoprobe
    for c in plan.changes:
        if c.kind is ChangeKind.AUTOPROBE and isinstance(pf, PciDevice):
            write_autoprobe(host, pf, bool(c.after), name)
            autoprobe = bool(c.after)
        elif c.kind is ChangeKind.VF_COUNT:
            write_count(host, pf, int(c.after), name)
        out.applied.append(c)
    if not plan.changes:
        return out
    n = int(plan.changes[-1].after)
    if host.dry_run:
        out.messages.append(f"{name}: would enable {n} VFs" if n else
                            f"{name}: would disable its {plan.changes[-1].before} VFs")
    else:
        if n and isinstance(pf, PciDevice):
            wait_settled(host, pf, name, n, autoprobe, opts.wait, opts.progress)
        now = host.read_int(count_attr(pf))
        if now != n:
            raise VerificationError(f"{name}: sriov_numvfs reads {now} after writing {n}",
                                    hint="another writer, or the driver changed it: check dmesg")
        out.verified = True
        out.messages.append(f"{name}: {n} VFs enabled" if n else f"{name}: VFs disabled")
    if n and not opts.autoprobe and isinstance(pf, PciDevice):
        out.messages[-1] += " (left unbound: autoprobe off)"
    return out


def enable(s: Session, name: str, n: int, opts: EnableOptions, module_param: str | None = None) -> Outcome:
    """`vf enable NAME N`: a PCI PF by address, netdev or nodedev name, or a PF not on PCI by its netdev."""
    pf = s.find_pf(name)
    with s.locked(pf_key(pf), opts.wait) as inv:
        pf = _again(s, name, pf)  # as it is now: another sriovctl may have changed it while this waited
        if module_param is not None:
            if isinstance(pf, NetPf):
                raise UsageError(f"{pf.name}: not a PCI device: its VFs are created through sriov_numvfs only",
                                 hint="drop the module parameter")
            plan = plan_module_param(s.host, inv, pf, n, module_param, opts.force)
            return apply_module_param(s.host, pf, plan, n, opts.wait)
        return apply_count(s.host, pf, plan_enable(s.host, inv, pf, n, opts), opts)


def disable(s: Session, name: str, opts: EnableOptions) -> Outcome:
    pf = s.find_pf(name)
    with s.locked(pf_key(pf), opts.wait) as inv:
        pf = _again(s, name, pf)
        return apply_count(s.host, pf, plan_disable(s.host, inv, pf, opts.force), opts)


def _again(s: Session, name: str, before: AnyPf) -> AnyPf:
    now = s.find_pf(name)
    if pf_key(now) != pf_key(before):
        raise TemporaryError(f"{name}: now names another PF than when this started ({pf_key(before)} → "
                             f"{pf_key(now)})", hint="check the PF, then run it again")
    return now


_PARAM = re.compile(r"[a-z_][a-z0-9_]{0,31}", re.ASCII)


def plan_module_param(host: Host, inv: Inventory, pf: PciDevice, n: int, param: str, force: bool) -> Plan:
    """The legacy recipe: reload the PF's driver with a VF-count parameter (igb max_vfs=N) and keep it in
    sriovctl's modprobe.d file (persist/render.MODPROBE_PATH). Affects every port that driver drives."""
    require_pf(pf)
    if not _PARAM.fullmatch(param):
        raise FieldError("module_param", "module parameter", repr(param), "not a module parameter name",
                         hint="e.g. max_vfs")
    if pf.driver is None or pf.module is None:
        raise UnavailableError(f"{device_name(pf)}: no driver bound, no module to reload")
    module = pf.module
    ports = [d for d in inv.devices.values() if d.driver == pf.driver and not d.is_vf]
    plan = Plan("vf-enable", host.label)
    plan.notices.append(Notice(NoticeKind.DEPRECATED, f"{param} is deprecated; sriov_numvfs is the modern way"))
    plan.notices.append(Notice(NoticeKind.SIDE_EFFECT, f"reloading {module} affects every port it drives: "
                               f"{', '.join(device_name(p) for p in ports)}"))
    victims = [v for p in ports for v in inv.vfs_of(p)] + ports
    refuse_if_in_use(host, victims, f"reloading {module}", force, plan)
    plan.changes.append(Change(ChangeKind.MODULE_RELOAD, module, None, f"{param}={n}",
                               "the driver creates the VFs when it loads"))
    # sriovctl keeps module options in one file, the one `persist install` writes (persist/render.py): two files
    # with two counts for one module would leave modprobe to pick one
    from sriovctl.persist import render
    from sriovctl.persist.install import managed_files

    if render.MODPROBE_PATH in managed_files(host.root):
        refuse_or_note(plan, force, f"{module}'s VF count at boot is kept by the persisted state "
                       "(/etc/sriovctl/state.yaml, `persist install`): this would change it behind the state's back",
                       "change the state and install it again", "force", [])
    current = host.read_text(render.MODPROBE_PATH)
    conf = render.modprobe_with(current, module, param, n)
    plan.changes.append(Change(ChangeKind.CONFIG_FILE, "/" + render.MODPROBE_PATH, current, conf,
                               "the count again at every boot"))
    return plan


def reload_module(host: Host, module: str, setting: str) -> None:
    """The module reload that creates VFs at load (``setting``: ``max_vfs=N``): `vf enable --module-param` and
    the engine's `create: module-param` step."""
    host.run(["modprobe", "-r", module])
    host.run(["modprobe", module, setting])


def apply_module_param(host: Host, pf: PciDevice, plan: Plan, n: int, wait: float) -> Outcome:
    out = Outcome(plan)
    reload, conf = plan.changes
    module, param = reload.target, str(reload.after)
    reload_module(host, module, param)
    out.applied.append(reload)
    host.write_file(conf.target.lstrip("/"), str(conf.after))
    out.applied.append(conf)
    if not host.dry_run:
        fresh = read_inventory(host).devices.get(pf.address)
        if fresh is None or fresh.sriov is None:
            raise TemporaryError(f"{device_name(pf)}: gone after reloading {module}", hint="check dmesg")
        expect = min(n, fresh.sriov.totalvfs or n)
        wait_settled(host, fresh, device_name(fresh), expect, True, wait)
        out.verified = True
        out.messages.append(f"{device_name(pf)}: {expect} VFs after `modprobe {module} {param}`; "
                            f"wrote {conf.target}")
    return out
