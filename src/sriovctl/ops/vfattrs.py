"""VF attributes set through the PF over netlink: one RTM_SETLINK carrying every VF's IFLA_VF_INFO, one
RTM_GETLINK to read back and verify (two round trips for any VF count when the driver accepts everything)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from sriovctl.attrs import BY_KEY, REQUEST_LABEL, AttrValueError, check_mac, check_value
from sriovctl.errors import PartialError, UnavailableError, UsageError
from sriovctl.host.base import Host, WriteKind
from sriovctl.host.netlink import NetlinkError, VfChange, kernel_order
from sriovctl.model import Inventory, PciDevice, VfNetlink
from sriovctl.ops.guards import device_name
from sriovctl.ops.kernel import errname
from sriovctl.ops.plan import JSON, Change, ChangeKind, Outcome, Plan


@dataclass(frozen=True)
class VfSettings:
    """What to set on a VF; None leaves an attribute as it is. Field names are attrs.VF_ATTRS keys."""

    mac: str | None = None
    vlan: int | None = None
    qos: int | None = None
    vlan_proto: str | None = None
    spoofchk: bool | None = None
    trust: bool | None = None
    link_state: str | None = None
    min_tx_rate: int | None = None
    max_tx_rate: int | None = None
    rss_query_en: bool | None = None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return _FIELDS

    def given(self) -> dict[str, object]:
        return {k: v for k in _FIELDS if (v := getattr(self, k)) is not None}

    def validate(self, what: str, count: int) -> None:
        """The validity rules, checked before anything is written."""
        if self.mac is not None:
            if count != 1:
                raise AttrValueError(what, BY_KEY["mac"], None, f"names one VF, not {count}",
                                     hint="give each VF its own MAC")
            check_mac(what, self.mac)
        given = self.given()
        for key, value in given.items():
            if key != "mac":
                check_value(what, BY_KEY[key], value)
        if self.vlan is None and (self.qos is not None or self.vlan_proto is not None):
            raise AttrValueError(what, BY_KEY["qos"], None, "and {vlan_proto} need {vlan}")
        if self.min_tx_rate and self.max_tx_rate and self.min_tx_rate > self.max_tx_rate:
            raise AttrValueError(what, BY_KEY["min_tx_rate"], None,
                                 f"{self.min_tx_rate} > {{max_tx_rate}} {self.max_tx_rate}")
        if not given:
            raise UsageError(f"{what}: nothing to set", hint="name an attribute to set", remedy="attrs")

    def changes(self, vf: int, current: VfNetlink | None) -> list[VfChange]:
        """The kernel requests: one per request group (vlan carries qos and protocol, rate both rates)."""
        out = []
        if self.mac is not None:
            out.append(VfChange(vf, "mac", self.mac.lower()))
        if self.vlan is not None:
            out.append(VfChange(vf, "vlan", (self.vlan, self.qos or 0, self.vlan_proto or "802.1Q")))
        if self.min_tx_rate is not None or self.max_tx_rate is not None:
            lo = self.min_tx_rate if self.min_tx_rate is not None else (current.min_tx_rate if current else 0) or 0
            hi = self.max_tx_rate if self.max_tx_rate is not None else (current.max_tx_rate if current else 0) or 0
            out.append(VfChange(vf, "rate", (lo, hi)))
        for key, request in (("spoofchk", "spoofchk"), ("link_state", "link_state"), ("rss_query_en", "rss_query_en"),
                             ("trust", "trust")):
            value = getattr(self, key)
            if value is not None:
                out.append(VfChange(vf, request, value))
        return out


_FIELDS = tuple(f.name for f in fields(VfSettings))


def matches(v: VfNetlink | None, c: VfChange) -> bool:
    """Does the read-back view show the change?"""
    if v is None:
        return False
    if c.attr == "mac":
        return (v.mac or "").lower() == str(c.value)
    if c.attr == "vlan":
        vlan, qos, proto = c.vlan_spec()
        return v.vlan == vlan and (v.qos or 0) == qos and (vlan == 0 or (v.vlan_proto or "802.1Q") == proto)
    if c.attr == "rate":
        return (v.min_tx_rate or 0, v.max_tx_rate or 0) == c.rate_spec()
    return bool(getattr(v, c.attr) == c.value)


def current_value(v: VfNetlink | None, request: str) -> JSON:
    """A request group's value in the netlink view (the plan's ``before``)."""
    if v is None:
        return None
    if request == "vlan":
        return [v.vlan, v.qos, v.vlan_proto]
    if request == "rate":
        return [v.min_tx_rate, v.max_tx_rate]
    return getattr(v, request)


def fmt(c: VfChange) -> str:
    if c.attr == "vlan":
        vlan, qos, proto = c.vlan_spec()
        return f"{vlan} qos {qos} {proto}"
    if c.attr == "rate":
        lo, hi = c.rate_spec()
        return f"min {lo} max {hi} Mbit/s"
    if isinstance(c.value, bool):
        return "on" if c.value else "off"
    return str(c.value)


@dataclass(frozen=True)
class SetPlan:
    plan: Plan
    pf: PciDevice
    ifname: str
    requests: list[VfChange]


def plan_set(host: Host, inv: Inventory, settings: list[tuple[PciDevice, VfSettings]]) -> SetPlan:
    """Per-VF settings for VFs of one PF → the kernel requests in the kernel's order."""
    for v, st in settings:
        st.validate(str(v.address), 1)
    macs = [st.mac.lower() for _, st in settings if st.mac]
    if len(set(macs)) != len(macs):
        raise UsageError(f"{settings[0][0].address}: the same MAC given to two VFs", hint="give each VF its own MAC")
    pfs = {v.physfn for v, _ in settings}
    if len(pfs) != 1 or None in pfs:
        raise UsageError(f"{', '.join(str(v.address) for v, _ in settings[:3])}: VFs of one PF per call",
                         hint="use PF#N ranges, e.g. enp11s0f0#0-3")
    pf = inv.devices[next(iter(pfs))]  # type: ignore[index]
    if not pf.netdevs:
        raise UnavailableError(f"{device_name(pf)}: the PF has no netdev: VF attributes are set through it",
                               hint="bind the PF to its network driver")
    ifname = pf.netdevs[0].name
    need_current = any((st.min_tx_rate is None) != (st.max_tx_rate is None) for _, st in settings)
    current: dict[int, VfNetlink] = {}
    if need_current:
        current = {v.vf: v for v in host.netlink().get_vfs(ifname)}
    views = {v.vf_index or 0: v.netlink for v, _ in settings}
    requests = kernel_order([c for v, st in settings for c in st.changes(v.vf_index or 0,
                                                                          current.get(v.vf_index or 0))])
    plan = Plan("vf-set", host.label)
    for c in requests:
        after: JSON = list(c.value) if isinstance(c.value, tuple) else c.value
        plan.changes.append(Change(ChangeKind.VF_ATTR, f"{ifname}#{c.vf}", current_value(views.get(c.vf), c.attr),
                                   after, f"{REQUEST_LABEL[c.attr]} asked for", attr=c.attr, vf=c.vf))
    return SetPlan(plan, pf, ifname, requests)


def validate_same(vfs: list[PciDevice], settings: VfSettings) -> None:
    what = ", ".join(str(v.address) for v in vfs[:3]) + (f" (+{len(vfs) - 3})" if len(vfs) > 3 else "")
    settings.validate(what, len(vfs))


def apply_set(host: Host, sp: SetPlan) -> Outcome:
    out = Outcome(sp.plan)
    nl = host.netlink()
    start = nl.requests
    changes, ifname = sp.requests, sp.ifname
    shown = {c: fmt(c) for c in changes}
    summary = ", ".join(f"vf {c.vf} {c.attr}={shown[c]}" for c in changes)
    if host.dry_run:
        out.messages = [f"would set {ifname}#{c.vf} {REQUEST_LABEL[c.attr]} {shown[c]}" for c in changes]
        host.record(WriteKind.NETLINK, f"RTM_SETLINK {ifname}", summary)
        out.extra["netlink_requests"] = 0
        return out
    host.record(WriteKind.NETLINK, f"RTM_SETLINK {ifname}", summary)
    refused: dict[VfChange, str] = {}
    try:
        nl.set_vfs(ifname, changes)
    except NetlinkError:
        # The kernel stopped at the first refused attribute; what came before it stays applied. Find out
        # exactly: one request per change from here on (re-sending an applied one changes nothing).
        for c in changes:
            try:
                nl.set_vfs(ifname, [c])
            except NetlinkError as e:
                refused[c] = errname(e.errno)
    try:
        view = {v.vf: v for v in nl.get_vfs(ifname)}
    except NetlinkError:
        view = {}  # the read-back failed: nothing counts as verified (each change says so below)
    pairs = list(zip(changes, sp.plan.changes, strict=True))
    mismatched = False
    by_vf: dict[int, list[str]] = {}
    details = []
    listed = getattr(nl, "last_num_vf", None)
    for c, ch in pairs:
        if c in refused or not matches(view.get(c.vf), c):
            if c in refused:
                why = f"refused by {sp.pf.driver}: {refused[c]}"
            elif c.vf not in view:  # never call a VF verified that was not read back
                why = (f"not read back: the PF's reply lists {len(view)} VFs"
                       + (f" of {listed}" if listed is not None else ""))
            else:
                why = "accepted but reads back differently"
            mismatched |= c not in refused
            out.refused.append((ch, why))
            details.append(f"{ch.target}: {REQUEST_LABEL[c.attr]} {shown[c]}: {why}")
        else:
            out.applied.append(ch)
            by_vf.setdefault(c.vf, []).append(f"{REQUEST_LABEL[c.attr]} {shown[c]}")
    out.verified = not mismatched
    out.extra["netlink_requests"] = nl.requests - start
    out.messages = [f"{ifname}#{vf}: set {', '.join(items)}" for vf, items in sorted(by_vf.items())]
    if out.refused:
        raise PartialError(f"{ifname}: {len(out.applied)} settings applied, {len(out.refused)} refused: "
                           + "; ".join(details[:4]) + (f" (+{len(details) - 4})" if len(details) > 4 else ""),
                           details + out.messages,
                           hint="the driver refused these (not supported, or not now: igb sets rates only while the "
                                "PF has link); the rest was applied", outcome=out)
    return out


def set_vfs(host: Host, inv: Inventory, settings: list[tuple[PciDevice, VfSettings]]) -> Outcome:
    """Plan and apply per-VF settings for VFs of one PF (the library call; the CLI holds the PF's lock around it)."""
    return apply_set(host, plan_set(host, inv, settings))
