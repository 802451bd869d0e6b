"""VF pools (issue 22) on simulated hosts: pools from the stored state, allocation with MAC/VLAN read back and
release back to the pool's defaults, the interlocks while a VF is allocated, the desired state leaving an
allocated VF's run-time settings alone, NUMA policies, reconcile, hostile input — and 8 allocators × 25
operations with kill -9 on the e810's 512 VFs: never two owners for one VF, nothing lost after one reconcile."""

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

from helpers import cli, hold_vfio, tree_hash, validate
from sriovctl.host.sim.catalog import create_sim, open_sim, reset_sim

SPECS = Path(__file__).resolve().parents[1] / "fixtures" / "specs"
E810 = ("--sim", "e810-2x256")


def _store(sim: str, text: str, tmp: Path) -> None:
    f = tmp / "state.yaml"
    f.write_text(text)
    r = cli("--sim", sim, "persist", "install", str(f), "--exec", "/usr/bin/sriovctl")
    assert r.code == 0, r.err
    r = cli("--sim", sim, "state", "apply", str(f))
    assert r.code == 0, r.err


GOLD = """pfs:
  - name: ens2f0
    vfs:
      - id: 0-31
        pool: gold
        trust: false
        vlan-id: 0
      - id: 32-39
        pool: dpdk
        driver: vfio-pci
  - name: ens2f1
    vfs:
      - id: 0-255
        pool: big
"""


@pytest.fixture
def e810(tmp_path: Path) -> Path:
    reset_sim("e810-2x256")
    _store("e810-2x256", GOLD, tmp_path)
    return Path(open_sim("e810-2x256").root)


def _netlink(vf: str) -> dict[str, object]:
    r = cli(*E810, "--json", "show", vf)
    assert r.code == 0, r.err
    return dict(json.loads(r.out)["device"]["netlink"])


def _driver(root: Path, addr: str) -> str | None:
    link = root / f"sys/bus/pci/devices/{addr}/driver"
    return os.path.basename(os.readlink(link)) if link.is_symlink() else None


def test_allocate_sets_and_reads_back_release_resets(e810: Path) -> None:
    r = cli(*E810, "--json", "pool", "allocate", "gold", "--owner", "app-1", "--mac", "02:00:00:00:10:01",
            "--vlan", "42")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    validate(doc, "pool")
    a = doc["allocation"]
    assert a == doc["allocations"][0]
    assert (a["pool"], a["state"], a["owner"], a["vf"], a["pf"]) == ("gold", "allocated", {"kind": "name",
                                                                                           "name": "app-1"},
                                                                     0, "0000:17:00.0")
    nl = _netlink("ens2f0#0")
    assert nl["mac"] == "02:00:00:00:10:01" and nl["vlan"] == 42
    # the next allocator gets the next VF; a dpdk owner gets its VF on the pool's driver
    assert json.loads(cli(*E810, "--json", "pool", "allocate", "gold", "--owner", "app-2").out)["allocations"][0]["vf"] == 1
    d = json.loads(cli(*E810, "--json", "pool", "allocate", "dpdk", "--owner", "testpmd").out)["allocations"][0]
    assert _driver(e810, d["address"]) == "vfio-pci"
    r = cli(*E810, "pool", "show")
    assert "gold             NUMA  0  free   30  pending   0  allocated    2" in r.out, r.out
    # release: back to the pool's defaults (MAC cleared, VLAN 0), checked, then free again
    r = cli(*E810, "--json", "pool", "release", "--owner", "app-1")
    assert r.code == 0 and json.loads(r.out)["allocations"][0]["address"] == a["address"], r.err
    nl = _netlink("ens2f0#0")
    assert nl["mac"] == "00:00:00:00:00:00" and nl["vlan"] == 0
    assert json.loads(cli(*E810, "--json", "pool", "allocate", "gold", "--owner", "app-3").out)["allocations"][0]["vf"] == 0
    r = cli(*E810, "--json", "pool", "list")
    assert sorted(x["owner"]["name"] for x in json.loads(r.out)["allocations"]) == ["app-2", "app-3", "testpmd"]


def test_an_allocated_vf_is_in_use_for_every_interlock(e810: Path, tmp_path: Path) -> None:
    before = tree_hash(str(e810))
    r = cli(*E810, "pool", "allocate", "gold", "--owner", "vm-a", "--mac", "02:00:00:00:30:01", "--dry-run")
    assert r.code == 0 and "0000:17:01.0  pool gold  would be allocated to name 'vm-a'" in r.out, (r.out, r.err)
    assert tree_hash(str(e810)) == before
    assert cli(*E810, "pool", "allocate", "gold", "--owner", "vm-a").code == 0
    before = tree_hash(str(e810))
    r = cli(*E810, "pool", "release", "--owner", "vm-a", "--dry-run")
    assert r.code == 0 and "would be released" in r.out and tree_hash(str(e810)) == before
    for argv in (("vf", "disable", "ens2f0"), ("vf", "enable", "ens2f0", "64", "--reset"),
                 ("vf", "bind", "ens2f0#0", "vfio-pci"), ("vf", "unbind", "ens2f0#0")):
        before = tree_hash(str(e810 / "sys"))
        r = cli(*E810, *argv)
        assert r.code == 77 and "pool gold: allocated to name 'vm-a'" in r.err, (argv, r.code, r.err)
        assert tree_hash(str(e810 / "sys")) == before
    want = tmp_path / "fewer.yaml"
    want.write_text(GOLD.replace("  - name: ens2f0\n", "  - name: ens2f0\n    total-vfs: 64\n"))
    r = cli(*E810, "state", "apply", str(want))
    assert r.code == 77 and "vm-a" in r.err, (r.code, r.err)


def test_the_desired_state_leaves_an_allocated_vfs_settings_alone(e810: Path, tmp_path: Path) -> None:
    assert cli(*E810, "pool", "allocate", "gold", "--owner", "vm-a", "--mac", "02:00:00:00:20:01",
               "--vlan", "7").code == 0
    state = str(e810 / "etc/sriovctl/state.yaml")
    r = cli(*E810, "--json", "state", "plan", state)
    doc = json.loads(r.out)
    assert r.code == 0 and not [c for c in doc["changes"] if c.get("target", "").endswith("#0")], doc
    assert any("pool gold" in n["text"] and "left as its user set them" in n["text"]
               for n in doc["notices"]), doc["notices"]
    assert cli(*E810, "state", "status").code == 0  # not drift
    assert cli(*E810, "state", "apply", state).code == 0
    assert _netlink("ens2f0#0")["vlan"] == 7


def test_numa_policies(tmp_path: Path) -> None:
    create_sim("two-numa", SPECS / "two-numa.yaml")
    _store("two-numa", "pfs:\n  - name: ens1f0\n    vfs: [{id: 0-1, pool: p}]\n"
                       "  - name: ens5f0\n    vfs: [{id: 0-1, pool: p}]\n", tmp_path)
    n = ("--sim", "two-numa")

    def take(*extra: str) -> tuple[int, str, str]:
        r = cli(*n, "--json", "pool", "allocate", "p", "--owner", f"o{random.random()}", *extra)
        return r.code, (json.loads(r.out)["allocations"][0]["address"] if r.code == 0 else ""), r.err

    assert take("--numa", "1", "--policy", "required")[1].startswith("0000:b1:")
    assert take("--near", "ens5f0", "--policy", "required")[1].startswith("0000:b1:")
    code, _, err = take("--numa", "1", "--policy", "required")
    assert code == 75 and "no free VF on NUMA node 1 (required)" in err and "2 free on other NUMA nodes" in err, err
    assert take("--numa", "1", "--policy", "preferred")[1].startswith("0000:17:")  # falls back
    assert take("--numa", "1", "--policy", "legacy")[0] == 75  # node 0's VFs say where they are: not taken
    r = cli(*n, "--json", "pool", "show")
    validate(json.loads(r.out), "pool-show")
    assert json.loads(r.out)["pools"]["p"]["1"]["allocated"] == 2


def test_reconcile_finds_leaks_unrecorded_users_and_macs(e810: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for owner in ("vm-gone", "vm-stopped"):
        assert cli(*E810, "pool", "allocate", "gold", "--owner", owner, "--owner-kind", "libvirt").code == 0
    (e810 / "etc/libvirt/qemu").mkdir(parents=True)
    (e810 / "etc/libvirt/qemu/vm-stopped.xml").write_text("<domain><name>vm-stopped</name></domain>")
    # a pool VF a process holds without an allocation, and two VFs given one MAC behind sriovctl's back
    group = os.path.basename(os.readlink(e810 / "sys/bus/pci/devices/0000:17:01.5/iommu_group"))
    assert cli(*E810, "vf", "bind", "ens2f0#5", "vfio-pci").code == 0
    hold_vfio(group, pid=777, comm="dpdk-app", sim="e810-2x256")
    host = open_sim("e810-2x256")
    from sriovctl.host.netlink import VfChange

    for vf in (10, 11):
        host.netlink().set_vfs("ens2f0", [VfChange(vf, "mac", "02:aa:00:00:00:01")])
    r = cli(*E810, "--json", "pool", "reconcile")
    doc = json.loads(r.out)
    validate(doc, "pool-reconcile")
    kinds = sorted((f["kind"], f["address"]) for f in doc["findings"])
    # the admin MAC set behind the VF's back differs from what its iavf netdev uses (sriov-cni #232)
    assert r.code == 9 and kinds == [("duplicate-mac", "0000:17:02.2"), ("leaked", "0000:17:01.0"),
                                     ("mac-diverged", "0000:17:02.2"), ("mac-diverged", "0000:17:02.3"),
                                     ("unrecorded", "0000:17:01.5")], kinds
    assert cli(*E810, "pool", "reconcile", "--apply").code == 69  # no libvirt API: cannot tell a domain is gone
    monkeypatch.setenv("SRIOVCTL_LIBVIRT_URI", "test:///default")  # libvirt's test driver: domain "test" only
    pytest.importorskip("libvirt")
    (e810 / "etc/libvirt/qemu/vm-stopped.xml").unlink()  # the API's answer is the truth now: vm-stopped is gone too
    r = cli(*E810, "--json", "pool", "reconcile", "--apply")
    doc = json.loads(r.out)
    assert sorted(doc["fixed"]) == ["0000:17:01.0", "0000:17:01.1"] and r.code == 9  # the MACs and the user stay
    assert json.loads(cli(*E810, "--json", "pool", "list").out)["allocations"] == []


@pytest.mark.parametrize(("argv", "code", "words"), [
    (("pool", "allocate", "nosuch", "--owner", "x"), 66, "pool 'nosuch': no such pool"),
    (("pool", "release", "ens2f0#9"), 66, "not allocated from any pool"),
    (("pool", "release", "--owner", "nobody"), 66, "holds no VF"),
    (("pool", "release"), 64, "name a VF or --owner"),
    (("pool", "allocate", "gold", "--owner", "bad\nname"), 64, "not an owner name"),
    (("pool", "allocate", "gold", "--owner", ""), 64, "not an owner name"),
    (("pool", "allocate", "gold", "--owner", "x" * 201), 64, "not an owner name"),
    (("pool", "allocate", "gold", "--owner", "x", "--policy", "strict"), 64, "invalid choice"),
    (("pool", "allocate", "gold", "--owner", "x", "--numa", "1", "--near", "ens2f0"), 64, "not allowed with"),
    (("pool", "allocate", "gold", "--owner", "x", "--mac", "01:00:00:00:00:01"), 64, "multicast"),
    (("pool", "allocate", "gold", "--owner", "x", "--vlan", "4096"), 64, "4096"),
])
def test_bad_input_is_one_line_and_changes_nothing(e810: Path, argv: tuple[str, ...], code: int, words: str) -> None:
    before = tree_hash(str(e810))
    r = cli(*E810, *argv)
    assert r.code == code and words in r.err and r.err.count("\n") == 1, (r.code, r.err)
    assert tree_hash(str(e810)) == before


def test_bad_pools_in_the_state_file(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    for text, words in (
            ("pfs: [{name: ens2f0, vfs: [{id: 0-3, pool: 'a b'}]}]", "pfs[0].vfs[0].pool: not a pool name"),
            ("pfs: [{name: ens2f0, vfs: [{id: 0-3, pool: a, resource-name: r}]}]", "pfs[0].vfs[0].pool: VFs in a pool"),
            ("pfs: [{name: ens2f0, vfs: [{id: 0-3, pool: a}, {id: 3, pool: b}]}]", "VF 3 is already given")):
        f.write_text(text)
        r = cli("state", "validate", str(f))
        assert r.code == 65 and words in r.err, (text, r.err)


def test_pools_of_non_assignable_vfs(tmp_path: Path) -> None:
    reset_sim("no-acs-switch")
    _store("no-acs-switch", "pfs:\n  - name: enp3s0\n    vfs: [{id: 0-1, pool: p}]\n", tmp_path)
    r = cli("--sim", "no-acs-switch", "pool", "allocate", "p", "--owner", "x")
    assert r.code == 75 and "no free VF on any NUMA node (2 VFs in the pool)" in r.err, r.err
    assert "unavailable    2" in cli("--sim", "no-acs-switch", "pool", "show").out


WORKER = """
import json, os, random, sys, time
from sriovctl.host.sim.catalog import open_sim
from sriovctl.ops import pools
from sriovctl.errors import SriovctlError
me, ops, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rnd = random.Random(me)
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
for n in range(ops):
    owner = pools.Owner("name", f"{me}-{n}")
    try:
        mac = "02:%02x:00:00:%02x:%02x" % (int(me[1:]), n // 256, n % 256)
        got = pools.allocate(open_sim("e810-2x256"), "gold", owner, mac=mac, vlan=100 + int(me[1:]), wait=120)
    except SriovctlError as e:
        os.write(fd, f"E {me} {e}\\n".encode()); continue
    os.write(fd, f"A {got.allocation.address} {owner.name} {time.monotonic()}\\n".encode())
    time.sleep(rnd.random() * 0.01)
    os.write(fd, f"R {got.allocation.address} {owner.name} {time.monotonic()}\\n".encode())
    pools.release(open_sim("e810-2x256"), address=got.allocation.address, wait=120)
os.write(fd, f"D {me}\\n".encode())
"""


def test_concurrent_allocators_with_kill_9(e810: Path, tmp_path: Path) -> None:
    """8 processes × 25 allocate/release cycles on a 32-VF pool of the e810, 3 of them killed with SIGKILL at
    random moments (mid-allocation, mid-release). Every `A` line (a VF handed out) must be followed by its own `R`
    before another owner's `A` of that VF; after one `reconcile --apply` the records match the host and the
    killed owners' VFs are the only ones allocated; released, the pool is whole and every VF at its defaults."""
    log = tmp_path / "log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, f"w{i}", "25", str(log)], env=env,
                              stderr=subprocess.PIPE) for i in range(8)]
    rnd = random.Random(1)
    victims = rnd.sample(range(8), 3)
    for v in victims:
        time.sleep(rnd.uniform(0.5, 3.0))
        procs[v].send_signal(signal.SIGKILL)
    for p in procs:
        p.wait(timeout=900)
    lines = log.read_text().splitlines()
    held: dict[str, str] = {}
    for line in lines:
        kind, *rest = line.split()
        if kind == "A":
            assert rest[0] not in held, f"{rest[0]} handed to {rest[1]} while {held.get(rest[0])} had it"
            held[rest[0]] = rest[1]
        elif kind == "R":
            assert held.pop(rest[0]) == rest[1]
    errors = [x for x in lines if x.startswith("E ")]
    assert not errors, errors[:3]
    done = {x.split()[1] for x in lines if x.startswith("D ")}
    assert len(done) == 8 - len(victims), done
    r = cli(*E810, "--json", "pool", "reconcile", "--apply")
    doc = json.loads(r.out)
    assert not [f for f in doc["findings"] if f["kind"] in ("unrecorded", "duplicate-mac")], doc
    left = json.loads(cli(*E810, "--json", "pool", "list").out)["allocations"]
    assert all(a["state"] == "allocated" and a["owner"]["name"].split("-")[0] in {f"w{v}" for v in victims}
               for a in left), left
    for a in left:  # what a killed owner had: recorded, with its settings on the VF
        assert cli(*E810, "pool", "release", a["address"]).code == 0
    show = json.loads(cli(*E810, "--json", "pool", "show").out)["pools"]["gold"]["0"]
    assert show == {"free": 32, "pending": 0, "allocated": 0, "releasing": 0, "unavailable": 0}, show
    r = cli(*E810, "--json", "state", "show", "ens2f0")
    vfs = json.loads(r.out)["state"]["pfs"][0]["vfs"][:32]
    assert {(v["mac-address"], v["vlan-id"]) for v in vfs} == {("00:00:00:00:00:00", 0)}
    print(f"{len([x for x in lines if x.startswith('A ')])} allocations by 8 processes, victims {victims}")


def test_the_exporter_shows_pools(e810: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from sriovctl.ops.metrics import Exporter

    assert cli(*E810, "pool", "allocate", "gold", "--owner", "app-9", "--vlan", "9").code == 0
    text = Exporter(open_sim("e810-2x256")).scrape().text()
    rows = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text)
            for s in f.samples}
    info = [dict(k[1]) for k in rows if k[0] == "sriovctl_vf_info" and dict(k[1])["pciAddr"] == "0000:17:01.0"]
    assert [(i["owner_kind"], i["owner"], i["vlan"]) for i in info] == [("pool", "app-9", "9")]

    def pool(name: str, state: str) -> float:
        return rows[("sriovctl_pool_vfs", (("numa_node", "0"), ("pool", name), ("state", state)))]

    assert (pool("gold", "allocated"), pool("gold", "free"), pool("big", "free"), pool("dpdk", "free")) == (1, 31, 256, 8)


def test_pool_create_and_delete_edit_the_stored_state(tmp_path: Path) -> None:
    reset_sim("igb-82576")
    s = ("--sim", "igb-82576")
    r = cli(*s, "pool", "create", "p1", "enp11s0f0#0-3", "enp11s0f1#2", "--driver", "vfio-pci")
    assert r.code == 0, r.err
    stored = Path(open_sim("igb-82576").root) / "etc/sriovctl/state.yaml"
    assert "pool: p1" in stored.read_text()
    assert cli(*s, "state", "validate", str(stored)).code == 0 and cli(*s, "persist", "status").code == 0
    before = stored.read_text()
    r = cli(*s, "pool", "create", "p2", "enp11s0f0#3-4")  # VF 3 is p1's
    assert r.code == 65 and "pfs[0].vfs[1].id: VF 3 is already given by pfs[0].vfs[0]" in r.err, r.err
    for bad, code in ((("pool", "create", "p 3", "enp11s0f0#5"), 64), (("pool", "create", "p1", "enp11s0f0#5"), 65),
                      (("pool", "create", "p3", "enp11s0f0"), 64), (("pool", "delete", "nosuch"), 66)):
        r = cli(*s, *bad)
        assert r.code == code and r.err.count("\n") == 1, (bad, r.code, r.err)
    assert stored.read_text() == before
    assert cli(*s, "pool", "allocate", "p1", "--owner", "t").code == 0
    r = cli(*s, "pool", "delete", "p1")
    assert r.code == 77 and "release them first" in r.err
    assert cli(*s, "pool", "delete", "p1", "--force").code == 0
    r = cli(*s, "--json", "state", "status")
    assert json.loads(r.out)["pools_not_in_state"] == ["p1"]
    r = cli(*s, "state", "status")
    assert "pool p1: VFs are allocated from it, but the state has no such pool" in r.err
    assert cli(*s, "pool", "release", "--owner", "t").code == 0
    assert json.loads(cli(*s, "--json", "state", "status").out)["pools_not_in_state"] == []
    assert "pool:" not in stored.read_text()


def test_an_owner_pid_records_its_start_time_and_a_pool_of_missing_vfs(e810: Path, tmp_path: Path) -> None:
    root = Path(open_sim("e810-2x256").root)
    (root / "proc/4242").mkdir(parents=True)
    (root / "proc/4242/stat").write_text("4242 (qemu-system-x86) S " + " ".join(["0"] * 18) + " 987654 0 0\n")
    r = cli(*E810, "--json", "pool", "allocate", "gold", "--owner", "vm9", "--owner-kind", "qemu", "--owner-pid", "4242")
    assert r.code == 0, r.err
    assert json.loads(r.out)["allocations"][0]["owner"] == {"kind": "qemu", "name": "vm9", "pid": 4242, "start": 987654}
    r = cli(*E810, "pool", "allocate", "gold", "--owner", "vm8", "--owner-kind", "qemu", "--owner-pid", "4343")
    assert r.code == 66 and "no such process" in r.err
    # a QEMU that is gone (or whose pid now belongs to another process) leaks its VF
    (root / "proc/4242/stat").write_text("4242 (bash) S " + " ".join(["0"] * 18) + " 111 0 0\n")
    r = cli(*E810, "--json", "pool", "reconcile")
    assert r.code == 9 and [f["kind"] for f in json.loads(r.out)["findings"]] == ["leaked"]
    # a pool of VFs the PF does not have (an id past its 256 VFs) is refused where the state is stored
    f = tmp_path / "ghost.yaml"
    f.write_text(GOLD.replace("      - id: 32-39\n", "      - id: 300\n        pool: ghost\n      - id: 32-39\n"))
    r = cli(*E810, "persist", "install", str(f), "--exec", "/usr/bin/sriovctl")
    assert r.code == 65 and "pfs[0].vfs[1].id: the PF will have 256 VFs, got 300" in r.err, r.err
    assert cli(*E810, "pool", "allocate", "ghost", "--owner", "x").code == 66
