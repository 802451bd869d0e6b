"""The state file: what a host's SR-IOV should be, read and checked before anything looks at the host.

Every error names the path of the bad value and the value (``pfs[0].vfs[2].vlan-id: must be 0..4095, got
5000``), exit 65. Omitted keys and VFs keep what the host has; ``vfs: []`` resets every VF to defaults
(nmstate's rule). Bounded: the YAML loader's limits (untrusted.load_yaml), at most MAX_PFS PFs and
MAX_VF_ENTRIES VF entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sriovctl.attrs import ZERO_MAC, AttrValueError, ValueKind, VfAttr, check_value
from sriovctl.errors import DataError, SriovctlError
from sriovctl.pci.address import PciAddress
from sriovctl.resolve import parse_indices
from sriovctl.state.keys import (
    ALL_VF_KEYS,
    DRIVER_WORDS,
    MAX_PFS,
    MAX_TOTAL_VFS,
    MAX_VF_ENTRIES,
    PF_KEYS,
    PF_SETTINGS,
    PF_VFS,
    POOL_NAME,
    RESOURCE_NAME,
    VF_DRIVER,
    VF_ID,
    VF_KEYS,
    VF_POOL,
    VF_RESOURCE,
    PfKey,
)
from sriovctl.untrusted import STATE_LIMITS, is_netdev_name, is_plain_name, load_yaml, shown


class StateError(DataError):
    """A state file value that cannot be: ``path`` is where (``pfs[0].vfs[2].vlan-id``), ``value`` what."""

    def __init__(self, source: str, path: str, problem: str, value: object = ..., hint: str | None = None) -> None:
        self.path, self.value, self.problem = path, value, problem
        got = "" if value is ... else f", got {_as_written(value)}"
        super().__init__(f"{source}: {path}: {problem}{got}", hint=hint)


_KEY_LIKE = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)


def _kind_word(value: object) -> str:
    return {str: "text", list: "a list", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), "another kind of value")


def _as_written(value: object) -> str:
    """A value as the file spells it: numbers and booleans bare (5000, true), text quoted and escaped."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int) and value.bit_length() > 128:
        return shown(value)  # str() fails past 4,300 digits; the digits say nothing useful anyway
    if isinstance(value, int | float):
        return str(value)
    return shown(value)


@dataclass(frozen=True)
class PfSelector:
    """Which PF an entry means: its netdev, its PCI address, or the index-th PF with these IDs."""

    name: str | None = None
    pci_address: str | None = None
    vendor: int | None = None
    device: int | None = None
    index: int | None = None

    def __str__(self) -> str:
        if self.name is not None:
            return f"name {self.name}"
        if self.pci_address is not None:
            return f"pci-address {self.pci_address}"
        return f"vendor {self.vendor:04x} device {self.device:04x} index {self.index}"


@dataclass(frozen=True)
class VfState:
    path: str
    ids: tuple[int, ...]
    attrs: dict[str, object]  # attrs.VF_ATTRS keys → values; a key absent keeps the VF's value
    driver: str | None  # vfio-pci, host, none or a driver name; None keeps the VF's binding
    resource: str | None = None  # resource-name: handed out at run time by someone else (their attributes theirs)
    pool: str | None = None  # handed out by `sriovctl pool allocate`: attributes and driver are the pool's defaults


@dataclass(frozen=True)
class PfState:
    path: str
    selector: PfSelector
    total_vfs: int | None = None  # the settings: one field per row of state/keys.PF_SETTINGS
    create: str = "sysfs"
    drivers_autoprobe: bool | None = None
    externally_managed: bool = False
    resource_prefix: str | None = None
    physical_network: str | None = None
    vfs: tuple[VfState, ...] | None = None  # None: VFs as they are; (): every VF back to defaults


@dataclass(frozen=True)
class DesiredState:
    source: str
    pfs: tuple[PfState, ...] = field(default=())
    # A checkpoint (the host as a run found it) being restored: whatever the host held is put back, so the
    # planner's policy on MACs (no new shared MAC, none another VF keeps) does not apply to it.
    restore: bool = False
    # SHA-256 of the document as canonical JSON (keys sorted, no spaces): the same document gives the same digest
    # whether it came as a file (any spelling, comments, key order) or as a dict from a front end — what the
    # applied record keeps and `state status` compares
    digest: str = ""


def document_digest(data: Any) -> str:
    import hashlib
    import json

    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load(text: str | bytes, source: str) -> DesiredState:
    """A state file's bytes (or text) read by the strict document reader (YAML 1.2, keys unique, bounded)."""
    return parse(load_yaml(text, source, STATE_LIMITS), source)


def parse(data: Any, source: str) -> DesiredState:
    """A state document checked value by value. Two VFs with one MAC are not refused here: a state describes
    a host, and a host can hold that (`vf set --force`; `state show` must read back); the planner refuses to
    *make* such a pair (planner._check_macs)."""
    r = _Reader(source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        # the value is not shown: a document that is one scalar is a file that is not a state at all (a link to
        # /etc/shadow reads as one line of text), and its content is none of the message's business
        raise StateError(source, "(top)", f"must be a mapping with a pfs: list, not {_kind_word(data)}")
    r.only(data, ("pfs",), "")
    pfs_raw = data.get("pfs", [])
    if not isinstance(pfs_raw, list):
        raise StateError(source, "pfs", "must be a list", pfs_raw)
    if len(pfs_raw) > MAX_PFS:
        raise StateError(source, "pfs", f"at most {MAX_PFS} PFs, got {len(pfs_raw)}")
    pfs = tuple(r.pf(p, f"pfs[{i}]") for i, p in enumerate(pfs_raw))
    seen: dict[PfSelector, str] = {}
    for p in pfs:
        if p.selector in seen:
            raise StateError(source, p.path, f"the same PF as {seen[p.selector]} ({p.selector})")
        seen[p.selector] = p.path
    return DesiredState(source, pfs, digest=document_digest(data))


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.vf_entries = 0

    def fail(self, path: str, problem: str, value: object = ..., hint: str | None = None) -> StateError:
        return StateError(self.source, path, problem, value, hint)

    def only(self, d: dict[Any, Any], keys: tuple[str, ...], path: str) -> None:
        for k in d:
            if k not in keys:
                # a key is shown only when it looks like one: a line of another kind of file read as a key (a
                # link to /etc/shadow named as the state) must not be printed
                named = isinstance(k, str) and _KEY_LIKE.fullmatch(k) is not None
                where = f"{path}.{k}" if path and named else (path or "(top)")
                raise self.fail(where, "unknown key" if named else "unknown key (not shown: not a key name)",
                                k if named else ..., hint="known: " + ", ".join(keys))

    def integer(self, v: Any, path: str, low: int, high: int) -> int:
        if isinstance(v, str) and v.lower().startswith("0x"):
            try:
                v = int(v, 16)
            except ValueError:
                raise self.fail(path, "must be a number", v) from None
        if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
            raise self.fail(path, f"must be {low}..{high}", v)
        return v

    def pf(self, d: Any, path: str) -> PfState:
        if not isinstance(d, dict):
            raise self.fail(path, "must be a mapping", d)
        self.only(d, PF_KEYS, path)
        chosen = [k for k in ("name", "pci-address", "vendor") if k in d]
        if len(chosen) != 1:
            raise self.fail(path, "needs exactly one of name, pci-address or vendor + device + index"
                            + (f" (has {', '.join(chosen)})" if chosen else ""))
        sel = self.selector(d, chosen[0], path)
        settings = {k.field: self.setting(k, d.get(k.key), f"{path}.{k.key}") for k in PF_SETTINGS}
        total = settings["total_vfs"]
        if settings["externally_managed"] and total is not None and settings["create"] != "sysfs":
            raise self.fail(f"{path}.create", "an externally managed PF's VF count is not ours to create",
                            settings["create"])
        vfs_raw = d.get(PF_VFS)
        vfs: tuple[VfState, ...] | None = None
        if vfs_raw is not None:
            if not isinstance(vfs_raw, list):
                raise self.fail(f"{path}.vfs", "must be a list", vfs_raw)
            vfs = self.vfs(vfs_raw, f"{path}.vfs", total if isinstance(total, int) else None)
        return PfState(path, sel, vfs=vfs, **settings)  # type: ignore[arg-type]  # PF_SETTINGS' kinds: checked

    def setting(self, key: PfKey, v: Any, path: str) -> object:
        """One PF setting checked by its row (state/keys.PF_SETTINGS); absent or null: the row's default."""
        if v is None:
            return key.default
        if key.kind is ValueKind.INT:
            return self.integer(v, path, 0, key.high)
        if key.kind is ValueKind.BOOL:
            if not isinstance(v, bool):
                raise self.fail(path, "must be true or false", v)
            return v
        if key.kind is ValueKind.TEXT:
            if not isinstance(v, str) or not re.fullmatch(key.pattern, v, re.ASCII):
                raise self.fail(path, "not a valid name", v, hint=f"it must match {key.pattern}")
            return v
        if v not in key.choices:
            raise self.fail(path, f"must be {' or '.join(key.choices)}", v)
        return v

    def selector(self, d: dict[str, Any], kind: str, path: str) -> PfSelector:
        if kind == "name":
            if not is_netdev_name(d["name"]):
                raise self.fail(f"{path}.name", "not a network interface name", d["name"],
                                hint="1-15 letters, digits and _.:@+-")
            if "device" in d or "index" in d:
                raise self.fail(path, "device and index go with vendor, not with name")
            return PfSelector(name=d["name"])
        if kind == "pci-address":
            raw = d["pci-address"]
            addr = PciAddress.try_parse(raw) if isinstance(raw, str) else None
            if addr is None:
                raise self.fail(f"{path}.pci-address", "not a PCI address (DDDD:BB:DD.F)", raw)
            if "device" in d or "index" in d:
                raise self.fail(path, "device and index go with vendor, not with pci-address")
            return PfSelector(pci_address=str(addr))
        for k in ("device", "index"):
            if k not in d:
                raise self.fail(path, f"vendor needs device and index too (no {k})")
        return PfSelector(vendor=self.integer(d["vendor"], f"{path}.vendor", 0, 0xFFFF),
                          device=self.integer(d["device"], f"{path}.device", 0, 0xFFFF),
                          index=self.integer(d["index"], f"{path}.index", 0, 255))

    def vfs(self, items: list[Any], path: str, total: int | None) -> tuple[VfState, ...]:
        out: list[VfState] = []
        owner: dict[int, str] = {}
        for i, v in enumerate(items):
            self.vf_entries += 1
            if self.vf_entries > MAX_VF_ENTRIES:
                raise self.fail(path, f"more than {MAX_VF_ENTRIES} VF entries in one file")
            vs = self.vf(v, f"{path}[{i}]", total)
            for n in vs.ids:
                if n in owner:
                    raise self.fail(f"{vs.path}.id", f"VF {n} is already given by {owner[n]}")
                owner[n] = vs.path
            out.append(vs)
        return tuple(out)

    def vf(self, d: Any, path: str, total: int | None) -> VfState:
        if not isinstance(d, dict):
            raise self.fail(path, "must be a mapping", d)
        self.only(d, ALL_VF_KEYS, path)
        if VF_ID not in d:
            raise self.fail(path, "needs an id (a VF index, or a range such as \"0-3,5\")")
        ids = self.ids(d[VF_ID], f"{path}.id", total)
        attrs: dict[str, object] = {}
        for key, attr in VF_KEYS.items():
            if key in d and d[key] is not None:
                attrs[attr.key] = self.value(attr, d[key], f"{path}.{key}")
        if "mac" in attrs and len(ids) != 1 and attrs["mac"] != ZERO_MAC:
            raise self.fail(f"{path}.mac-address", f"one MAC for {len(ids)} VFs", d["mac-address"],
                            hint="give each VF its own entry and MAC")
        if ("qos" in attrs or "vlan_proto" in attrs) and "vlan" not in attrs:
            key = "qos" if "qos" in attrs else "vlan-proto"
            raise self.fail(f"{path}.{key}", "needs vlan-id in the same entry")
        lo, hi = attrs.get("min_tx_rate"), attrs.get("max_tx_rate")
        if isinstance(lo, int) and isinstance(hi, int) and hi and lo > hi:
            raise self.fail(f"{path}.min-tx-rate", f"larger than max-tx-rate {hi}", lo)
        resource = d.get(VF_RESOURCE)
        if resource is not None and (not isinstance(resource, str) or not re.fullmatch(RESOURCE_NAME, resource, re.ASCII)):
            raise self.fail(f"{path}.{VF_RESOURCE}", "not a device plugin resource name", resource,
                            hint="letters, digits and underscore (the plugin's rule)")
        pool = d.get(VF_POOL)
        if pool is not None and (not isinstance(pool, str) or not re.fullmatch(POOL_NAME, pool, re.ASCII)):
            raise self.fail(f"{path}.{VF_POOL}", "not a pool name", pool,
                            hint="a letter or digit, then letters, digits, '_', '.', '-' (64 at most)")
        if pool is not None and resource is not None:
            raise self.fail(f"{path}.{VF_POOL}", f"VFs in a pool are not also handed out as resource {resource}",
                            pool, hint="one hands them out: the device plugin (resource-name) or sriovctl (pool)")
        return VfState(path, ids, attrs, self.driver(d.get(VF_DRIVER), f"{path}.driver"), resource, pool)

    def ids(self, v: Any, path: str, total: int | None) -> tuple[int, ...]:
        limit = total if total is not None else MAX_TOTAL_VFS
        if isinstance(v, int) and not isinstance(v, bool):
            if not 0 <= v < limit:
                raise self.fail(path, f"must be 0..{limit - 1}" + (" (below total-vfs)" if total is not None else ""), v)
            return (v,)
        if isinstance(v, str):
            try:
                return tuple(parse_indices(v, "id", limit))
            except SriovctlError as e:  # "'id': <problem>": the path says where
                raise self.fail(path, e.message.split(": ", 1)[-1], v, e.hint) from None
        raise self.fail(path, "must be a VF index or a range such as \"0-3,5\"", v)

    def value(self, attr: VfAttr, v: Any, path: str) -> object:
        if attr.kind is ValueKind.CHOICE and isinstance(v, str):
            # nmstate writes vlan-proto in lower case (802.1q): the same values
            v = next((c for c in attr.choices if c.lower() == v.lower()), v)
        if attr.kind is ValueKind.MAC and isinstance(v, str):
            v = v.lower()
            if v == ZERO_MAC:  # no MAC set by the host: what a new VF shows; igb_ndo_set_vf_mac takes it as "remove"
                return v
        try:
            check_value(path, attr, v)
        except AttrValueError as e:
            raise self.fail(path, e.problem.format(**{k: k for k in VF_KEYS}), v, e.hint) from None
        return v

    def driver(self, v: Any, path: str) -> str | None:
        if v is None:
            return None
        if v in DRIVER_WORDS or is_plain_name(v):
            return str(v)
        raise self.fail(path, "must be vfio-pci, host, none or a driver name", v)
