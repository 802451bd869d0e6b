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
from sriovctl.untrusted import is_netdev_name, load_yaml, shown

MAX_LINES = 20_000


def _fail(source: str, path: str, problem: str, value: object = ...) -> StateError:
    return StateError(source, path, problem, value)


def _checked(doc: dict[str, Any], source: str, where: list[str]) -> dict[str, Any]:
    """Our parser over the result; a fault is named where it came from (``where[k]``: pfs[k]'s origin)."""
    try:
        parse(doc, source)
    except StateError as e:
        m = re.match(r"pfs\[(\d+)\](.*)", e.path)
        path = (where[int(m.group(1))] + m.group(2)) if m and int(m.group(1)) < len(where) else e.path
        raise StateError(source, path, e.problem, e.value, e.hint) from None
    return doc


# ---- nmstate

def from_nmstate(data: Any, source: str) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("interfaces"), list):
        raise _fail(source, "(top)", "not an nmstate document: no interfaces: list")
    pfs, where = [], []
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
        pfs.append({"name": iface["name"], **{k: v for k, v in sriov.items() if k in PF_KEYS}})
        where.append(f"{path}.ethernet.sr-iov")
    return _checked({"pfs": pfs}, source, where)


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


def _sections(text: str, source: str) -> list[tuple[str, int, dict[str, tuple[str, int]]]]:
    """An INI file as systemd reads it: sections may repeat ([SR-IOV] once per VF); (name, its line, key →
    (value, line))."""
    out: list[tuple[str, int, dict[str, tuple[str, int]]]] = []
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise _fail(source, "(top)", f"more than {MAX_LINES} lines")
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            out.append((line[1:-1], n, {}))
            continue
        key, eq, value = line.partition("=")
        if not eq or not out:
            raise _fail(source, f"line {n}", "not KEY=VALUE inside a [section]", raw)
        out[-1][2][key.strip()] = (value.strip(), n)
    return out


def _convert(kind: str, value: str, source: str, path: str) -> object:
    low = value.lower()
    if kind == "int":
        if not value.isascii() or not value.isdigit():
            raise _fail(source, path, "must be a number", value)
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


def from_networkd(files: list[tuple[str, str]]) -> dict[str, Any]:
    """.network files ([Match] Name= + [SR-IOV] sections) and .link files ([Match] OriginalName= +
    [Link] SR-IOVVirtualFunctions=); one PF per interface name."""
    pfs: dict[str, dict[str, Any]] = {}
    where: dict[str, str] = {}
    for source, text in files:
        secs = _sections(text, source)
        match = {k: v for s, _, keys in secs if s == "Match" for k, (v, _) in keys.items()}
        is_link = source.endswith(".link")
        names = (match.get("OriginalName") or match.get("Name") or "").split() if is_link else \
            match.get("Name", "").split()
        sriov = [(n, k) for s, n, k in secs if s == "SR-IOV"]
        count = next((k["SR-IOVVirtualFunctions"][0] for s, _, k in secs if s == "Link"
                      and "SR-IOVVirtualFunctions" in k), None)
        if not sriov and count is None:
            continue
        if len(names) != 1 or not is_netdev_name(names[0]):
            raise _fail(source, "[Match]", "needs exactly one interface name (Name=, or OriginalName= in a .link): "
                        "sriovctl does not expand globs or match by MAC or path", " ".join(names) or None)
        pf = pfs.setdefault(names[0], {"name": names[0]})
        where.setdefault(names[0], f"{source} [Match] Name={names[0]}")
        if count is not None:
            pf["total-vfs"] = _convert("int", count, source, "[Link] SR-IOVVirtualFunctions")
        for line, keys in sriov:
            vf: dict[str, Any] = {}
            for k, (v, at) in keys.items():
                if k not in _NETWORKD:
                    raise _fail(source, f"[SR-IOV] (line {at}) {k}", "unknown key", k)
                ours, kind = _NETWORKD[k]
                if ours is not None:
                    vf[ours] = _convert(kind, v, source, f"[SR-IOV] (line {at}) {k}")
            if "id" not in vf:
                raise _fail(source, f"[SR-IOV] (line {line})", "no VirtualFunction=")
            pf.setdefault("vfs", []).append(vf)
    order = sorted(pfs)
    return _checked({"pfs": [pfs[n] for n in order]}, "networkd", [where[n] for n in order])


# ---- the SR-IOV network device plugin's config.json

def from_device_plugin(data: Any, source: str) -> dict[str, Any]:
    """Each resource's `pfNames` (`ens1f0`, `ens1f0#0-3`) with its one driver when `drivers` names exactly one:
    those VFs bound to it. The plugin selects; it configures nothing else (no count, no MACs)."""
    if not isinstance(data, dict) or not isinstance(data.get("resourceList"), list):
        raise _fail(source, "(top)", "not a device plugin config: no resourceList: list")
    pfs: dict[str, dict[str, Any]] = {}
    where: dict[str, str] = {}
    for i, res in enumerate(data["resourceList"]):
        if not isinstance(res, dict):
            raise _fail(source, f"resourceList[{i}]", "must be a mapping", res)
        selectors = res.get("selectors", {})
        for j, sel in enumerate(selectors if isinstance(selectors, list) else [selectors]):
            path = f"resourceList[{i}].selectors" + (f"[{j}]" if isinstance(selectors, list) else "")
            if not isinstance(sel, dict):
                raise _fail(source, path, "must be a mapping", sel)
            drivers = sel.get("drivers") or []
            driver = drivers[0] if isinstance(drivers, list) and len(drivers) == 1 else None
            for k, name in enumerate(sel.get("pfNames") or []):
                if not isinstance(name, str):
                    raise _fail(source, f"{path}.pfNames[{k}]", "must be a name", name)
                pf, _, ids = name.partition("#")
                if not is_netdev_name(pf):
                    raise _fail(source, f"{path}.pfNames[{k}]", "not PF or PF#RANGE", shown(name))
                entry = pfs.setdefault(pf, {"name": pf})
                where.setdefault(pf, f"{path}.pfNames[{k}]")
                if ids and driver is not None:
                    entry.setdefault("vfs", []).append({"id": ids, "driver": driver})
    order = sorted(pfs)
    return _checked({"pfs": [pfs[n] for n in order]}, source, [where[n] for n in order])


def import_files(files: list[tuple[str, str]]) -> tuple[str, dict[str, Any]]:
    """(the kind detected, our state document) from one nmstate or device-plugin file, or networkd files."""
    if all(p.endswith((".network", ".link")) for p, _ in files):
        return "networkd", from_networkd(files)
    if len(files) != 1:
        raise _fail(files[0][0], "(top)", "one nmstate or device-plugin file at a time (several files: "
                    "systemd-networkd .network/.link only)")
    source, text = files[0]
    data = load_yaml(text, source)
    if isinstance(data, dict) and "resourceList" in data:
        return "device-plugin", from_device_plugin(data, source)
    return "nmstate", from_nmstate(data, source)
