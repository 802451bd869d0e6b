"""The desired-state operations front ends call (issue 13): the current host as a state document, a state file
read and checked, and plan / apply / status over state/ (the CLI, the boot unit and the udev rule all run
these)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sriovctl.host.base import Host
from sriovctl.model import Inventory, NetPf, PciDevice
from sriovctl.ops.desired.engine import ApplyOptions, StateOutcome
from sriovctl.ops.desired.planner import StatePlan
from sriovctl.state.desired import DesiredState, load

__all__ = ["ApplyOptions", "DesiredState", "StateOutcome", "StatePlan", "StoredState", "apply", "plan", "read_state",
           "read_state_file", "read_stored_state", "show", "status", "to_yaml"]


def show(inv: Inventory, pfs: list[PciDevice | NetPf] | None = None) -> dict[str, Any]:
    from sriovctl.state.current import current_state

    return current_state(inv, pfs)


@dataclass(frozen=True)
class StoredState:
    state: DesiredState
    digest: str  # SHA-256 of its bytes (what the applied record keeps)
    text: str  # what `persist install` stored
    where: str  # its path as messages name it


def read_stored_state(root: str) -> StoredState | None:
    """The state `persist install` stored under ``root`` (the host's, a simulated host's, an image tree's), read
    through safefs — it is sriovctl's own file: a link at any component, a FIFO or a device there is refused
    (74) and nothing it leads to is read or shown. None when there is none."""
    from sriovctl import safefs
    from sriovctl.ops.desired.journal import file_hash
    from sriovctl.persist.render import STATE_PATH
    from sriovctl.untrusted import STATE_MAX_BYTES

    raw = safefs.read(root, STATE_PATH, STATE_MAX_BYTES)
    if raw is None:
        return None
    where = safefs.display(root, STATE_PATH)
    return StoredState(load(raw, where), file_hash(raw), raw.decode("utf-8"), where)


def read_state_source(path: str) -> tuple[DesiredState, str, str]:
    """A state file, parsed and checked; the SHA-256 of its bytes (what the applied record keeps); its text
    (what `persist install` stores). Bounded: untrusted.read_regular and the YAML loader's limits. The stored
    state (/etc/sriovctl/state.yaml: what the boot unit and the udev rule name) is read as sriovctl's own file
    (read_stored_state); a file the user names is theirs to name (a link they made is followed)."""
    import os

    from sriovctl.errors import NoInputError
    from sriovctl.ops.desired.journal import file_hash
    from sriovctl.persist.render import STATE_PATH
    from sriovctl.untrusted import STATE_MAX_BYTES, read_regular, shown

    if os.path.abspath(path) == "/" + STATE_PATH:
        stored = read_stored_state("/")
        if stored is None:
            raise NoInputError(f"{shown(path)}: no such file", hint="`sriovctl persist install FILE` puts it there")
        return stored.state, stored.digest, stored.text
    raw = read_regular(path, STATE_MAX_BYTES, what=shown(path))
    return load(raw, path), file_hash(raw), raw.decode("utf-8")


def read_state_file(path: str) -> tuple[DesiredState, str]:
    state, digest, _ = read_state_source(path)
    return state, digest


def read_state(path: str) -> DesiredState:
    return read_state_file(path)[0]


def plan(host: Host, state: DesiredState, pfs: list[str] | None = None) -> StatePlan:
    from sriovctl.ops.desired import engine

    return engine.plan(host, state, pfs)


def apply(host: Host, state: DesiredState, digest: str, opts: ApplyOptions, pfs: list[str] | None = None) -> StateOutcome:
    from sriovctl.ops.desired import engine

    return engine.apply(host, state, digest, opts, pfs)


def status(host: Host, state: DesiredState | None, digest: str | None) -> dict[str, Any]:
    from sriovctl.ops.desired import engine

    return engine.status(host, state, digest)


def to_yaml(doc: dict[str, Any]) -> str:
    import yaml

    return str(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=False))


def import_files(paths: list[str]) -> tuple[str, dict[str, Any]]:
    """`state import`: other tools' SR-IOV configuration as a state document (read bounded, checked)."""
    from sriovctl.state.importers import import_files as convert
    from sriovctl.untrusted import STATE_MAX_BYTES, decode_text, read_regular, shown

    files = [(p, decode_text(read_regular(p, STATE_MAX_BYTES, what=shown(p)), p, STATE_MAX_BYTES)) for p in paths]
    return convert(files)
