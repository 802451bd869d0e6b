"""`state apply`: checkpoint → apply in phases → read back and verify (a deadline that grows with the VF
count) → on failure roll back to the checkpoint (nmstate's netapplier shape).

Phases, each planned again from the host as it is then (so a run after a crash rolls forward from wherever
the killed run stopped): 1. VF counts and drivers-autoprobe (sriov_numvfs through 0, a module reload for
create: module-param), 2. VF attributes (one batched RTM_SETLINK per PF, read back), 3. bindings. A converged
host gets no write at all (sriovctl's own state directory excepted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sriovctl.drivers import vf_count_param
from sriovctl.errors import (
    InterlockError,
    PartialError,
    ReadOnlyError,
    RolledBackError,
    SriovctlError,
    UsageError,
    VerificationError,
)
from sriovctl.host.base import Host
from sriovctl.model import Inventory, NetPf, PciDevice
from sriovctl.ops.desired import journal
from sriovctl.ops.desired.planner import StatePlan, make_plan
from sriovctl.ops.plan import JSON, Change, ChangeKind
from sriovctl.ops.session import Session
from sriovctl.state.current import net_pf, pci_pf
from sriovctl.state.desired import DesiredState, parse
from sriovctl.state.match import Matched
from sriovctl.untrusted import shown

VERIFY_BASE = 5.0  # seconds to read back a converged host, plus per VF (nmstate grows its verify timeout too)
VERIFY_PER_VF = 0.02


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    force: bool = False
    wait: float = 60.0  # seconds for the PFs' locks and for VFs to settle / bind
    verify_base: float = VERIFY_BASE


@dataclass
class StateOutcome:
    plan: StatePlan
    applied: list[Change] = field(default_factory=list)
    result: str = "Succeeded"  # Succeeded | Failed
    error: str | None = None
    rolled_back: bool = False
    restored: bool | None = None  # rollback reached the checkpoint (None: no rollback)
    recovered: list[str] = field(default_factory=list)  # PFs whose killed run's journal was found
    messages: list[str] = field(default_factory=list)
    netlink_requests: int = 0
    writes: int = 0

    def to_json(self) -> dict[str, JSON]:
        return {"plan": self.plan.to_json(), "applied": [c.to_json() for c in self.applied], "result": self.result,
                "error": self.error, "rolled_back": self.rolled_back, "restored": self.restored,
                "recovered": self.recovered, "netlink_requests": self.netlink_requests, "writes": self.writes}


def verify_deadline(vfs: int, base: float = VERIFY_BASE) -> float:
    return base + VERIFY_PER_VF * vfs


def plan(host: Host, state: DesiredState, only_names: list[str] | None = None) -> StatePlan:
    s = Session(host)
    return make_plan(host, s.inv, state, _only(s, only_names))


def _only(s: Session, names: list[str] | None) -> list[PciDevice | NetPf] | None:
    """The PFs a run is limited to. Each name must be an SR-IOV PF (64): a VF, `PF#N` or another device said
    "no changes" and exited 0, as if the state had been checked."""
    if names is None:
        return None
    out: list[PciDevice | NetPf] = []
    for n in names:
        if "#" in n:
            raise UsageError(f"{shown(n)}: names VFs; a PF filter names PFs", hint="drop the #N")
        pf = s.find_pf(n)
        if isinstance(pf, PciDevice) and (pf.is_vf or pf.sriov is None):
            raise UsageError(f"{pf.address}: {'a VF' if pf.is_vf else 'not an SR-IOV PF'}, not a PF to limit the "
                             "state to", hint="name a PF (`sriovctl list` shows them)")
        out.append(pf)
    return out


def apply(host: Host, state: DesiredState, digest: str, opts: ApplyOptions,
          only_names: list[str] | None = None) -> StateOutcome:
    """Bring the host to ``state`` (``only_names``: those PFs' entries). Raises RolledBackError (7/8) when it
    failed midway, InterlockError (77) when in-use VFs would be destroyed without ``force``, StateError (65)."""
    if host.read_only:  # a snapshot: refused before anything, like every other write (it ran up to the first
        # netlink write, "rolled back" and exited 7)
        raise ReadOnlyError(f"{host.label}: a snapshot is read-only, cannot apply a state",
                            hint="`state plan` shows what it would change", remedy="read-only")
    s = Session(host)
    only = _only(s, only_names)
    first = make_plan(host, s.inv, state, only, scan_users=False)
    # the boot unit and the udev rule can fire together: every PF's lock for the whole run; the inventory is
    # read again when another sriovctl wrote since
    with s.locked_keys([m.key for m in first.matched], opts.wait) as inv:
        checkpoint: dict[str, dict[str, Any]] = {}
        recovered = []
        for m in first.matched:
            kept = journal.recover(host, m.key, _belongs(m))
            if kept is not None:
                recovered.append(m.label)
                checkpoint[m.key] = kept
        sp = make_plan(host, inv, state, only)
        out = StateOutcome(sp, recovered=recovered)
        if recovered:
            out.messages.append(f"an interrupted apply's journal found for {', '.join(recovered)}: rolling forward "
                                "(its checkpoint is kept to roll back to)")
        if sp.converged:
            for key in checkpoint:  # a killed run that had already got everything there
                journal.end(host, key)
            out.messages.append("no changes")
            _record(host, digest, state, out)
            return out
        blocking = sp.blocking()
        if blocking and not opts.force:
            first_block = blocking[0]
            what = f"in use: {'; '.join(first_block.who[:4])}" if first_block.who else "not assignable"
            raise InterlockError(f"{first_block.target}: {first_block.why}: refused, {what}",
                                 hint="stop the users first (`state plan` lists every impact)" if first_block.who
                                 else "fix the IOMMU group, or choose another VF", remedy="force",
                                 holders=tuple(u for b in blocking for u in b.uses))
        if host.dry_run:
            out.messages.append(f"would make {len(sp.plan.changes)} changes")
            return out
        for m in sp.matched:
            if m.key not in checkpoint:
                checkpoint[m.key] = _entry(inv, m)
            journal.begin(host, m.key, checkpoint[m.key], digest)
        start_nl, start_w = _netlink_count(host), len(host.writes)
        failure: SriovctlError | None = None
        try:
            _run(s, state, only, opts, out, sp)
            _verify(s, state, only, opts, out)
        except SriovctlError as e:
            failure = e
            out.result, out.error = "Failed", e.message
            _rollback(s, checkpoint, opts, out)
        out.netlink_requests = _netlink_count(host) - start_nl
        out.writes = len(host.writes) - start_w
        _record(host, digest, state, out)
        for key in checkpoint:
            journal.end(host, key)
        if failure is not None:
            raise RolledBackError(f"state apply: {failure.message}; "
                                  + ("the host was restored to its checkpoint" if out.restored else
                                     "restoring the checkpoint failed too: the host is in between"),
                                  hint=(failure.hint or "").split("; the rest")[0] or None, outcome=out,
                                  restored=bool(out.restored)) from failure
        return out


def _netlink_count(host: Host) -> int:
    try:
        return int(host.netlink().requests)
    except (SriovctlError, AttributeError, OSError):
        return 0


def _selector_doc(m: Matched) -> dict[str, Any]:
    sel = m.entry.selector
    if sel.name is not None:
        return {"name": sel.name}
    if sel.pci_address is not None:
        return {"pci-address": sel.pci_address}
    return {"vendor": sel.vendor, "device": sel.device, "index": sel.index}


def _belongs(m: Matched) -> Callable[[dict[str, Any]], bool]:
    """A journal's checkpoint is this PF's when it selects the PF the same way this run's entry does."""
    want = _selector_doc(m)
    return lambda entry: all(entry.get(k) == v for k, v in want.items()) \
        and not any(k in entry for k in ("name", "pci-address", "vendor") if k not in want)


def _entry(inv: Inventory, m: Matched) -> dict[str, Any]:
    """The checkpoint of one PF: its state document now, with the entry's own selector (the PF is found the
    same way when rolling back)."""
    doc = net_pf(m.pf) if isinstance(m.pf, NetPf) else pci_pf(inv, m.pf)
    for k in ("name", "pci-address"):
        doc.pop(k, None)
    return {**_selector_doc(m), **doc}


def _run(s: Session, state: DesiredState, only: list[PciDevice | NetPf] | None, opts: ApplyOptions,
         out: StateOutcome, sp: StatePlan | None = None) -> None:
    """The phases; ``sp``: the plan already made from the inventory as it is now (made here when None)."""
    host = s.host
    if sp is None:
        sp = make_plan(host, s.inv, state, only, scan_users=False)
    counts = [c for c in sp.plan.changes if c.kind in (ChangeKind.VF_COUNT, ChangeKind.AUTOPROBE,
                                                        ChangeKind.MODULE_RELOAD)]
    _phase_counts(s, sp, counts, opts, out)
    if counts:
        s.reread()
        sp = make_plan(host, s.inv, state, only, scan_users=False)
    if sp.settings:
        _phase_attrs(s, sp, out)
        s.reread()
        sp = make_plan(host, s.inv, state, only, scan_users=False)
    binds = [c for c in sp.plan.changes if c.kind is ChangeKind.DRIVER]
    _phase_binds(s, binds, opts, out)


def _phase_counts(s: Session, sp: StatePlan, changes: list[Change], opts: ApplyOptions, out: StateOutcome) -> None:
    from sriovctl.ops.kernel import wait_settled
    from sriovctl.ops.vfcount import reload_module, write_autoprobe, write_count

    host = s.host
    by_key = {m.key: m for m in sp.matched}
    reloaded: set[str] = set()
    for c in changes:
        if c.kind is ChangeKind.MODULE_RELOAD:
            if c.target not in reloaded:
                reloaded.add(c.target)
                reload_module(host, c.target, str(c.after))
            out.applied.append(c)
            continue
        m = by_key[c.target]
        if c.kind is ChangeKind.AUTOPROBE and isinstance(m.pf, PciDevice):
            write_autoprobe(host, m.pf, bool(c.after), m.label)
        else:  # the VF-count step `vf enable` and `vf disable` take, for a PCI PF or one on another bus
            write_count(host, m.pf, int(c.after), m.label)
        out.applied.append(c)
    # each PF's new VFs exist (and are bound, with autoprobe) before their attributes are set
    touched = {c.target for c in changes}
    waiting = [m for m in sp.matched if isinstance(m.pf, PciDevice) and (m.key in touched or m.pf.module in touched)
               and m.entry.total_vfs]
    if waiting:
        s.reread()  # once: the PFs as the writes left them (their autoprobe, a module reload's new PF devices)
    for m in waiting:
        assert isinstance(m.pf, PciDevice) and m.entry.total_vfs
        pf = s.inv.devices.get(m.pf.address)
        if pf is None or pf.sriov is None:
            raise VerificationError(f"{m.label}: gone after its VF count changed", hint="check dmesg")
        n = min(m.entry.total_vfs, pf.sriov.totalvfs or m.entry.total_vfs)
        autoprobe = pf.sriov.drivers_autoprobe if pf.sriov.drivers_autoprobe is not None else True
        wait_settled(host, pf, m.label, n, autoprobe, opts.wait)
        out.messages.append(f"{m.label}: {n} VFs" + (f" ({vf_count_param(pf.driver) or 'module'} at load)"
                                                     if m.entry.create == "module-param" else ""))


def _phase_attrs(s: Session, sp: StatePlan, out: StateOutcome) -> None:
    from sriovctl.ops.vfattrs import VfSettings, apply_set, net_targets, pci_targets, plan_set

    for m in sp.matched:
        per_vf = sp.settings.get(m.key)
        if not per_vf:
            continue
        if isinstance(m.pf, NetPf):
            targets = net_targets(m.pf, sorted(per_vf))
        else:
            vfs = {v.vf_index: v for v in s.inv.vfs_of(m.pf)}
            targets = pci_targets(s.inv, [vfs[i] for i in sorted(per_vf)])
        settings = [(t, VfSettings(**per_vf[t.vf])) for t in targets]  # type: ignore[arg-type]
        try:
            res = apply_set(s.host, plan_set(s.host, s.inv, settings, clear_mac=True, macs_checked=True))
        except PartialError as e:
            if e.outcome is not None:
                out.applied += e.outcome.applied  # type: ignore[attr-defined]
            raise
        out.applied += res.applied
        out.messages.append(res.messages[-1])


def _phase_binds(s: Session, changes: list[Change], opts: ApplyOptions, out: StateOutcome) -> None:
    from sriovctl.ops.binding import NATIVE, BindOptions, bind, unbind
    from sriovctl.ops.guards import scan
    from sriovctl.pci.address import PciAddress

    bopts = BindOptions(force=opts.force, wait=opts.wait)
    users = scan(s.host) if changes else None  # one scan for the phase (was one per VF rebound)
    for c in changes:
        d = s.inv.devices[PciAddress.parse(c.target)]
        if c.after == "none":
            unbind(s.host, s.inv, d, bopts, users)
        else:
            bind(s.host, s.inv, d, NATIVE if c.after == "host" else str(c.after), bopts, users)
        out.applied.append(c)
    if changes:
        out.messages.append(f"{len(changes)} VF bindings changed")


def _verify(s: Session, state: DesiredState, only: list[PciDevice | NetPf] | None, opts: ApplyOptions,
            out: StateOutcome) -> None:
    """Read the host back until it plans nothing, or the deadline (grows with the VF count) passes."""
    left: list[Change] = []
    reads = [0]

    def converged() -> bool | None:
        reads[0] += 1
        s.reread()
        sp = make_plan(s.host, s.inv, state, only, scan_users=False)
        left[:] = sp.plan.changes
        return True if not left else None

    deadline = verify_deadline(out.plan.vfs, opts.verify_base)
    if s.host.poll(deadline, converged, delay=0.05, max_delay=0.5) is None:
        shown = "; ".join(f"{c.target} {c.attr or c.kind.value}: {c.before} → {c.after}" for c in left[:3])
        raise VerificationError(f"the host does not read back as the state after {deadline:g} s: "
                                f"{len(left)} differences: {shown}",
                                hint="a driver that ignores a setting, or another writer (NetworkManager, "
                                     "systemd-networkd, the SR-IOV operator)")
    out.messages.append(f"verified: the host reads back as the state ({out.plan.vfs} VFs, "
                        f"{reads[0]} read{'s' if reads[0] > 1 else ''})")


def _rollback(s: Session, checkpoint: dict[str, dict[str, Any]], opts: ApplyOptions, out: StateOutcome) -> None:
    """Apply the checkpoint as a state (the same phases), then verify it. A checkpoint that cannot be read as a
    state (a journal damaged on disk) ends as a failed restore (exit 8, the journal removed, a Failed record),
    never as a bad-input error that leaves the partial change behind unrecorded."""
    out.rolled_back = True
    undo = StateOutcome(out.plan)
    try:
        back = replace(parse({"pfs": list(checkpoint.values())}, "checkpoint"), restore=True)
        s.reread()
        _run(s, back, None, opts, undo)
        _verify(s, back, None, opts, undo)
        out.restored = True
        out.messages.append(f"rolled back: {len(undo.applied)} changes restored the checkpoint")
    except SriovctlError as e:
        out.restored = False
        out.messages.append(f"rollback failed: {e.message}")


def _record(host: Host, digest: str, state: DesiredState, out: StateOutcome) -> None:
    if host.dry_run or host.read_only or not out.plan.matched:
        return  # a udev run for a PF the state does not name leaves the record of the last real apply alone
    journal.save_record(host, {"hash": digest, "source": state.source, "result": out.result, "error": out.error,
                               "pfs": [m.label for m in out.plan.matched]})


def _orphan_pools(host: Host, state: DesiredState | None) -> list[JSON]:
    """Pools that allocation records name and the state does not have (a pool deleted, or a state replaced,
    while its VFs were out): reported, not drift — their VFs stay their owners' until released."""
    from sriovctl.errors import SriovctlError
    from sriovctl.ops.poolrecords import all_records

    try:
        named = {a.pool for r in all_records(host).values() for a in r.values()}
    except (SriovctlError, OSError):
        return []
    have = {v.pool for p in (state.pfs if state else ()) for v in p.vfs or () if v.pool is not None}
    return sorted(named - have)


def status(host: Host, state: DesiredState | None, digest: str | None, inv: Inventory | None = None) -> dict[str, JSON]:
    """Whether the host has drifted from ``state`` (the last applied one's record beside it); ``inv``: an
    inventory the caller read already (the exporter's scrape), else one is read."""
    record = journal.load_record(host)
    doc: dict[str, JSON] = {"record": record, "pending_journals": journal.pending(host),
                            "pools_not_in_state": _orphan_pools(host, state)}
    if state is None:
        doc.update(in_sync=None, drifted=None, changes=[])
        return doc
    sp = make_plan(host, inv if inv is not None else Session(host).inv, state, None, scan_users=False)
    doc["changes"] = [c.to_json() for c in sp.plan.changes]
    doc["same_as_applied"] = record is not None and record.get("hash") == digest
    doc["drifted"] = not sp.converged
    doc["in_sync"] = sp.converged and bool(doc["same_as_applied"]) and record is not None \
        and record.get("result") == "Succeeded"
    return doc
