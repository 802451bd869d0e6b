"""What `state apply` keeps on disk in sriovctl's own state directory (/var/lib/sriovctl, never the host's
configuration): a checkpoint journal per PF while a run changes it, and the record of the last run.

A journal is written (atomically) before the first write to its PF and removed when the run ends, whether it
succeeded or rolled back. One left behind means its run was killed: the next run under the PF's lock keeps
its checkpoint (the state before the killed run) as its own rollback target and rolls forward. A journal from
another boot is discarded: the PF it describes was reset by the reboot."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from typing import Any

from sriovctl.host.base import Host

JOURNAL_DIR = "state-journal"
RECORD = "state-applied.json"
MAX_JOURNAL_BYTES = 64 << 20  # a checkpoint of 1,024 VFs is ~300 KB; anything far larger is not ours


def boot_id(host: Host) -> str | None:
    """/proc/sys/kernel/random/boot_id: a new one at every boot (None where the host has none: a snapshot)."""
    text = host.read_text("proc/sys/kernel/random/boot_id")
    return text if text and len(text) <= 64 and text.replace("-", "").isalnum() else None


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dir(host: Host) -> str:
    return os.path.join(host.ledger_dir(), JOURNAL_DIR)


def _path(host: Host, key: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_.:" else "_" for c in key)  # a PF address or bus-device: plain
    return os.path.join(_dir(host), f"{safe}.json")


def _write_atomic(path: str, doc: object) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read(path: str) -> dict[str, Any] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_JOURNAL_BYTES + 1)
    if len(data) > MAX_JOURNAL_BYTES:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def recover(host: Host, key: str) -> dict[str, Any] | None:
    """The checkpoint entry an interrupted run left for PF ``key`` in this boot (None: none, or from another boot
    — then discarded). Call under the PF's lock."""
    path = _path(host, key)
    doc = _read(path)
    if doc is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # unreadable or cut short: no checkpoint to keep
        return None
    if doc.get("boot_id") != boot_id(host):
        os.unlink(path)
        return None
    entry = doc.get("checkpoint")
    return entry if isinstance(entry, dict) else None


def begin(host: Host, key: str, checkpoint: dict[str, Any], desired_hash: str) -> None:
    _write_atomic(_path(host, key), {"pid": os.getpid(), "boot_id": boot_id(host), "started": time.time(),
                                     "desired": desired_hash, "checkpoint": checkpoint})


def end(host: Host, key: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_path(host, key))


def pending(host: Host) -> list[str]:
    """The journals on disk (PF keys): runs that were killed, or are running now."""
    try:
        return sorted(n[:-5] for n in os.listdir(_dir(host)) if n.endswith(".json"))
    except OSError:
        return []


def save_record(host: Host, record: dict[str, Any]) -> None:
    """The last run's result (Succeeded|Failed, the error, the state's hash): what `state status` compares."""
    with contextlib.suppress(OSError):  # a record, not a precondition (a read-only /var must not fail the apply)
        _write_atomic(os.path.join(host.ledger_dir(), RECORD), {**record, "time": time.time(),
                                                                 "boot_id": boot_id(host)})


def load_record(host: Host) -> dict[str, Any] | None:
    return _read(os.path.join(host.ledger_dir(), RECORD))
