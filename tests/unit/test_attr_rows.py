"""The attribute rows drive the desired-state engine (issue 19): every key a state file can give a VF
(state/keys.VF_KEYS, from attrs.VF_ATTRS) is planned, applied, verified and shown — on the simulated e810
(ice, which accepts every attribute) and igb (whose driver refuses some: then the refusal names the attribute,
it is never silently dropped). A test-only extra row proves the planner's delta takes a new row without edits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import cli
from sriovctl import attrs
from sriovctl.attrs import VF_ATTRS, ValueKind, VfAttr, defaults
from sriovctl.host.sim.catalog import reset_sim
from sriovctl.ops.desired import planner
from sriovctl.state.keys import VF_KEYS

# a valid value other than a new VF's for each kind of row, and what a key needs beside it
OTHER = {ValueKind.MAC: "02:00:00:00:00:42", ValueKind.BOOL: None, ValueKind.INT: None, ValueKind.CHOICE: None}
NEEDS = {"qos": {"vlan-id": 7}, "vlan-proto": {"vlan-id": 7}, "min-tx-rate": {"max-tx-rate": 1000}}


def _other(attr: VfAttr) -> object:
    if attr.kind is ValueKind.MAC:
        return OTHER[ValueKind.MAC]
    if attr.kind is ValueKind.BOOL:
        return not attr.default
    if attr.kind is ValueKind.INT:
        return min(attr.high, 100 if attr.high > 7 else 3)
    choice = next(c for c in attr.choices if c != attr.default)
    return choice.lower() if attr.key == "vlan_proto" else choice  # nmstate spells 802.1ad so


def _show(sim: str, pf: int = 0) -> dict[str, Any]:
    r = cli("--sim", sim, "--json", "state", "show")
    assert r.code == 0, r.err
    return {v["id"]: v for v in r.json()["state"]["pfs"][pf]["vfs"]}


@pytest.mark.parametrize("key", sorted(VF_KEYS))
def test_every_state_key_is_planned_applied_verified_and_shown_on_e810(key: str, tmp_path: Path) -> None:
    reset_sim("e810-2x256")
    attr = VF_KEYS[key]
    value = _other(attr)
    entry = {"id": 3, key: value, **NEEDS.get(key, {})}
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"pfs": [{"name": "ens2f0", "vfs": [entry]}]}))
    plan = cli("--sim", "e810-2x256", "--json", "state", "plan", str(f))
    assert plan.code == 0, plan.err
    changed = [c for c in plan.json()["changes"] if c["kind"] == "vf-attr"]
    assert attr.key in {c["attr"] for c in changed}, changed
    r = cli("--sim", "e810-2x256", "state", "apply", str(f))
    assert r.code == 0, r.out + r.err
    st = cli("--sim", "e810-2x256", "--json", "state", "status", str(f))
    assert st.code == 0 and st.json()["in_sync"] is True, st.out
    shown = _show("e810-2x256")[3][key]
    assert str(shown).lower() == str(value).lower(), (key, shown, value)
    again = cli("--sim", "e810-2x256", "state", "plan", str(f))
    assert again.out == "no changes\n", again.out


@pytest.mark.parametrize("key", sorted(VF_KEYS))
def test_on_igb_each_key_is_set_or_refused_by_name(key: str, tmp_path: Path) -> None:
    """igb refuses link state, a minimum rate, 802.1ad and rates without link (drivers.py, seen in the lab): the
    apply fails naming what was refused and rolls back; every other key lands as on the e810."""
    reset_sim("igb-82576")
    attr = VF_KEYS[key]
    value = _other(attr)
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"pfs": [{"name": "enp11s0f0", "vfs": [{"id": 2, key: value, **NEEDS.get(key, {})}]}]}))
    r = cli("--sim", "igb-82576", "state", "apply", str(f))
    if r.code == 0:
        assert str(_show("igb-82576")[2][key]).lower() == str(value).lower()
        assert cli("--sim", "igb-82576", "--json", "state", "status", str(f)).json()["in_sync"] is True
    else:
        text = (r.out + r.err).lower()
        assert attrs.REQUEST_LABEL[attr.request].lower() in text or attr.label.lower() in text, (key, text)
        assert "rolled back" in text or "restored" in text, text


def test_the_delta_compares_every_row_of_every_request_group() -> None:
    base = defaults()
    for a in VF_ATTRS:
        want = {a.key: _other(a) if a.kind is not ValueKind.CHOICE else next(c for c in a.choices if c != a.default)}
        if a.matters_with:
            want[a.matters_with] = 7
        delta = planner.attr_delta(want, base)
        assert a.key in delta, (a.key, delta)
        group = {b.key for b in attrs.REQUEST_ATTRS[a.request]}
        assert set(delta) == group | ({"vlan", "qos", "vlan_proto"} if a.matters_with else set()), delta
        assert planner.attr_delta({a.key: a.default}, base) == {}, a.key


def test_a_new_row_is_planned_without_edits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test-only row in a request group of its own: the planner's delta (and its comparison rule) takes it
    from the table alone."""
    extra = VfAttr("mtu_cap", "--mtu-cap", "IFLA_VF_TEST", "mtu_cap", "MTU cap", "mtu-cap", ValueKind.INT, 1500, 68,
                   9000)
    monkeypatch.setattr(attrs, "REQUEST_ATTRS", {**attrs.REQUEST_ATTRS, "mtu_cap": (extra,)})
    monkeypatch.setattr(planner, "REQUEST_ATTRS", attrs.REQUEST_ATTRS)
    base = {**defaults(), "mtu_cap": 1500}
    assert planner.attr_delta({"mtu_cap": 9000}, base) == {"mtu_cap": 9000}
    assert planner.attr_delta({"mtu_cap": 1500}, base) == {}
    assert planner.attr_delta({"mtu_cap": 9000, "trust": True}, base) == {"mtu_cap": 9000, "trust": True}


def _add_row(monkeypatch: pytest.MonkeyPatch, request: attrs.VfRequest, row: VfAttr) -> None:
    """The tables as they would be with one more row in attrs.py (every derived table rebuilt from the rows)."""
    rows, requests = (*attrs.VF_ATTRS, row), (*attrs.VF_REQUESTS, request)
    request_attrs = {r.name: tuple(a for a in rows if a.request == r.name) for r in requests}
    for name, value in (("VF_ATTRS", rows), ("BY_KEY", {a.key: a for a in rows}), ("VF_REQUESTS", requests),
                        ("REQUESTS", {r.name: r for r in requests}), ("BY_NLA", {r.nla: r for r in requests}),
                        ("KERNEL_ORDER", tuple(r.name for r in requests)), ("REQUEST_ATTRS", request_attrs),
                        ("REQUEST_LABEL", {r.name: r.label for r in requests})):
        monkeypatch.setattr(attrs, name, value)
    monkeypatch.setattr(planner, "REQUEST_ATTRS", request_attrs)


def test_a_new_request_row_reaches_encoder_decoder_simulator_and_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test-only kernel request (an unused IFLA_VF_* type carrying one __u32) added as two rows: the encoder
    packs it, the decoder reads it back, the simulated kernel stores it, ops builds and verifies its request and
    the batcher sizes it — with no edit anywhere else."""
    import os
    import struct

    from sriovctl.host.sim.catalog import open_sim
    from sriovctl.host.vfencode import encoded_size, setlink, vf_attr
    from sriovctl.host.vfinfo import decode_fields
    from sriovctl.ops import vfattrs

    row = VfAttr("mtu_cap", "--mtu-cap", "IFLA_VF_TEST", "mtu_cap", "MTU cap", "mtu-cap", ValueKind.INT, 1500, 68, 9000)
    _add_row(monkeypatch, attrs.VfRequest("mtu_cap", "MTU cap", 99, ("mtu_cap",)), row)

    changes = vfattrs.request_changes(3, {"mtu_cap": 9000, "trust": True}, None)
    assert [(c.attr, c.value) for c in changes] == [("trust", True), ("mtu_cap", 9000)]  # the kernel's order: last
    wire = vf_attr(changes[1])
    assert wire == struct.pack("=HHII", 12, 99, 3, 9000) and encoded_size(changes[1]) == len(wire)
    # an RTM_SETLINK carries IFLA_VFINFO_LIST as an RTM_NEWLINK reply does: the decoder reads the encoder's bytes
    assert decode_fields(setlink(1, 7, changes, 0)) == [{"trust": True, "mtu_cap": 9000, "vf": 3}]

    reset_sim("e810-2x256")
    host = open_sim("e810-2x256")
    nl = host.netlink()
    pf = next(iter(host.tree.state["vfinfo"]))
    ifname = next(n for n in os.listdir(host.tree.p("sys/class/net"))
                  if os.path.realpath(host.tree.p(f"sys/class/net/{n}/device")).endswith(pf))
    nl.set_vfs(ifname, changes[1:])
    assert open_sim("e810-2x256").tree.state["vfinfo"][pf][3]["mtu_cap"] == 9000  # what a re-read sees
    view = {**vars_of(nl.get_vfs(ifname)[3]), "mtu_cap": 9000}  # the typed view has no field for it yet
    assert vfattrs.matches(_View(view), changes[1]) and not vfattrs.matches(_View({**view, "mtu_cap": 68}), changes[1])
    assert vfattrs.fmt(changes[1]) == "9000" and vfattrs.current_value(_View(view), "mtu_cap") == 9000


def vars_of(v: object) -> dict[str, object]:
    return {k: getattr(v, k) for k in v.__slots__}  # type: ignore[attr-defined]


class _View:
    """A netlink view with the test row's field (what adding it to model.VfNetlink gives)."""

    def __init__(self, fields: dict[str, object]) -> None:
        self.__dict__.update(fields)


# ---- the PF table (state/keys.PF_SETTINGS): each setting, what a plan does with a value other than the host's,
# and what `state show` then says. A row added without a line here fails the first test below.
PF_CASES: dict[str, tuple[dict[str, Any], str | None]] = {
    # entry keys beside the PF's name → the change kind the plan must hold (None: none, by design)
    "total-vfs": ({"total-vfs": 4}, "vf-count"),
    "drivers-autoprobe": ({"drivers-autoprobe": False}, "drivers-autoprobe"),
    "create": ({"create": "module-param", "total-vfs": 4}, "module-reload"),
    "externally-managed": ({"externally-managed": True, "total-vfs": 4}, None),  # the count is someone else's
    "resource-prefix": ({"resource-prefix": "example.com"}, None),  # for state export: nothing on the host
    "physical-network": ({"physical-network": "physnet1"}, None),
}
PF_HOSTS = {"e810-2x256": "ens2f0", "igb-82576": "enp11s0f0"}


def test_every_pf_setting_has_a_case() -> None:
    from sriovctl.state.keys import PF_BY_KEY

    assert set(PF_CASES) == set(PF_BY_KEY)


@pytest.mark.parametrize("sim", sorted(PF_HOSTS))
@pytest.mark.parametrize("key", sorted(PF_CASES))
def test_every_pf_setting_is_planned_applied_verified_and_shown(key: str, sim: str, tmp_path: Path) -> None:
    """Each PF setting on the simulated e810 (ice: no VF-count module parameter, so ``create: module-param`` is
    refused by its path, exit 65) and igb (max_vfs): planned as its change, applied, in sync afterwards, and
    shown as the host now has it."""
    from sriovctl.state.keys import PF_BY_KEY

    reset_sim(sim)
    entry, kind = PF_CASES[key]
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"pfs": [{"name": PF_HOSTS[sim], **entry}]}))
    before = cli("--sim", sim, "--json", "state", "show").json()["state"]["pfs"][0]
    plan = cli("--sim", sim, "--json", "state", "plan", str(f))
    if key == "create" and sim == "e810-2x256":
        assert plan.code == 65 and "pfs[0].create" in plan.err and "module parameter" in plan.err, plan.err
        return
    assert plan.code == 0, plan.err
    kinds = {c["kind"] for c in plan.json()["changes"]}
    assert (kind in kinds) if kind else not kinds, (key, kinds)
    r = cli("--sim", sim, "state", "apply", str(f))
    assert r.code == 0, r.out + r.err
    st = cli("--sim", sim, "--json", "state", "status", str(f))
    assert st.code == 0 and st.json()["in_sync"] is True, st.out
    assert cli("--sim", sim, "state", "plan", str(f)).out == "no changes\n"
    shown = cli("--sim", sim, "--json", "state", "show").json()["state"]["pfs"][0]
    row = PF_BY_KEY[key]
    if row.read is None:
        assert key not in shown and shown["total-vfs"] == before["total-vfs"]  # asked for, and left alone
    elif key == "create":
        assert shown["total-vfs"] == entry["total-vfs"]  # how VFs were made is not a fact the host keeps
    else:
        assert shown[key] == entry[key], (key, shown)
