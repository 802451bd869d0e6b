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
from typing import Any, TypeGuard

from sriovctl.errors import DataError, NoInputError, SriovctlError, UsageError

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
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            b = os.read(fd, min(1 << 20, limit + 1 - total))
            if not b:
                break
            chunks.append(b)
            total += len(b)
        if total > limit:
            raise DataError(f"{name}: larger than the {limit}-byte limit")
        return b"".join(chunks)
    except OSError as e:
        raise DataError(f"{name}: cannot read: {e.strerror}") from None
    finally:
        os.close(fd)


# ---------------------------------------------------------------- YAML with bounds

YAML_MAX_BYTES = 1 << 20  # a spec of the 16×256 bench host is 3 KB
YAML_MAX_NODES = 100_000
YAML_MAX_ALIASES = 1_000
YAML_MAX_DEPTH = 64
YAML_MAX_EXPANDED = 100_000  # values after aliases are expanded (what a walk of the document visits)


def load_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` with bounds: nodes, aliases and nesting depth are counted while composing, and an
    alias to a node that encloses it is refused — so an alias bomb (a few KB that expand to gigabytes when
    walked) or a recursive document fails here, with the spec's name, before anything is built from it."""
    import yaml

    if len(text) > YAML_MAX_BYTES:
        raise DataError(f"{source}: {len(text)} characters, larger than the {YAML_MAX_BYTES} limit")
    if text.lstrip()[:1] in ("{", "["):
        # JSON is YAML, and the json module reads it ~400x faster than PyYAML's Python composer (a 1,024-VF state
        # file: 0.5 ms against 200 ms; 6 s in the TCG lab guest). Anything json refuses (YAML flow style, NaN, a
        # key given twice) is read by the YAML path below, so the result is the same as before.
        data = _json_or_none(text, source)
        if data is not None:
            walk_limits(data, source)
            return data

    class Bounded(yaml.SafeLoader):
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.nodes = 0
            self.aliases = 0
            self.open_nodes: list[Any] = []

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > YAML_MAX_ALIASES:
                    raise DataError(f"{source}: more than {YAML_MAX_ALIASES} YAML aliases",
                                    hint="write the values out; anchors and aliases are for short cuts")
                anchor = self.peek_event().anchor  # type: ignore[no-untyped-call]
                target = self.anchors.get(anchor)
                if target is not None and any(n is target for n in self.open_nodes):
                    raise DataError(f"{source}: YAML alias *{shown(anchor)} refers to a node that contains it",
                                    hint="a spec is a tree: no recursive anchors")
                return super().compose_node(parent, index)
            self.nodes += 1
            if self.nodes > YAML_MAX_NODES:
                raise DataError(f"{source}: more than {YAML_MAX_NODES} YAML nodes")
            if len(self.open_nodes) >= YAML_MAX_DEPTH:
                raise DataError(f"{source}: nested deeper than {YAML_MAX_DEPTH} levels")
            return super().compose_node(parent, index)

        def compose_sequence_node(self, anchor: Any) -> Any:
            return self._collection(anchor, yaml.SequenceNode, yaml.SequenceEndEvent)

        def compose_mapping_node(self, anchor: Any) -> Any:
            return self._collection(anchor, yaml.MappingNode, yaml.MappingEndEvent)

        def _collection(self, anchor: Any, kind: Any, end_event: Any) -> Any:
            # PyYAML's composer, with the node kept on a stack while its children are composed.
            start = self.get_event()  # type: ignore[no-untyped-call]
            tag = start.tag
            if tag is None or tag == "!":
                tag = self.resolve(kind, None, start.implicit)  # type: ignore[no-untyped-call]
            node = kind(tag, [], start.start_mark, None, flow_style=start.flow_style)
            if anchor is not None:
                self.anchors[anchor] = node
            self.open_nodes.append(node)
            index = 0
            while not self.check_event(end_event):
                if kind is yaml.SequenceNode:
                    node.value.append(self.compose_node(node, index))
                    index += 1
                else:
                    key = self.compose_node(node, None)
                    node.value.append((key, self.compose_node(node, key)))
            self.open_nodes.pop()
            node.end_mark = self.get_event().end_mark  # type: ignore[no-untyped-call]
            return node

    loader = Bounded(text)
    try:
        data = loader.get_single_data()
        walk_limits(data, source)
        return data
    except yaml.YAMLError as e:
        raise DataError(f"{source}: not valid YAML: {sanitize_line(str(e).splitlines()[0])}") from None
    except RecursionError:
        raise DataError(f"{source}: nested too deeply") from None
    finally:
        loader.dispose()


def _json_or_none(text: str, source: str) -> Any:
    import json

    def strict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            raise ValueError("duplicate key")
        return out

    def no_constant(name: str) -> Any:
        raise ValueError(name)

    try:
        return json.loads(text, object_pairs_hook=strict, parse_constant=no_constant)
    except ValueError:
        return None
    except RecursionError:
        raise DataError(f"{source}: nested too deeply") from None


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
