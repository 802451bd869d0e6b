"""The state file's JSON Schema, built from the tables the reader uses (state/keys.py: PF_SETTINGS, VF_KEYS from
attrs.VF_ATTRS): docs/state.schema.json for editors, and the `state` object of the --json documents — both
written by cli/schemagen.py, the one generator (`python -m sriovctl.cli.schemagen --write|--check`). The reader
(desired.py) stays the judge — it also checks what a schema cannot say (one MAC per VF, ids below total-vfs, no
VF twice)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sriovctl.attrs import ValueKind, VfAttr
from sriovctl.state.keys import (
    DRIVER_WORDS,
    MAX_PFS,
    MAX_TOTAL_VFS,
    PF_SETTINGS,
    PF_VFS,
    POOL_NAME,
    RESOURCE_NAME,
    VF_KEYS,
    VF_POOL,
    VF_RESOURCE,
    PfKey,
)

_ID_RANGE = r"^[0-9]{1,5}(-[0-9]{1,5})?(,[0-9]{1,5}(-[0-9]{1,5})?)*$"


def _value(a: VfAttr) -> dict[str, Any]:
    doc: dict[str, Any]
    if a.kind is ValueKind.MAC:
        doc = {"type": ["string", "null"], "pattern": "^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$"}
    elif a.kind is ValueKind.INT:
        doc = {"type": ["integer", "null"], "minimum": a.low, "maximum": a.high}
    elif a.kind is ValueKind.BOOL:
        doc = {"type": ["boolean", "null"]}
    else:
        choices = [c for choice in a.choices for c in dict.fromkeys((choice, choice.lower()))]
        doc = {"enum": [*choices, None]}
    doc["description"] = a.help + (f" (nmstate: {a.nmstate})" if a.nmstate else "")
    return doc


def _setting(k: PfKey) -> dict[str, Any]:
    doc: dict[str, Any]
    if k.kind is ValueKind.INT:
        doc = {"type": ["integer", "null"], "minimum": 0, "maximum": k.high}
    elif k.kind is ValueKind.BOOL:
        doc = {"type": ["boolean", "null"]}
    elif k.kind is ValueKind.TEXT:
        doc = {"type": ["string", "null"], "pattern": f"^{k.pattern}$"}
    else:
        doc = {"enum": [*k.choices, None]}
    doc["description"] = k.help
    return doc


def definitions(ref: Callable[[str], str]) -> dict[str, dict[str, Any]]:
    """The state document's objects, by name (state, pf, vf); ``ref(name)`` is how one refers to another (within
    docs/state.schema.json, or from the --json documents' definitions file)."""
    vf = {"type": "object", "additionalProperties": False, "required": ["id"], "properties": {
        "id": {"description": "a VF index, or a range such as \"0-3,5\"",
               "oneOf": [{"type": "integer", "minimum": 0, "maximum": MAX_TOTAL_VFS - 1},
                         {"type": "string", "pattern": _ID_RANGE}]},
        **{key: _value(a) for key, a in VF_KEYS.items()},
        "driver": {"type": ["string", "null"], "description": "vfio-pci, host (the VF's own driver), none "
                   "(unbound) or a driver name", "anyOf": [{"enum": [*DRIVER_WORDS, None]},
                                                           {"pattern": "^[A-Za-z0-9_.:@+-]{1,64}$"}]},
        VF_RESOURCE: {"type": ["string", "null"], "pattern": f"^{RESOURCE_NAME}$",
                      "description": "the device plugin resource these VFs are handed out under: their run-time "
                                     "attributes are their user's while they are in use"},
        VF_POOL: {"type": ["string", "null"], "pattern": f"^{POOL_NAME}$",
                  "description": "the sriovctl pool these VFs are handed out from (`sriovctl pool allocate`): this "
                                 "entry's attributes and driver are restored at release"},
    }}
    hex16 = {"oneOf": [{"type": "integer", "minimum": 0, "maximum": 0xFFFF},
                       {"type": "string", "pattern": "^0x[0-9a-fA-F]{1,4}$"}]}
    pf = {"type": "object", "additionalProperties": False, "properties": {
        "name": {"type": "string", "description": "the PF's netdev", "pattern": "^[^/\\s]{1,15}$"},
        "pci-address": {"type": "string", "pattern": r"^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$"},
        "vendor": hex16, "device": hex16, "index": {"type": "integer", "minimum": 0, "maximum": 255},
        **{k.key: _setting(k) for k in PF_SETTINGS},
        PF_VFS: {"type": ["array", "null"], "items": {"$ref": ref("vf")},
                 "description": "VFs not listed keep their configuration; [] resets every VF"},
    }, "oneOf": [{"required": ["name"]}, {"required": ["pci-address"]},
                 {"required": ["vendor", "device", "index"]}]}
    state = {"type": "object", "additionalProperties": False, "description": "a host's SR-IOV as it should be "
             "(docs/STATE.md)", "properties": {"pfs": {"type": "array", "maxItems": MAX_PFS,
                                                         "items": {"$ref": ref("pf")}}}}
    return {"state": state, "pf": pf, "vf": vf}


def schema() -> dict[str, Any]:
    """docs/state.schema.json (written, and held to the tables, by cli/schemagen.py with the --json schemas)."""
    defs = definitions(lambda name: f"#/$defs/{name}")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "sriovctl/state.schema.json",
            "title": "sriovctl state file (generated by cli/schemagen.py from state/keys.py and attrs.py)",
            **defs.pop("state"), "$defs": defs}
