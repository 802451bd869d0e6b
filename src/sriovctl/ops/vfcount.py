"""How many VFs a PF has: enable N (sriov_numvfs), disable, and the legacy module-parameter way."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sriovctl.errors import FieldError, TemporaryError, UnavailableError, UsageError, VerificationError
from sriovctl.host import sysfs
from sriovctl.host.base import Host
from sriovctl.inventory import read_inventory
from sriovctl.model import Inventory, PciDevice
from sriovctl.ops.guards import device_name, refuse_if_in_use
from sriovctl.ops.kernel import Progress, wait_settled, write
from sriovctl.ops.plan import Change, ChangeKind, Notice, NoticeKind, Outcome, Plan


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


def plan_enable(host: Host, inv: Inventory, pf: PciDevice, n: int, opts: EnableOptions) -> Plan:
    require_pf(pf)
    assert pf.sriov is not None and pf.sriov.totalvfs is not None
    total, cur = pf.sriov.totalvfs, pf.sriov.numvfs or 0
    name = device_name(pf)
    if not 1 <= n <= total:
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
    target = str(pf.address)
    if cur:
        refuse_if_in_use(host, inv.vfs_of(pf), f"{name}: destroying {cur} VFs", opts.force, plan)
        plan.changes.append(Change(ChangeKind.VF_COUNT, target, cur, 0, "the kernel changes a non-zero count only "
                                   "through 0 (sriov_numvfs_store: EBUSY)"))
    ap = pf.sriov.drivers_autoprobe
    if ap is not None and ap != opts.autoprobe:
        plan.changes.append(Change(ChangeKind.AUTOPROBE, target, ap, opts.autoprobe,
                                   "new VFs are bound to their driver" if opts.autoprobe else "new VFs stay unbound"))
    plan.changes.append(Change(ChangeKind.VF_COUNT, target, 0, n, f"{n} VFs asked for"))
    return plan


def plan_disable(host: Host, inv: Inventory, pf: PciDevice, force: bool) -> Plan:
    require_pf(pf)
    assert pf.sriov is not None
    plan = Plan("vf-disable", host.label)
    cur = pf.sriov.numvfs or 0
    if not cur:
        plan.notes.append(f"{device_name(pf)}: no VFs enabled, nothing to do")
        return plan
    refuse_if_in_use(host, inv.vfs_of(pf), f"{device_name(pf)}: destroying {cur} VFs", force, plan)
    plan.changes.append(Change(ChangeKind.VF_COUNT, str(pf.address), cur, 0, "VFs disabled on request"))
    return plan


def apply_count(host: Host, pf: PciDevice, plan: Plan, opts: EnableOptions) -> Outcome:
    """Apply a vf-enable / vf-disable plan: the writes in order, then the wait for the VFs to settle, then the
    count read back."""
    out = Outcome(plan, messages=list(plan.notes))
    name = device_name(pf)
    autoprobe = pf.sriov.drivers_autoprobe if pf.sriov and pf.sriov.drivers_autoprobe is not None else True
    for c in plan.changes:
        if c.kind is ChangeKind.AUTOPROBE:
            write(host, sysfs.device_attr(pf.address, sysfs.SRIOV_DRIVERS_AUTOPROBE), "1" if c.after else "0",
                  f"{name}: sriov_drivers_autoprobe")
            autoprobe = bool(c.after)
        elif c.kind is ChangeKind.VF_COUNT:
            write(host, sysfs.device_attr(pf.address, sysfs.SRIOV_NUMVFS), str(c.after), f"{name}: sriov_numvfs")
        out.applied.append(c)
    if not plan.changes:
        return out
    n = int(plan.changes[-1].after)
    if host.dry_run:
        out.messages.append(f"{name}: would enable {n} VFs" if n else
                            f"{name}: would disable its {plan.changes[-1].before} VFs")
    else:
        if n:
            wait_settled(host, pf, name, n, autoprobe, opts.wait, opts.progress)
        now = host.read_int(sysfs.device_attr(pf.address, sysfs.SRIOV_NUMVFS))
        if now != n:
            raise VerificationError(f"{name}: sriov_numvfs reads {now} after writing {n}",
                                    hint="another writer, or the driver changed it: check dmesg")
        out.verified = True
        out.messages.append(f"{name}: {n} VFs enabled" if n else f"{name}: VFs disabled")
    if n and not opts.autoprobe:
        out.messages[-1] += " (left unbound: autoprobe off)"
    return out


_PARAM = re.compile(r"[a-z_][a-z0-9_]{0,31}", re.ASCII)


def plan_module_param(host: Host, inv: Inventory, pf: PciDevice, n: int, param: str, force: bool) -> Plan:
    """The legacy recipe: reload the PF's driver with a VF-count parameter (igb max_vfs=N) and persist it in
    /etc/modprobe.d/DRIVER.conf. Affects every port that driver drives."""
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
    conf = f"# written by sriovctl: VFs at module load (legacy; sriov_numvfs is preferred)\noptions {module} {param}={n}\n"
    plan.changes.append(Change(ChangeKind.CONFIG_FILE, f"/etc/modprobe.d/{module}.conf",
                               host.read_text(f"etc/modprobe.d/{module}.conf"), conf, "the count again at every boot"))
    return plan


def apply_module_param(host: Host, pf: PciDevice, plan: Plan, n: int, wait: float) -> Outcome:
    out = Outcome(plan)
    reload, conf = plan.changes
    module, param = reload.target, str(reload.after)
    host.run(["modprobe", "-r", module])
    host.run(["modprobe", module, param])
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
