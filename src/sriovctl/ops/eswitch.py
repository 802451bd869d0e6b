"""A PF's eswitch mode through devlink: ``legacy`` (VFs switched by the NIC, set through the PF's netlink) or
``switchdev`` (each VF gets a representor netdev; its traffic is steered by the host's TC/OVS rules).

Drivers want different orders: netdevsim changes mode at any VF count (it adds or removes the representors of
the VFs there are: seen in the lab), ice (6.1, ice_eswitch_mode_set) refuses while VFs exist, mlx5 wants its VFs
created and their drivers unbound first. The kernel's own refusal (errno and extended-ack message) is passed on
with what that driver wants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sriovctl import drivers
from sriovctl.errors import UnavailableError, UsageError, VerificationError
from sriovctl.host.base import Host, WriteKind
from sriovctl.host.netlink import NetlinkError
from sriovctl.model import Inventory, NetPf, PciDevice, device_name
from sriovctl.ops.guards import refuse_if_in_use
from sriovctl.ops.kernel import errname
from sriovctl.ops.plan import Change, ChangeKind, Outcome, Plan

if TYPE_CHECKING:
    from sriovctl.ops.session import Session

MODES = ("legacy", "switchdev")

@dataclass(frozen=True)
class EswitchTarget:
    name: str  # how messages name the PF
    bus: str
    device: str
    driver: str | None
    lock: str

    @property
    def handle(self) -> str:
        return f"{self.bus}/{self.device}"


def target_of(pf: PciDevice | NetPf) -> EswitchTarget:
    if isinstance(pf, NetPf):
        return EswitchTarget(pf.name, pf.bus, pf.device, pf.driver, pf.lock)
    if not pf.is_pf:
        raise UsageError(f"{device_name(pf)}: not an SR-IOV PF", hint="name the PF whose eswitch to change")
    return EswitchTarget(device_name(pf), "pci", str(pf.address), pf.driver, str(pf.address))


def current_mode(host: Host, t: EswitchTarget) -> str:
    dl = host.devlink()
    if dl is None:
        raise UnavailableError(f"{t.name}: {host.label} has no devlink (a snapshot or a simulated host)")
    try:
        return str(dl.eswitch_mode(t.bus, t.device))
    except NetlinkError as e:
        raise _refusal(t, "reading the eswitch mode", e) from None


def _refusal(t: EswitchTarget, what: str, e: NetlinkError) -> UnavailableError:
    import errno

    if e.errno == errno.ENODEV:
        return UnavailableError(f"{t.name}: no devlink instance {t.handle}: its driver {t.driver or '(none)'} does "
                                "not register one, so it has no switchdev mode", hint="switchdev needs mlx5, ice, "
                                "nfp, netdevsim or another driver with devlink eswitch support")
    if e.errno == errno.EOPNOTSUPP and not e.message:
        return UnavailableError(f"{t.name}: {t.handle}: {what}: not supported by {t.driver or 'its driver'}")
    return UnavailableError(f"{t.name}: {t.handle}: {what}: the driver refused: {e.message or errname(e.errno)} "
                            f"({errname(e.errno)})", hint=drivers.driver(t.driver).eswitch_rule)


def plan_eswitch(host: Host, inv: Inventory, pf: PciDevice | NetPf, mode: str, force: bool) -> Plan:
    if mode not in MODES:
        raise UsageError(f"eswitch mode {mode!r}: not legacy or switchdev")
    t = target_of(pf)
    plan = Plan("pf-eswitch", host.label)
    before = current_mode(host, t)
    if before == mode:
        plan.notes.append(f"{t.name}: eswitch already {mode}, nothing to do")
        return plan
    if isinstance(pf, PciDevice):  # a mode change re-creates the VFs' datapath: not under a VM
        refuse_if_in_use(host, inv.vfs_of(pf), f"{t.name}: changing the eswitch to {mode}", force, plan)
    plan.changes.append(Change(ChangeKind.ESWITCH_MODE, t.handle, before, mode, f"eswitch {mode} on request"))
    return plan


def apply_eswitch(host: Host, pf: PciDevice | NetPf, plan: Plan) -> Outcome:
    out = Outcome(plan, messages=list(plan.notes))
    t = target_of(pf)
    for c in plan.changes:
        host.record(WriteKind.NETLINK, f"devlink eswitch {t.handle}", f"mode {c.after}")
        if host.dry_run:
            out.messages.append(f"would set {t.handle} eswitch mode {c.after} (now {c.before})")
            continue
        try:
            host.devlink().set_eswitch_mode(t.bus, t.device, str(c.after))
        except NetlinkError as e:
            raise _refusal(t, f"eswitch mode {c.after}", e) from None
        now = current_mode(host, t)
        if now != c.after:
            out.refused.append((c, f"reads back {now}"))
            raise VerificationError(f"{t.name}: eswitch mode {c.after} accepted but reads back {now}")
        out.applied.append(c)
        out.messages.append(f"{t.handle}: eswitch mode {c.before} -> {c.after}")
    out.verified = True
    return out


def set_mode(s: Session, name: str, mode: str, force: bool = False, wait: float = 10.0) -> Outcome:
    """`pf eswitch NAME MODE`: under the PF's lock, the PF as it is now (read again if another wrote)."""
    with s.locked(target_of(s.find_pf(name)).lock, wait) as inv:
        fresh = s.find_pf(name)
        return apply_eswitch(s.host, fresh, plan_eswitch(s.host, inv, fresh, mode, force))
