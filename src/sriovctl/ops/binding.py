"""Which driver a device has: bind (driver_override + unbind + drivers_probe, the original restored on failure)
and unbind, behind the interlocks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sriovctl.errors import (
    HostIOError,
    NoInputError,
    SriovctlError,
    TemporaryError,
    UnavailableError,
    UsageError,
    VerificationError,
)
from sriovctl.host import sysfs
from sriovctl.host.base import Host, safe_name
from sriovctl.inuse import UsageScan
from sriovctl.model import Inventory, PciAddress, PciDevice, device_name
from sriovctl.ops.guards import guard_take, require_assignable, scan
from sriovctl.ops.kernel import driver_of, wait_bound, write
from sriovctl.ops.plan import Change, ChangeKind, Outcome, Plan

if TYPE_CHECKING:
    from sriovctl.ops.session import Session

NATIVE = "host"  # "its host driver": whatever the kernel matches when no override is set


@dataclass(frozen=True, slots=True)
class BindOptions:
    force: bool = False
    wait: float = 10.0  # seconds for the driver to bind (and for the PF's lock)


def plan_bind(host: Host, inv: Inventory, d: PciDevice, driver: str, opts: BindOptions, plan: Plan,
              users: UsageScan | None = None) -> None:
    """Add the changes that bind ``d`` to ``driver`` (``host``: its native driver) to ``plan``."""
    native = driver == NATIVE
    if not native:
        safe_name(driver, "driver")
    name = device_name(d)
    if d.is_bridge:
        raise UsageError(f"{name}: a PCI bridge/port; sriovctl does not rebind those")
    if driver == "vfio-pci" and d.assignability is not None:
        require_assignable(d, opts.force, plan)
    if d.driver is not None and (native or d.driver != driver):
        guard_take(host, d, [], opts.force, plan, users=users)
    if not native and d.driver == driver:
        plan.notes.append(f"{name}: already bound to {driver}")
        return
    if not native and not host.is_dir(sysfs.driver_dir(driver)):
        plan.changes.append(Change(ChangeKind.MODULE_LOAD, driver, "absent", "loaded",
                                   f"{driver} is not registered with the PCI core yet"))
    plan.changes.append(Change(ChangeKind.DRIVER, str(d.address), d.driver, None if native else driver,
                               "its native driver" if native else f"{driver} asked for"))


def plan_unbind(host: Host, inv: Inventory, d: PciDevice, force: bool, plan: Plan,
                users: UsageScan | None = None) -> None:
    if d.driver is None:
        plan.notes.append(f"{device_name(d)}: not bound, nothing to do")
        return
    guard_take(host, d, inv.vfs_of(d), force, plan, users=users)
    plan.changes.append(Change(ChangeKind.DRIVER, str(d.address), d.driver, None, "unbind asked for"))


def bind(host: Host, inv: Inventory, d: PciDevice, driver: str, opts: BindOptions,
         users: UsageScan | None = None) -> Outcome:
    """Plan and apply one device's binding to ``driver`` (``host``: its native driver)."""
    plan = Plan("vf-bind", host.label)
    plan_bind(host, inv, d, driver, opts, plan, users)
    return apply_binding(host, inv, plan, opts)


def unbind(host: Host, inv: Inventory, d: PciDevice, opts: BindOptions, users: UsageScan | None = None) -> Outcome:
    """Plan and apply unbinding one device from its driver."""
    plan = Plan("vf-unbind", host.label)
    plan_unbind(host, inv, d, opts.force, plan, users)
    return apply_binding(host, inv, plan, opts, unbind=True)


def bind_named(s: Session, name: str, driver: str | None, opts: BindOptions) -> list[Outcome]:
    """`vf bind NAME DRIVER` / `vf unbind NAME` (``driver`` None): every device NAME resolves to (a range too),
    under the locks of every PF they belong to (held for the whole range: no writer in between), each resolved
    again under them, one in-use scan for all of them."""
    devices = s.find_all(name)
    outcomes = []
    with s.locked_all(devices, opts.wait) as inv:
        users = scan(s.host)
        for d in devices:
            fresh = inv.devices.get(d.address)
            if fresh is None or fresh.is_vf != d.is_vf or fresh.physfn != d.physfn:
                # destroyed (or re-created under another PF) by another sriovctl while this waited for the lock
                raise TemporaryError(f"{d.address}: gone or changed while this waited for its PF's lock",
                                     hint="check the PF's VFs, then run it again")
            outcomes.append(unbind(s.host, inv, fresh, opts, users) if driver is None else
                            bind(s.host, inv, fresh, driver, opts, users))
    return outcomes


def apply_binding(host: Host, inv: Inventory, plan: Plan, opts: BindOptions, unbind: bool = False) -> Outcome:
    out = Outcome(plan, messages=list(plan.notes))
    for c in plan.changes:
        if c.kind is ChangeKind.MODULE_LOAD:
            _load_module(host, c.target, out)
        elif unbind:
            d = inv.devices[_addr(inv, c.target)]
            write(host, sysfs.driver_file(str(c.before), sysfs.UNBIND), str(d.address),
                  f"{device_name(d)}: unbind {c.before}")
            out.messages.append(f"{device_name(d)}: would unbind {c.before}" if host.dry_run
                                else f"{device_name(d)}: unbound from {c.before}")
        else:
            _bind(host, inv.devices[_addr(inv, c.target)], c, opts, out)
        out.applied.append(c)
    if not host.dry_run and plan.changes:
        out.verified = True
    return out


def _addr(inv: Inventory, target: str) -> PciAddress:
    return PciAddress.parse(target)


def _load_module(host: Host, driver: str, out: Outcome) -> None:
    try:
        host.run(["modprobe", driver])
    except HostIOError as e:
        if "not found" in e.message:  # modprobe: FATAL: Module X not found in directory /lib/modules/…
            raise NoInputError(f"driver {driver}: no such module on this host", hint="check the name (lsmod, "
                               "modinfo)") from None
        raise
    out.messages.append(f"would load module {driver}" if host.dry_run else f"loaded module {driver}")
    if not host.dry_run and not host.is_dir(sysfs.driver_dir(driver)):
        raise UnavailableError(f"driver {driver}: not registered after modprobe", hint="is the module available?")


def _bind(host: Host, d: PciDevice, c: Change, opts: BindOptions, out: Outcome) -> None:
    native = c.after is None
    name = device_name(d)
    override = sysfs.device_attr(d.address, sysfs.DRIVER_OVERRIDE)
    write(host, override, "\n" if native else str(c.after), f"{name}: driver_override")
    try:
        if d.driver is not None:
            write(host, sysfs.driver_file(d.driver, sysfs.UNBIND), str(d.address), f"{name}: unbind {d.driver}")
        write(host, sysfs.DRIVERS_PROBE, str(d.address), f"{name}: drivers_probe")
        if host.dry_run:
            out.messages.append(f"{name}: would bind {'its native driver' if native else c.after}")
            return
        no_autoprobe = d.physfn is not None and \
            host.read_text(sysfs.device_attr(d.physfn, sysfs.SRIOV_DRIVERS_AUTOPROBE)) == "0"
        # pci_device_can_probe() is false for a VF without override whose PF has sriov_drivers_autoprobe 0:
        # drivers_probe binds nothing, however long we wait
        now = wait_bound(host, d, None if native else str(c.after), 0.0 if native and no_autoprobe else opts.wait)
        if now is None:
            hint = "the PF's sriov_drivers_autoprobe is 0: name the driver" if no_autoprobe else "check dmesg"
            raise UnavailableError(f"{name}: no driver bound after drivers_probe", hint=hint,
                                   remedy="name-driver" if no_autoprobe else None)
        if not native and now != c.after:
            raise VerificationError(f"{name}: bound to {now} after asking for {c.after}",
                                    hint="its driver_override was changed by someone else; check dmesg")
    except SriovctlError:
        if not host.dry_run and d.driver and driver_of(host, d.address) is None:
            try:  # put it back where it was
                host.write(override, d.driver)
                host.write(sysfs.DRIVERS_PROBE, str(d.address))
                host.write(override, "\n")
            except OSError:
                pass
        raise
    out.messages.append(f"{name}: bound to {now}")
    if now == "vfio-pci" and d.iommu_group is not None:
        node = f"dev/vfio/{d.iommu_group}"
        out.messages.append(f"{name}: VFIO group /{node}" + ("" if host.exists(node) else " (not present yet)"))
