"""`state export KIND` (issue 20): golden files on the simulated igb-82576 and e810-2x256, the device plugin's
config against a schema written from the plugin's documented fields, `state import` of an export giving back the
VF ranges, drivers and resource names (random states), and the output file written beside and renamed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import cli, validate
from sriovctl.host.sim.catalog import reset_sim

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "export"
PLUGIN_SCHEMA = json.loads((FIXTURES / "device-plugin-config.schema.json").read_text())
KINDS = {"device-plugin": [], "configmap": ["--configmap", "node-1"], "network-attachment": [], "nfd": [],
         "nova-compute": ["--part", "compute"], "nova-api": ["--part", "api"], "nova-neutron": ["--part", "neutron"]}
STATES: dict[str, dict[str, Any]] = {
    "igb-82576": {"pfs": [
        {"name": "enp11s0f0", "resource-prefix": "example.com", "physical-network": "physnet1", "vfs": [
            {"id": "0-3", "resource-name": "igb_net", "vlan-id": 100, "trust": True},
            {"id": "4-6", "driver": "vfio-pci", "resource-name": "igb_dpdk"}]},
        {"name": "enp11s0f1", "vfs": [{"id": "0-1", "driver": "vfio-pci"}, {"id": "2-6", "driver": "host"}]}]},
    "e810-2x256": {"pfs": [
        {"pci-address": "0000:17:00.0", "physical-network": "physnet2",
         "vfs": [{"id": "0-255", "resource-name": "e810_a", "spoof-check": False}]},
        {"name": "ens2f1", "vfs": [{"id": "0-127,200", "resource-name": "e810_b", "vlan-id": 7},
                                   {"id": "128-199", "driver": "vfio-pci", "resource-name": "e810_vfio"}]}]},
}


def _kind(name: str) -> str:
    return "device-plugin" if name == "configmap" else name.split("-")[0] if name.startswith("nova") else name


@pytest.mark.parametrize("sim", sorted(STATES))
@pytest.mark.parametrize("name", sorted(KINDS))
def test_golden(sim: str, name: str, tmp_path: Path) -> None:
    reset_sim(sim)
    f = tmp_path / "state.yaml"
    f.write_text(yaml.safe_dump(STATES[sim]))
    r = cli("--sim", sim, "state", "export", _kind(name), str(f), *KINDS[name])
    assert r.code == 0, r.err
    golden = FIXTURES / sim / f"{name}.txt"
    if os.environ.get("SRIOVCTL_WRITE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(r.out)
    assert r.out == golden.read_text()
    if name == "device-plugin":
        jsonschema.validate(json.loads(r.out), PLUGIN_SCHEMA)
    if name == "configmap":
        cm = yaml.safe_load(r.out)
        assert cm["kind"] == "ConfigMap"
        jsonschema.validate(json.loads(cm["data"]["node-1"]), PLUGIN_SCHEMA)
    if name == "network-attachment":
        for nad in yaml.safe_load_all(r.out):
            assert nad["kind"] == "NetworkAttachmentDefinition" and json.loads(nad["spec"]["config"])["type"] == "sriov"
    if name == "nfd":
        assert len(r.out.encode()) <= 64 * 1024
        assert all(line.startswith(("#", "sriovctl.io/")) for line in r.out.splitlines())


def test_without_resource_names_one_resource_per_pf_and_driver() -> None:
    """The host as `state show` prints it (no stored state): igb's two ports, their VFs on igbvf."""
    reset_sim("igb-82576")
    assert cli("--sim", "igb-82576", "vf", "bind", "enp11s0f0#5-6", "vfio-pci").code == 0
    r = cli("--sim", "igb-82576", "state", "export", "device-plugin")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    jsonschema.validate(doc, PLUGIN_SCHEMA)
    assert {(x["resourceName"], tuple(x["selectors"][0]["pfNames"])) for x in doc["resourceList"]} == {
        ("enp11s0f0_igbvf", ("enp11s0f0#0-4",)), ("enp11s0f0_vfio_pci", ("enp11s0f0#5-6",)),
        ("enp11s0f1_igbvf", ("enp11s0f1#0-6",))}
    assert all("resourcePrefix" not in x and x["deviceType"] == "netDevice" for x in doc["resourceList"])


def test_output_is_written_beside_and_renamed_and_json_is_one_document(tmp_path: Path) -> None:
    reset_sim("igb-82576")
    out = tmp_path / "features.d" / "sriovctl"
    r = cli("--sim", "igb-82576", "state", "export", "nfd", "--output", str(out))
    assert r.code == 66 and "no directory" in r.err and not out.parent.exists()  # EX_NOINPUT
    out.parent.mkdir()
    r = cli("--sim", "igb-82576", "--json", "state", "export", "nfd", "--output", str(out))
    assert r.code == 0, r.err
    validate(r.json(), "state-export")
    assert out.read_text() == r.json()["text"] and os.listdir(out.parent) == ["sriovctl"]  # no dot-file left
    assert cli("--sim", "igb-82576", "state", "export", "nova", "--configmap", "n").code == 64


_entry = st.fixed_dictionaries({"lo": st.integers(0, 6), "n": st.integers(1, 3),
                                "driver": st.sampled_from(["vfio-pci", "igbvf", None]),
                                "res": st.sampled_from(["net_a", "net_b", "dpdk", None])})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_entry, min_size=1, max_size=4))
def test_import_of_an_export_gives_back_ranges_drivers_and_names(tmp_path: Path, entries: list[dict[str, Any]]) -> None:
    """A state with VF ranges on the igb's first port, each on a driver and under a resource name (or none: then
    named by the rule); its device-plugin export imported again names the same VFs, drivers and resources."""
    used: set[int] = set()
    vfs = []
    for e in entries:
        ids = [i for i in range(e["lo"], min(e["lo"] + e["n"], 7)) if i not in used]
        if not ids or (e["driver"] is None and e["res"] is None):
            continue
        used.update(ids)
        vf: dict[str, Any] = {"id": ",".join(map(str, ids))}
        if e["driver"]:
            vf["driver"] = e["driver"]
        if e["res"]:
            vf["resource-name"] = e["res"]
        vfs.append(vf)
    if not vfs:
        return
    reset_sim("igb-82576")
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"pfs": [{"name": "enp11s0f0", "vfs": vfs}]}))
    r = cli("--sim", "igb-82576", "state", "export", "device-plugin", str(f))
    assert r.code == 0, r.err
    exported = tmp_path / "config.json"
    exported.write_text(r.out)
    back = cli("--json", "state", "import", str(exported))
    assert back.code == 0, back.err
    got: dict[int, tuple[str | None, str | None]] = {}
    for pf in back.json()["state"]["pfs"]:
        assert pf["name"] == "enp11s0f0"
        for v in pf.get("vfs", []):
            for part in str(v["id"]).split(","):
                a, _, b = part.partition("-")
                for i in range(int(a), int(b or a) + 1):
                    got[i] = (v.get("driver"), v.get("resource-name"))
    want: dict[int, tuple[str | None, str | None]] = {}
    for v in vfs:
        for i in map(int, v["id"].split(",")):
            driver = v.get("driver") or "igbvf"  # no driver asked: the one the VF has
            want[i] = (driver, v.get("resource-name") or f"enp11s0f0_{driver.replace('-', '_')}")
    # a resource whose VFs are on several drivers imports without one (the plugin's drivers list is a filter)
    assert {i: r for i, (d, r) in got.items()} == {i: r for i, (d, r) in want.items()}
    for i, (d, _) in got.items():
        assert d is None or d == want[i][0]
