"""State keys for VFs owned at run time (issue 20): `resource-name` per VF entry (the device plugin's rule),
`resource-prefix` and `physical-network` per PF; a VF handed out under a resource name keeps the attributes its
user set while it is in use — a notice, not a change, not drift."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers import cli, hold_vfio
from sriovctl.host.sim.catalog import reset_sim
from sriovctl.state.desired import StateError, parse


@pytest.mark.parametrize(("entry", "path", "problem"), [
    ({"vfs": [{"id": 0, "resource-name": "bad-name"}]}, "pfs[0].vfs[0].resource-name", "not a device plugin resource name"),
    ({"vfs": [{"id": 0, "resource-name": 7}]}, "pfs[0].vfs[0].resource-name", "not a device plugin resource name"),
    ({"resource-prefix": "Example.COM"}, "pfs[0].resource-prefix", "not a valid name"),
    ({"resource-prefix": "a/b"}, "pfs[0].resource-prefix", "not a valid name"),
    ({"physical-network": "phys:net"}, "pfs[0].physical-network", "not a valid name"),
    ({"physical-network": ""}, "pfs[0].physical-network", "not a valid name"),
])
def test_bad_names_are_refused_by_path(entry: dict[str, object], path: str, problem: str) -> None:
    with pytest.raises(StateError) as e:
        parse({"pfs": [{"name": "enp11s0f0", **entry}]}, "s.yaml")
    assert e.value.path == path and problem in e.value.message and e.value.exit_code == 65


def test_the_keys_are_read() -> None:
    st = parse({"pfs": [{"name": "ens2f0", "resource-prefix": "example.com", "physical-network": "physnet1",
                         "vfs": [{"id": "0-3", "resource-name": "sriov_net_a", "vlan-id": 10}]}]}, "s.yaml")
    (pf,) = st.pfs
    assert pf.resource_prefix == "example.com" and pf.physical_network == "physnet1"
    assert pf.vfs is not None and pf.vfs[0].resource == "sriov_net_a" and pf.vfs[0].ids == (0, 1, 2, 3)


def test_a_vf_in_use_under_a_resource_name_keeps_its_users_attributes(tmp_path: Path) -> None:
    reset_sim("igb-82576")
    f = tmp_path / "s.yaml"
    bind = {"pfs": [{"name": "enp11s0f0", "vfs": [{"id": "1-2", "driver": "vfio-pci"}]}]}
    f.write_text(yaml.safe_dump(bind))
    assert cli("--sim", "igb-82576", "state", "apply", str(f)).code == 0
    vf1 = cli("--sim", "igb-82576", "--json", "show", "enp11s0f0#1").json()["device"]
    hold_vfio(str(vf1["iommu_group"]["number"]))  # VF 1 handed to a DPDK process (as the plugin's user would)
    # its user set a VLAN meanwhile (sriov-cni at pod attach)
    assert cli("--sim", "igb-82576", "vf", "set", "enp11s0f0#1", "--vlan", "77", "--force").code == 0
    state = {"pfs": [{"name": "enp11s0f0", "vfs": [
        {"id": "1-2", "driver": "vfio-pci", "resource-name": "dpdk_vfs", "vlan-id": 0}]}]}
    f.write_text(yaml.safe_dump(state))
    plan = cli("--sim", "igb-82576", "--json", "state", "plan", str(f)).json()
    assert [c["target"] for c in plan["changes"]] == [], plan["changes"]  # VF 2 has VLAN 0 already; VF 1 is kept
    (notice,) = [n for n in plan["notices"] if n["kind"] == "run-time"]
    assert "enp11s0f0#1" in notice["text"] and "dpdk-testpmd" in notice["text"] and "dpdk_vfs" in notice["text"]
    assert plan["after"]["pfs"][0]["vfs"][1]["vlan-id"] == 77  # predicted as its user left it
    st = cli("--sim", "igb-82576", "--json", "state", "status", str(f)).json()
    assert st["changes"] == [] and st["drifted"] is False
    assert cli("--sim", "igb-82576", "state", "apply", str(f)).out == "no changes\n"
    assert cli("--sim", "igb-82576", "--json", "show", "enp11s0f0#1").json()["device"]["netlink"]["vlan"] == 77
    # without the resource name the state's VLAN is the state's again: a change (taking the VF needs --force)
    f.write_text(yaml.safe_dump({"pfs": [{"name": "enp11s0f0", "vfs": [{"id": "1-2", "driver": "vfio-pci",
                                                                       "vlan-id": 0}]}]}))
    plan = cli("--sim", "igb-82576", "--json", "state", "plan", str(f)).json()
    assert [c["target"] for c in plan["changes"]] == ["enp11s0f0#1"]
