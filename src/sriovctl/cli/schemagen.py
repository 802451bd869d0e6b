"""The one schema generator: sriovctl/schemas/*.json from the document types in cli/documents.py (one definitions
file, defs.json, for every shared object, referenced with $ref; every object closed), and docs/state.schema.json.
The state file is described once, by its reader's tables (state/schema.py from state/keys.py and attrs.py): the
documents that carry a state (`state show`) refer to that description, not to their TypedDicts (which type the
code that builds them; tests/unit/test_schemas.py holds their keys to the tables).

    python -m sriovctl.cli.schemagen --write     # after changing a document type or a table
    python -m sriovctl.cli.schemagen --check     # what the test does: exit 1 when a committed schema differs
"""

from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, NotRequired, Required, Union, get_args, get_origin, get_type_hints, is_typeddict

from sriovctl.cli import documents
from sriovctl.cli.documents import DOCUMENTS, Doc, Max, Min, Pattern, StateDoc, StatePfDoc, StateVfDoc
from sriovctl.ops.state import file_schema, schema_definitions

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
STATE_SCHEMA = Path(__file__).resolve().parents[3] / "docs" / "state.schema.json"  # in the source tree
# The state document's types, and which of state/schema.py's definitions each one is
STATE_TYPES: dict[type, str] = {StateDoc: "state", StatePfDoc: "pf", StateVfDoc: "vf"}
DRAFT = "https://json-schema.org/draft/2020-12/schema"
DEFS = "defs.json"


class Generator:
    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}

    def ref(self, td: type) -> dict[str, Any]:
        name = _def_name(td)
        if td in STATE_TYPES:
            self.state_defs()
        elif name not in self.defs:
            self.defs[name] = {}  # placeholder: recursive types refer to themselves
            self.defs[name] = self.object(td)
        return {"$ref": f"{DEFS}#/$defs/{name}"}

    def state_defs(self) -> None:
        """The state file's description (state/schema.py) under state, state_pf, state_vf."""
        def name(n: str) -> str:
            return "state" if n == "state" else f"state_{n}"

        for n, body in schema_definitions(lambda n: f"{DEFS}#/$defs/{name(n)}").items():
            self.defs[name(n)] = body

    def object(self, td: type) -> dict[str, Any]:
        hints = get_type_hints(td, include_extras=True, localns=vars(documents))
        props: dict[str, Any] = {}
        required = []
        for key, hint in hints.items():
            optional = get_origin(hint) is NotRequired
            if get_origin(hint) in (NotRequired, Required):
                hint = get_args(hint)[0]
            props[key] = self.schema(hint)
            if not optional and key in td.__required_keys__:  # type: ignore[attr-defined]
                required.append(key)
        out: dict[str, Any] = {"type": "object"}
        doc = (td.__doc__ or "").strip()
        if doc and td.__module__ == documents.__name__ and not doc.startswith(f"{td.__name__}("):
            out["description"] = " ".join(doc.split())
        out.update({"required": required, "properties": props, "additionalProperties": False})
        return out

    def schema(self, hint: Any) -> dict[str, Any]:
        origin = get_origin(hint)
        if origin is typing.Annotated:
            base, *extras = get_args(hint)
            out = self.schema(base)
            for x in extras:
                if isinstance(x, Pattern):
                    _constrain(out, "pattern", str(x))
                elif isinstance(x, Doc):
                    out["description"] = str(x)
                elif isinstance(x, Min):
                    out["minimum"] = int(x)
                elif isinstance(x, Max):
                    out["maximum"] = int(x)
            return out
        if origin in (Union, types.UnionType):
            members = [a for a in get_args(hint) if a is not type(None)]
            nullable = len(members) < len(get_args(hint))
            parts = [self.schema(m) for m in members]
            if nullable and len(parts) == 1 and set(parts[0]) <= {"type", "pattern", "description"} \
                    and isinstance(parts[0].get("type"), str):
                return {**parts[0], "type": [parts[0]["type"], "null"]}
            if nullable and len(parts) == 1 and set(parts[0]) == {"enum"}:
                return {"enum": [*parts[0]["enum"], None]}
            return {"anyOf": parts + ([{"type": "null"}] if nullable else [])}
        if origin is Literal:
            values = list(get_args(hint))
            return {"const": values[0]} if len(values) == 1 else {"enum": values}
        if origin is list:
            return {"type": "array", "items": self.schema(get_args(hint)[0])}
        if origin is dict:
            return {"type": "object", "additionalProperties": self.schema(get_args(hint)[1])}
        if is_typeddict(hint):
            return self.ref(hint)
        if hint is Any:
            return {}
        simple = {str: "string", int: "integer", bool: "boolean", float: "number", type(None): "null"}
        if hint in simple:
            return {"type": simple[hint]}
        raise TypeError(f"no schema for {hint!r}")


def _constrain(out: dict[str, Any], key: str, value: str) -> None:
    out[key] = value


def _def_name(td: type) -> str:
    name = td.__name__.removesuffix("Doc")
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


def generate() -> dict[str, dict[str, Any]]:
    """File name → schema, the definitions file included."""
    g = Generator()
    files: dict[str, dict[str, Any]] = {}
    for name, (title, td) in DOCUMENTS.items():
        body = g.object(td)
        files[f"{name}.json"] = {"$schema": DRAFT, "$id": f"sriovctl/{name}.json", "title": title, **body}
    files[DEFS] = {"$schema": DRAFT, "$id": f"sriovctl/{DEFS}",
                   "title": "sriovctl --json: the objects the documents share (generated by cli/schemagen.py)",
                   "$defs": dict(sorted(g.defs.items()))}
    return files


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def outputs() -> dict[Path, str]:
    """Every file the generator writes, with its text."""
    out = {SCHEMAS / name: render(schema) for name, schema in generate().items()}
    out[STATE_SCHEMA] = render(file_schema())
    return out


def main(argv: list[str]) -> int:
    files = outputs()
    if argv == ["--write"]:
        for old in SCHEMAS.glob("*.json"):
            if old not in files:
                old.unlink()
        for path, text in files.items():
            path.write_text(text)
        print(f"{len(files)} schemas, {sum(t.count(chr(10)) for t in files.values())} lines")
        return 0
    if argv == ["--check"]:
        stale = [p for p, t in files.items() if not p.exists() or p.read_text() != t]
        stale += [p for p in SCHEMAS.glob("*.json") if p not in files]
        for p in stale:
            print(f"{p}: differs from what cli/schemagen.py writes (run it with --write)")
        return 1 if stale else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
