"""The safety interlocks, before any write: VFs in use are never destroyed, a device is never taken from its user
(above all the interface that carries the default route), a non-assignable device never goes to a VM — unless
forced, which turns the refusal into a notice on the plan. Refusals are InterlockErrors carrying the typed
holders (model.Use: kind + id); the wording of "use --force" is the CLI's (remedy keys)."""

from __future__ import annotations

from sriovctl.errors import InterlockError
from sriovctl.host.base import Host
from sriovctl.inuse import UsageScan
from sriovctl.model import PciDevice, Use, UseKind, device_name
from sriovctl.ops.plan import Notice, NoticeKind, Plan


def scan(host: Host) -> UsageScan:
    """Who uses what: processes holding VFIO groups, netdevs, (through virt/) running libvirt domains, and the
    pools' allocation records (an allocated VF is its owner's until released)."""
    from sriovctl.ops.poolrecords import pool_users
    from sriovctl.virt.users import libvirt_users

    return UsageScan(host, (libvirt_users, pool_users))


def refuse_or_note(plan: Plan, force: bool, message: str, hint: str, remedy: str, holders: list[Use]) -> None:
    if not force:
        raise InterlockError(message, hint=hint, remedy=remedy, holders=tuple(holders))
    plan.notices.append(Notice(NoticeKind.FORCED, message))


def refuse_if_in_use(host: Host, devices: list[PciDevice], action: str, force: bool, plan: Plan,
                     users: UsageScan | None = None) -> None:
    """Destroying these devices (VFs) is refused while any is in use. ``users``: the operation's one scan."""
    s = users or scan(host)
    held = {d: u for d in devices if (u := s.uses(d))}
    if not held:
        return
    desc = "; ".join(f"{d.address}: {', '.join(map(str, u))}" for d, u in held.items())
    message = f"{action}: refused, in use: {desc}" if not force else f"{action} although in use: {desc}"
    refuse_or_note(plan, force, message, "stop the users first", "force", [x for u in held.values() for x in u])


def guard_take(host: Host, d: PciDevice, also: list[PciDevice], force: bool, plan: Plan,
               action: str | None = None, users: UsageScan | None = None, pool_owner: str | None = None) -> None:
    """Taking a device from its driver or its user (to rebind it, or to give it to a guest) is refused while it,
    or a VF that would go with it, is in use. ``action`` names what is refused (default: unbinding its driver);
    ``users``: the operation's one scan (binding 256 VFs asks /proc and libvirt once, not 256 times);
    ``pool_owner``: the owner the VF was allocated to from a pool (the one taking it: that use is no refusal)."""
    s = users or scan(host)
    def theirs(u: Use) -> bool:
        return not (pool_owner is not None and u.kind is UseKind.POOL and u.id == pool_owner)

    uses: list[tuple[PciDevice | None, Use]] = [(None, u) for u in s.uses(d) if theirs(u)]
    uses += [(v, u) for v in also for u in s.uses(v) if theirs(u)]
    if not uses:
        return
    text = "; ".join(str(u) if v is None else f"{v.address}: {u}" for v, u in uses)
    message = f"{device_name(d)}: {action or f'refusing to unbind {d.driver}'}: {text}"
    cuts_off = any(u.kind.cuts_host_off for _, u in uses)
    hint = "this would cut the host off; use another interface" if cuts_off else "stop the users first"
    refuse_or_note(plan, force, message, hint, "force-cut-off" if cuts_off else "force", [u for _, u in uses])


def require_assignable(d: PciDevice, force: bool, plan: Plan, subject: str | None = None,
                       remedy: str = "force-assign") -> None:
    """A device going to a VM (vfio-pci, libvirt, QEMU) must be assignable (doctor's per-VF verdict)."""
    if d.assignability and d.assignability.assignable:
        return
    reason = d.assignability.reason if d.assignability else "unknown"
    message = f"{subject or device_name(d)}: not assignable: {reason}"
    refuse_or_note(plan, force, message, "a VM cannot own it safely; fix the group (see doctor)", remedy, [])
