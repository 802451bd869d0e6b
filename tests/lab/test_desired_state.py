"""Lab: the desired state on the real kernel (issue 13).

Topology `default`: apply 7 VFs with MACs, VLANs and two VFs on vfio-pci, checked with the guest's own
`ip -d link show` and driver links; apply again and `state show` → apply: zero writes; a state failing midway
(igb refuses a minimum rate) rolls back to `status --json` as before; `persist install` on the guest's /etc,
`systemd-analyze verify` on the unit, and a PF reset (`rmmod igb; modprobe igb`) brought back by the installed
udev rule under the guest's real systemd-udevd. The installed files are copied to lab/out/default/persist.

Topology `reboot` (the same hardware, booted again): those files put back in /etc, the unit's own ExecStart
(read from the unit file) run → the same state as the first boot left.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from labguest import LAB_OUT, set_numvfs, sh, wait_for

STATE_FILES = ("etc/sriovctl/state.yaml", "etc/systemd/system/sriovctl.service",
               "etc/udev/rules.d/70-sriovctl.rules")


def run(*args: str) -> tuple[int, str, str, Any]:
    from sriovctl.cli.main import run as cli_run

    out, err = io.StringIO(), io.StringIO()
    code, ctx = cli_run(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue(), ctx


def pf_netdev(pf: str) -> str:
    return os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0]


def macs(i: int) -> str:
    return f"52:54:00:5a:00:{i:02x}"


def state_doc(ifname: str) -> dict[str, Any]:
    return {"pfs": [{"name": ifname, "total-vfs": 7, "vfs": [
        *({"id": i, "mac-address": macs(i), "vlan-id": 100 + i, "spoof-check": True} for i in range(5)),
        {"id": "5-6", "driver": "vfio-pci", "vlan-id": 200}]}]}


def vf_addr(pf: str, i: int) -> str:
    return os.path.basename(os.readlink(f"/sys/bus/pci/devices/{pf}/virtfn{i}"))


def driver(addr: str) -> str | None:
    link = f"/sys/bus/pci/devices/{addr}/driver"
    return os.path.basename(os.readlink(link)) if os.path.islink(link) else None


def check_applied(pf: str, ifname: str) -> None:
    """The guest's own tools: `ip -d link show` per VF, and each VF's driver link."""
    out = sh("ip", "-d", "link", "show", "dev", ifname)
    lines = {int(m.group(1)): m.group(0) for m in re.finditer(r"vf (\d+)\s.*", out)}
    assert sorted(lines) == list(range(7)), out
    for i in range(5):
        assert f"link/ether {macs(i)}" in lines[i] and f"vlan {100 + i}" in lines[i], lines[i]
    for i in (5, 6):
        assert "vlan 200" in lines[i], lines[i]
        assert driver(vf_addr(pf, i)) == "vfio-pci"
    for i in range(5):
        assert driver(vf_addr(pf, i)) == "igbvf"


@pytest.mark.lab("default")
def test_apply_7_vfs_then_again_zero_writes(host, pfs) -> None:  # type: ignore[no-untyped-def]
    (pf,) = pfs
    set_numvfs(host, pf, 2)  # a count to change: 2 → 0 → 7
    ifname = pf_netdev(pf)
    f = LAB_OUT / "state-7vfs.yaml"
    f.write_text(json.dumps(state_doc(ifname)))
    code, out, err, _ = run("state", "plan", str(f))
    # 2 → 0 → 7, MAC and VLAN on VFs 0-4, VLAN on 5-6 (spoof-check on is a new VF's already), 2 bindings
    assert code == 0 and out.startswith(f"16 changes on {pf} ({ifname}):"), out + err
    (LAB_OUT / "state-plan.txt").write_text(out)
    t0 = time.monotonic()
    code, out, err, ctx = run("state", "apply", str(f))
    took = time.monotonic() - t0
    assert code == 0, out + err
    (LAB_OUT / "state-apply.txt").write_text(f"{out}\n{took:.2f} s\n")
    check_applied(pf, ifname)
    t0 = time.monotonic()
    code, out, err, ctx = run("state", "apply", str(f))
    again = time.monotonic() - t0
    assert code == 0 and out == "no changes\n", out + err
    assert ctx.host.writes == []
    # state show → apply: a no-op, zero writes
    code, shown, err, _ = run("state", "show", pf)
    assert code == 0, err
    g = LAB_OUT / "state-show.yaml"
    g.write_text(shown)
    code, out, err, ctx = run("state", "apply", str(g))
    assert code == 0 and out == "no changes\n" and ctx.host.writes == [], out + err
    code, out, err, _ = run("state", "status", str(f))  # the host matches it; state-show.yaml was applied last
    assert code == 0 and "not the last state applied" in out, out + err
    (LAB_OUT / "state-timing.json").write_text(json.dumps({"apply_s": round(took, 2), "reapply_s": round(again, 2)}))


@pytest.mark.lab("default")
def test_a_failure_midway_rolls_back_to_the_same_status(host, pfs) -> None:  # type: ignore[no-untyped-def]
    (pf,) = pfs
    set_numvfs(host, pf, 0)
    ifname = pf_netdev(pf)
    code, before, err, _ = run("status", "--json")
    assert code == 0, err
    # 0 → 3 VFs, a MAC and VLAN set on VF 0, then igb refuses VF 1's minimum rate (igb_ndo_set_vf_bw: EINVAL)
    f = LAB_OUT / "state-fails.yaml"
    f.write_text(json.dumps({"pfs": [{"name": ifname, "total-vfs": 3, "vfs": [
        {"id": 0, "mac-address": "52:54:00:5a:01:00", "vlan-id": 33}, {"id": 1, "min-tx-rate": 10}]}]}))
    code, out, err, _ = run("state", "apply", str(f), "--json")
    (LAB_OUT / "state-rollback.json").write_text(out)
    assert code == 7, out + err
    doc = json.loads(out)["state_apply"]
    assert doc["rolled_back"] and doc["restored"] and doc["result"] == "Failed"
    kinds = [c["kind"] for c in doc["applied"]]
    assert "vf-count" in kinds and "vf-attr" in kinds, kinds
    code, after, err, _ = run("status", "--json")
    assert code == 0 and json.loads(after) == json.loads(before)
    assert Path(f"/sys/bus/pci/devices/{pf}/sriov_numvfs").read_text().strip() == "0"


@pytest.mark.lab("default")
def test_rollback_restores_shared_and_unknown_macs_and_the_count(host, pfs) -> None:  # type: ignore[no-untyped-def]
    """Issue 18 on igb: two VFs share a MAC (`vf set --force`; refused without it), a third has a MAC no state
    names, the state changes the count (4 → 0 → 3) and then fails (igb refuses a minimum rate): exit 7, and
    the checkpoint — the host as it was, shared MAC included — is what `ip` and `state show` read afterwards."""
    (pf,) = pfs
    set_numvfs(host, pf, 4)
    ifname = pf_netdev(pf)
    shared, unknown = "52:54:00:5a:02:aa", "52:54:00:5a:02:bb"
    assert run("vf", "set", f"{ifname}#0", "--mac", shared)[0] == 0
    code, out, err, _ = run("vf", "set", f"{ifname}#1", "--mac", shared)
    assert code == 77 and "already the MAC of" in err, out + err
    code, out, err, _ = run("vf", "set", f"{ifname}#1", "--mac", shared, "--force")
    assert code == 0, out + err
    assert run("vf", "set", f"{ifname}#2", "--mac", unknown)[0] == 0
    code, before, err, _ = run("state", "show", pf, "--json")
    assert code == 0, err
    shown = LAB_OUT / "state-shared-macs.yaml"
    shown.write_text(run("state", "show", pf)[1])
    assert run("state", "validate", str(shown))[0] == 0  # the host as it is is a valid state
    f = LAB_OUT / "state-fails-shared.yaml"
    f.write_text(json.dumps({"pfs": [{"name": ifname, "total-vfs": 3, "vfs": [
        {"id": 0, "mac-address": "52:54:00:5a:02:cc", "vlan-id": 34}, {"id": 1, "min-tx-rate": 10}]}]}))
    t0 = time.monotonic()
    applied, out, err, _ = run("state", "apply", str(f), "--json")
    took = time.monotonic() - t0
    (LAB_OUT / "state-rollback-shared.json").write_text(out)
    assert applied == 7, out + err
    doc = json.loads(out)["state_apply"]
    assert doc["rolled_back"] and doc["restored"] and doc["result"] == "Failed"
    assert [c["after"] for c in doc["applied"] if c["kind"] == "vf-count"] == [0, 3]
    code, after, err, _ = run("state", "show", pf, "--json")
    assert code == 0 and json.loads(after)["state"] == json.loads(before)["state"], after
    ip = sh("ip", "-d", "link", "show", "dev", ifname)
    lines = {int(m.group(1)): m.group(0) for m in re.finditer(r"vf (\d+)\s.*", ip)}
    assert sorted(lines) == [0, 1, 2, 3], ip
    assert f"link/ether {shared}" in lines[0] and f"link/ether {shared}" in lines[1], ip
    assert f"link/ether {unknown}" in lines[2], ip
    (LAB_OUT / "state-rollback-shared.txt").write_text(f"state apply: exit {applied} in {took:.2f} s\n{ip}")
    set_numvfs(host, pf, 0)


@pytest.mark.lab("default")
def test_persist_install_and_a_pf_reset_brought_back_by_udev(host, pfs) -> None:  # type: ignore[no-untyped-def]
    (pf,) = pfs
    set_numvfs(host, pf, 0)
    ifname = pf_netdev(pf)
    f = LAB_OUT / "state-7vfs.yaml"
    f.write_text(json.dumps(state_doc(ifname)))
    code, out, err, _ = run("persist", "install", str(f))
    assert code == 0, out + err
    unit = Path("/etc/systemd/system/sriovctl.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start.split("=", 1)[1].split()[0].startswith("/")
    p = subprocess.run(["systemd-analyze", "verify", "/etc/systemd/system/sriovctl.service"],
                       capture_output=True, text=True, check=False)
    (LAB_OUT / "systemd-analyze-verify.txt").write_text(f"rc={p.returncode}\n{p.stdout}{p.stderr}")
    assert p.returncode == 0 and "sriovctl.service" not in p.stderr, p.stderr
    # the files as installed, for the second boot
    keep = LAB_OUT / "persist"
    for rel in STATE_FILES:
        (keep / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f"/{rel}", keep / rel)
    code, out, err, _ = run("state", "apply", "/etc/sriovctl/state.yaml")
    assert code == 0, out + err
    code, first_boot, err, _ = run("state", "show", "--json")
    (keep / "state-show.json").write_text(first_boot)
    # PF reset: the real systemd-udevd with the rule installed; no other command
    sh("udevadm", "control", "--reload")
    sh("udevadm", "settle", "--timeout=60", check=False)
    t0 = time.monotonic()
    sh("rmmod", "igb")
    sh("modprobe", "igb")

    def back() -> bool:
        try:
            if Path(f"/sys/bus/pci/devices/{pf}/sriov_numvfs").read_text().strip() != "7":
                return False
            name = pf_netdev(pf)
            check_applied(pf, name)
            return True
        except (OSError, AssertionError, IndexError):
            return False

    wait_for(back, "the udev rule to re-apply the PF's state", timeout=600)
    took = time.monotonic() - t0
    code, after, err, _ = run("state", "show", "--json")
    assert json.loads(after)["state"] == json.loads(first_boot)["state"]
    (LAB_OUT / "pf-reset.json").write_text(json.dumps({"rmmod_modprobe_to_state_s": round(took, 2)}))
    code, out, err, _ = run("state", "status")
    assert code == 0 and "in sync" in out, out + err
    assert run("persist", "status")[0] == 0
    sh("udevadm", "settle", "--timeout=60", check=False)
    code, out, err, _ = run("persist", "uninstall")
    assert code == 0 and not os.path.exists("/etc/udev/rules.d/70-sriovctl.rules"), out + err
    sh("udevadm", "control", "--reload")


@pytest.mark.lab("reboot")
def test_a_second_boot_reaches_the_state_by_the_units_own_command(host, pfs) -> None:  # type: ignore[no-untyped-def]
    (pf,) = pfs
    kept = LAB_OUT.parent / "default" / "persist"
    assert kept.is_dir(), "the default boot's persist test did not run"
    for rel in STATE_FILES:
        Path(f"/{rel}").parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept / rel, f"/{rel}")
    unit = Path("/etc/systemd/system/sriovctl.service").read_text()
    argv = next(line for line in unit.splitlines() if line.startswith("ExecStart=")).split("=", 1)[1].split()
    assert os.access(argv[0], os.X_OK), argv
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, check=False)  # no shell, as systemd runs it
    took = time.monotonic() - t0
    (LAB_OUT / "second-boot.txt").write_text(f"{' '.join(argv)}\nrc={p.returncode} {took:.2f} s\n{p.stdout}{p.stderr}")
    assert p.returncode == 0, p.stdout + p.stderr
    check_applied(pf, pf_netdev(pf))
    code, now, err, _ = run("state", "show", "--json")
    assert json.loads(now)["state"] == json.loads((kept / "state-show.json").read_text())["state"]
    code, out, err, ctx = run("state", "apply", "/etc/sriovctl/state.yaml")
    assert code == 0 and out == "no changes\n" and ctx.host.writes == [], out + err


@pytest.mark.lab("netdevsim")
def test_apply_and_reapply_256_vfs_on_netdevsim() -> None:
    """The scale issue's testbed: a PF not on PCI, its VF count and every VF's MAC, VLAN and trust from a state,
    read back by the raw netlink reader; applied again: no changes, zero writes."""
    from rawlink import read_vfs

    from labguest import netdevsim

    bus, port = netdevsim()
    count = 256
    doc = {"pfs": [{"name": port, "total-vfs": count, "vfs": [
        {"id": i, "mac-address": f"02:5a:00:00:{i >> 8:02x}:{i & 0xFF:02x}", "vlan-id": 300 + i % 7, "trust": True}
        for i in range(count)]}]}
    f = LAB_OUT / "state-256.json"
    f.write_text(json.dumps(doc))
    t0 = time.monotonic()
    code, out, err, ctx = run("state", "apply", str(f), "--json")
    took = time.monotonic() - t0
    assert code == 0, out + err
    res = json.loads(out)
    raw = read_vfs(port)
    assert raw.num_vf == count and sorted(raw.vfs) == list(range(count))
    for i in range(count):  # every VF, as the kernel reports it
        v = raw.vfs[i]
        assert (v.mac, v.vlan, v.trust) == (f"02:5a:00:00:{i >> 8:02x}:{i & 0xFF:02x}", 300 + i % 7, 1), (i, v)
    t0 = time.monotonic()
    code, again, err, ctx = run("state", "apply", str(f))
    took2 = time.monotonic() - t0
    assert code == 0 and again == "no changes\n" and ctx.host.writes == [], again + err
    (LAB_OUT / "state-256.json.result").write_text(json.dumps({
        "vfs": count, "apply_s": round(took, 3), "reapply_s": round(took2, 3), "writes": res["writes"],
        "netlink_requests": res["netlink_requests"]}))
    Path(f"{bus}/sriov_numvfs").write_text("0")
