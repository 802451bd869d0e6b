"""state plan / apply / status on simulated hosts (issue 13): converged means no changes and zero writes, a
failure midway rolls back to the checkpoint, in-use VFs are refused, host-side checks name the path, a killed
run's journal is rolled forward (another boot's discarded)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import cli, hold_vfio, tree_hash, validate
from sriovctl.host.sim.catalog import open_sim

IGB = "igb-82576"
E810 = "e810-2x256"


def _file(tmp_path: Path, doc: Any, name: str = "s.yaml") -> str:
    f = tmp_path / name
    f.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return str(f)


def _show(sim: str) -> Any:
    r = cli("--sim", sim, "--json", "state", "show")
    assert r.code == 0, r.err
    return r.json()["state"]


E810_STATE = {"pfs": [
    {"name": "ens2f0", "total-vfs": 8, "vfs": [
        {"id": 0, "mac-address": "02:00:00:00:00:01", "vlan-id": 42},
        {"id": 1, "mac-address": "02:00:00:00:00:02", "vlan-id": 43, "qos": 3, "trust": False},
        {"id": "2-3", "driver": "vfio-pci"}]},
    {"name": "ens2f1", "vfs": [{"id": "0-9", "spoof-check": False}]}]}


def test_apply_converges_then_plans_no_changes_and_writes_nothing(tmp_path: Path) -> None:
    f = _file(tmp_path, E810_STATE)
    plan = cli("--sim", E810, "--json", "state", "plan", f)
    assert plan.code == 0, plan.err
    doc = plan.json()
    validate(doc, "state-plan")
    kinds = [c["kind"] for c in doc["changes"]]
    # PF level first, then VF attributes, then bindings
    assert kinds == sorted(kinds, key=["vf-count", "drivers-autoprobe", "vf-attr", "driver"].index)
    assert [i["kind"] for i in doc["impact"]] == ["destroys-vfs"] and "256 VFs destroyed" in doc["impact"][0]["why"]
    r = cli("--sim", E810, "--json", "state", "apply", f)
    assert r.code == 0, r.err
    out = r.json()
    validate(out, "state-apply")
    assert out["result"] == "Succeeded" and out["writes"] > 0
    now = _show(E810)
    pf0 = {v["id"]: v for v in now["pfs"][0]["vfs"]}
    assert now["pfs"][0]["total-vfs"] == 8
    assert (pf0[0]["mac-address"], pf0[0]["vlan-id"]) == ("02:00:00:00:00:01", 42)
    assert (pf0[1]["vlan-id"], pf0[1]["qos"], pf0[1]["trust"]) == (43, 3, False)
    assert pf0[2]["driver"] == pf0[3]["driver"] == "vfio-pci" and pf0[4]["driver"] == "iavf"
    assert all(v["spoof-check"] is False for v in now["pfs"][1]["vfs"][:10])
    assert now["pfs"][1]["vfs"][10]["spoof-check"] is True  # a VF not listed keeps its configuration
    # again: exactly "no changes", and not one write to the host
    again = cli("--sim", E810, "state", "apply", f)
    assert again.code == 0 and again.out == "no changes\n", again.out + again.err
    assert again.ctx is not None and again.ctx.host is not None and again.ctx.host.writes == []
    assert cli("--sim", E810, "state", "plan", f).out == "no changes\n"
    st = cli("--sim", E810, "--json", "state", "status", f)
    assert st.code == 0 and st.json()["in_sync"] is True, st.out
    validate(st.json(), "state-status")


def test_state_show_applied_back_is_a_no_op_with_zero_writes(tmp_path: Path) -> None:
    for sim in (IGB, E810):
        f = _file(tmp_path, cli("--sim", sim, "state", "show").out, f"{sim}.yaml")
        before = tree_hash(open_sim(sim).root)
        r = cli("--sim", sim, "state", "apply", f)
        assert r.code == 0 and r.out == "no changes\n", r.out + r.err
        assert r.ctx is not None and r.ctx.host is not None and r.ctx.host.writes == []
        assert tree_hash(open_sim(sim).root) == before


def test_vfs_empty_list_resets_every_vf_to_defaults(tmp_path: Path) -> None:
    f = _file(tmp_path, {"pfs": [{"name": "enp11s0f0", "vfs": [
        {"id": 3, "vlan-id": 9, "trust": True}, {"id": 4, "mac-address": "02:00:00:00:00:44"},
        {"id": 5, "mac-address": "02:00:00:00:00:55"}]}]})
    assert cli("--sim", IGB, "state", "apply", f).code == 0
    vf3 = _show(IGB)["pfs"][0]["vfs"][3]
    assert (vf3["vlan-id"], vf3["trust"]) == (9, True)
    f = _file(tmp_path, {"pfs": [{"name": "enp11s0f0", "vfs": []}]})
    r = cli("--sim", IGB, "state", "apply", f)
    assert r.code == 0, r.err
    vf3 = _show(IGB)["pfs"][0]["vfs"][3]
    assert (vf3["vlan-id"], vf3["trust"], vf3["spoof-check"]) == (0, False, True)
    # the MACs the host set are removed (the all-zero MAC sent, as a new VF shows it; found by the random test)
    assert [v["mac-address"] for v in _show(IGB)["pfs"][0]["vfs"][4:6]] == ["00:00:00:00:00:00"] * 2
    # asked for by name on the command line, the all-zero MAC stays refused
    r = cli("--sim", IGB, "vf", "set", "enp11s0f0#4", "--mac", "00:00:00:00:00:00")
    assert r.code == 64 and "the all-zero address" in r.err, r.err


def test_a_failure_midway_rolls_back_to_the_checkpoint(tmp_path: Path) -> None:
    """After a VF-count change and an attribute change were applied, igb refuses a minimum rate: the host is put
    back, `status --json` equals the one before, the record says Failed with the error, status exits 9."""
    assert cli("--sim", IGB, "vf", "disable", "enp11s0f0").code == 0
    before = cli("--sim", IGB, "--json", "status").out
    f = _file(tmp_path, {"pfs": [{"name": "enp11s0f0", "total-vfs": 4, "vfs": [
        {"id": 0, "mac-address": "02:00:00:00:00:01", "vlan-id": 42},
        {"id": 1, "min-tx-rate": 10, "max-tx-rate": 100}]}]})
    r = cli("--sim", IGB, "--json", "state", "apply", f)
    assert r.code == 7, r.out + r.err
    doc = r.json()
    validate(doc, "error")
    sa = doc["state_apply"]
    assert sa["rolled_back"] is True and sa["restored"] is True and sa["result"] == "Failed"
    applied = {c["kind"] for c in sa["applied"]}
    assert {"vf-count", "vf-attr"} <= applied  # the count and the MAC/VLAN were applied before the refusal
    assert "refused by igb: EINVAL" in doc["error"]["message"] and "restored to its checkpoint" in doc["error"]["message"]
    assert cli("--sim", IGB, "--json", "status").out == before
    st = cli("--sim", IGB, "--json", "state", "status", f)
    assert st.code == 9 and st.json()["record"]["result"] == "Failed" and "EINVAL" in st.json()["record"]["error"]
    assert st.json()["pending_journals"] == []


def test_a_rollback_from_seven_vfs_restores_every_vf_setting(tmp_path: Path) -> None:
    prep = _file(tmp_path, {"pfs": [{"name": "enp11s0f0", "vfs": [
        {"id": i, "mac-address": f"02:00:00:00:01:0{i}", "vlan-id": 100 + i} for i in range(7)]}]}, "prep.yaml")
    assert cli("--sim", IGB, "state", "apply", prep).code == 0
    before = _show(IGB)
    f = _file(tmp_path, {"pfs": [{"name": "enp11s0f0", "total-vfs": 3, "vfs": [{"id": 0, "min-tx-rate": 5}]}]})
    r = cli("--sim", IGB, "state", "apply", f)
    assert r.code == 7 and "rolled back" in r.out, r.out + r.err
    assert _show(IGB) == before


def test_in_use_vfs_are_not_destroyed_without_force(tmp_path: Path) -> None:
    vf = "0000:0b:10.0"
    assert cli("--sim", IGB, "vf", "bind", vf, "vfio-pci").code == 0
    group = json.loads(cli("--sim", IGB, "--json", "show", vf).out)["device"]["iommu_group"]["number"]
    hold_vfio(str(group))
    f = _file(tmp_path, {"pfs": [{"name": "enp11s0f0", "total-vfs": 2}]})
    plan = cli("--sim", IGB, "--json", "state", "plan", f).json()
    destroys = [i for i in plan["impact"] if i["kind"] == "destroys-vfs"]
    assert destroys and any("4242" in w for w in destroys[0]["who"]), plan["impact"]
    root = open_sim(IGB).root
    before = tree_hash(root)
    r = cli("--sim", IGB, "state", "apply", f)
    assert r.code == 77 and "in use" in r.err and "--force" in r.err, r.err
    assert tree_hash(root) == before
    assert cli("--sim", IGB, "state", "apply", f, "--force").code == 0
    assert _show(IGB)["pfs"][0]["total-vfs"] == 2


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "enp11s0f0", "total-vfs": 9}, "pfs[0].total-vfs: 0000:0b:00.0 (enp11s0f0) has sriov_totalvfs 7, got 9"),
    ({"name": "nope0"}, "pfs[0]: no SR-IOV PF on this host matches name nope0"),
    ({"pci-address": "0000:0b:00.0", "vfs": [{"id": 7, "trust": True}]}, "pfs[0].vfs[0].id: the PF will have 7 VFs, got 7"),
    ({"vendor": "0x8086", "device": "0x10c9", "index": 2}, "pfs[0]: no SR-IOV PF on this host matches vendor 8086"),
    ({"name": "enp11s0f1", "vfs": [{"id": 0, "mac-address": "02:00:00:00:09:01"}]},
     "pfs[0].vfs[0].mac-address: already the MAC of 0000:0b:10.0 (VF 0 of 0000:0b:00.0)"),
    ({"name": "enp11s0f0", "total-vfs": 3, "create": "module-param"}, None),
])
def test_host_side_checks_name_the_path_and_change_nothing(entry: dict[str, Any], message: str | None,
                                                           tmp_path: Path) -> None:
    taken = _file(tmp_path, {"pfs": [{"name": "enp11s0f0", "vfs": [{"id": 0, "mac-address": "02:00:00:00:09:01"}]}]},
                  "taken.yaml")
    assert cli("--sim", IGB, "state", "apply", taken).code == 0
    root = open_sim(IGB).root
    before = tree_hash(root)
    f = _file(tmp_path, {"pfs": [entry]})
    if message is None:  # igb's max_vfs is one value for both ports: the plan says so, apply reloads igb
        plan = cli("--sim", IGB, "--json", "state", "plan", f).json()
        assert [c["kind"] for c in plan["changes"]] == ["module-reload"] and plan["impact"][0]["kind"] == "module-reload"
        assert "0000:0b:00.1" in plan["impact"][0]["why"]
        r = cli("--sim", IGB, "state", "apply", f)
        assert r.code == 0, r.err
        assert [p["total-vfs"] for p in _show(IGB)["pfs"]] == [3, 3]
        return
    r = cli("--sim", IGB, "state", "apply", f)
    assert r.code == 65 and r.err.count("\n") == 1 and message in r.err, r.err
    assert tree_hash(root) == before


def test_dry_run_plans_and_writes_nothing(tmp_path: Path) -> None:
    root = open_sim(E810).root
    before = tree_hash(root)
    r = cli("--sim", E810, "state", "apply", _file(tmp_path, E810_STATE), "--dry-run")
    assert r.code == 0 and r.out.startswith("dry run: nothing was changed; the plan:\n"), r.out
    assert tree_hash(root) == before


def _journal_dir() -> Path:
    return Path(open_sim(IGB).ledger_dir()) / "state-journal"


def test_a_killed_runs_journal_is_rolled_forward_and_another_boots_discarded(tmp_path: Path) -> None:
    host = open_sim(IGB)
    checkpoint = {"name": "enp11s0f0", "total-vfs": 7, "vfs": [{"id": 0, "vlan-id": 5}]}
    jd = _journal_dir()
    jd.mkdir(parents=True)
    boot = host.read_text("proc/sys/kernel/random/boot_id")
    (jd / "0000:0b:00.0.json").write_text(json.dumps({"pid": 999999, "boot_id": boot, "key": "0000:0b:00.0",
                                                      "checkpoint": checkpoint}))
    f = _file(tmp_path, {"pfs": [{"name": "enp11s0f0", "vfs": [{"id": 0, "vlan-id": 6}, {"id": 1, "max-tx-rate": 9}]}]})
    st = cli("--sim", IGB, "--json", "state", "status", f).json()
    assert st["pending_journals"] == ["0000:0b:00.0"]
    r = cli("--sim", IGB, "state", "apply", f)
    # the killed run's checkpoint (VF 0 on VLAN 5) is what the rollback restores, not the host as found now
    assert r.code == 7 and "interrupted apply's journal found for 0000:0b:00.0" in r.out, r.out + r.err
    assert _show(IGB)["pfs"][0]["vfs"][0]["vlan-id"] == 5
    assert not list(jd.iterdir())
    # a journal from another boot is discarded: the apply starts from the host as it is
    (jd / "0000:0b:00.0.json").write_text(json.dumps({"pid": 1, "boot_id": "0-other-boot", "checkpoint": checkpoint}))
    good = _file(tmp_path, {"pfs": [{"name": "enp11s0f0", "vfs": [{"id": 0, "vlan-id": 6}]}]}, "good.yaml")
    r = cli("--sim", IGB, "state", "apply", good)
    assert r.code == 0 and "journal" not in r.out + r.err, r.out + r.err
    assert not list(jd.iterdir())
    # a journal that is not JSON (cut short by a crash of the disk, or planted) is dropped, not trusted
    (jd / "0000:0b:00.0.json").write_text("{not json")
    assert cli("--sim", IGB, "state", "apply", good).code == 0 and not list(jd.iterdir())


def test_apply_of_only_named_pfs_leaves_the_others(tmp_path: Path) -> None:
    f = _file(tmp_path, {"pfs": [{"name": "enp11s0f0", "vfs": [{"id": 0, "vlan-id": 11}]},
                                  {"name": "enp11s0f1", "vfs": [{"id": 0, "vlan-id": 12}]}]})
    r = cli("--sim", IGB, "state", "apply", f, "0000:0b:00.1")
    assert r.code == 0, r.err
    pfs = _show(IGB)["pfs"]
    assert (pfs[0]["vfs"][0]["vlan-id"], pfs[1]["vfs"][0]["vlan-id"]) == (0, 12)
    # a PF the state does not name: nothing to do (the udev rule runs for every SR-IOV PF)
    r = cli("--sim", IGB, "state", "apply", _file(tmp_path, {"pfs": [{"name": "enp11s0f1"}]}, "o.yaml"), "0000:0b:00.0")
    assert r.code == 0 and r.out == "no changes\n"
    assert os.environ.get("SRIOVCTL_SIM_DIR")


def test_a_vf_that_is_not_assignable_is_refused_before_anything_changes(tmp_path: Path) -> None:
    sim = "no-acs-switch"
    root = open_sim(sim).root
    before = tree_hash(root)
    f = _file(tmp_path, {"pfs": [{"name": "enp3s0", "vfs": [{"id": 0, "vlan-id": 3}, {"id": 1, "driver": "vfio-pci"}]}]})
    plan = cli("--sim", sim, "--json", "state", "plan", f).json()
    assert [i["kind"] for i in plan["impact"]] == ["not-assignable"] and "shares IOMMU group" in plan["impact"][0]["why"]
    r = cli("--sim", sim, "state", "apply", f)
    assert r.code == 77 and "not assignable" in r.err and "--force" in r.err, r.err
    assert tree_hash(root) == before  # not even the VLAN of VF 0


def test_a_module_reload_is_refused_while_a_port_carries_the_default_route(tmp_path: Path) -> None:
    """Reloading igb takes both ports: with the other port carrying the default route, `create: module-param`
    for the first is refused (77) and the impact names it."""
    from sriovctl.host.sim.catalog import builtin_text

    spec = builtin_text("igb-82576").replace(
        "network: {default_route: eno1, addresses: {eno1: [192.0.2.10/24]}, up: [eno1]}",
        "network: {default_route: enp11s0f1, addresses: {enp11s0f1: [192.0.2.10/24]}, up: [enp11s0f1]}")
    assert "default_route: enp11s0f1" in spec
    (tmp_path / "routed.yaml").write_text(spec.replace("name: igb-82576", "name: routed"))
    assert cli("sim", "create", "routed", "--from", str(tmp_path / "routed.yaml")).code == 0
    f = _file(tmp_path, {"pfs": [{"name": "enp11s0f0", "total-vfs": 2, "create": "module-param"}]})
    plan = cli("--sim", "routed", "--json", "state", "plan", f).json()
    (reload,) = [i for i in plan["impact"] if i["kind"] == "module-reload"]
    assert any("enp11s0f1 carries the default route" in w for w in reload["who"]), reload
    root = open_sim("routed").root
    before = tree_hash(root)
    r = cli("--sim", "routed", "state", "apply", f)
    assert r.code == 77 and "default route" in r.err, r.err
    assert tree_hash(root) == before


_VF = st.fixed_dictionaries({}, optional={
    "vlan-id": st.integers(0, 4095), "spoof-check": st.booleans(), "trust": st.booleans(),
    "driver": st.sampled_from(["vfio-pci", "host", "none", "igbvf"])})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(total=st.integers(1, 7), data=st.data())
def test_random_valid_states_apply_and_round_trip_through_state_show(total: int, data: st.DataObject,
                                                                     tmp_path: Path) -> None:
    """Any valid state (igb's supported keys): applied, `state show` has every key asked for, and the shown
    state applied again changes nothing (zero writes)."""
    ids = data.draw(st.lists(st.integers(0, total - 1), unique=True, max_size=total))
    vfs = []
    for i in ids:
        vf = {"id": i, **data.draw(_VF)}
        if "vlan-id" in vf and data.draw(st.booleans()):
            vf["qos"] = data.draw(st.integers(0, 7))
        if data.draw(st.booleans()):
            vf["mac-address"] = f"02:00:00:00:{total:02x}:{i:02x}"
        vfs.append(vf)
    f = _file(tmp_path, {"pfs": [{"name": "enp11s0f1", "total-vfs": total, "vfs": vfs}]})
    r = cli("--sim", IGB, "state", "apply", f)
    assert r.code == 0, (vfs, r.out, r.err)
    shown = _show(IGB)["pfs"][1]
    assert shown["total-vfs"] == total
    got = {v["id"]: v for v in shown["vfs"]}
    for vf in vfs:
        for k, v in vf.items():
            want = {"host": "igbvf"}.get(v, v) if k == "driver" else v
            assert got[vf["id"]][k] == want, (vf, got[vf["id"]])
    g = _file(tmp_path, {"pfs": [shown]}, "shown.yaml")
    again = cli("--sim", IGB, "state", "apply", g)
    assert again.code == 0 and again.out == "no changes\n", again.out + again.err
    assert again.ctx is not None and again.ctx.host is not None and again.ctx.host.writes == []


def test_a_document_applied_as_a_dict_and_persisted_as_yaml_is_in_sync(tmp_path: Path) -> None:
    """The state entry takes a dict (ops.state.apply_document, for front ends holding a document); its digest
    is over canonical JSON, so the same document stored by `persist install` — YAML with comments, another key
    order — reads as the state that was applied: `state status` says in sync."""
    from sriovctl.ops.state import ApplyOptions, apply_document

    doc = {"pfs": [{"name": "enp11s0f0", "total-vfs": 4, "vfs": [{"id": 1, "vlan-id": 12, "trust": True}]}]}
    out = apply_document(open_sim(IGB), doc, ApplyOptions())
    assert out.result == "Succeeded", out.error
    f = tmp_path / "s.yaml"
    f.write_text("# the same state, written by hand\npfs:\n  - vfs:\n      - trust: true\n        vlan-id: 12\n"
                 "        id: 1\n    total-vfs: 4\n    name: enp11s0f0\n")
    assert cli("--sim", IGB, "persist", "install", str(f), "--exec", "/usr/bin/sriovctl").code == 0
    st = cli("--sim", IGB, "--json", "state", "status")
    assert st.code == 0 and st.json()["in_sync"] is True and st.json()["same_as_applied"] is True, st.out
    other = dict(doc, pfs=[dict(doc["pfs"][0], **{"total-vfs": 5})])  # one value differs: another document
    from sriovctl.state.desired import parse

    assert parse(other, "x").digest != parse(doc, "x").digest
