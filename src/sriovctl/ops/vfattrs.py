"""VF attributes set through the PF over netlink: one RTM_SETLINK carrying every VF's IFLA_VF_INFO, one
RTM_GETLINK to read back and verify (two round trips for any VF count when the driver accepts everything)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from sriovctl import attrs, drivers
from sriovctl.attrs import BY_KEY, REQUEST_LABEL, ZERO_MAC, AttrValueError, ValueKind, check_mac, check_value
from sriovctl.errors import InterlockError, PartialError, TemporaryError, UnavailableError, UsageError
from sriovctl.host.base import Host, WriteKind
from sriovctl.host.netlink import Netlink, NetlinkError, VfChange, kernel_order
from sriovctl.model import Inventory, NetPf, PciDevice, VfNetlink, device_name
from sriovctl.ops.kernel import errname
from sriovctl.ops.plan import JSON, Change, ChangeKind, Notice, NoticeKind, Outcome, Plan

if TYPE_CHECKING:
    from sriovctl.ops.session import Session


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

    def validate(self, what: str, count: int, clear_mac: bool = False) -> None:
        """The validity rules, checked before anything is written. ``clear_mac``: the all-zero MAC is accepted —
        it removes the MAC the host set (igb_ndo_set_vf_mac, ice_set_vf_mac take it so), which is what a state
        asking a VF back to no MAC means; asked for by name on the command line it stays refused."""
        if self.mac is not None:
            if count != 1:
                raise AttrValueError(what, BY_KEY["mac"], None, f"names one VF, not {count}",
                                     hint="give each VF its own MAC")
            if not (clear_mac and self.mac == ZERO_MAC):
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
        return request_changes(vf, self.given(), current)

    def needs_current(self) -> bool:
        """Whether :meth:`changes` needs the VF's current values (a request sent whole, asked for in part)."""
        return needs_current(self.given())


_FIELDS = tuple(f.name for f in fields(VfSettings))


def request_changes(vf: int, given: dict[str, object], current: VfNetlink | None) -> list[VfChange]:
    """One VfChange per request row (attrs.VF_REQUESTS) with a member in ``given``; its other members are sent
    as their default, or as the VF's current value where the row says so (a maximum rate keeps the minimum)."""
    out = []
    for request in attrs.VF_REQUESTS:
        members = attrs.REQUEST_ATTRS[request.name]
        if not any(a.key in given for a in members):
            continue
        values = []
        for a in members:
            value = given.get(a.key)
            if value is None and request.fill == "current":
                value = getattr(current, a.key, None)
            if value is None:
                value = a.default
            values.append(str(value).lower() if a.kind is ValueKind.MAC else value)
        out.append(VfChange(vf, request.name, values[0] if len(values) == 1 else tuple(values)))
    return out


def needs_current(given: dict[str, object]) -> bool:
    return any(r.fill == "current" and len({a.key in given for a in attrs.REQUEST_ATTRS[r.name]}) == 2
               for r in attrs.VF_REQUESTS)


def _have(v: VfNetlink, attr: attrs.VfAttr) -> object:
    """A reported value; a number the driver does not report, or a member that travels elsewhere (a VLAN's protocol
    without IFLA_VF_VLAN_LIST), is its default."""
    have = getattr(v, attr.key, None)
    return attr.default if have is None and (attr.kind is ValueKind.INT or attr.matters_with) else have


def matches(v: VfNetlink | None, c: VfChange) -> bool:
    """Does the read-back view show the change? Each member by its row's comparison (VfAttr.same)."""
    if v is None:
        return False
    members = c.members()
    by_key = attrs.BY_KEY
    return all(by_key[k].same(want, _have(v, by_key[k]), members) for k, want in members.items())


def current_value(v: VfNetlink | None, request: str) -> JSON:
    """A request group's value in the netlink view (the plan's ``before``)."""
    if v is None:
        return None
    values: list[JSON] = [getattr(v, a.key, None) for a in attrs.REQUEST_ATTRS[request]]
    return values[0] if len(values) == 1 else values


def fmt(c: VfChange) -> str:
    show = attrs.REQUESTS[c.attr].show
    if show is not None:
        return show.format(**c.members())
    if isinstance(c.value, bool):
        return "on" if c.value else "off"
    return str(c.value)


LOGGED_CHANGES = 32  # changes named in a vf-set's write log line

@dataclass(frozen=True, slots=True)
class VfTarget:
    """A VF as netlink reaches it: index ``vf`` of the PF whose netdev is ``ifname``. ``pf`` names the PF in
    messages (a PCI address, or the netdev of a PF not on PCI), ``lock`` is the key of its lock."""

    pf: str
    lock: str
    ifname: str
    driver: str | None
    vf: int
    view: VfNetlink | None
    address: str | None = None  # the VF's PCI address, when it is a PCI function


def pci_targets(inv: Inventory, vfs: list[PciDevice]) -> list[VfTarget]:
    """PCI VFs of one PF as netlink targets (the PF must have a netdev: requests go through it)."""
    pfs = {v.physfn for v in vfs}
    if len(pfs) != 1 or None in pfs:
        raise UsageError(f"{', '.join(str(v.address) for v in vfs[:3])}: VFs of one PF per call",
                         hint="use PF#N ranges, e.g. enp11s0f0#0-3")
    pf = inv.devices[next(iter(pfs))]  # type: ignore[index]
    if not pf.netdevs:
        raise UnavailableError(f"{device_name(pf)}: the PF has no netdev: VF attributes are set through it",
                               hint="bind the PF to its network driver")
    ifname = pf.netdevs[0].name
    return [VfTarget(str(pf.address), str(pf.address), ifname, pf.driver, v.vf_index or 0, v.netlink, str(v.address))
            for v in vfs]


def net_targets(pf: NetPf, indices: list[int]) -> list[VfTarget]:
    """VFs of a PF that is not on PCI (netdevsim), by index."""
    views = {v.vf: v for v in pf.vfs}
    return [VfTarget(pf.name, pf.lock, pf.name, pf.driver, i, views.get(i)) for i in indices]


@dataclass(frozen=True)
class SetPlan:
    plan: Plan
    pf: str
    driver: str | None
    ifname: str
    requests: list[VfChange]


def host_macs(inv: Inventory) -> dict[str, list[tuple[str, int, str]]]:
    """Every MAC a VF on this host has (the all-zero MAC excepted) → [(its PF's lock key, VF index, name)]."""
    out: dict[str, list[tuple[str, int, str]]] = {}
    for pf in inv.pfs:
        for vf in inv.vfs_of(pf):
            mac = (vf.netlink.mac or "").lower() if vf.netlink else ""
            if mac and mac != ZERO_MAC and vf.vf_index is not None:
                out.setdefault(mac, []).append((str(pf.address), vf.vf_index, f"{vf.address} (VF {vf.vf_index} of "
                                                                               f"{pf.address})"))
    for npf in inv.net_pfs.values():
        for v in npf.vfs:
            mac = (v.mac or "").lower()
            if mac and mac != ZERO_MAC:
                out.setdefault(mac, []).append((npf.lock, v.vf, f"{npf.name}#{v.vf}"))
    return out


def check_macs_free(inv: Inventory, settings: list[tuple[VfTarget, VfSettings]], force: bool) -> list[str]:
    """A MAC asked for that another VF on this host keeps is refused (77) — as `state apply` refuses it — since
    two VFs with one MAC make a state no checkpoint can restore and a LAN no switch can serve. ``force``: a
    warning instead, returned."""
    setting = {(v.lock, v.vf) for v, st in settings if st.mac is not None}
    held = host_macs(inv)
    for v, st in settings:
        mac = (st.mac or "").lower()
        others = [name for lock, idx, name in held.get(mac, []) if (lock, idx) not in setting]
        if others:
            what = f"{v.address or f'{v.ifname}#{v.vf}'}: MAC {mac} is already the MAC of {others[0]}"
            if force:
                return [f"{what} (--force: two VFs now share it)"]
            raise InterlockError(f"{what}, which this call does not change", remedy="force",
                                 hint="give each VF its own MAC, or clear the other VF's first")
    return []


def plan_set(host: Host, inv: Inventory, settings: list[tuple[VfTarget, VfSettings]],
             clear_mac: bool = False, force: bool = False, macs_checked: bool = False) -> SetPlan:
    """Per-VF settings for VFs of one PF → the kernel requests in the kernel's order. A MAC given to two VFs,
    or that another VF on the host keeps, is refused (``force``: the second a warning) — unless the caller has
    judged MACs itself (``macs_checked``: the desired-state planner, whose rollback must put back whatever the
    host held, shared MACs included)."""
    for v, st in settings:
        st.validate(v.address or f"{v.ifname}#{v.vf}", 1, clear_mac)
    macs = [st.mac.lower() for _, st in settings if st.mac and st.mac != ZERO_MAC]
    if len(set(macs)) != len(macs) and not macs_checked:
        first = settings[0][0]
        raise UsageError(f"{first.address or first.pf}: the same MAC given to two VFs", hint="give each VF its own MAC")
    warnings = check_macs_free(inv, settings, force) if macs and not macs_checked else []
    if len({v.lock for v, _ in settings}) != 1:
        raise UsageError(f"{', '.join(v.address or f'{v.ifname}#{v.vf}' for v, _ in settings[:3])}: "
                         "VFs of one PF per call", hint="use PF#N ranges, e.g. enp11s0f0#0-3")
    first = settings[0][0]
    ifname = first.ifname
    need_current = any(st.needs_current() for _, st in settings)
    current: dict[int, VfNetlink] = {}
    if need_current:
        current = {v.vf: v for v in host.netlink().get_vfs(ifname)}
    views = {v.vf: v.view for v, _ in settings}
    requests = kernel_order([c for v, st in settings for c in st.changes(v.vf, current.get(v.vf))])
    plan = Plan("vf-set", host.label)
    for c in requests:
        after: JSON = list(c.value) if isinstance(c.value, tuple) else c.value
        plan.changes.append(Change(ChangeKind.VF_ATTR, f"{ifname}#{c.vf}", current_value(views.get(c.vf), c.attr),
                                   after, f"{REQUEST_LABEL[c.attr]} asked for", attr=c.attr, vf=c.vf))
    plan.notices += [Notice(NoticeKind.FORCED, w) for w in warnings]
    return SetPlan(plan, first.pf, first.driver, ifname, requests)


def validate_same(vfs: list[VfTarget], settings: VfSettings, macs: bool = False) -> None:
    """The settings every VF named gets, checked once (``macs``: each gets its own MAC besides)."""
    what = ", ".join(v.address or f"{v.ifname}#{v.vf}" for v in vfs[:3]) + (f" (+{len(vfs) - 3})" if len(vfs) > 3 else "")
    if macs and not settings.given():
        return
    settings.validate(what, 1 if macs else len(vfs))


def vf_targets(inv: Inventory, names: list[str]) -> list[VfTarget]:
    """The VFs named (``PF#N``, ``PF#0-3,5``, PCI addresses, netdevs; a PF not on PCI by its netdev), each
    once, in the order named; all of one PF."""
    from sriovctl.resolve import resolve, resolve_net

    out: list[VfTarget] = []
    for name in names:
        net = resolve_net(inv, name)
        if net is not None:
            pf, indices = net
            if indices is None:
                raise UsageError(f"{name}: a PF, not a VF", hint=f"name its VFs: {pf.name}#N or {pf.name}#0-3,5")
            out += net_targets(pf, indices)
            continue
        devices = resolve(inv, name)
        not_vf = [d for d in devices if not d.is_vf]
        if not_vf:
            raise UsageError(f"{not_vf[0].address}: not a VF", hint="name VFs: PF#N, PF#0-3,5 or their addresses")
        out += pci_targets(inv, devices)
    seen: set[tuple[str, int]] = set()
    unique = []
    for t in out:
        if (t.lock, t.vf) not in seen:
            seen.add((t.lock, t.vf))
            unique.append(t)
    if len({t.lock for t in unique}) != 1:
        raise UsageError(f"{', '.join(names[:3])}: VFs of one PF per call", hint="use PF#N ranges, e.g. enp11s0f0#0-3")
    return unique


def same_vfs(before: list[VfTarget], now: list[VfTarget]) -> list[VfTarget]:
    """The VFs named, resolved again under the PF's lock, must be the ones resolved before it: VFs destroyed
    and re-created meanwhile (another sriovctl changed the count) are refused, not half-matched (75)."""
    if [(t.lock, t.vf) for t in before] != [(t.lock, t.vf) for t in now]:
        raise TemporaryError(f"{before[0].pf}: its VFs changed while this waited for the PF's lock "
                             f"({len(before)} named before, {len(now)} now)", hint="check the PF, then run it again")
    return now


def apply_set(host: Host, sp: SetPlan) -> Outcome:
    out = Outcome(sp.plan)
    nl = host.netlink()
    start = nl.requests
    changes, ifname = sp.requests, sp.ifname
    shown = {c: fmt(c) for c in changes}
    # The write log keeps one line per write: at 1,024 VFs the full list is ~160 KB, so it names the first
    # changes and counts the rest (the plan, in --json, has every one)
    summary = ", ".join(f"vf {c.vf} {c.attr}={shown[c]}" for c in changes[:LOGGED_CHANGES]) + (
        f" (+{len(changes) - LOGGED_CHANGES} more)" if len(changes) > LOGGED_CHANGES else "")
    if host.dry_run:
        out.messages = [f"would set {ifname}#{c.vf} {REQUEST_LABEL[c.attr]} {shown[c]}" for c in changes]
        host.record(WriteKind.NETLINK, f"RTM_SETLINK {ifname}", summary)
        out.extra["netlink_requests"] = 0
        return out
    host.record(WriteKind.NETLINK, f"RTM_SETLINK {ifname}", summary)
    refused = _send(nl, ifname, changes)
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
                why = f"refused by {sp.driver}: {refused[c]}"
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
    # the cost at scale, in the operator's words: RTM_SETLINK is split under 64 KiB per message
    out.messages.append(f"{ifname}: {len(out.applied)} settings verified on {len(by_vf)} VFs in "
                        f"{out.extra['netlink_requests']} netlink round trips (read-back included)")
    if out.refused:
        raise PartialError(f"{ifname}: {len(out.applied)} settings applied, {len(out.refused)} refused: "
                           + "; ".join(details[:4]) + (f" (+{len(details) - 4})" if len(details) > 4 else ""),
                           details + out.messages,
                           hint="the driver refused these (not supported, or not now"
                                + (f": {hint}" if (hint := drivers.driver(sp.driver).refusal_hint) else "")
                                + "); the rest was applied", outcome=out)
    return out


def _send(nl: Netlink, ifname: str, changes: list[VfChange]) -> dict[VfChange, str]:
    """Send the changes; when the kernel refuses one, find out exactly which, apply the rest, and return the
    refused ones with the errno's name.

    do_setvfinfo() applies a message's changes in order and stops at the first the driver refuses: what came
    before stays applied, nothing after it is tried. So: read back once, the first change that does not read
    back is the candidate; alone, it is refused (or accepted after all). A driver that refuses an attribute
    refuses it for its other VFs too, as a rule (netdevsim: rates in switchdev mode; igb: rates without link):
    that attribute is then tried VF by VF — each refusal is the kernel's own answer, never assumed — and
    everything else goes on in messages again. 512 VFs refusing their rate: 5 requests + one per VF, where
    one request per change was 2,560 (29.7 s in the lab, TCG)."""
    refused: dict[VfChange, str] = {}
    pending = changes
    while pending:
        try:
            nl.set_vfs(ifname, pending)
            break
        except NetlinkError:
            pass
        try:
            view = {v.vf: v for v in nl.get_vfs(ifname)}
        except NetlinkError:
            view = {}
        i = next((k for k, c in enumerate(pending) if not matches(view.get(c.vf), c)), None)
        if i is None:
            break  # everything reads back as asked: the refusal was of a change that was already so
        first, rest = pending[i], pending[i + 1:]
        try:
            nl.set_vfs(ifname, [first])
            continue_attr = None
        except NetlinkError as e:
            refused[first] = errname(e.errno)
            continue_attr = first.attr
        if continue_attr is not None:
            for c in (c for c in rest if c.attr == continue_attr):
                try:
                    nl.set_vfs(ifname, [c])
                except NetlinkError as e:
                    refused[c] = errname(e.errno)
            rest = [c for c in rest if c.attr != continue_attr]
        pending = rest
    return refused


def set_vfs(host: Host, inv: Inventory, settings: list[tuple[PciDevice, VfSettings]]) -> Outcome:
    """Plan and apply per-VF settings for PCI VFs of one PF (the library call; the CLI holds the PF's lock
    around it)."""
    targets = pci_targets(inv, [v for v, _ in settings])
    return apply_set(host, plan_set(host, inv, list(zip(targets, [st for _, st in settings], strict=True))))


def sequential_macs(subject: str, base: str, count: int) -> list[str]:
    """``count`` MACs from ``base`` up, one per VF (what operators script with printf for 64-256 VFs). The
    increment stays in the low 24 bits: the OUI and its multicast/local bits never change."""
    low = int(check_mac(subject, base).replace(":", ""), 16)
    if (low & 0xFFFFFF) + count - 1 > 0xFFFFFF:
        raise AttrValueError(subject, BY_KEY["mac"], base, f"leaves no room for {count} MACs before the OUI's end",
                             hint="start lower in the last three octets")
    return [":".join(f"{(low + i) >> s & 0xFF:02x}" for s in range(40, -1, -8)) for i in range(count)]


def set_named(s: Session, names: list[str], settings: VfSettings, macs_from: str | None = None,
              force: bool = False, wait: float = 10.0) -> Outcome:
    """`vf set NAME… [--macs-from MAC]`: the VFs named (all of one PF), checked once, the PF's lock, the VFs
    resolved again under it (the same VFs, else 75), the plan, the requests, the read-back."""
    from dataclasses import replace

    targets = vf_targets(s.inv, names)
    if macs_from is not None:
        if settings.mac is not None:
            raise UsageError("one MAC and the first MAC of a range: choose one",
                             hint="one MAC for one VF, a first MAC for a range")
        macs: list[str] | None = sequential_macs(targets[0].pf, macs_from, len(targets))  # each one checked there
    else:
        macs = None
    validate_same(targets, settings, macs=macs is not None)
    with s.locked(targets[0].lock, wait) as inv:
        fresh = same_vfs(targets, vf_targets(inv, names))
        per_vf = [replace(settings, mac=m) for m in macs] if macs else [settings] * len(fresh)
        return apply_set(s.host, plan_set(s.host, inv, list(zip(fresh, per_vf, strict=True)), force=force))
