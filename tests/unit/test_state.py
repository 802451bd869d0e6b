"""The state file (issue 13, first part): `state show` writes the host in the schema and reads back as a state
that asks for nothing new; every bad value is named by its path and value, exit 65, nothing touched."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import cli, tree_hash, validate
from sriovctl.cli import schemagen
from sriovctl.cli.documents import StatePfDoc, StateVfDoc
from sriovctl.host.sim.catalog import open_sim
from sriovctl.state.desired import StateError, load, parse
from sriovctl.state.keys import ALL_VF_KEYS, PF_KEYS, PF_SETTINGS

SCHEMA = json.loads(schemagen.STATE_SCHEMA.read_text())


@pytest.mark.parametrize("sim", ["igb-82576", "e810-2x256", "no-acs-switch", "no-iommu"])
def test_state_show_reads_back_and_fits_both_schemas(sim: str) -> None:
    r = cli("--sim", sim, "state", "show")
    assert r.code == 0, r.err
    doc = yaml.safe_load(r.out)
    jsonschema.validate(doc, SCHEMA)
    st_ = parse(doc, "shown")
    shown_vfs = sum(len(p["vfs"]) for p in doc["pfs"])
    assert sum(len(p.vfs or ()) for p in st_.pfs) == shown_vfs
    for p, raw in zip(st_.pfs, doc["pfs"], strict=True):
        assert p.total_vfs == raw["total-vfs"] and [v.ids for v in p.vfs or ()] == [(v["id"],) for v in raw["vfs"]]
    j = cli("--sim", sim, "state", "show", "--json")
    validate(j.json(), "state-show")
    assert j.json()["state"] == doc


def test_the_state_is_described_once() -> None:
    """docs/state.schema.json and the documents' state objects come from the reader's tables (the drift test of
    both: test_schemas); the TypedDicts that type the code building `state show` hold the same keys: a VF's every
    key, a PF's selectors it prints, the settings the host has a value for, and its VFs."""
    assert set(StateVfDoc.__annotations__) == set(ALL_VF_KEYS)
    shown = {k.key for k in PF_SETTINGS if k.read is not None}
    assert set(StatePfDoc.__annotations__) == {"name", "pci-address", *shown, "vfs"}
    assert set(SCHEMA["$defs"]["pf"]["properties"]) == set(PF_KEYS)
    defs = json.loads((schemagen.SCHEMAS / "defs.json").read_text())["$defs"]
    assert defs["state_pf"] == json.loads(json.dumps(SCHEMA["$defs"]["pf"]).replace("#/$defs/", "defs.json#/$defs/state_"))


def test_an_nmstate_sr_iov_block_pastes_in_unchanged() -> None:
    nmstate = yaml.safe_load("""
interfaces:
- name: ens2f0
  ethernet:
    sr-iov:
      total-vfs: 4
      vfs:
      - id: 0
        mac-address: 00:11:22:33:44:55
        spoof-check: true
        trust: false
        min-tx-rate: 0
        max-tx-rate: 1000
        vlan-id: 100
        qos: 5
        vlan-proto: 802.1ad
      - id: 1
        vlan-id: 102
""")
    sriov = nmstate["interfaces"][0]["ethernet"]["sr-iov"]
    st_ = parse({"pfs": [{"name": "ens2f0", **sriov}]}, "nmstate")
    (pf,) = st_.pfs
    assert pf.total_vfs == 4 and pf.vfs is not None
    assert pf.vfs[0].attrs == {"mac": "00:11:22:33:44:55", "vlan": 100, "qos": 5, "vlan_proto": "802.1ad",
                               "min_tx_rate": 0, "max_tx_rate": 1000, "spoofchk": True, "trust": False}


BASE: dict[str, Any] = {"pfs": [{"name": "ens2f0", "total-vfs": 8, "vfs": [
    {"id": 0, "mac-address": "02:00:00:00:00:01", "vlan-id": 10},
    {"id": "1-3", "trust": True},
    {"id": 4, "vlan-id": 7, "qos": 3, "spoof-check": False, "driver": "vfio-pci"}]}]}


@pytest.mark.parametrize(("path", "value", "message"), [
    ("pfs.0.vfs.2.vlan-id", 5000, "pfs[0].vfs[2].vlan-id: must be 0..4095, got 5000"),
    ("pfs.0.vfs.0.mac-address", "01:00:00:00:00:01", "pfs[0].vfs[0].mac-address: a multicast address, got '01:00:00:00:00:01'"),
    ("pfs.0.vfs.1.trust", "yes", "pfs[0].vfs[1].trust: must be on or off, got 'yes'"),
    ("pfs.0.vfs.2.id", 8, "pfs[0].vfs[2].id: must be 0..7 (below total-vfs), got 8"),
    ("pfs.0.vfs.2.id", 2, "pfs[0].vfs[2].id: VF 2 is already given by pfs[0].vfs[1]"),
    ("pfs.0.total-vfs", 70000, "pfs[0].total-vfs: must be 0..65535, got 70000"),
    ("pfs.0.create", "echo", "pfs[0].create: must be sysfs or module-param, got 'echo'"),
    ("pfs.0.vfs.2.driver", "../x", "pfs[0].vfs[2].driver: must be vfio-pci, host, none or a driver name, got '../x'"),
    ("pfs.0.name", "a/b", "pfs[0].name: not a network interface name, got 'a/b'"),
    ("pfs.0.vfs.1.mac-address", "02:00:00:00:00:09", "pfs[0].vfs[1].mac-address: one MAC for 3 VFs"),
    ("pfs.0.vfs.2.vlan-ids", 5, "pfs[0].vfs[2].vlan-ids: unknown key, got 'vlan-ids'"),
    ("pfs.0.vfs.2.vlan-proto", "802.1x", "pfs[0].vfs[2].vlan-proto: must be 802.1Q or 802.1ad, got '802.1x'"),
])
def test_each_bad_value_is_named_by_its_path(path: str, value: object, message: str, tmp_path: Path) -> None:
    doc = _set(copy.deepcopy(BASE), path, value)
    with pytest.raises(StateError) as e:
        parse(doc, "s.yaml")
    assert e.value.message.startswith(f"s.yaml: {message}"), e.value.message
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(doc))
    r = cli("state", "validate", str(f))
    assert r.code == 65 and r.err.count("\n") == 1 and message in r.err and "Traceback" not in r.err, r.err


def test_a_mac_given_twice_and_a_pf_given_twice() -> None:
    doc = copy.deepcopy(BASE)
    doc["pfs"][0]["vfs"][2]["mac-address"] = "02:00:00:00:00:01"
    parse(doc, "s")  # a state may describe VFs that share a MAC (the host can hold it); making it is refused by the
    # planner: tests/unit/test_hardening2.py::test_plan_refuses_making_a_shared_mac
    doc = copy.deepcopy(BASE)
    doc["pfs"].append({"name": "ens2f0"})
    with pytest.raises(StateError, match=r"pfs\[1\]: the same PF as pfs\[0\] \(name ens2f0\)"):
        parse(doc, "s")


def _set(doc: Any, path: str, value: object) -> Any:
    cur = doc
    parts = path.split(".")
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    last = parts[-1]
    if isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value
    return doc


# A fault in any VF key of a valid file: the error's path is the fault's path, and nothing on a host moves.
_FAULTS: dict[str, list[object]] = {
    "mac-address": ["zz", "01:00:00:00:00:00", 5, True], "vlan-id": [-1, 4096, "10", 1.5, True],
    "qos": [8, -1, "x"], "vlan-proto": ["802.1x", 5], "spoof-check": ["on", 1, None.__class__.__name__],
    "trust": ["off", 0], "min-tx-rate": [-5, "fast", 2 ** 32], "max-tx-rate": [-1, "x", 2 ** 32],
    "link-state": ["up", 3], "driver": ["a b", "../../etc", 7, "x" * 65],
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(vf=st.integers(0, 2), key=st.sampled_from(sorted(_FAULTS)), data=st.data())
def test_injected_faults_are_found_where_they_were_put(vf: int, key: str, data: st.DataObject) -> None:
    bad = data.draw(st.sampled_from(_FAULTS[key]))
    doc = copy.deepcopy(BASE)
    doc["pfs"][0]["vfs"][vf][key] = bad
    if key in ("qos", "vlan-proto") and "vlan-id" not in doc["pfs"][0]["vfs"][vf]:
        doc["pfs"][0]["vfs"][vf]["vlan-id"] = 1
    with pytest.raises(StateError) as e:
        parse(doc, "s")
    assert e.value.path == f"pfs[0].vfs[{vf}].{key}", (e.value.path, bad)


def test_validate_changes_nothing_on_a_host(tmp_path: Path) -> None:
    root = open_sim("igb-82576").root
    before = tree_hash(root)
    f = tmp_path / "s.yaml"
    f.write_text(cli("--sim", "igb-82576", "state", "show").out)
    assert cli("state", "validate", str(f)).code == 0
    f.write_text("pfs: [{name: eth0, total-vfs: -1}]")
    assert cli("--sim", "igb-82576", "state", "validate", str(f)).code == 65
    assert tree_hash(root) == before


def test_hostile_files_are_refused_cleanly(tmp_path: Path) -> None:
    f = tmp_path / "bomb.yaml"
    f.write_text("a: &a [1, 2]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" + "".join(
        f"x{i}: &x{i} [" + ", ".join([f"*{'b' if i == 0 else f'x{i - 1}'}"] * 9) + "]\n" for i in range(12)))
    r = cli("state", "validate", str(f))
    assert r.code == 65 and "Traceback" not in r.err, r.err
    f.write_text("pfs: " + "[" * 100 + "]" * 100)
    r = cli("state", "validate", str(f))
    assert r.code == 65 and "nested deeper" in r.err, r.err
    r = cli("state", "validate", str(tmp_path))
    assert r.code == 65 and "is a directory" in r.err, r.err
    r = cli("state", "validate", str(tmp_path / "none.yaml"))
    assert r.code == 66 and "no such file" in r.err, r.err
    assert load("", "empty").pfs == ()


def test_json_is_read_fast_and_as_yaml_reads_it(tmp_path: Path) -> None:
    """A JSON state file takes json's path (a 1,024-VF file: 0.5 ms, not PyYAML's 200 ms); whatever json refuses
    (a key twice, NaN, YAML flow style) is read by the strict YAML reader; deep nesting is refused either way."""
    from sriovctl.errors import DataError
    from sriovctl.untrusted import load_yaml

    doc = copy.deepcopy(BASE)
    assert load_yaml(json.dumps(doc), "s") == yaml.safe_load(json.dumps(doc)) == doc
    with pytest.raises(DataError, match=r"^s: a: a key given twice \(lines 1 and 1\)"):
        load_yaml('{"a": 1, "a": 2}', "s")  # issue 18: refused with its path, not "the last wins"
    assert load_yaml('{"a": NaN}', "s") == {"a": "NaN"}  # YAML 1.2 core: only .nan is a number
    assert load_yaml("{pfs: [{name: eth0}]}", "s") == {"pfs": [{"name": "eth0"}]}
    for deep in ("[" * 5000 + "]" * 5000, '{"a":' * 70 + "1" + "}" * 70):
        with pytest.raises(DataError, match="nested"):
            load_yaml(deep, "s")
