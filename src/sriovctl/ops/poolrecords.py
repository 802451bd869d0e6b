"""The pools' allocation records: per PF, under sriovctl's state directory, written like the desired-state journals
(beside, fsync, rename; no link followed at any component) and changed only under that PF's lock. Read by the
pool operations (ops/pools.py) and by the in-use scan (an allocated VF is its owner's: ops/guards.py) — which is
why they live apart from the operations, which bind and so use the guards."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from sriovctl import safefs
from sriovctl.errors import DataError, SriovctlError, TemporaryError, UsageError
from sriovctl.host.base import Host
from sriovctl.model import Use, UseKind
from sriovctl.ops.desired import journal
from sriovctl.pci.address import PciAddress
from sriovctl.untrusted import shown

RECORD_DIR = "pool-allocations"
MAX_RECORD_BYTES = 16 << 20  # 1,024 entries of ~500 bytes are 0.5 MB: anything far larger is not ours
PENDING, ALLOCATED, RELEASING = "pending", "allocated", "releasing"
STATES = (PENDING, ALLOCATED, RELEASING)
OWNER_KINDS = ("libvirt", "qemu", "name")
POLICIES = ("required", "preferred", "legacy")  # nova's words for PCI NUMA affinity
OWNER_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,200}")  # anyone's domain name: printable, bounded; escaped when shown
ZERO_MAC = "00:00:00:00:00:00"


@dataclass(frozen=True)
class Owner:
    kind: str  # libvirt (name, uuid) | qemu (pid, start time) | name (free-form)
    name: str
    uuid: str | None = None
    pid: int | None = None
    start: int | None = None  # a QEMU's start time in clock ticks (/proc/PID/stat field 22): a reused pid is not it

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in (("kind", self.kind), ("name", self.name), ("uuid", self.uuid), ("pid", self.pid),
                                  ("start", self.start)) if v is not None}

    @property
    def label(self) -> str:
        return f"{self.kind} {shown(self.name)}"


@dataclass(frozen=True)
class Allocation:
    key: str  # the PF's lock key
    vf: int
    address: str
    pool: str
    state: str
    owner: Owner
    pid: int  # the sriovctl process that wrote it
    boot_id: str | None
    time: float
    settings: dict[str, object] = field(default_factory=dict)  # state-file key → value, as given

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "pf": self.key, "vf": self.vf, "pool": self.pool, "state": self.state,
                "owner": self.owner.to_json(), "pid": self.pid, "boot_id": self.boot_id, "time": self.time,
                "settings": self.settings}


def check_owner(kind: str, name: str) -> Owner:
    if kind not in OWNER_KINDS:
        raise UsageError(f"owner kind {shown(kind)}: not one of {', '.join(OWNER_KINDS)}")
    if not isinstance(name, str) or not OWNER_NAME.fullmatch(name):
        raise UsageError(f"--owner {shown(str(name), 60)}: not an owner name (1-200 printable characters)")
    return Owner(kind, name)


def _path(host: Host, key: str) -> str:
    return f"{host.ledger_rel()}/{RECORD_DIR}/{''.join(c if c.isalnum() or c in '-_.:' else '_' for c in key)}.json"


def _owner(d: object, where: str) -> Owner:
    if not isinstance(d, dict) or d.get("kind") not in OWNER_KINDS or not isinstance(d.get("name"), str) \
            or not OWNER_NAME.fullmatch(d["name"]):
        raise DataError(f"{where}: owner is not one sriovctl wrote")
    uuid, pid, start = d.get("uuid"), d.get("pid"), d.get("start")
    if (uuid is not None and not (isinstance(uuid, str) and re.fullmatch(r"[0-9a-fA-F-]{32,36}", uuid))) or \
            (pid is not None and type(pid) is not int) or (start is not None and type(start) is not int):
        raise DataError(f"{where}: owner is not one sriovctl wrote")
    return Owner(d["kind"], d["name"], uuid, pid, start)


def load(host: Host, key: str) -> dict[int, Allocation]:
    """The PF's records. One that is not what sriovctl writes fails closed (65): nothing may be allocated on
    that PF until someone looks (a VF it names might be in use)."""
    rel = _path(host, key)
    raw = safefs.read(host.root, rel, MAX_RECORD_BYTES)
    if raw is None:
        return {}
    where = safefs.display(host.root, rel)
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise DataError(f"{where}: not JSON", hint="move it away, then `sriovctl pool reconcile`") from None
    if not isinstance(doc, dict) or doc.get("key") != key or not isinstance(doc.get("vfs"), dict):
        raise DataError(f"{where}: not this PF's allocation records", hint="move it away, then `sriovctl pool reconcile`")
    out = {}
    for idx, e in doc["vfs"].items():
        if not (isinstance(idx, str) and idx.isascii() and idx.isdigit() and len(idx) <= 5) or not isinstance(e, dict):
            raise DataError(f"{where}: entry {shown(str(idx), 20)} is not one sriovctl wrote")
        try:
            a = Allocation(key, int(idx), str(PciAddress.parse(e["address"])), e["pool"], e["state"],
                           _owner(e["owner"], where), e["pid"], e.get("boot_id"), float(e["time"]),
                           dict(e.get("settings") or {}))
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{where}: entry {idx} is not one sriovctl wrote") from None
        if a.state not in STATES or type(a.pid) is not int or not isinstance(a.pool, str):
            raise DataError(f"{where}: entry {idx} is not one sriovctl wrote")
        out[a.vf] = a
    return out


def save(host: Host, key: str, records: dict[int, Allocation]) -> None:
    """Written beside, fsynced, renamed (safefs): a reader sees the old records or the new ones, never half."""
    rel = _path(host, key)
    if not records:
        with contextlib.suppress(OSError):
            safefs.unlink(host.root, rel)
        return
    doc = {"key": key, "vfs": {str(i): {k: v for k, v in a.to_json().items() if k not in ("pf", "vf")}
                               for i, a in sorted(records.items())}}
    safefs.write_atomic(host.root, rel, json.dumps(doc, sort_keys=True).encode(), mode=0o600, dir_mode=0o700)


def all_records(host: Host) -> dict[str, dict[int, Allocation]]:
    """Every PF's records (by lock key); a file that cannot be read is an error (fail closed)."""
    try:
        names = safefs.listdir(host.root, f"{host.ledger_rel()}/{RECORD_DIR}")
    except OSError:
        return {}
    out = {}
    for n in sorted(names):
        if n.endswith(".json") and not n.startswith("."):
            key = n[:-5]
            out[key] = load(host, key)
    return out


def stale(host: Host, a: Allocation) -> bool:
    """A pending or releasing entry nobody is working on: of another boot, or its PF's lock is free right now
    (its writer held it throughout; the kernel let go of it when that process died)."""
    if a.state == ALLOCATED:
        return False
    if a.boot_id != journal.boot_id(host):
        return True
    try:
        with host.pf_lock(a.key, 0):
            now = load(host, a.key).get(a.vf)
            return now is not None and now.state != ALLOCATED and now.time == a.time
    except TemporaryError:
        return False  # someone holds it: the entry may be theirs, being written


def pool_users(host: Host, unknown: list[Any]) -> dict[PciAddress, list[Use]]:
    """The in-use scan's source: an allocated (or pending, releasing) VF is in use by its pool's owner, and
    every interlock refuses to take it (77). Records that cannot be read make every device maybe in use."""
    from sriovctl.inuse import Unknown

    out: dict[PciAddress, list[Use]] = {}
    try:
        recs = all_records(host)
    except (SriovctlError, OSError) as e:
        unknown.append(Unknown("pool allocation records", f"cannot be read ({e})"))
        return out
    for by_vf in recs.values():
        for a in by_vf.values():
            out.setdefault(PciAddress.parse(a.address), []).append(
                Use(UseKind.POOL, a.owner.name, f"pool {a.pool}: {a.state} to {a.owner.label}"))
    return out
