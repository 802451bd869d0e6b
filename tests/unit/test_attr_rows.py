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
