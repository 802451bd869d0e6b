"""The JSON Schemas are generated from the document types (cli/documents.py) by cli/schemagen.py: a committed
schema that differs from what the generator writes fails here; every object is closed."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from typing import Any

from helpers import cli, validate
from sriovctl.cli import documents, schemagen
from sriovctl.pci import config


def test_committed_schemas_are_what_the_generator_writes() -> None:
    generated = schemagen.generate()
    shipped = {p.name: p.read_text() for p in (resources.files("sriovctl") / "schemas").iterdir()
               if p.name.endswith(".json")}
    assert set(shipped) == set(generated)
    stale = [n for n, s in generated.items() if shipped[n] != schemagen.render(s)]
    assert not stale, f"run: python -m sriovctl.cli.schemagen --write ({stale})"
    assert schemagen.main(["--check"]) == 0  # docs/state.schema.json too: one generator, one drift test
    lines = sum(t.count("\n") for t in shipped.values())
    print(f"schemas: {len(shipped)} files, {lines} lines (9,055 before they were generated)")
    # shared objects stay in defs.json: about 130 lines per document (20 documents were 2,880 lines)
    assert lines < 135 * len(shipped)


def _objects(node: Any) -> list[dict[str, Any]]:
    out = []
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            out.append(node)
        for v in node.values():
            out += _objects(v)
    elif isinstance(node, list):
        for v in node:
            out += _objects(v)
    return out


def test_every_object_is_closed_and_the_vf_netlink_view_fully_specified() -> None:
    files = schemagen.generate()
    objects = [o for f in files.values() for o in _objects(f)]
    assert objects and all(o["additionalProperties"] is False for o in objects)
    netlink = files["defs.json"]["$defs"]["vf_netlink"]
    assert set(netlink["required"]) == set(netlink["properties"]) >= {"mac", "vlan", "trust", "link_state", "stats"}
    vf = files["defs.json"]["$defs"]["vf"]
    assert vf["properties"]["netlink"] == {"anyOf": [{"$ref": "defs.json#/$defs/vf_netlink"}, {"type": "null"}]}


def test_document_types_follow_the_decoders_dataclasses() -> None:
    """A field added to a decoded capability shows up in its document type (and so in the schema)."""
    pairs = [(config.SriovCap, documents.SriovCapDoc), (config.AcsFlags, documents.AcsFlagsDoc),
             (config.AriCap, documents.AriDoc), (config.VfBar, documents.VfBarDoc)]
    for dc, td in pairs:
        assert {f.name for f in dataclasses.fields(dc)} == set(td.__annotations__), dc


def test_an_extra_field_fails_validation() -> None:
    doc = cli("--sim", "igb-82576", "--json", "show", "enp11s0f0#1").json()
    validate(doc, "show")
    doc["device"]["netlink"]["surprise"] = 1
    try:
        validate(doc, "show")
    except Exception as e:  # jsonschema.ValidationError
        assert "surprise" in str(e) or "valid under" in str(e)
    else:
        raise AssertionError("an extra field passed")
    assert json.dumps(doc)


def test_the_vf_attribute_set_is_one_table() -> None:
    """Every place that holds VF attributes holds exactly attrs.VF_ATTRS' keys (the table drives the CLI options,
    validation, JSON and the simulator's defaults; these typed views are held to it here)."""
    from sriovctl.attrs import VF_ATTRS, defaults
    from sriovctl.cli.main import build_parser
    from sriovctl.model import VfNetlink
    from sriovctl.ops.vfattrs import VfSettings

    keys = {a.key for a in VF_ATTRS}
    assert {f.name for f in dataclasses.fields(VfNetlink)} - {"vf", "stats"} == keys
    assert set(VfSettings.field_names()) == keys
    assert set(documents.VfNetlinkDoc.__annotations__) - {"stats"} == keys
    assert set(defaults()) == keys
    vf_set = build_parser()._subparsers._group_actions[0].choices["vf"]._subparsers._group_actions[0].choices["set"]  # type: ignore[union-attr]
    assert {a.dest for a in vf_set._actions} >= keys
    assert len({a.nmstate for a in VF_ATTRS if a.nmstate}) == 8  # nmstate's sr-iov vfs[] keys
