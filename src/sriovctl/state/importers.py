"""`state import`: the SR-IOV part of other tools' configuration as our state document — nmstate's
`interfaces[].ethernet.sr-iov` (the keys are ours already), systemd-networkd's `[SR-IOV]` sections of .network
files with `[Link] SR-IOVVirtualFunctions=` from .link files, and the SR-IOV network device plugin's
config.json (`pfNames: ["ens1f0#0-3"]`, `drivers`).

Every input is checked twice: here (its own shape, errors by its own path: `nm.yaml: interfaces[0].ethernet.
sr-iov.vfs[1].bogus: unknown key`), then as the state it becomes (desired.parse), with the path mapped back."""

from __future__ import annotations

import re
from typing import Any

from sriovctl.state.desired import StateError, parse
from sriovctl.state.keys import ALL_VF_KEYS, PF_KEYS
from sriovctl.untrusted import STATE_LIMITS, is_netdev_name, load_yaml, shown

MAX_LINES = 20_000


def _fail(source: str, path: str, problem: str, value: object = ...) -> StateError:
    return StateError(source, path, problem, value)


# Where each part of the state came from, in the source's own terms: pfs[k] → (file, path); pfs[k].vfs[j] →
# (file, path) for the entry and for each of our keys (a fault is named as the source spells it:
# `a.network: [SR-IOV] (line 11) VLANId: must be 0..4095`).
Origin = tuple[str, str]


class Origins:
    def __init__(self) -> None:
        self.pfs: list[Origin] = []
        self.vfs: dict[tuple[int, int], dict[str, Origin]] = {}

    def vf(self, pf: int, vf: int, entry: Origin, keys: dict[str, Origin] | None = None) -> None:
        self.vfs[(pf, vf)] = {"": entry, **(keys or {})}


_STATE_PATH = re.compile(r"pfs\[(\d+)\](?:\.vfs\[(\d+)\](?:\.([a-z-]+))?)?(.*)")


def _checked(doc: dict[str, Any], source: str, origins: Origins) -> dict[str, Any]:
    """Our parser over the result; a fault is named where it came from."""
    try:
        parse(doc, source)
    except StateError as e:
        m = _STATE_PATH.fullmatch(e.path)
        if m is None or int(m.group(1)) >= len(origins.pfs):
            raise
        pf, vf, key, rest = int(m.group(1)), m.group(2), m.group(3), m.group(4)
        file, path = origins.pfs[pf]
        if vf is None:
            path += rest
        else:
            known = origins.vfs.get((pf, int(vf)))
            if known is None:
                path += f".vfs[{vf}]" + (f".{key}" if key else "") + rest
            elif key is not None and key in known:
                file, path = known[key]
                path += rest
            else:
                file, path = known[""]
                path += (f".{key}" if key else "") + rest
        raise StateError(file, path, e.problem, e.value, e.hint) from None
    return doc


# ---- nmstate

def from_nmstate(data: Any, source: str) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("interfaces"), list):
        raise _fail(source, "(top)", "not an nmstate document: no interfaces: list")
    pfs: list[dict[str, Any]] = []
    origins = Origins()
    for i, iface in enumerate(data["interfaces"]):
        path = f"interfaces[{i}]"
        if not isinstance(iface, dict):
            raise _fail(source, path, "must be a mapping", iface)
        eth = iface.get("ethernet")
        sriov = eth.get("sr-iov") if isinstance(eth, dict) else None
        if sriov is None:
            continue  # not an SR-IOV PF's entry
        if not isinstance(sriov, dict):
            raise _fail(source, f"{path}.ethernet.sr-iov", "must be a mapping", sriov)
        for k in sriov:
            if k not in ("total-vfs", "vfs", "drivers-autoprobe"):
                raise _fail(source, f"{path}.ethernet.sr-iov.{k}" if isinstance(k, str) else path, "unknown key", k)
        if not is_netdev_name(iface.get("name")):
            raise _fail(source, f"{path}.name", "not a network interface name", iface.get("name"))
        for j, vf in enumerate(sriov.get("vfs") or []):
            if isinstance(vf, dict):
                for k in vf:
                    if k not in ALL_VF_KEYS:
                        raise _fail(source, f"{path}.ethernet.sr-iov.vfs[{j}].{k}" if isinstance(k, str) else path,
                                    "unknown key", k)
        for j in range(len(sriov.get("vfs") or [])):
            origins.vf(len(pfs), j, (source, f"{path}.ethernet.sr-iov.vfs[{j}]"))
        pfs.append({"name": iface["name"], **{k: v for k, v in sriov.items() if k in PF_KEYS}})
        origins.pfs.append((source, f"{path}.ethernet.sr-iov"))
    return _checked({"pfs": pfs}, source, origins)


# ---- systemd-networkd

_TRUE = ("1", "yes", "y", "true", "t", "on")
_FALSE = ("0", "no", "n", "false", "f", "off")
# [SR-IOV] key → (our key, conversion); systemd.network(5)
_NETWORKD: dict[str, tuple[str | None, str]] = {
    "VirtualFunction": ("id", "int"), "VLANId": ("vlan-id", "int"), "QualityOfService": ("qos", "int"),
    "VLANProtocol": ("vlan-proto", "proto"), "MACSpoofCheck": ("spoof-check", "bool"), "Trust": ("trust", "bool"),
    "LinkState": ("link-state", "linkstate"), "MACAddress": ("mac-address", "str"),
    "QueryReceiveSideScaling": (None, "bool"),  # RSS query: not a state key (nmstate has none either)
}


_WS = " \t"  # systemd's WHITESPACE for a line's ends (conf-parser.c strstrip): not \f, \v or U+2028
_LINE_END = re.compile(r"\r\n|\r|\n")  # read_line(): \n, \r and \r\n end a line (NUL is refused earlier)
# [Match] keys sriovctl can evaluate (the PF by name); every other match (Path=, MACAddress=, Driver=, Type=,
# Property=, Host=, …) would select PFs sriovctl cannot tell from a name: refused, not dropped.
_MATCH_NAMES = {".network": ("Name",), ".link": ("OriginalName", "Name")}


def _sections(text: str, source: str) -> list[tuple[str, int, list[tuple[str, str, int]]]]:
    """An INI file as systemd's config_parse() reads it: lines end at \n, \r or \r\n; a trailing backslash
    continues the line; '#' and ';' start comments; sections may repeat ([SR-IOV] once per VF). Each section:
    (name, its line, [(key, value, line)] in order — a key may repeat, the caller applies systemd's rule)."""
    out: list[tuple[str, int, list[tuple[str, str, int]]]] = []
    lines = _LINE_END.split(text)
    if len(lines) > MAX_LINES:
        raise _fail(source, "(top)", f"more than {MAX_LINES} lines")
    pending: tuple[str, int] | None = None
    for n, raw in enumerate(lines, 1):
        line = raw.strip(_WS)
        if pending is not None:
            if line[:1] in ("#", ";"):
                continue  # a comment inside a continuation is skipped (config_parse)
            line, start = pending[0] + line, pending[1]
            pending = None
        else:
            start = n
            if not line or line[0] in "#;":
                continue
        if line.endswith("\\"):
            pending = (line[:-1] + " ", start)
            continue
        if line.startswith("[") and line.endswith("]"):
            out.append((line[1:-1], start, []))
            continue
        key, eq, value = line.partition("=")
        if not eq or not out:
            raise _fail(source, f"line {start}", "not KEY=VALUE inside a [section]")  # the line is not shown:
            # a file that is not systemd's at all (a link to another file) must not have its content printed
        out[-1][2].append((key.strip(_WS), value.strip(_WS), start))
    if pending is not None:
        raise _fail(source, f"line {pending[1]}", "a continuation (trailing backslash) at the end of the file")
    return out


_MAX_DIGITS = 10


def _convert(kind: str, value: str, source: str, path: str) -> object:
    low = value.lower()
    if kind == "int":
        if not value.isascii() or not value.isdigit() or len(value) > _MAX_DIGITS:
            raise _fail(source, path, "must be a number" + (f" of at most {_MAX_DIGITS} digits"
                                                            if value.isascii() and value.isdigit() else ""), value)
        return int(value)
    if kind == "bool":
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise _fail(source, path, "must be a boolean (yes/no)", value)
    if kind == "linkstate":
        if low == "auto":
            return "auto"
        if low in _TRUE or low in _FALSE:
            return "enable" if low in _TRUE else "disable"
        raise _fail(source, path, "must be yes, no or auto", value)
    if kind == "proto":
        return low
    return value


def _match_names(source: str, secs: list[tuple[str, int, list[tuple[str, str, int]]]]) -> list[str]:
    """The interface names a file's [Match] sections select, by systemd's list rule: each Name= line adds its
    space-separated names, an empty Name= clears the list. Any other match key is refused."""
    ext = ".link" if source.endswith(".link") else ".network"
    allowed = _MATCH_NAMES[ext]
    names: dict[str, list[str]] = {k: [] for k in allowed}
    for sec, _, keys in secs:
        if sec != "Match":
            continue
        for k, v, at in keys:
            if k not in allowed:
                raise _fail(source, f"[Match] (line {at}) {k}", "sriovctl selects a PF by its name only: a match by "
                            f"{k} is refused, not dropped (it would select other interfaces)", v)
            if v == "":
                names[k] = []
            else:
                names[k] += v.split()
    return next((names[k] for k in allowed if names[k]), [])


def from_networkd(files: list[tuple[str, str]]) -> dict[str, Any]:
    """.network files ([Match] Name= + [SR-IOV] sections) and .link files ([Match] OriginalName= +
    [Link] SR-IOVVirtualFunctions=); one PF per interface name."""
    pfs: dict[str, dict[str, Any]] = {}
    where: dict[str, Origin] = {}
    vf_origins: dict[str, list[tuple[Origin, dict[str, Origin]]]] = {}
    for source, text in files:
        secs = _sections(text, source)
        sriov = [(n, k) for s, n, k in secs if s == "SR-IOV"]
        count = next(((v, at) for s, _, keys in secs if s == "Link" for k, v, at in reversed(keys)
                      if k == "SR-IOVVirtualFunctions"), None)
        if not sriov and count is None:
            continue
        names = _match_names(source, secs)
        if len(names) != 1 or not is_netdev_name(names[0]):
            raise _fail(source, "[Match]", "needs exactly one interface name (Name=, or OriginalName= in a .link): "
                        "sriovctl does not expand globs", " ".join(names) or None)
        pf = pfs.setdefault(names[0], {"name": names[0]})
        where.setdefault(names[0], (source, f"[Match] Name={names[0]}"))
        if count is not None:
            pf["total-vfs"] = _convert("int", count[0], source, f"[Link] (line {count[1]}) SR-IOVVirtualFunctions")
        for line, keys in sriov:
            vf: dict[str, Any] = {}
            origin: dict[str, Origin] = {}
            for k, v, at in keys:  # a key given twice: the last wins, as in systemd
                if k not in _NETWORKD:
                    raise _fail(source, f"[SR-IOV] (line {at}) {k}", "unknown key", k)
                ours, kind = _NETWORKD[k]
                if ours is not None:
                    vf[ours] = _convert(kind, v, source, f"[SR-IOV] (line {at}) {k}")
                    origin[ours] = (source, f"[SR-IOV] (line {at}) {k}")
            if "id" not in vf:
                raise _fail(source, f"[SR-IOV] (line {line})", "no VirtualFunction=")
            pf.setdefault("vfs", []).append(vf)
            vf_origins.setdefault(names[0], []).append(((source, f"[SR-IOV] (line {line})"), origin))
    order = sorted(pfs)
    origins = Origins()
    for idx, n in enumerate(order):
        origins.pfs.append(where[n])
        for j, (entry, vf_keys) in enumerate(vf_origins.get(n, [])):
            origins.vf(idx, j, entry, vf_keys)
    return _checked({"pfs": [pfs[n] for n in order]}, "networkd", origins)


# ---- the SR-IOV network device plugin's config.json

def _names(v: Any, source: str, path: str) -> list[str]:
    """A list of strings, as the plugin's Go types say ([]string): a bare string is refused, not split into
    letters, and not taken as a one-element list either (the plugin itself rejects it)."""
    if v is None:
        return []
    if not isinstance(v, list):
        raise _fail(source, path, "must be a list of strings (the device plugin's []string)", v)
    for k, x in enumerate(v):
        if not isinstance(x, str):
            raise _fail(source, f"{path}[{k}]", "must be a string", x)
    return v


def from_device_plugin(data: Any, source: str) -> dict[str, Any]:
    """Each resource's `pfNames` (`ens1f0`, `ens1f0#0-3`) with its one driver when `drivers` names exactly one:
    those VFs bound to it (with several drivers, the VFs are listed without one), under the resource's name
    (`resource-name`, for a VF range) and prefix (`resource-prefix`, when the resource gives one). The plugin
    selects; it configures nothing else (no count, no MACs)."""
    if not isinstance(data, dict) or not isinstance(data.get("resourceList"), list):
        raise _fail(source, "(top)", "not a device plugin config: no resourceList: list")
    pfs: dict[str, dict[str, Any]] = {}
    where: dict[str, Origin] = {}
    vf_where: dict[str, list[Origin]] = {}
    for i, res in enumerate(data["resourceList"]):
        if not isinstance(res, dict):
            raise _fail(source, f"resourceList[{i}]", "must be a mapping", res)
        selectors = res.get("selectors", {})
        if not isinstance(selectors, dict | list):
            raise _fail(source, f"resourceList[{i}].selectors", "must be a mapping or a list of mappings", selectors)
        for j, sel in enumerate(selectors if isinstance(selectors, list) else [selectors]):
            path = f"resourceList[{i}].selectors" + (f"[{j}]" if isinstance(selectors, list) else "")
            if not isinstance(sel, dict):
                raise _fail(source, path, "must be a mapping", sel)
            drivers = _names(sel.get("drivers"), source, f"{path}.drivers")
            driver = drivers[0] if len(drivers) == 1 else None
            name_of = res.get("resourceName")
            prefix = res.get("resourcePrefix")
            for k, name in enumerate(_names(sel.get("pfNames"), source, f"{path}.pfNames")):
                pf, _, ids = name.partition("#")
                if not is_netdev_name(pf):
                    raise _fail(source, f"{path}.pfNames[{k}]", "not PF or PF#RANGE", shown(name))
                entry = pfs.setdefault(pf, {"name": pf})
                where.setdefault(pf, (source, f"{path}.pfNames[{k}]"))
                if prefix is not None and entry.setdefault("resource-prefix", prefix) != prefix:
                    raise _fail(source, f"resourceList[{i}].resourcePrefix", f"{pf} has resourcePrefix "
                                f"{shown(entry['resource-prefix'])} in another resource", shown(prefix))
                if ids:
                    entry.setdefault("vfs", []).append({"id": ids, **({"driver": driver} if driver else {}),
                                                        **({"resource-name": name_of} if name_of is not None else {})})
                    vf_where.setdefault(pf, []).append((source, f"{path}.pfNames[{k}]"))
    order = sorted(pfs)
    origins = Origins()
    for k, n in enumerate(order):
        origins.pfs.append(where[n])
        for j, o in enumerate(vf_where.get(n, [])):
            origins.vf(k, j, o)
    return _checked({"pfs": [pfs[n] for n in order]}, source, origins)


def import_files(files: list[tuple[str, str]]) -> tuple[str, dict[str, Any]]:
    """(the kind detected, our state document) from one nmstate or device-plugin file, or networkd files."""
    if all(p.endswith((".network", ".link")) for p, _ in files):
        return "networkd", from_networkd(files)
    if len(files) != 1:
        raise _fail(files[0][0], "(top)", "one nmstate or device-plugin file at a time (several files: "
                    "systemd-networkd .network/.link only)")
    source, text = files[0]
    data = load_yaml(text, source, STATE_LIMITS)
    if isinstance(data, dict) and "resourceList" in data:
        return "device-plugin", from_device_plugin(data, source)
    return "nmstate", from_nmstate(data, source)
