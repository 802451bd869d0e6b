"""The desired-state operations front ends call (issue 13): the current host as a state document, and a state
file read and checked."""

from __future__ import annotations

from typing import Any

from sriovctl.model import Inventory, NetPf, PciDevice
from sriovctl.state.desired import DesiredState, load


def show(inv: Inventory, pfs: list[PciDevice | NetPf] | None = None) -> dict[str, Any]:
    from sriovctl.state.current import current_state

    return current_state(inv, pfs)


def read_state(path: str) -> DesiredState:
    """A state file, parsed and checked (bounded: untrusted.read_regular and the YAML loader's limits)."""
    from sriovctl.untrusted import YAML_MAX_BYTES, read_regular, shown

    raw = read_regular(path, YAML_MAX_BYTES + 1, what=shown(path))
    return load(raw.decode("utf-8", "replace"), path)


def to_yaml(doc: dict[str, Any]) -> str:
    import yaml

    return str(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=False))
