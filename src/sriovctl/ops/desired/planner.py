"""A desired state against the host: the ordered changes `state apply` would make (PF level first, then VF
attributes, then bindings), each current → desired, and their impact (VFs destroyed and who uses them, VMs to
stop, module reloads). The same function plans, rolls forward after a crash and verifies: a converged host
plans nothing.

VFs a count change creates are planned from a new VF's values (attrs.VF_ATTRS defaults) — what the kernel
gives them; apply re-plans each phase from the host as it is then, so the plan shown is a prediction and the
host read back is the truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sriovctl.attrs import BY_KEY, REQUEST_ATTRS, ZERO_MAC, ValueKind, defaults
from sriovctl.drivers import is_vm_safe, vf_count_param
from sriovctl.host.base import Host
from sriovctl.model import Inventory, NetPf, PciDevice, Use, UseKind, VfNetlink, pf_numvfs
from sriovctl.ops.plan import JSON, Change, ChangeKind, Notice, NoticeKind, Plan
from sriovctl.state.desired import DesiredState, PfState, StateError
from sriovctl.state.keys import VF_KEYS
from sriovctl.state.match import Matched, match_all

# Module parameters that create VFs at load (create: module-param), per PF driver. One value for every port
# the module drives (igb_probe reads max_vfs for each adapter).

_STATE_ATTRS = tuple(a.key for a in VF_KEYS.values())  # the VF attributes a state file can ask for
_DEFAULTS = defaults()


@dataclass(frozen=True)
class Impact:
    """What a change reaches beyond its target: ``kind`` destroys-vfs | stop-vm | takes-vf | module-reload,
    ``target`` what is affected, ``who`` its users, ``why`` the reason in the kernel's or driver's terms."""

    kind: str  # destroys-vfs | stop-vm | takes-vf | module-reload | not-assignable
    target: str
    who: tuple[str, ...]
    why: str
    uses: tuple[Use, ...] = ()  # the typed holders behind ``who`` (an interlock refusal carries them)

    def to_json(self) -> dict[str, JSON]:
        return {"kind": self.kind, "target": self.target, "who": list(self.who), "why": self.why}


@dataclass
class StatePlan:
    plan: Plan
    matched: list[Matched]
    impact: list[Impact] = field(default_factory=list)
    # PF key → VF index → the whole request groups to send (a VLAN with its QoS and protocol): what phase 2 sends
    settings: dict[str, dict[int, dict[str, object]]] = field(default_factory=dict)
    vfs: int = 0  # VFs in the state's scope after apply (the verify deadline grows with it)
    inv: Inventory | None = None  # the host it was planned against
    kept: set[tuple[str, int]] = field(default_factory=set)  # (PF key, VF) whose attributes its user owns now

    @property
    def converged(self) -> bool:
        return self.plan.empty

    def blocking(self) -> list[Impact]:
        """Impacts that need --force: something in use would be destroyed or taken away, or a VF that is not
        assignable would go to vfio-pci."""
        return [i for i in self.impact if (i.who and i.kind in ("destroys-vfs", "takes-vf", "module-reload"))
                or i.kind == "not-assignable"]

    def documents(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The touched PFs' state documents now, and as the plan predicts them after apply (state/predict.py)."""
        from sriovctl.state.current import current_state
        from sriovctl.state.predict import predict_pf

        assert self.inv is not None
        before = current_state(self.inv, [m.pf for m in self.matched])
        return before, {"pfs": [predict_pf(p, m.entry, {i for k, i in self.kept if k == m.key})
                                for p, m in zip(before["pfs"], self.matched, strict=True)]}

    def to_json(self) -> dict[str, JSON]:
        return {**self.plan.to_json(), "converged": self.converged, "impact": [i.to_json() for i in self.impact],
                "pfs": [m.label for m in self.matched]}


def _owned(entry: PfState) -> dict[int, str]:
    """VF index → what hands it out: its resource (resource-name) or its pool (pool)."""
    return {i: f"resource {v.resource}" if v.resource is not None else f"pool {v.pool}"
            for v in entry.vfs or () if v.resource is not None or v.pool is not None for i in v.ids}


def wanted_vfs(entry: PfState, count: int) -> dict[int, tuple[dict[str, object], str | None]]:
    """VF index → (attributes asked for, driver asked for). ``vfs: []`` asks every VF back to defaults (nmstate's
    rule); a VF not listed asks for nothing."""
    if entry.vfs is None:
        return {}
    if not entry.vfs:
        return {i: ({k: _DEFAULTS[k] for k in _STATE_ATTRS}, None) for i in range(count)}
    out: dict[int, tuple[dict[str, object], str | None]] = {}
    for v in entry.vfs:
        for i in v.ids:
            out[i] = (v.attrs, v.driver)
    return out


def _base(view: VfNetlink | None, fresh: bool) -> dict[str, Any]:
    """A VF's values to compare against: a new VF's defaults when the count changes, else what the PF reports
    (a value the PF does not report counts as the default)."""
    if fresh or view is None:
        return dict(_DEFAULTS)
    return {k: (getattr(view, k) if getattr(view, k) is not None else _DEFAULTS[k]) for k in _DEFAULTS}


def attr_delta(want: dict[str, object], base: dict[str, Any]) -> dict[str, object]:
    """The VfSettings fields to send so the VF has ``want``: whole request groups (attrs.REQUEST_ATTRS: a VLAN
    carries its QoS and protocol, a rate both rates), with what the state omits taken from the VF (an omitted
    key is kept). Driven by the attribute rows: every key of every row is compared (VfAttr.same), so no
    attribute a state can name is left out (tests/unit/test_attr_rows.py)."""
    out: dict[str, object] = {}
    for attrs in REQUEST_ATTRS.values():
        if not any(a.key in want for a in attrs):
            continue
        group = {a.key: want.get(a.key, base[a.key]) for a in attrs}
        if not all(a.same(group[a.key], base[a.key], group) for a in attrs):
            out.update({a.key: (str(v).lower() if a.kind is ValueKind.MAC else v) for a in attrs
                        for v in (group[a.key],)})
    return out


def driver_ok(current: str | None, want: str) -> bool:
    """Does a VF bound to ``current`` have the binding ``want`` (vfio-pci, host, none or a driver name)?"""
    if want == "none":
        return current is None
    if want == "host":  # its own driver, whichever the kernel matched: bound, and not to a VM's stub
        return current is not None and not is_vm_safe(current)
    return current == want


def target_count(m: Matched) -> tuple[int, int]:
    """(VFs now, VFs after apply)."""
    now = pf_numvfs(m.pf)
    e = m.entry
    return now, (e.total_vfs if e.total_vfs is not None and not e.externally_managed else now)


def make_plan(host: Host, inv: Inventory, state: DesiredState, only: list[PciDevice | NetPf] | None = None,
              scan_users: bool = True) -> StatePlan:
    """The changes that bring the host to ``state`` (the entries for ``only``'s PFs, when given). Raises
    StateError (65) for what cannot be on this host, naming the entry's path."""
    from sriovctl.ops.guards import scan

    matched = match_all(inv, state, only)
    sp = StatePlan(Plan("state-apply", host.label), matched, inv=inv)
    users = _LazyScan(lambda: scan(host)) if scan_users else None  # read only when something is destroyed or taken
    # who holds a VF handed out under a resource name (asked for by every plan: status and apply's phases too)
    owners = users if users is not None else _LazyScan(lambda: scan(host))
    counts = {m.key: target_count(m) for m in matched}
    _check(inv, state, matched, counts, host)
    vf_attr: list[Change] = []
    binds: list[Change] = []
    for m in matched:
        now, after = counts[m.key]
        sp.vfs += after
        fresh = after != now
        if fresh:
            _plan_count(inv, m, now, after, sp, users)
        elif isinstance(m.pf, PciDevice) and m.entry.drivers_autoprobe is not None and m.pf.sriov and \
                m.pf.sriov.drivers_autoprobe is not None and m.pf.sriov.drivers_autoprobe != m.entry.drivers_autoprobe:
            sp.plan.changes.append(Change(ChangeKind.AUTOPROBE, m.key, m.pf.sriov.drivers_autoprobe,
                                          m.entry.drivers_autoprobe, "drivers-autoprobe asked for"))
        views = _views(inv, m)
        vf_devs = {v.vf_index: v for v in inv.vfs_of(m.pf)} if isinstance(m.pf, PciDevice) else {}
        ifname = _ifname(m)
        owned = _owned(m.entry)
        for i, (want, drv) in sorted(wanted_vfs(m.entry, after).items()):
            base = _base(views.get(i), fresh)
            delta = attr_delta(want, base)
            rebind = drv is not None and (vf := vf_devs.get(i)) is not None and not driver_ok(vf.driver, drv)
            if (delta or rebind) and i in owned and not fresh and (vf := vf_devs.get(i)) is not None:
                holders = owners.uses(vf)
                if holders:  # handed out (resource-name, pool): its run-time settings are its user's meanwhile
                    sp.kept.add((m.key, i))
                    what = sorted(BY_KEY[k].nmstate or k for k in delta) + (["driver"] if rebind else [])
                    sp.plan.notices.append(Notice(NoticeKind.RUN_TIME, f"{ifname}#{i} ({vf.address}): in use by "
                                                  f"{holders[0].text}, {owned[i]}: its {', '.join(what)} "
                                                  "left as its user set them"))
                    delta, drv = {}, None
            if delta:
                sp.settings.setdefault(m.key, {})[i] = delta
            for key, value in delta.items():
                if value == base[key] or (key == "vlan_proto" and str(value).lower() == str(base[key]).lower()):
                    continue  # sent with its group, not a change of its own
                before = None if fresh else getattr(views.get(i), key, None)
                vf_attr.append(Change(ChangeKind.VF_ATTR, f"{ifname}#{i}", before, value,
                                      f"{BY_KEY[key].nmstate or key} asked for" + (" (new VF)" if fresh else ""),
                                      attr=key, vf=i))
            if drv is not None:
                change = _plan_driver(m, i, drv, vf_devs.get(i), fresh, sp, users)
                if change is not None:
                    binds.append(change)
    sp.plan.changes += vf_attr + binds
    return sp


def _plan_driver(m: Matched, i: int, drv: str, d: PciDevice | None, fresh: bool, sp: StatePlan,
                 users: Any) -> Change | None:
    """VF ``i``'s binding change (None: it has it already, or a new VF will); ``d`` is the VF as it is now
    (``fresh``: the count change re-creates it). Rebinding a VF in use and sending a non-assignable one to
    vfio-pci are impacts."""
    autoprobe = m.entry.drivers_autoprobe if m.entry.drivers_autoprobe is not None else True
    if fresh and ((drv == "host" and autoprobe) or (drv == "none" and not autoprobe)):
        return None  # a new VF binds its own driver with autoprobe, and stays unbound without
    now = None if fresh else d
    current = None if now is None else now.driver
    if driver_ok(current, drv):
        return None
    if now is None:
        return Change(ChangeKind.DRIVER, f"{m.key}#{i}", current, drv,
                      f"driver {drv} asked for" + (" (new VF)" if fresh else ""))
    if drv == "vfio-pci" and now.assignability is not None and not now.assignability.assignable:
        sp.impact.append(Impact("not-assignable", str(now.address), (), f"a VM cannot own it safely: "
                                f"{now.assignability.reason} (see doctor)"))
    change = Change(ChangeKind.DRIVER, str(now.address), current, drv, f"driver {drv} asked for")
    if users is not None and now.driver is not None:
        uses = tuple(users.uses(now))
        if uses:
            sp.impact.append(Impact("takes-vf", str(now.address), tuple(map(str, uses)),
                                    f"rebinding it from {now.driver} to {drv} takes it from its user", uses))
    return change


class _LazyScan:
    """Who uses what, scanned on the first question (/proc, libvirt): a plan that destroys nothing and takes no
    bound VF never asks."""

    def __init__(self, make: Any) -> None:
        self._make, self._scan = make, None

    def uses(self, d: PciDevice) -> list[Use]:
        if self._scan is None:
            self._scan = self._make()
        return list(self._scan.uses(d))  # type: ignore[attr-defined]


def _views(inv: Inventory, m: Matched) -> dict[int, VfNetlink]:
    if isinstance(m.pf, NetPf):
        return {v.vf: v for v in m.pf.vfs}
    return {v.vf_index: v.netlink for v in inv.vfs_of(m.pf) if v.vf_index is not None and v.netlink is not None}


def _ifname(m: Matched) -> str:
    if isinstance(m.pf, NetPf):
        return m.pf.name
    return m.pf.netdevs[0].name if m.pf.netdevs else m.key


def _plan_count(inv: Inventory, m: Matched, now: int, after: int, sp: StatePlan, users: Any) -> None:
    """A VF-count change: through 0 (sriov_numvfs_store answers EBUSY from N to M), or a module reload."""
    pf = m.pf
    victims = inv.vfs_of(pf) if isinstance(pf, PciDevice) else []
    if m.entry.create == "module-param" and isinstance(pf, PciDevice):
        # a reload takes every port of the driver and their VFs (the interface with the default route too)
        ports = [d for d in inv.devices.values() if d.driver == pf.driver and not d.is_vf]
        victims = ports + [v for p in ports for v in inv.vfs_of(p)]
    who: list[str] = []
    uses: list[Use] = []
    vms: dict[str, list[str]] = {}
    if users is not None:
        for v in victims:
            for u in users.uses(v):
                who.append(f"{v.address}: {u}")
                uses.append(u)
                if u.kind is UseKind.LIBVIRT:
                    vms.setdefault(u.id, []).append(str(v.address))
    if m.entry.create == "module-param" and isinstance(pf, PciDevice):
        module = pf.module or pf.driver or "?"
        param = vf_count_param(pf.driver) or "max_vfs"
        port_names = sorted(str(d.address) for d in inv.devices.values() if d.driver == pf.driver and not d.is_vf)
        sp.plan.changes.append(Change(ChangeKind.MODULE_RELOAD, module, f"{param}={now}", f"{param}={after}",
                                      f"create: module-param ({module} creates the VFs when it loads)"))
        sp.impact.append(Impact("module-reload", module, tuple(who),
                                f"reloading {module} resets every port it drives ({', '.join(port_names)}) and their VFs; "
                                "/etc/modprobe.d/sriovctl.conf (persist install) keeps the count at boot", tuple(uses)))
    else:
        if now:
            sp.plan.changes.append(Change(ChangeKind.VF_COUNT, m.key, now, 0, "the kernel changes a non-zero count "
                                          "only through 0 (sriov_numvfs_store: EBUSY)"))
        ap = pf.sriov.drivers_autoprobe if isinstance(pf, PciDevice) and pf.sriov else None
        if ap is not None and m.entry.drivers_autoprobe is not None and ap != m.entry.drivers_autoprobe:
            sp.plan.changes.append(Change(ChangeKind.AUTOPROBE, m.key, ap, m.entry.drivers_autoprobe,
                                          "drivers-autoprobe asked for (before the VFs are created)"))
        if after:
            sp.plan.changes.append(Change(ChangeKind.VF_COUNT, m.key, 0, after, f"total-vfs {after} asked for"))
    if now:
        sp.impact.append(Impact("destroys-vfs", m.label, tuple(who),
                                f"{now} VFs destroyed ({now} → {after}): every VF's configuration and binding is lost",
                                tuple(uses)))
    for vm, vfs in sorted(vms.items()):
        sp.impact.append(Impact("stop-vm", vm, tuple(vfs), "its VFs are destroyed: stop it (or detach them) first"))


def _check(inv: Inventory, state: DesiredState, matched: list[Matched], counts: dict[str, tuple[int, int]],
           host: Host) -> None:
    """What the file alone cannot tell: the host's limits and the other VFs' MACs."""
    src = state.source
    params: dict[str, tuple[int, str]] = {}
    for m in matched:
        e, pf = m.entry, m.pf
        now, after = counts[m.key]
        if isinstance(pf, PciDevice):
            total = pf.sriov.totalvfs if pf.sriov else None
            if e.total_vfs is not None and total is not None and e.total_vfs > total:
                raise StateError(src, f"{e.path}.total-vfs", f"{m.label} has sriov_totalvfs {total}", e.total_vfs)
            if total is None and e.total_vfs:
                raise StateError(src, f"{e.path}.total-vfs", f"{m.label} exposes no sriov_totalvfs (no driver with "
                                 "SR-IOV support bound)", e.total_vfs)
            if e.create == "module-param" and after != now:
                if pf.driver is None or vf_count_param(pf.driver) is None:
                    raise StateError(src, f"{e.path}.create", f"{pf.driver or 'no driver'} has no VF-count module "
                                     "parameter sriovctl knows", "module-param", hint="use create: sysfs")
                prior = params.setdefault(pf.driver, (after, e.path))
                if prior[0] != after:
                    raise StateError(src, f"{e.path}.total-vfs", f"{pf.driver}'s {vf_count_param(pf.driver)} is one "
                                     f"value for every port: {prior[1]} asks for {prior[0]}", after)
        elif e.create == "module-param":
            raise StateError(src, f"{e.path}.create", f"{m.label} is not a PCI device", "module-param")
        for v in e.vfs or ():
            for i in v.ids:
                if i >= after:
                    why = "externally managed: its VF count is" if e.externally_managed else "the PF will have"
                    raise StateError(src, f"{v.path}.id", f"{why} {after} VFs", i,
                                     hint="raise total-vfs" if not e.externally_managed else None)
            if v.driver is not None and isinstance(pf, NetPf):
                raise StateError(src, f"{v.path}.driver", f"{m.label} is not on PCI: its VFs have no driver", v.driver)
            if v.driver not in (None, "host", "none") and not state.restore \
                    and host.driver_available(str(v.driver)) is False:
                raise StateError(src, f"{v.path}.driver", "no such driver on this host (not registered, and no "
                                 "module of that name for the running kernel)", v.driver,
                                 hint="check the name (lsmod, modinfo)")
    if not state.restore:
        _check_macs(inv, state, matched, counts)


def _check_macs(inv: Inventory, state: DesiredState, matched: list[Matched], counts: dict[str, tuple[int, int]]) -> None:
    """A MAC asked for must not be another VF's on this host: one the state does not change, and that is not
    destroyed by a count change."""
    asked: dict[str, str] = {}
    setting: set[tuple[str, int]] = set()
    for m in matched:
        for v in m.entry.vfs or ():
            mac = v.attrs.get("mac")
            for i in v.ids:
                if isinstance(mac, str):
                    setting.add((m.key, i))
                    if mac != ZERO_MAC:
                        asked[mac] = f"{v.path}.mac-address"
        if m.entry.vfs == ():
            setting.update((m.key, i) for i in range(counts[m.key][1]))
    recreated = {m.key for m in matched if counts[m.key][0] != counts[m.key][1]}
    _check_shared_macs(inv, state, matched, recreated)
    if not asked:
        return
    for pf in inv.pfs:
        if str(pf.address) in recreated:
            continue
        for vf in inv.vfs_of(pf):
            mac = (vf.netlink.mac or "").lower() if vf.netlink else ""
            if mac in asked and (str(pf.address), vf.vf_index) not in setting:
                raise StateError(state.source, asked[mac], f"already the MAC of {vf.address} (VF {vf.vf_index} of "
                                 f"{pf.address}), which this state does not change", mac)


def _current_macs(inv: Inventory, m: Matched) -> dict[int, str]:
    if isinstance(m.pf, NetPf):
        return {v.vf: (v.mac or ZERO_MAC).lower() for v in m.pf.vfs}
    return {v.vf_index: ((v.netlink.mac if v.netlink else None) or ZERO_MAC).lower() for v in inv.vfs_of(m.pf)
            if v.vf_index is not None}


def _check_shared_macs(inv: Inventory, state: DesiredState, matched: list[Matched], recreated: set[str]) -> None:
    """One MAC asked for two VFs is refused when it would be *made* so (a VF changes to it); a state that only
    describes VFs that already share it (the host as `state show` prints it, a checkpoint) is not."""
    holders: dict[str, list[tuple[Matched, str, int]]] = {}
    for m in matched:
        for v in m.entry.vfs or ():
            mac = v.attrs.get("mac")
            if isinstance(mac, str) and mac != ZERO_MAC:
                holders.setdefault(mac, []).extend((m, f"{v.path}.mac-address", i) for i in v.ids)
    current: dict[str, dict[int, str]] = {}  # a PF's VFs' MACs now, read once (only when a MAC is asked twice)
    for mac, hs in holders.items():
        if len(hs) < 2:
            continue
        for m, path, i in hs:
            if m.key not in recreated and m.key not in current:
                current[m.key] = _current_macs(inv, m)
            if current.get(m.key, {}).get(i) != mac:
                # parse refuses one MAC for several ids of one entry: two holders are two entries, two paths
                other = next(p for _, p, _ in hs if p != path)
                raise StateError(state.source, path, f"the same MAC as {other}", mac,
                                 hint="give each VF its own MAC")
