"""The Prometheus text exposition format (version 0.0.4), rendered here so names are exactly the table's.
Label values come from the host and from libvirt (domain names are anyone's choice): every value is escaped
as the format says (backslash, double quote, line feed), other bytes pass through as UTF-8; a NUL or an
invalid surrogate is replaced, never written."""

from __future__ import annotations

import math
from collections.abc import Iterable

from sriovctl.errors import BugError
from sriovctl.metrics.families import BY_NAME, FAMILIES, Family

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_LABEL_VALUE = 1024  # a hostile domain name could be megabytes: one series must not be


Sample = tuple[str, tuple[str, ...], float]  # family name, label values in the family's order, value


def escape_label(value: str) -> str:
    value = value[:MAX_LABEL_VALUE].replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(v: float) -> str:
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1 << 63):
        return str(int(v))
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def render(samples: Iterable[Sample]) -> str:
    """Every family of the table that has samples, in table order, its samples in the order given; a family
    without samples is left out (no HELP/TYPE lines without a series)."""
    by: dict[str, list[tuple[tuple[str, ...], float]]] = {}
    for name, labels, value in samples:
        fam = BY_NAME.get(name)
        if fam is None or len(labels) != len(fam.labels):
            raise BugError(f"metric {name}: not in the table, or {len(labels)} label values")
        by.setdefault(name, []).append((labels, value))
    out: list[str] = []
    for fam in FAMILIES:
        rows = by.get(fam.name)
        if rows:
            _family(out, fam, rows)
    return "".join(out)


def _family(out: list[str], fam: Family, rows: list[tuple[tuple[str, ...], float]]) -> None:
    out.append(f"# HELP {fam.name} {_escape_help(fam.help)}\n# TYPE {fam.name} {fam.type}\n")
    for labels, value in rows:
        if fam.labels:
            body = ",".join(f'{k}="{escape_label(v)}"' for k, v in zip(fam.labels, labels, strict=True))
            out.append(f"{fam.name}{{{body}}} {format_value(value)}\n")
        else:
            out.append(f"{fam.name} {format_value(value)}\n")


__all__ = ["CONTENT_TYPE", "Sample", "escape_label", "format_value", "render"]
