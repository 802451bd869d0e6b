"""The one place where untrusted input becomes names, paths, numbers and documents.

Everything that arrives from outside — CLI arguments, simulated-host specs, snapshots from other hosts,
libvirt XML — is hostile until it passes here. The rules (docs/SECURITY.md):

- a *name* that becomes a path component is a plain name: ``[A-Za-z0-9_.:@+-]{1,64}``, matched in full
  (``$`` would accept a trailing newline), never ``.`` or ``..``, ASCII only;
- text echoed into a message is shown with control characters escaped (no terminal escapes, one line);
- files named by the user are read only when they are regular files, and at most a stated size;
- YAML is parsed with a bound on nodes, aliases and depth (an alias bomb or a recursive document is refused
  before anything is built from it).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import Any, TypeGuard

from sriovctl.errors import DataError, NoInputError, SriovctlError, UsageError
from sriovctl.safefs import read_fd

NAME_PATTERN = r"[A-Za-z0-9_.:@+-]{1,64}"
NETDEV_PATTERN = r"[A-Za-z0-9_.:@+-]{1,15}"  # dev_valid_name(): shorter than IFNAMSIZ (16)
_NAME = re.compile(NAME_PATTERN, re.ASCII)
_NETDEV = re.compile(NETDEV_PATTERN, re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
SHOWN_MAX = 80  # characters of an untrusted value echoed into a message


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def shown(value: object, limit: int = SHOWN_MAX) -> str:
    """An untrusted value as it may appear in a message: quoted, control characters escaped, cut short."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"  # repr() fails past 4,300
    s = value if isinstance(value, str) else repr(value)
    cut = len(s) > limit
    s = _CONTROL.sub(_escape, s[:limit]).replace("'", "\\'")
    return f"'{s}'" + ("…" if cut else "")


def sanitize_line(text: str) -> str:
    """A message line with any control characters escaped (the last guard before a terminal)."""
    if text.isascii() and text.isprintable():
        return text  # the common case, checked in C (the inventory calls this for every attribute)
    return _CONTROL.sub(_escape, text)


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def is_plain_name(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _NAME.fullmatch(value) is not None and value not in (".", "..")


def is_netdev_name(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _NETDEV.fullmatch(value) is not None and value not in (".", "..")


def link_name(link: str | None) -> str | None:
    """A link target's last component — a driver, group, bus or device name — when it is a plain name; a link
    to ``..`` or to a name with control characters (a hostile snapshot) names nothing."""
    if link is None:
        return None
    base = link.rstrip("/").rsplit("/", 1)[-1]
    return base if is_plain_name(base) else None


def plain_name(value: object, what: str, error: type[SriovctlError] = UsageError) -> str:
    """A value that will become one path component (driver, netdev, IOMMU unit, kernel release …)."""
    if not is_plain_name(value):
        raise error(f"{what} {shown(value)}: not a plain name",
                    hint="letters, digits and _.:@+- only, at most 64, not . or ..")
    return value


def read_regular(path: str, limit: int, what: str = "") -> bytes:
    """A regular file's bytes, at most ``limit``. FIFOs, devices, directories and sockets are refused
    without blocking (O_NONBLOCK: opening a FIFO for reading would wait for a writer)."""
    name = what or path
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NoInputError(f"{name}: no such file") from None
    except PermissionError:
        raise NoInputError(f"{name}: permission denied") from None
    except OSError as e:
        raise DataError(f"{name}: cannot open: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise DataError(f"{name}: is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{name}: not a regular file (a device, FIFO or socket)",
                            hint="save it to a file first")
        if st.st_size > limit:
            raise DataError(f"{name}: {st.st_size} bytes, larger than the {limit}-byte limit")
        data = read_fd(fd, limit)
        if data is None:
            raise DataError(f"{name}: larger than the {limit}-byte limit")
        return data
    except OSError as e:
        raise DataError(f"{name}: cannot read: {e.strerror}") from None
    finally:
        os.close(fd)


# ---------------------------------------------------------------- documents: YAML 1.2, strict, bounded

YAML_MAX_BYTES = 1 << 20  # a spec of the 16×256 bench host is 3 KB
YAML_MAX_NODES = 100_000
YAML_MAX_ALIASES = 1_000
YAML_MAX_DEPTH = 64
YAML_MAX_EXPANDED = 100_000  # values after aliases are expanded (what a walk of the document visits)
# State files and the inputs of `state import` describe whole hosts: `state show` of 16 PFs × 1,024 VFs (every
# key of every VF, ~200 bytes and 23 nodes a VF) is 3.3 MB and 380,000 nodes; these leave twice that room, so
# the documented 16,384 VF entries (state/keys.py) are reachable in any spelling.
STATE_MAX_BYTES = 8 << 20
STATE_MAX_NODES = 1_000_000
MAX_INT_CHARS = 24  # a 64-bit number is 20 digits (0x + 16 hex digits: 18): longer is refused before int()
MAX_FLOAT_CHARS = 64


@dataclass(frozen=True)
class DocLimits:
    max_bytes: int = YAML_MAX_BYTES
    max_nodes: int = YAML_MAX_NODES
    max_expanded: int = YAML_MAX_EXPANDED


SPEC_LIMITS = DocLimits()
STATE_LIMITS = DocLimits(STATE_MAX_BYTES, STATE_MAX_NODES, STATE_MAX_NODES)

# YAML 1.2's core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution), the schema nmstate documents are
# written in. PyYAML resolves YAML 1.1: `0100` octal (VLAN 64), `0000:17:00.0` and unquoted MACs base-60
# numbers, `yes`/`on` booleans, dates. Here everything that is not one of these forms is a string.
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_CORE_RESOLVERS: list[tuple[str, str, str]] = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    (_INT_TAG, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (_FLOAT_TAG,
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     "-+0123456789."),
]
# Refused anywhere in a document: C0 controls but tab and line ends, DEL, C1 controls, and the characters PyYAML
# (YAML 1.1) takes as line breaks while an editor does not show one (NEL, U+2028, U+2029), bidi overrides.
_BAD_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def decode_text(raw: bytes | str, source: str, max_bytes: int = YAML_MAX_BYTES) -> str:
    """A document's text: UTF-8 (one leading BOM allowed), no NUL or control characters — each refusal names
    the file and the line, never the content."""
    if isinstance(raw, bytes):
        if len(raw) > max_bytes:
            raise DataError(f"{source}: {len(raw)} bytes, larger than the {max_bytes}-byte limit")
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or raw[:4] in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00"):
            raise DataError(f"{source}: UTF-16 or UTF-32 text", hint="save it as UTF-8")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw.count(b"\n", 0, e.start) + 1
            raise DataError(f"{source}: line {line}: not UTF-8 (byte {e.start})", hint="save it as UTF-8") from None
    else:
        text = raw
        if len(text) > max_bytes:
            raise DataError(f"{source}: {len(text)} characters, larger than the {max_bytes} limit")
    text = text.removeprefix("\ufeff")
    bad = _BAD_CHAR.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        what = "a NUL byte (UTF-16 text?)" if bad.group() == "\x00" else f"control character {_escape(bad)}"
        raise DataError(f"{source}: line {line}: {what}", hint="documents are UTF-8 text without control characters")
    return text


def load_yaml(raw: bytes | str, source: str, limits: DocLimits = SPEC_LIMITS) -> Any:
    """A YAML (or JSON) document read strictly: YAML 1.2 core schema scalars, a key given twice refused with its
    path, integers refused past MAX_INT_CHARS before any conversion, control characters and non-UTF-8 refused
    with the line; nodes, aliases and nesting depth counted while composing, and an alias to a node that
    encloses it refused — an alias bomb or a recursive document fails here, before anything is built from it.

    Why PyYAML with a constrained resolver rather than ruamel.yaml: PyYAML is already what sriovctl imports
    (a second YAML library would add ~60 ms to a cold start, which the udev rule pays), and a resolver of four
    regular expressions plus a composer that knows the path is small enough to read in full."""
    import yaml

    text = decode_text(raw, source, limits.max_bytes)
    if text.lstrip()[:1] in ("{", "["):
        # JSON is YAML, and the json module reads it ~400x faster than PyYAML's Python composer (a 1,024-VF state
        # file: 0.5 ms against 200 ms; 6 s in the TCG lab guest). Anything json refuses (YAML flow style, NaN, a
        # key given twice, a long number) is read by the YAML path below, which names the fault's path.
        data = _json_or_none(text)
        if data is not None:
            walk_limits(data, source, limits.max_expanded)
            return data

    class Strict(yaml.SafeLoader):
        yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 (PyYAML's own class attribute, replaced)

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.nodes = 0
            self.aliases = 0
            self.open_nodes: list[Any] = []
            self.path: list[str] = []

        def where(self) -> str:
            return "".join(self.path).lstrip(".") or "(top)"

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > YAML_MAX_ALIASES:
                    raise DataError(f"{source}: more than {YAML_MAX_ALIASES} YAML aliases",
                                    hint="write the values out; anchors and aliases are for short cuts")
                anchor = self.peek_event().anchor  # type: ignore[no-untyped-call]
                target = self.anchors.get(anchor)
                if target is not None and any(n is target for n in self.open_nodes):
                    raise DataError(f"{source}: {self.where()}: YAML alias *{shown(anchor)} refers to a node that "
                                    "contains it", hint="a document is a tree: no recursive anchors")
                return super().compose_node(parent, index)
            self.nodes += 1
            if self.nodes > limits.max_nodes:
                raise DataError(f"{source}: more than {limits.max_nodes} YAML nodes")
            if len(self.open_nodes) >= YAML_MAX_DEPTH:
                raise DataError(f"{source}: {self.where()}: nested deeper than {YAML_MAX_DEPTH} levels")
            node = super().compose_node(parent, index)
            if isinstance(node, yaml.ScalarNode) and node.tag in (_INT_TAG, _FLOAT_TAG):
                cap = MAX_INT_CHARS if node.tag == _INT_TAG else MAX_FLOAT_CHARS
                if len(node.value) > cap:
                    raise DataError(f"{source}: {self.where()}: a number of {len(node.value)} characters "
                                    f"(line {node.start_mark.line + 1})", hint=f"at most {cap}")
            return node

        def compose_sequence_node(self, anchor: Any) -> Any:
            return self._collection(anchor, yaml.SequenceNode, yaml.SequenceEndEvent)

        def compose_mapping_node(self, anchor: Any) -> Any:
            return self._collection(anchor, yaml.MappingNode, yaml.MappingEndEvent)

        def _collection(self, anchor: Any, kind: Any, end_event: Any) -> Any:
            # PyYAML's composer, with the node kept on a stack while its children are composed, the path of
            # each child known (for messages), and a mapping's keys checked for repeats as they come.
            start = self.get_event()  # type: ignore[no-untyped-call]
            tag = start.tag
            if tag is None or tag == "!":
                tag = self.resolve(kind, None, start.implicit)  # type: ignore[no-untyped-call]
            node = kind(tag, [], start.start_mark, None, flow_style=start.flow_style)
            if anchor is not None:
                self.anchors[anchor] = node
            self.open_nodes.append(node)
            index = 0
            seen: dict[tuple[str, str], int] = {}
            while not self.check_event(end_event):
                if kind is yaml.SequenceNode:
                    self.path.append(f"[{index}]")
                    node.value.append(self.compose_node(node, index))
                    self.path.pop()
                    index += 1
                    continue
                key = self.compose_node(node, None)
                name = key.value if isinstance(key, yaml.ScalarNode) else "?"
                self.path.append(f".{name}" if len(name) <= SHOWN_MAX and not has_control(name) else ".?")
                if isinstance(key, yaml.ScalarNode):
                    ident = (key.tag, key.value)
                    if ident in seen:
                        raise DataError(f"{source}: {self.where()}: a key given twice (lines {seen[ident]} and "
                                        f"{key.start_mark.line + 1})", hint="YAML and JSON keys are unique: keep one")
                    seen[ident] = key.start_mark.line + 1
                node.value.append((key, self.compose_node(node, key)))
                self.path.pop()
            self.open_nodes.pop()
            node.end_mark = self.get_event().end_mark  # type: ignore[no-untyped-call]
            return node

        def construct_yaml_int(self, node: Any) -> int:
            v = str(self.construct_scalar(node))
            if len(v) > MAX_INT_CHARS:
                raise DataError(f"{source}: line {node.start_mark.line + 1}: a number of {len(v)} characters")
            m = re.fullmatch(r"([-+]?)(?:0o([0-7]+)|0x([0-9a-fA-F]+)|([0-9]+))", v)
            if m is None:
                raise DataError(f"{source}: line {node.start_mark.line + 1}: {shown(v)} is not a YAML 1.2 integer")
            sign, octal, hexa, dec = m.groups()
            n = int(octal, 8) if octal else int(hexa, 16) if hexa else int(dec, 10)
            return -n if sign == "-" else n

    for tag, regexp, first in _CORE_RESOLVERS:
        Strict.add_implicit_resolver(tag, re.compile(regexp), list(first))
    Strict.add_constructor(_INT_TAG, Strict.construct_yaml_int)

    loader: Strict | None = None
    try:
        loader = Strict(text)  # PyYAML's Reader checks characters here: inside the try (a ReaderError was exit 70)
        data = loader.get_single_data()
        walk_limits(data, source, limits.max_expanded)
        return data
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise DataError(f"{source}: {at}not valid YAML: {shown(str(problem), 120)[1:-1]}") from None
    except RecursionError:
        raise DataError(f"{source}: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


class _NotStrictJson(ValueError):
    pass


def _json_or_none(text: str) -> Any:
    import json

    def strict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            raise _NotStrictJson("duplicate key")
        return out

    def no_constant(name: str) -> Any:
        raise _NotStrictJson(name)

    def bounded_int(digits: str) -> int:
        if len(digits) > MAX_INT_CHARS:
            raise _NotStrictJson("long number")
        return int(digits)

    def bounded_float(digits: str) -> float:
        if len(digits) > MAX_FLOAT_CHARS:
            raise _NotStrictJson("long number")
        return float(digits)

    try:
        return json.loads(text, object_pairs_hook=strict, parse_constant=no_constant, parse_int=bounded_int,
                          parse_float=bounded_float)
    except (ValueError, RecursionError):
        return None  # the YAML reader says what is wrong, and where


def walk_limits(value: Any, source: str, max_items: int = YAML_MAX_EXPANDED, max_depth: int = YAML_MAX_DEPTH) -> None:
    """Refuse a parsed document whose expansion (aliases shared many times) is too large or too deep."""
    count = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        count += 1
        if count > max_items:
            raise DataError(f"{source}: expands to more than {max_items} values (YAML aliases?)")
        if depth > max_depth:
            raise DataError(f"{source}: nested deeper than {max_depth} levels")
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for kv in v.items() for x in kv)
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)
