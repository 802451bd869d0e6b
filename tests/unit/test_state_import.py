"""state import (issue 13): nmstate's sr-iov block, systemd-networkd's [SR-IOV] sections with a .link's VF
count, and the SR-IOV device plugin's pfNames ranges become our state; faults are named by the source's own
path; the result reads back as a valid state and applies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from importdocs import LINK, NETWORK, NMSTATE, PLUGIN

from helpers import cli, validate


def test_nmstate_becomes_a_state_that_applies(tmp_path: Path) -> None:
    f = tmp_path / "nm.yaml"
    f.write_text(NMSTATE)
    r = cli("--json", "state", "import", str(f))
    assert r.code == 0, r.err
    doc = r.json()
    validate(doc, "state-import")
    assert doc["kind"] == "nmstate" and doc["state"]["pfs"] == [{"name": "enp11s0f0", "total-vfs": 4, "vfs": [
        {"id": 0, "mac-address": "02:11:22:33:44:55", "spoof-check": True, "trust": False, "vlan-id": 100, "qos": 5,
         "vlan-proto": "802.1q"}, {"id": 1, "max-tx-rate": 0}]}]
    out = tmp_path / "ours.yaml"
    out.write_text(cli("state", "import", str(f)).out)
    assert cli("state", "validate", str(out)).code == 0
    r = cli("--sim", "igb-82576", "state", "apply", str(out))
    assert r.code == 0, r.err
    vf0 = cli("--sim", "igb-82576", "--json", "state", "show", "enp11s0f0").json()["state"]["pfs"][0]["vfs"][0]
    assert (vf0["mac-address"], vf0["vlan-id"], vf0["qos"]) == ("02:11:22:33:44:55", 100, 5)


def test_networkd_network_and_link_files(tmp_path: Path) -> None:
    (tmp_path / "10-pf.network").write_text(NETWORK)
    (tmp_path / "10-pf.link").write_text(LINK)
    r = cli("--json", "state", "import", str(tmp_path / "10-pf.network"), str(tmp_path / "10-pf.link"))
    assert r.code == 0, r.err
    assert r.json()["kind"] == "networkd" and r.json()["state"] == {"pfs": [{"name": "enp11s0f0", "total-vfs": 4, "vfs": [
        {"id": 0, "vlan-id": 5, "spoof-check": False, "link-state": "enable"},
        {"id": 1, "mac-address": "02:00:00:00:00:02", "trust": True}]}]}


def test_device_plugin_ranges(tmp_path: Path) -> None:
    f = tmp_path / "config.json"
    f.write_text(json.dumps(PLUGIN))
    r = cli("--json", "state", "import", str(f))
    assert r.code == 0, r.err
    assert r.json()["state"]["pfs"] == [
        {"name": "enp11s0f0", "vfs": [{"id": "0-1", "driver": "vfio-pci", "resource-name": "intel_sriov_dpdk"}]},
        {"name": "enp11s0f1", "vfs": [{"id": "2-3,5", "driver": "igbvf", "resource-name": "intel_sriov_netdevice"}]}]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("nm.yaml", NMSTATE.replace("qos: 5", "qos: 5\n        bogus: 1"),
     "nm.yaml: interfaces[0].ethernet.sr-iov.vfs[0].bogus: unknown key"),
    ("nm.yaml", NMSTATE.replace("vlan-id: 100", "vlan-id: 5000"),
     "nm.yaml: interfaces[0].ethernet.sr-iov.vfs[0].vlan-id: must be 0..4095, got 5000"),
    ("nm.yaml", "interfaces: [{name: 'a/b', ethernet: {sr-iov: {total-vfs: 1}}}]",
     "nm.yaml: interfaces[0].name: not a network interface name"),
    ("a.network", NETWORK.replace("Trust=true", "Trust=maybe"), "[SR-IOV] (line 17) Trust: must be a boolean"),
    ("a.network", NETWORK.replace("Name=enp11s0f0", "Name=enp*"), "[Match]: needs exactly one interface name"),
    ("a.network", NETWORK.replace("VLANId=5", "VLANId=9000"), "a.network: [SR-IOV] (line 10) VLANId: must be 0..4095, got 9000"),
    ("a.network", NETWORK.replace("[SR-IOV]\nVirtualFunction=1", "[SR-IOV]\nPromisc=1"), "Promisc: unknown key"),
    ("c.json", json.dumps({"resourceList": [{"selectors": {"pfNames": ["../x#0"]}}]}),
     "c.json: resourceList[0].selectors.pfNames[0]: not PF or PF#RANGE"),
    ("c.json", json.dumps({"resourceList": [{"selectors": {"pfNames": ["enp1#0-x"], "drivers": ["vfio-pci"]}}]}),
     "c.json: resourceList[0].selectors.pfNames[0].id"),
])
def test_faults_are_named_in_the_sources_terms(name: str, text: str, message: str, tmp_path: Path) -> None:
    f = tmp_path / name
    f.write_text(text)
    r = cli("state", "import", str(f))
    assert r.code == 65 and message in r.err and r.err.count("\n") == 1 and r.out == "", r.err
    assert yaml.safe_load(NMSTATE)  # the fixtures themselves are YAML
