"""VF pools: the VF entries of the stored state with ``pool: NAME`` (their attributes and driver are the pool's
defaults), and per-PF allocation records under sriovctl's state directory — written like the desired-state
journals (beside, fsync, rename; no link followed) and changed only under that PF's lock, the one every writer
takes. Two allocators never get the same VF: each picks under the lock, from the records it read under it.

An entry goes pending → allocated → releasing. A pending or releasing entry whose process is gone (or of
another boot) is finished by the next operation on that PF: the VF is put back to the pool's defaults and the
entry freed — a VF is never handed out dirty. Records are keyed by the PF's lock key and the VF index, never by
IOMMU group numbers (they change across reboots)."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sriovctl import safefs
from sriovctl.errors import NoInputError, SriovctlError, TemporaryError, UsageError
from sriovctl.host.base import Host
from sriovctl.model import Inventory, PciDevice, UseKind
from sriovctl.ops.desired import journal
from sriovctl.ops.poolrecords import (
    ALLOCATED,
    OWNER_KINDS,
    PENDING,
    POLICIES,
    RELEASING,
    STATES,
    ZERO_MAC,
    Allocation,
    Owner,
    all_records,
    check_owner,
    load,
    save,
    stale,
)
from sriovctl.untrusted import shown

__all__ = ["OWNER_KINDS", "Allocated", "Allocation", "Owner", "all_records", "allocate", "check_owner", "members",
           "reconcile", "release", "show"]

# ---- the pools of the stored state ----

@dataclass(frozen=True)
class Member:
    pool: str
    key: str  # its PF's lock key
    pf: PciDevice
    vf: int
    device: PciDevice | None  # None: the state names a VF the PF does not have now
    attrs: dict[str, object]  # the pool's defaults (attrs.VF_ATTRS keys)
    driver: str | None

    @property
    def numa(self) -> int | None:
        n = self.pf.numa_node
        return None if n is None or n < 0 else n


def members(host: Host, inv: Inventory) -> dict[str, list[Member]]:
    """Pool name → its VFs on this host (PF order, then VF index), from the stored state."""
    from sriovctl.ops.state import read_stored_state
    from sriovctl.state.match import match_all

    stored = read_stored_state(host.root)
    if stored is None:
        return {}
    out: dict[str, list[Member]] = {}
    for m in match_all(inv, stored.state):
        if not isinstance(m.pf, PciDevice):
            continue  # a PF not on PCI (netdevsim): its VFs cannot go to a VM
        vfs = inv.vfs_of(m.pf)
        for v in m.entry.vfs or ():
            if v.pool is None:
                continue
            for i in v.ids:
                dev = vfs[i] if i < len(vfs) else None
                out.setdefault(v.pool, []).append(Member(v.pool, m.key, m.pf, i, dev, dict(v.attrs), v.driver))
    for ms in out.values():
        ms.sort(key=lambda x: (x.pf.address, x.vf))
    return out


def pool_members(host: Host, inv: Inventory, pool: str) -> list[Member]:
    found = members(host, inv)
    if pool not in found:
        known = ", ".join(sorted(found)) or "none: add `pool: NAME` to VF entries of the stored state, or `sriovctl pool create`"
        raise NoInputError(f"pool {shown(pool)}: no such pool on this host", hint=f"pools: {known}")
    return found[pool]


def resolve_numa(policy: str, numa: int | None, ms: list[Member]) -> tuple[list[Member], str]:
    """The candidates in the order they are tried, and what was asked (for the refusal's message)."""
    if numa is None:
        return ms, "any NUMA node"
    on = [m for m in ms if m.numa == numa]
    if policy == "required":
        return on, f"NUMA node {numa} (required)"
    if policy == "legacy":  # nova's legacy: on the node, or a device that says nothing about its node
        return on + [m for m in ms if m.numa is None], f"NUMA node {numa} or no NUMA information (legacy)"
    return on + [m for m in ms if m.numa != numa], f"NUMA node {numa} preferred"


# ---- allocation ----

@dataclass
class Allocated:
    allocation: Allocation
    notes: list[str]


def _free(m: Member, recs: dict[int, Allocation], users: Any) -> str | None:
    """Why this member cannot be handed out now (None: it can)."""
    if m.device is None:
        return "the PF does not have it"
    if m.vf in recs:
        return f"{recs[m.vf].state} to {recs[m.vf].owner.label}"
    if m.device.assignability is not None and not m.device.assignability.assignable:
        return "not assignable: " + m.device.assignability.reason
    uses = [u for u in users.uses(m.device) if u.kind is not UseKind.POOL]
    if m.device.driver == "vfio-pci" or m.driver == "vfio-pci":
        uses = [u for u in uses if u.kind not in (UseKind.NAMESPACE, UseKind.ADDRESSES)]
    if uses:
        return str(uses[0].text)
    return None


def recover(host: Host, inv: Inventory, key: str, recs: dict[int, Allocation], members_: list[Member]) -> list[str]:
    """Under the PF's lock: finish what a process that is gone left (pending: rolled back, releasing: finished)
    — the VF back to its pool's defaults, then the entry freed. What was done, for the caller's notes. An entry
    is pending or releasing only while its writer holds this lock: one seen under it is a dead (or failed)
    writer's, whatever its pid says now (pids are reused; a simulated host has no /proc of its own)."""
    notes = []
    by_vf = {m.vf: m for m in members_ if m.key == key}
    for i, a in sorted(recs.items()):
        if a.state == ALLOCATED:
            continue
        _give_back(host, inv, key, recs, i, by_vf.get(i))
        gone = "another boot" if a.boot_id != journal.boot_id(host) else "gone"
        notes.append(f"{a.address}: {a.state} entry of pid {a.pid} ({gone}) "
                     f"{'rolled back' if a.state == PENDING else 'released'}")
    return notes


def _give_back(host: Host, inv: Inventory, key: str, recs: dict[int, Allocation], vf: int, m: Member | None) -> None:
    """Under the PF's lock: the VF back to its pool's defaults (when the pool still has it), then its entry freed —
    in that order, so a VF is never handed out dirty."""
    if m is not None and m.device is not None:
        reset(host, inv, m)
    del recs[vf]
    save(host, key, recs)


def reset(host: Host, inv: Inventory, m: Member) -> None:
    """The VF to its pool's defaults: MAC cleared and every attribute the entry names (the others to the
    kernel's defaults), read back; then bound to the pool's driver."""
    from sriovctl.attrs import defaults
    from sriovctl.ops.binding import BindOptions, bind, unbind
    from sriovctl.ops.vfattrs import VfSettings, apply_set, pci_targets, plan_set

    assert m.device is not None
    want = {k: v for k, v in defaults().items() if k in VfSettings.field_names() and k != "rss_query_en"}
    want.update({k: v for k, v in m.attrs.items() if k in VfSettings.field_names()})
    want["mac"] = m.attrs.get("mac") or ZERO_MAC
    if m.device.netlink is not None and m.device.netlink.min_tx_rate is None:
        want.pop("min_tx_rate", None)
    # the all-zero MAC clears the one its user had (igb_ndo_set_vf_mac, ice_set_vf_mac take it so)
    target = pci_targets(inv, [m.device])[0]
    out = apply_set(host, plan_set(host, inv, [(target, VfSettings(**want))], clear_mac=True))  # type: ignore[arg-type]
    if out.refused or out.verified is False:
        why = "; ".join(w for _, w in out.refused) or "it read back otherwise"
        raise TemporaryError(f"{m.device.address}: resetting it to pool {m.pool}'s defaults did not take: {why}",
                             hint="the entry is kept; `sriovctl pool reconcile` retries")
    driver = m.driver or "host"
    if driver == "host":
        on_it = m.device.driver is not None and m.device.driver != "vfio-pci"  # its own driver (igbvf, iavf)
    else:
        on_it = (driver == "none" and m.device.driver is None) or m.device.driver == driver
    if on_it:
        return
    if driver == "none":
        unbind(host, inv, m.device, BindOptions(force=True))
    else:
        bind(host, inv, m.device, driver, BindOptions(force=True))  # ours to rebind: the entry holds it


def _settings_given(mac: str | None, vlan: int | None) -> dict[str, object]:
    return {k: v for k, v in (("mac-address", mac), ("vlan-id", vlan)) if v is not None}


def allocate(host: Host, pool: str, owner: Owner, *, numa: int | None = None, near: str | None = None,
             policy: str = "preferred", mac: str | None = None, vlan: int | None = None, wait: float = 10.0,
             configure: bool | None = None) -> Allocated:
    """Pick a free, assignable VF of ``pool`` and record it for ``owner``, atomically (under its PF's lock). A
    libvirt owner gets the VF as it is (libvirt's managed hostdev interface sets MAC and VLAN and binds it);
    any other owner gets ``mac``/``vlan`` set (read back) and the pool's driver bound. Refusals: no such pool
    (66), none free where asked (75, naming the free count elsewhere)."""
    from sriovctl.ops.guards import scan
    from sriovctl.ops.session import Session
    from sriovctl.ops.vfattrs import VfSettings

    if policy not in POLICIES:
        raise UsageError(f"--policy {shown(policy)}: not one of {', '.join(POLICIES)}")
    if mac is not None or vlan is not None:
        VfSettings(mac=mac, vlan=vlan).validate(f"pool {pool}", 1)  # before anything is recorded
    if owner.kind == "qemu" and owner.pid is not None and owner.start is None:
        owner = Owner(owner.kind, owner.name, owner.uuid, owner.pid, _start_time(host, owner.pid))
    if owner.kind == "libvirt" and owner.uuid is None:
        from sriovctl.virt.users import domain_uuid

        owner = Owner(owner.kind, owner.name, domain_uuid(host, owner.name))
    s = Session(host)
    if near is not None:
        numa = s.find(near).numa_node
        numa = None if numa is None or numa < 0 else numa
    ms = pool_members(host, s.inv, pool)
    tried, asked = resolve_numa(policy, numa, ms)
    configure = owner.kind != "libvirt" if configure is None else configure
    users = scan(host)
    notes: list[str] = []
    for key in dict.fromkeys(m.key for m in tried):  # PF by PF, in the order the policy gives
        with host.pf_lock(key, wait):
            recs = load(host, key)
            if not host.dry_run:
                notes += recover(host, s.inv, key, recs, ms)
            for m in (m for m in tried if m.key == key):
                if _free(m, recs, users) is not None:
                    continue
                assert m.device is not None
                a = Allocation(key, m.vf, str(m.device.address), pool, PENDING, owner, os.getpid(),
                               journal.boot_id(host), time.time(), _settings_given(mac, vlan))
                if host.dry_run:  # what would be handed out now; nothing recorded, nothing set
                    return Allocated(a, [*notes, f"{a.address}: would be allocated to {owner.label} (dry run)"])
                recs[m.vf] = a
                save(host, key, recs)
                if configure:
                    try:
                        _configure(host, s.inv, m, mac, vlan)
                    except SriovctlError:  # the driver refused: the VF back to the pool's defaults, not recorded
                        with contextlib.suppress(SriovctlError):
                            reset(host, s.inv, m)
                        del recs[m.vf]
                        save(host, key, recs)
                        raise
                a = Allocation(**{**a.__dict__, "state": ALLOCATED})
                recs[m.vf] = a
                save(host, key, recs)
                return Allocated(a, notes)
    free_all = _count_free(host, ms, users)
    elsewhere = free_all - _count_free(host, tried, users) if numa is not None else 0
    raise TemporaryError(f"pool {shown(pool)}: no free VF on {asked} ({len(ms)} VFs in the pool)",
                         hint=(f"{elsewhere} free on other NUMA nodes (--policy preferred takes them)" if elsewhere
                               else "release one (`sriovctl pool release`), or `sriovctl pool reconcile` for leaks"))


def _start_ticks(stat: str) -> int | None:
    """A process's start time in clock ticks, field 22 of its /proc/PID/stat (after the command in parentheses,
    which may hold spaces): with the pid, who it is — a pid alone is reused."""
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


def _start_time(host: Host, pid: int) -> int:
    """A QEMU owner's start time; no such process: the owner is refused (66)."""
    ticks = _start_ticks(host.read_text(f"proc/{pid}/stat") or "")
    if ticks is None:
        raise NoInputError(f"--owner-pid {pid}: no such process")
    return ticks


def _count_free(host: Host, ms: list[Member], users: Any) -> int:
    recs: dict[str, dict[int, Allocation]] = {}
    n = 0
    for m in ms:
        if m.key not in recs:
            recs[m.key] = load(host, m.key)
        n += _free(m, recs[m.key], users) is None
    return n


def _configure(host: Host, inv: Inventory, m: Member, mac: str | None, vlan: int | None) -> None:
    """A non-libvirt owner's VF: its MAC and VLAN (read back), then the pool's driver."""
    from sriovctl.ops.binding import BindOptions, bind
    from sriovctl.ops.vfattrs import VfSettings, set_vfs

    assert m.device is not None
    if mac is not None or vlan is not None:
        out = set_vfs(host, inv, [(m.device, VfSettings(mac=mac, vlan=vlan))])
        if out.refused or out.verified is False:
            raise TemporaryError(f"{m.device.address}: {'; '.join(why for _, why in out.refused) or 'did not read back'}")
    driver = m.driver or "host"
    if driver == "vfio-pci" and m.device.driver != "vfio-pci":
        bind(host, inv, m.device, "vfio-pci", BindOptions(force=True))  # ours: recorded, and assignable (checked)


def release(host: Host, *, address: str | None = None, owner: str | None = None, wait: float = 10.0,
            force: bool = False) -> list[Allocation]:
    """Give VFs back: the one at ``address`` (a VF name), or every VF of ``owner``. Only when nothing holds it
    (a running domain, a process with its VFIO group, an up netdev with addresses: 77 unless ``force``): reset
    to the pool's defaults and checked, rebound to the pool's driver, then the entry freed — in that order."""
    from sriovctl.errors import InterlockError
    from sriovctl.ops.guards import scan
    from sriovctl.ops.session import Session

    s = Session(host)
    by_key = all_records(host)
    wanted: list[Allocation] = []
    if address is not None:
        d = s.find(address)
        wanted = [a for recs in by_key.values() for a in recs.values() if a.address == str(d.address)]
        if not wanted:
            raise NoInputError(f"{d.address}: not allocated from any pool")
    else:
        wanted = [a for recs in by_key.values() for a in recs.values() if a.owner.name == owner]
        if not wanted:
            raise NoInputError(f"owner {shown(owner or '')}: holds no VF from any pool")
    users = scan(host)
    if host.dry_run:
        return sorted(wanted, key=lambda x: (x.key, x.vf))  # what would be released; nothing changed
    mem = {(m.key, m.vf): m for ms in members(host, s.inv).values() for m in ms}
    done = []
    for a in sorted(wanted, key=lambda x: (x.key, x.vf)):
        m = mem.get((a.key, a.vf))
        with host.pf_lock(a.key, wait):
            recs = load(host, a.key)
            cur = recs.get(a.vf)
            if cur is None or cur.owner != a.owner:
                continue  # released (or re-allocated) by another process meanwhile: not ours to touch
            if m is not None and m.device is not None:
                holders = [u for u in users.uses(m.device) if u.kind is not UseKind.POOL]
                if m.device.driver == "vfio-pci":
                    holders = [u for u in holders if u.kind not in (UseKind.NAMESPACE,)]
                if holders and not force:
                    raise InterlockError(f"{a.address}: still held by {holders[0].text}; not released",
                                         hint="stop or detach its user first", remedy="force", holders=tuple(holders))
            recs[a.vf] = Allocation(**{**cur.__dict__, "state": RELEASING, "pid": os.getpid(),
                                       "boot_id": journal.boot_id(host)})
            save(host, a.key, recs)
            _give_back(host, s.inv, a.key, recs, a.vf, m)
            done.append(cur)
    return done


# ---- what the pools hold, and what the records say against the truth ----

COUNTED = ("free", *STATES, "unavailable")


def counts(ms: list[Member], recs: dict[str, dict[int, Allocation]], busy: Callable[[Member], bool]
           ) -> dict[int | None, dict[str, int]]:
    """A pool's VFs by NUMA node (None: none) and state (COUNTED): its entry's state, else unavailable when
    ``busy`` says so (not assignable, missing, held outside the pool), else free. `pool show` and the exporter
    each judge ``busy`` with what they have read."""
    out: dict[int | None, dict[str, int]] = {}
    for m in ms:
        row = out.setdefault(m.numa, dict.fromkeys(COUNTED, 0))
        a = recs.get(m.key, {}).get(m.vf)
        row[a.state if a is not None else "unavailable" if busy(m) else "free"] += 1
    return out


def show(host: Host) -> dict[str, dict[str, dict[str, int]]]:
    """Pool → NUMA node ("-": none) → counts of free, pending, allocated, releasing, unavailable."""
    from sriovctl.ops.guards import scan
    from sriovctl.ops.session import Session

    s = Session(host)
    users = scan(host)
    recs = all_records(host)
    return {pool: {"-" if n is None else str(n): row
                   for n, row in counts(ms, recs, lambda m: _free(m, {}, users) is not None).items()}
            for pool, ms in sorted(members(host, s.inv).items())}


@dataclass(frozen=True)
class Finding:
    kind: str  # leaked | unrecorded | duplicate-mac | mac-diverged | stale-entry
    address: str
    message: str
    fixable: bool

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "address": self.address, "message": self.message, "fixable": self.fixable}


def _qemu_alive(host: Host, o: Owner) -> bool:
    if o.pid is None:
        return True  # nothing to check it by
    stat = host.read_text(f"proc/{o.pid}/stat")
    if stat is None:
        return False
    return o.start is None or _start_ticks(stat) == o.start


def reconcile(host: Host, apply: bool = False, wait: float = 10.0) -> tuple[list[Finding], list[str]]:
    """The records against the truth: entries whose owner is gone (a transient domain that stopped, an
    undefined domain, a QEMU pid gone or reused; a pending or releasing entry of a dead process or another
    boot), pool VFs in use but not recorded, duplicate MACs, admin MACs that differ from the netdev's. A stopped
    persistent domain keeps its VF. ``apply``: free the leaked entries (reset first); the others are reported.
    Without libvirt's API, entries of libvirt owners cannot be judged gone: `apply` refuses (69)."""
    from sriovctl.errors import UnavailableError
    from sriovctl.ops.guards import scan
    from sriovctl.ops.session import Session
    from sriovctl.virt.users import domain_names

    s = Session(host)
    recs = all_records(host)
    running, defined, api = domain_names(host)
    if apply and not api and any(a.owner.kind == "libvirt" for r in recs.values() for a in r.values()):
        raise UnavailableError("pool reconcile --apply: libvirt's API does not answer here, so whether a domain is "
                               "gone cannot be told for sure", hint="start libvirtd (or virtqemud); without --apply "
                                                                   "the findings are still listed")
    findings: list[Finding] = []
    leaked: list[Allocation] = []
    for r in recs.values():
        for a in r.values():
            why = None
            if stale(host, a):
                why = f"a {a.state} entry of pid {a.pid}, which is gone"
            elif a.owner.kind == "libvirt" and a.owner.name not in running and a.owner.name not in defined:
                why = f"libvirt domain {shown(a.owner.name)} is neither running nor defined"
            elif a.owner.kind == "qemu" and not _qemu_alive(host, a.owner):
                why = f"QEMU pid {a.owner.pid} is gone"
            if why is not None:
                leaked.append(a)
                findings.append(Finding("leaked", a.address, f"{a.address}: pool {a.pool}, {a.owner.label}: {why}",
                                        True))
    users = scan(host)
    pools = members(host, s.inv)
    recorded = {a.address for r in recs.values() for a in r.values()}
    for ms in pools.values():
        for m in ms:
            if m.device is None or str(m.device.address) in recorded:
                continue
            held = [u for u in users.uses(m.device) if u.kind in (UseKind.LIBVIRT, UseKind.QEMU, UseKind.PROCESS)]
            if held:
                findings.append(Finding("unrecorded", str(m.device.address), f"{m.device.address}: in pool {m.pool} "
                                        f"and used by {held[0].text}, but not allocated", False))
    macs: dict[str, list[str]] = {}
    for d in s.inv.vfs:
        mac = (d.netlink.mac or "").lower() if d.netlink else ""
        if mac and mac != ZERO_MAC:
            macs.setdefault(mac, []).append(str(d.address))
            eff = [n.mac.lower() for n in d.netdevs if n.mac]
            if eff and eff[0] != mac:
                findings.append(Finding("mac-diverged", str(d.address), f"{d.address}: the PF gives it {mac}, its "
                                        f"netdev uses {eff[0]}", False))
    for mac, addrs in sorted(macs.items()):
        if len(addrs) > 1:
            findings.append(Finding("duplicate-mac", addrs[0], f"MAC {mac} on {len(addrs)} VFs: {', '.join(addrs)}",
                                    False))
    done: list[str] = []
    if apply:
        mem = {(m.key, m.vf): m for ms in pools.values() for m in ms}
        for a in leaked:
            with host.pf_lock(a.key, wait):
                now = load(host, a.key)
                cur = now.get(a.vf)
                if cur is None or cur.owner != a.owner or cur.time != a.time:
                    continue
                _give_back(host, s.inv, a.key, now, a.vf, mem.get((a.key, a.vf)))
                done.append(a.address)
    return findings, done


# ---- the registry: `pool create` / `pool delete` edit the stored state, as `persist install` stores it ----

def _installed_exe(host: Host) -> str | None:
    """The sriovctl the installed boot unit runs (kept when the state is stored again), if it is one we wrote."""
    from sriovctl.persist import install as inst
    from sriovctl.persist.render import UNIT_PATH

    try:
        raw = safefs.read(host.root, UNIT_PATH, 1 << 16)
    except (OSError, SriovctlError):
        return None
    for line in (raw or b"").decode("utf-8", "replace").splitlines():
        if line.startswith("ExecStart=") and " state apply " in line:
            try:
                return inst.check_exe(line[len("ExecStart="):].split(" ", 1)[0])
            except SriovctlError:
                return None
    return None


def _store(host: Host, doc: dict[str, Any], dry_run: bool) -> tuple[str, Any]:
    from sriovctl.ops.persist import install
    from sriovctl.ops.state import to_yaml
    from sriovctl.persist.install import installed_exporter
    from sriovctl.persist.render import STATE_PATH
    from sriovctl.state.desired import load as load_state

    text = to_yaml(doc)
    state = load_state(text, "/" + STATE_PATH)  # the whole file checked again: a VF in two entries is refused here
    textdir = installed_exporter(host.root)
    return text, install(host, None, state, text, _installed_exe(host), dry_run, textdir is not None, textdir)


def _stored_doc(host: Host) -> tuple[dict[str, Any], Any]:
    """The stored state as a document to edit, and as read (None: there is none)."""
    import yaml

    from sriovctl.ops.state import read_stored_state

    stored = read_stored_state(host.root)
    if stored is None:
        return {"pfs": []}, None
    doc = yaml.safe_load(stored.text)  # checked by the strict reader already (read_stored_state)
    return (doc if isinstance(doc, dict) else {"pfs": []}), stored


def create(host: Host, name: str, targets: list[str], driver: str | None, dry_run: bool = False) -> tuple[str, Any]:
    """Pool ``name`` of the VFs ``targets`` name (PF#RANGE, addresses) added to the stored state as VF entries
    with ``pool: name`` (and ``driver``); stored again as `persist install` does. A VF another entry of its PF
    entry already names is refused (65, the path named)."""
    from sriovctl.errors import DataError
    from sriovctl.ops.session import Session
    from sriovctl.resolve import format_indices
    from sriovctl.state.keys import POOL_NAME
    from sriovctl.state.match import match_all

    if not re.fullmatch(POOL_NAME, name, re.ASCII):
        raise UsageError(f"pool {shown(name)}: not a pool name", hint="a letter or digit, then letters, digits, "
                                                                      "'_', '.', '-' (64 at most)")
    s = Session(host)
    doc, stored = _stored_doc(host)
    pfs = doc.setdefault("pfs", [])
    if any(v.get("pool") == name for p in pfs if isinstance(p, dict) for v in p.get("vfs") or () if isinstance(v, dict)):
        raise DataError(f"pool {shown(name)}: exists in the stored state", hint="`sriovctl pool delete` it first")
    by_pf: dict[PciDevice, list[int]] = {}
    for t in targets:
        for d in s.find_all(t):
            if not d.is_vf or d.physfn is None or d.vf_index is None:
                raise UsageError(f"{t}: {d.address} is not a VF", hint="name VFs: PF#0-7 or their addresses")
            by_pf.setdefault(s.inv.devices[d.physfn], []).append(d.vf_index)
    entry_of = {m.key: int(m.entry.path.split("[")[1].rstrip("]")) for m in match_all(s.inv, stored.state)} \
        if stored is not None else {}
    for pf, idx in sorted(by_pf.items(), key=lambda x: x[0].address):
        i = entry_of.get(str(pf.address))
        if i is None:
            pfs.append({"name": pf.netdevs[0].name} if pf.netdevs else {"pci-address": str(pf.address)})
            i = len(pfs) - 1
        entry = pfs[i]
        if entry.get("vfs") == []:
            raise DataError(f"pfs[{i}].vfs: [] sets every VF of {pf.address} back to its defaults; a pool there "
                            "would change that", hint="list the PF's VFs in the file, then create the pool")
        vfs = entry.get("vfs") or []
        vfs.append({"id": format_indices(sorted(set(idx))), "pool": name, **({"driver": driver} if driver else {})})
        entry["vfs"] = vfs
    return _store(host, doc, dry_run)


def delete(host: Host, name: str, force: bool = False, dry_run: bool = False) -> tuple[str, Any]:
    """Pool ``name``'s VF entries removed from the stored state (their VFs keep their settings). Refused (77)
    while any of its VFs is allocated, unless ``force`` (the allocations then stay, reported by `state status`)."""
    from sriovctl.errors import InterlockError

    out = [a for r in all_records(host).values() for a in r.values() if a.pool == name]
    if out and not force:
        raise InterlockError(f"pool {shown(name)}: {len(out)} VFs are allocated from it ({out[0].address} to "
                             f"{out[0].owner.label}…)", hint="release them first", remedy="force")
    doc, _ = _stored_doc(host)
    found = False
    keep = []
    for p in doc.get("pfs") or []:
        vfs = p.get("vfs")
        if isinstance(vfs, list) and any(isinstance(v, dict) and v.get("pool") == name for v in vfs):
            found = True
            vfs = [v for v in vfs if not (isinstance(v, dict) and v.get("pool") == name)]
            if vfs:
                p["vfs"] = vfs
            else:
                del p["vfs"]  # not [] (every VF back to defaults): the PF's VFs left as they are
                if set(p) <= {"name", "pci-address", "vendor", "device", "index"}:
                    continue  # an entry that only held the pool
        keep.append(p)
    if not found:
        raise NoInputError(f"pool {shown(name)}: no such pool in the stored state")
    doc["pfs"] = keep
    return _store(host, doc, dry_run)
