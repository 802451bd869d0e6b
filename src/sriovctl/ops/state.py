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
from sriovctl.state.schema import definitions as schema_definitions
from sriovctl.state.schema import schema as file_schema

__all__ = [
    "ApplyOptions",
    "DesiredState",
    "StateOutcome",
    "StatePlan",
    "StoredState",
    "apply",
    "apply_document",
    "export",
    "file_schema",
    "plan",
    "read_state",
    "read_state_file",
    "read_stored_state",
    "schema_definitions",
    "show",
    "status",
    "to_yaml",
]


def show(inv: Inventory, pfs: list[PciDevice | NetPf] | None = None) -> dict[str, Any]:
    from sriovctl.state.current import current_state

    return current_state(inv, pfs)


@dataclass(frozen=True)
class StoredState:
    state: DesiredState
    digest: str  # SHA-256 of its document as canonical JSON (what the applied record keeps)
    text: str  # what `persist install` stored
    where: str  # its path as messages name it


def read_stored_state(root: str) -> StoredState | None:
    """The state `persist install` stored under ``root`` (the host's, a simulated host's, an image tree's), read
    through safefs — it is sriovctl's own file: a link at any component, a FIFO or a device there is refused
    (74) and nothing it leads to is read or shown. None when there is none."""
    from sriovctl import safefs
    from sriovctl.persist.render import STATE_PATH
    from sriovctl.untrusted import STATE_MAX_BYTES

    raw = safefs.read(root, STATE_PATH, STATE_MAX_BYTES)
    if raw is None:
        return None
    where = safefs.display(root, STATE_PATH)
    state = load(raw, where)
    return StoredState(state, state.digest, raw.decode("utf-8"), where)


def read_state_source(path: str) -> tuple[DesiredState, str, str]:
    """A state file, parsed and checked; its digest (DesiredState.digest: what the applied record keeps); its text
    (what `persist install` stores). Bounded: untrusted.read_regular and the YAML loader's limits. The stored
    state (/etc/sriovctl/state.yaml: what the boot unit and the udev rule name) is read as sriovctl's own file
    (read_stored_state); a file the user names is theirs to name (a link they made is followed)."""
    import os

    from sriovctl.errors import NoInputError
    from sriovctl.persist.render import STATE_PATH
    from sriovctl.untrusted import STATE_MAX_BYTES, read_regular, shown

    if os.path.abspath(path) == "/" + STATE_PATH:
        stored = read_stored_state("/")
        if stored is None:
            raise NoInputError(f"{shown(path)}: no such file", hint="`sriovctl persist install FILE` puts it there")
        return stored.state, stored.digest, stored.text
    raw = read_regular(path, STATE_MAX_BYTES, what=shown(path))
    state = load(raw, path)
    return state, state.digest, raw.decode("utf-8")


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


def apply_document(host: Host, doc: dict[str, Any], opts: ApplyOptions, pfs: list[str] | None = None,
                   source: str = "the document") -> StateOutcome:
    """The state entry for a front end holding a document (the Ansible module, an API): the same checks as a
    file's (state.desired.parse), the same digest as the file `persist install` stores for it."""
    from sriovctl.state.desired import parse

    state = parse(doc, source)
    return apply(host, state, state.digest, opts, pfs)


def status(host: Host, state: DesiredState | None, digest: str | None, inv: Inventory | None = None) -> dict[str, Any]:
    from sriovctl.ops.desired import engine

    return engine.status(host, state, digest, inv)


@dataclass(frozen=True)
class StateStatus:
    """`state status` as data, with its own verdict: which state was compared (``source``: None when there is
    none), the engine's report (``doc``: record, changes, drifted, same_as_applied, in_sync, pending journals),
    and what it comes to — ``verdict`` and the exit rule every front end applies alike."""

    source: str | None
    doc: dict[str, Any]

    @property
    def record(self) -> dict[str, Any]:
        rec = self.doc.get("record")
        return rec if isinstance(rec, dict) else {}

    @property
    def verdict(self) -> str:
        if self.source is None:
            return "no-state"
        if self.doc.get("drifted"):
            return "drifted"
        if not self.doc.get("same_as_applied"):
            return "not-last-applied"  # the host matches it, but another state was applied last
        if self.record.get("result") != "Succeeded":
            return "failed"  # this state's last apply failed (rolled back, or a restore failed)
        return "in-sync"

    @property
    def exit_code(self) -> int:
        """EX_DRIFTED when the host differs from the state or this state's last apply failed, else 0."""
        from sriovctl.errors import EX_DRIFTED

        return EX_DRIFTED if self.verdict in ("drifted", "failed") else 0


def status_of(host: Host, path: str | None = None, inv: Inventory | None = None) -> StateStatus:
    """The status of the state file ``path``, or (None) of the state stored on *this* host — under its root: a
    simulated host's own, not the machine's /etc. ``inv``: compare this inventory (read already) with it."""
    if path is not None:
        st, digest = read_state_file(path)
        return StateStatus(path, status(host, st, digest, inv))
    stored = read_stored_state(host.root)
    if stored is None:
        return StateStatus(None, status(host, None, None, inv))
    return StateStatus(stored.where, status(host, stored.state, stored.digest, inv))


def to_yaml(doc: dict[str, Any]) -> str:
    import yaml

    return str(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=False))


def import_files(paths: list[str]) -> tuple[str, dict[str, Any]]:
    """`state import`: other tools' SR-IOV configuration as a state document (read bounded, checked)."""
    from sriovctl.state.importers import import_files as convert
    from sriovctl.untrusted import STATE_MAX_BYTES, decode_text, read_regular, shown

    files = [(p, decode_text(read_regular(p, STATE_MAX_BYTES, what=shown(p)), p, STATE_MAX_BYTES)) for p in paths]
    return convert(files)


def export(host: Host, kind: str, path: str | None = None, *, configmap_node: str | None = None,
           part: str = "compute", namespace: str = "default") -> tuple[str, str]:
    """`state export KIND`: (where the state came from, the text to write). The state: the file ``path``, else the
    host's stored state, else the host as `state show` prints it."""
    import json

    from sriovctl.errors import UsageError
    from sriovctl.inventory import read_inventory
    from sriovctl.state import export as ex
    from sriovctl.state.desired import parse
    from sriovctl.untrusted import shown

    inv = read_inventory(host)
    if kind == "nfd":  # facts of the host and whether it is in its stored state: no state to read here
        return f"{host.label} (status)", ex.nfd_features(inv, status_of(host).doc.get("in_sync"))
    source: str
    if path is not None:
        st, _ = read_state_file(path)
        source = path
    elif (stored := read_stored_state(host.root)) is not None:
        st, source = stored.state, stored.where
    else:
        st, source = parse(show(inv), f"{host.label} (state show)"), f"{host.label} (state show)"
    if kind == "device-plugin":
        config = ex.device_plugin(st, inv)
        if configmap_node is not None:
            return source, to_yaml(ex.configmap(config, configmap_node))
        return source, json.dumps(config, indent=2) + "\n"
    if kind == "network-attachment":
        import yaml

        return source, str(yaml.safe_dump_all(ex.network_attachments(st, inv, namespace), sort_keys=False))
    if kind != "nova" or part not in ("compute", "api", "neutron"):
        raise UsageError(f"state export {shown(kind)} --part {shown(part)}: no such export",
                         hint="device-plugin, network-attachment, nfd or nova (--part compute, api or neutron)")
    return source, ex.nova(st, inv, part)


def write_beside(path: str, text: str) -> None:
    """``text`` as the file ``path``: written as a dot-file beside it, flushed, then renamed over it
    (safefs.write_atomic) — a reader (NFD, the device plugin) never sees half a file. The directory must exist."""
    import os

    from sriovctl import safefs
    from sriovctl.errors import NoInputError

    directory, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise NoInputError(f"{path}: no directory {directory}", hint="create it first")
    safefs.write_atomic(directory, name, text.encode("utf-8"))
