"""Lab: the Ansible collection on the real kernel (issue 20). Topology `default`: `ansible-playbook` with
`sriovctl.sriov.sriovctl_state` gives the 82576's first port four VFs, MAC and VLAN on two, the other two on
vfio-pci — checked with the guest's own `ip -d link show` and driver links; a second run reports no change.
The playbook runs and its recap are kept in lab/out/default/ansible-*.txt."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from labguest import LAB_OUT, set_numvfs, sh

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _vf_driver(pf: str, i: int) -> str | None:
    vf = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{pf}/virtfn{i}"))
    link = f"/sys/bus/pci/devices/{vf}/driver"
    return os.path.basename(os.readlink(link)) if os.path.islink(link) else None


@pytest.mark.lab("default")
def test_ansible_playbook_configures_the_82576_and_then_changes_nothing(host, pfs) -> None:  # type: ignore[no-untyped-def]
    (pf,) = pfs
    set_numvfs(host, pf, 0)
    ifname = os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0]
    work = Path(tempfile.mkdtemp(prefix="ansible-"))
    env = dict(os.environ, HOME=str(work), ANSIBLE_COLLECTIONS_PATH=str(work / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(work / "tmp"), ANSIBLE_REMOTE_TEMP=str(work / "tmp"),
               PATH=f"{BIN}:{os.environ['PATH']}")
    galaxy = str(BIN / "ansible-galaxy")
    r = subprocess.run([galaxy, "collection", "build", str(REPO / "ansible"), "--output-path", str(work)], env=env,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    (tarball,) = work.glob("sriovctl-sriov-*.tar.gz")
    r = subprocess.run([galaxy, "collection", "install", str(tarball), "-p", str(work / "collections")], env=env,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    desired = {"pfs": [{"name": ifname, "total-vfs": 4, "vfs": [
        {"id": 0, "mac-address": "52:54:00:a0:00:00", "vlan-id": 300},
        {"id": 1, "mac-address": "52:54:00:a0:00:01", "vlan-id": 301},
        {"id": "2-3", "vlan-id": 302, "driver": "vfio-pci"}]}]}
    (work / "inventory.ini").write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    (work / "site.yml").write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"sriovctl.sriov.sriovctl_state": {"bin": str(BIN / "sriovctl"), "desired": desired}}]}]))
    recaps = []
    for run in (1, 2):
        r = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(work / "inventory.ini"), str(work / "site.yml")],
                           env=env, capture_output=True, text=True, check=False)
        (LAB_OUT / f"ansible-run{run}.txt").write_text(r.stdout + r.stderr)
        assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
        m = re.search(r"^localhost\s+:\s+(.*)$", r.stdout, re.M)
        assert m is not None, r.stdout
        recaps.append(dict(re.findall(r"(\w+)=(\d+)", m.group(1))))
        if run == 1:
            out = sh("ip", "-d", "link", "show", "dev", ifname)
            vfs = {int(m.group(1)): m.group(0) for m in re.finditer(r"vf (\d+)\s.*", out)}
            assert sorted(vfs) == [0, 1, 2, 3], out
            for i in (0, 1):
                assert f"link/ether 52:54:00:a0:00:0{i}" in vfs[i] and f"vlan {300 + i}" in vfs[i], vfs[i]
                assert _vf_driver(pf, i) == "igbvf"
            for i in (2, 3):
                assert "vlan 302" in vfs[i] and _vf_driver(pf, i) == "vfio-pci", vfs[i]
    assert recaps[0]["changed"] == "1" and recaps[1]["changed"] == "0", recaps
    set_numvfs(host, pf, 0)
