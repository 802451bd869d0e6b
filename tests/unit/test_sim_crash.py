"""The simulated kernel under crashes and concurrency, checked without the simulator's code.

A real kernel finishes an sriov_numvfs write even when the writer is killed, and serialises concurrent
changes (device_lock, rtnl). So after SIGKILL at any step of `vf enable` of 256 VFs the PF must show the
count from before or after the write, fully formed: sriov_numvfs = virtfn links = VF directories whose physfn
points back = netlink entries, no link that leads nowhere. And 8 writers on one simulated host lose nothing.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import cli
from sriovctl.host.sim.catalog import open_sim, sim_dir
from sriovctl.host.sim.tree import KILL_HOOK

SIM = "e810-1x256"
PF = "0000:17:00.0"
ENABLE = ["--sim", SIM, "vf", "enable", "ens2f0", "256"]
SPEC = """
name: e810-1x256
description: One E810-C port (the first of the catalog's e810-2x256) for crash tests.
kernel: {release: 6.1.0-sim-amd64, modules: [ice, iavf, vfio_pci], cmdline: "ro intel_iommu=on"}
iommu: {units: [dmar0], groups: true}
devices:
  - {address: "0000:00:00.0", kind: host-bridge, vendor: "8086", device: "2020", class: "060000"}
  - address: "0000:16:02.0"
    kind: root-port
    acs: true
    children:
      - {address: "0000:17:00.0", kind: nic, model: intel-e810, netdev: ens2f0, mac: "b4:96:91:aa:00:00"}
"""


@pytest.fixture(autouse=True)
def _one_port_host(tmp_path: Path) -> None:
    spec = tmp_path / "e810-1x256.yaml"
    spec.write_text(SPEC)
    r = cli("sim", "create", SIM, "--from", str(spec))
    assert r.code == 0, r.err


def kernel_view(root: Path, pf: str) -> dict[str, object]:
    """What a reader of the tree sees, read with os/json only (no sriovctl code)."""
    pfdir = Path(os.path.realpath(root / "sys/bus/pci/devices" / pf))
    numvfs = int((pfdir / "sriov_numvfs").read_text())
    virtfns = [n for n in os.listdir(pfdir) if n.startswith("virtfn")]
    targets = {os.path.realpath(pfdir / n) for n in virtfns}
    parent = pfdir.parent
    vf_dirs = {str(parent / d) for d in os.listdir(parent)
               if (parent / d / "physfn").is_symlink() and os.path.realpath(parent / d / "physfn") == str(pfdir)}
    netlink = len(json.loads((root / "sim.json").read_text())["vfinfo"].get(pf, []))
    dangling = []
    for d in ("sys/bus/pci/devices", "sys/class/net", *(f"sys/bus/pci/drivers/{x}" for x in
                                                        os.listdir(root / "sys/bus/pci/drivers"))):
        for n in os.listdir(root / d):
            p = root / d / n
            if p.is_symlink() and not p.exists():
                dangling.append(f"{d}/{n}")
    for g in os.listdir(root / "sys/kernel/iommu_groups"):
        members = root / "sys/kernel/iommu_groups" / g / "devices"
        if not members.is_dir() or not os.listdir(members):
            dangling.append(f"group {g} without devices")
        for m in os.listdir(members) if members.is_dir() else []:
            if not (members / m).exists():
                dangling.append(f"group {g} member {m}")
    return {"numvfs": numvfs, "virtfn": len(virtfns), "virtfn_targets_ok": targets == vf_dirs,
            "vf_dirs": len(vf_dirs), "netlink": netlink, "dangling": dangling,
            "journal": (root / "sim-journal.json").exists()}


def assert_whole(root: Path, allowed: tuple[int, ...]) -> int:
    v = kernel_view(root, PF)
    n = v["numvfs"]
    assert n in allowed, v
    assert (v["virtfn"], v["vf_dirs"], v["netlink"]) == (n, n, n), v
    assert v["virtfn_targets_ok"] and v["dangling"] == [] and not v["journal"], v
    return int(str(n))


def _killed_enable(k: int) -> int:
    """Fork; the child runs `vf enable … 256` in-process and is SIGKILLed at its k-th change of the tree."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.environ[KILL_HOOK] = str(k)
            devnull = open(os.devnull, "w")  # noqa: SIM115
            from sriovctl.cli.main import run

            code, _ = run(ENABLE, out=devnull, err=devnull)
            os._exit(code)
        except BaseException:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    return status


def test_kill_9_at_any_step_of_enabling_256_vfs() -> None:
    open_sim(SIM)
    root = sim_dir() / SIM
    assert cli("--sim", SIM, "vf", "disable", "ens2f0", "--force").code == 0
    assert_whole(root, (0,))
    # One full run counts the changes the simulated kernel makes for this enable.
    env = {**os.environ, KILL_HOOK: "0"}
    assert subprocess.run([sys.executable, "-m", "sriovctl.cli.main", *ENABLE], env=env, capture_output=True).returncode == 0
    assert_whole(root, (256,))
    assert cli("--sim", SIM, "vf", "disable", "ens2f0", "--force").code == 0
    from sriovctl.host.sim.tree import SimTree

    probe = SimTree(str(root))
    with probe.locked():
        from sriovctl.host.sim.kernel import enable_vfs, journaled
        from sriovctl.pci.address import PciAddress

        before = probe._changes
        with journaled(probe, {PciAddress.parse(PF): 256}):
            enable_vfs(probe, PciAddress.parse(PF), 256)
        total = probe._changes - before
    assert total > 5000  # every file, link and state save of 256 VFs
    assert cli("--sim", SIM, "vf", "disable", "ens2f0", "--force").code == 0
    ks = sorted({1, 2, 3, total - 1, total, *(int(1 + i * (total - 1) / 52) for i in range(53))})
    assert len(ks) >= 50
    outcomes = {0: 0, 256: 0}
    for i, k in enumerate(ks):
        status = _killed_enable(k)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (k, status)
        if i % 6 == 0:  # the next command (any: it opens the simulated kernel, which completes the write)
            r = cli("--sim", SIM, "status")
            assert r.code == 0, (k, r.err)
        else:
            open_sim(SIM)
        n = assert_whole(root, (0, 256))
        outcomes[n] += 1
        if n and i % 6 == 0:
            show = cli("--sim", SIM, "--json", "show", "ens2f0#255")
            assert show.code == 0 and show.json()["device"]["netlink"]["mac"] == "00:00:00:00:00:00", (k, show.err)
            assert cli("--sim", SIM, "vf", "disable", "ens2f0", "--force").code == 0
        elif n:
            open_sim(SIM).write(f"sys/bus/pci/devices/{PF}/sriov_numvfs", "0")
        assert_whole(root, (0,))
    print(f"{len(ks)} kills over {total} changes: PF after recovery {outcomes}")
    assert outcomes[256] >= 45, outcomes  # every kill after the journal is written completes the enable


def test_kill_9_on_a_timer_during_enable_and_disable() -> None:
    open_sim(SIM)
    root = sim_dir() / SIM
    assert cli("--sim", SIM, "vf", "disable", "ens2f0", "--force").code == 0
    rng = random.Random(1234)
    env = {k: v for k, v in os.environ.items() if k != KILL_HOOK}
    disable = ["--sim", SIM, "vf", "disable", "ens2f0", "--force"]

    def start(argv: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "sriovctl.cli.main", *argv], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    took = {}
    for argv in (ENABLE, disable):  # how long each takes whole on this machine, to aim the kills inside it
        t0 = time.monotonic()
        assert start(argv).wait() == 0
        took[argv[3]] = time.monotonic() - t0  # "enable" or "disable"
    killed = 0
    for i in range(40):
        n = assert_whole(root, (0, 256))
        argv = ENABLE if n == 0 else disable
        p = start(argv)
        time.sleep(rng.uniform(0.3, 0.95) * took[argv[3]])
        p.send_signal(signal.SIGKILL)
        rc = p.wait()
        killed += rc == -signal.SIGKILL
        r = cli("--sim", SIM, "status")
        assert r.code == 0, (i, r.err)
        assert_whole(root, (0, 256))
        if killed >= 10:
            break
    print(f"timer kills: {killed} of {i + 1} runs ended by SIGKILL before finishing (whole runs took {took})")
    assert killed >= 10
    assert cli("--sim", SIM, "vf", "enable", "ens2f0", "8", "--reset", "--force").code == 0
    assert_whole(root, (8,))


_WORKER = r"""
import io, sys
from sriovctl.cli.main import run
vf, rounds = sys.argv[1], int(sys.argv[2])
for v in range(1, rounds + 1):
    code, _ = run(["--sim", "igb-82576", "vf", "set", vf, "--vlan", str(v), "--qos", str(v % 8)],
                  out=io.StringIO(), err=sys.stderr)
    if code:
        sys.exit(code)
"""


def test_concurrent_writers_on_one_simulated_host_lose_nothing(tmp_path: Path) -> None:
    open_sim("igb-82576")
    vfs = [f"enp11s0f0#{i}" for i in range(7)] + ["enp11s0f1#0"]
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    procs = [subprocess.Popen([sys.executable, str(script), vf, "20"], stderr=subprocess.PIPE, text=True)
             for vf in vfs]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        assert "internal error" not in err
    for vf in vfs:
        nl = cli("--sim", "igb-82576", "--json", "show", vf).json()["device"]["netlink"]
        assert (nl["vlan"], nl["qos"]) == (20, 20 % 8), (vf, nl)
    assert not list((sim_dir() / "igb-82576").glob(".*.tmp"))


def test_first_use_of_a_builtin_host_from_several_processes_builds_it_once() -> None:
    env = {k: v for k, v in os.environ.items() if k != KILL_HOOK}
    procs = [subprocess.Popen([sys.executable, "-m", "sriovctl.cli.main", "--sim", "igb-82576", "--json", "status"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    assert len({o for o, _ in outs}) == 1  # every process saw the same, whole host
    assert not list(sim_dir().glob(".igb-82576.*.*"))  # no build or old tree left behind


_MIXED = r"""
import io, sys
from sriovctl.cli.main import run
role, rounds = sys.argv[1], int(sys.argv[2])
for v in range(1, rounds + 1):
    if role == "set":
        args = ["vf", "set", "enp11s0f0#%d" % (v % 7), "--vlan", str(v)]
    else:  # the other PF: its VF count up and down while the first PF's VFs are being set
        args = ["vf", "enable", "enp11s0f1", str(1 + v % 7), "--reset", "--force"]
    code, _ = run(["--sim", "igb-82576", *args], out=io.StringIO(), err=sys.stderr)
    if code:
        sys.exit(code)
"""


def test_writers_on_two_pfs_of_one_host_interleave_safely(tmp_path: Path) -> None:
    open_sim("igb-82576")
    script = tmp_path / "mixed.py"
    script.write_text(_MIXED)
    procs = [subprocess.Popen([sys.executable, str(script), role, "14"], stderr=subprocess.PIPE, text=True)
             for role in ("set", "set", "enable")]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0 and "internal error" not in err, err
    root = sim_dir() / "igb-82576"
    for pf, n in (("0000:0b:00.0", 7), ("0000:0b:00.1", 1 + 14 % 7)):
        pfdir = Path(os.path.realpath(root / "sys/bus/pci/devices" / pf))
        assert int((pfdir / "sriov_numvfs").read_text()) == n
        assert len([x for x in os.listdir(pfdir) if x.startswith("virtfn")]) == n
        assert len(json.loads((root / "sim.json").read_text())["vfinfo"][pf]) == n
    for i in range(7):  # each set process gave VF v % 7 VLAN v for v = 1..14: its last write to VF i is i + 7 (VF 0: 14)
        nl = cli("--sim", "igb-82576", "--json", "show", f"enp11s0f0#{i}").json()["device"]["netlink"]
        assert nl["vlan"] == (14 if i == 0 else i + 7), (i, nl)
