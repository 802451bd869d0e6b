"""What `state apply` keeps on disk in sriovctl's own state directory (/var/lib/sriovctl, never the host's
configuration): a checkpoint journal per PF while a run changes it, and the record of the last run.

A journal is written (atomically) before the first write to its PF and removed when the run ends, whether it
succeeded or rolled back. One left behind means its run was killed: the next run under the PF's lock keeps
its checkpoint (the state before the killed run) as its own rollback target and rolls forward. A journal from
another boot is discarded: the PF it describes was reset by the reboot."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from sriovctl import safefs
from sriovctl.host.base import Host

JOURNAL_DIR = "state-journal"
RECORD = "state-applied.json"
MAX_JOURNAL_BYTES = 64 << 20  # a checkpoint of 1,024 VFs is ~300 KB; anything far larger is not ours


def boot_id(host: Host) -> str | None:
    """/proc/sys/kernel/random/boot_id: a new one at every boot (None where the host has none: a snapshot)."""
    text = host.read_text("proc/sys/kernel/random/boot_id")
    return text if text and len(text) <= 64 and text.replace("-", "").isalnum() else None


def _dir(host: Host) -> str:
    return f"{host.ledger_rel()}/{JOURNAL_DIR}"


def _name(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.:" else "_" for c in key) + ".json"  # an address: plain


def _path(host: Host, key: str) -> str:
    return f"{_dir(host)}/{_name(key)}"


def _write_atomic(host: Host, rel: str, doc: object) -> None:
    # safefs: no link followed at any component (a planted state-journal → /etc), a FIFO replaced, not opened
    safefs.write_atomic(host.root, rel, json.dumps(doc, sort_keys=True).encode(), mode=0o600, dir_mode=0o700)


def _read(host: Host, rel: str) -> dict[str, Any] | None:
    try:
        data = safefs.read(host.root, rel, MAX_JOURNAL_BYTES)
    except OSError:  # too large, or not a regular file: not one of ours
        return None
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def recover(host: Host, key: str, belongs: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any] | None:
    """The checkpoint entry an interrupted run left for PF ``key`` in this boot (None: none, from another boot,
    or not this PF's — then discarded). A journal is trusted only as far as it proves it belongs here: it must
    name ``key`` (the lock it was written under) and ``belongs(checkpoint)`` must accept its entry (the same PF
    selector): a journal naming another PF would make the rollback change a PF whose lock is not held. Call
    under the PF's lock."""
    path = _path(host, key)
    doc = _read(host, path)
    entry = doc.get("checkpoint") if doc is not None else None
    if (doc is None or doc.get("boot_id") != boot_id(host) or doc.get("key") != key or not isinstance(entry, dict)
            or (belongs is not None and not belongs(entry))):
        with contextlib.suppress(OSError):
            safefs.unlink(host.root, path)  # unreadable, cut short, another boot's or another PF's: nothing to keep
        return None
    return entry


def begin(host: Host, key: str, checkpoint: dict[str, Any], desired_hash: str) -> None:
    _write_atomic(host, _path(host, key), {"pid": os.getpid(), "boot_id": boot_id(host), "started": time.time(),
                                           "key": key, "desired": desired_hash, "checkpoint": checkpoint})


def end(host: Host, key: str) -> None:
    with contextlib.suppress(OSError):
        safefs.unlink(host.root, _path(host, key))


def pending(host: Host) -> list[str]:
    """The journals on disk (PF keys): runs that were killed, or are running now."""
    try:
        return sorted(n[:-5] for n in safefs.listdir(host.root, _dir(host)) if n.endswith(".json"))
    except OSError:
        return []


def save_record(host: Host, record: dict[str, Any]) -> None:
    """The last run's result (Succeeded|Failed, the error, the state's hash): what `state status` compares."""
    with contextlib.suppress(OSError):  # a record, not a precondition (a read-only /var must not fail the apply)
        _write_atomic(host, f"{host.ledger_rel()}/{RECORD}", {**record, "time": time.time(),
                                                                 "boot_id": boot_id(host)})


def load_record(host: Host) -> dict[str, Any] | None:
    return _read(host, f"{host.ledger_rel()}/{RECORD}")
