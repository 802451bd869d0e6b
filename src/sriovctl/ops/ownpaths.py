"""Every file sriovctl keeps, installs or scans under a host's root, with the verbs that touch it — one table,
built from the constants the code uses, so the hostile-path test (tests/unit/test_hostile_paths.py) covers a
path as soon as it is added here. Each is opened through safefs (no link at any component, regular files
only, O_NONBLOCK)."""

from __future__ import annotations

from dataclasses import dataclass

from sriovctl.host.base import Host
from sriovctl.ops import poolrecords
from sriovctl.ops.desired import journal
from sriovctl.persist import render
from sriovctl.persist.install import OTHER_OWNER_FILES


@dataclass(frozen=True, slots=True)
class OwnPath:
    rel: str  # relative to the root it lives under (the host's, or persist's --destdir)
    what: str
    verbs: tuple[str, ...]  # `vf set`, `state apply`, `state status`, `persist install|status|uninstall`
    persist: bool = False  # under persist's root (the host's, or --destdir) rather than sriovctl's state dirs


def state_paths(host: Host, key: str) -> list[OwnPath]:
    """sriovctl's own files on ``host`` for the PF whose lock key is ``key``."""
    ledger = host.ledger_rel()
    return [
        OwnPath(host.lock_file(key), "the PF's lock", ("vf set", "state apply")),
        OwnPath(host.write_log_file(), "the write log", ("vf set", "state apply")),
        OwnPath(f"{ledger}/{journal.RECORD}", "the last apply's record", ("state apply", "state status")),
        OwnPath(f"{ledger}/{journal.JOURNAL_DIR}/{key}.json", "the PF's checkpoint journal",
                ("state apply", "state status")),
        OwnPath(f"{ledger}/{poolrecords.RECORD_DIR}/{key}.json", "the PF's pool allocation records",
                ("state apply", "state status")),
    ]


PERSIST_VERBS = ("persist install", "persist status", "persist uninstall")
EXPORTER_INSTALL = "persist install --exporter"


def persist_paths(names: list[str]) -> list[OwnPath]:
    """What `persist` installs and reads, and the other tools' files it scans for the PFs ``names``."""
    out = [OwnPath(p, w, PERSIST_VERBS, True) for p, w in (
        (render.STATE_PATH, "the stored state"), (render.UNIT_PATH, "the boot unit"),
        (render.WANTS_LINK, "the unit's .wants link"), (render.RULE_PATH, "the udev rule"),
        (render.MODPROBE_PATH, "modprobe.d options"), (render.MANIFEST_PATH, "the install manifest"))]
    out += [OwnPath(p, w, (EXPORTER_INSTALL, "persist status", "persist uninstall"), True) for p, w in (
        (render.EXPORTER_SERVICE_PATH, "the exporter's service"), (render.EXPORTER_TIMER_PATH, "the exporter's timer"),
        (render.EXPORTER_WANTS_LINK, "the timer's .wants link"))]
    for d, ext, _, _ in OTHER_OWNER_FILES:
        out += [OwnPath(f"{d}/{n}{ext}", "another tool's configuration, scanned for a second owner",
                        ("persist install",), True) for n in names[:1]]
    return out
