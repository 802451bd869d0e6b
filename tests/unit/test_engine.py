"""The operations layer through the library: plans and outcomes as data, typed refusals, the PF lock (a second
writer waits, then exits 75 naming the holder; two processes never interleave their writes on one PF)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import cli, hold_vfio, validate
from sriovctl.errors import InterlockError, TemporaryError, UsageError
from sriovctl.host.sim.catalog import open_sim
from sriovctl.model import UseKind
from sriovctl.ops.binding import BindOptions, apply_binding, plan_bind, plan_unbind
from sriovctl.ops.plan import ChangeKind, NoticeKind, Plan
from sriovctl.ops.session import Session
from sriovctl.ops.vfattrs import VfSettings, apply_set, plan_set, vf_targets
from sriovctl.ops.vfcount import EnableOptions, apply_count, plan_disable, plan_enable

S = ("--sim", "igb-82576")


def session() -> Session:
    return Session(open_sim("igb-82576"))


def test_enable_plans_typed_changes_and_applying_returns_a_verified_outcome() -> None:
    s = session()
    pf = s.find("enp11s0f0")
    plan = plan_enable(s.host, s.inv, pf, 4, EnableOptions(reset=True, autoprobe=False))
    assert [(c.kind, c.before, c.after) for c in plan.changes] == [
        (ChangeKind.VF_COUNT, 7, 0), (ChangeKind.AUTOPROBE, True, False), (ChangeKind.VF_COUNT, 0, 4)]
    assert all(c.target == "0000:0b:00.0" and c.why for c in plan.changes)
    assert s.host.writes == []  # planning writes nothing
    out = apply_count(s.host, pf, plan, EnableOptions(reset=True, autoprobe=False))
    assert out.verified is True and out.applied == plan.changes
    assert s.host.read_text("sys/bus/pci/devices/0000:0b:00.0/sriov_numvfs") == "4"
    # the same again: nothing to change, said as a note, no change planned
    s2 = session()
    again = plan_enable(s2.host, s2.inv, s2.find("enp11s0f0"), 4, EnableOptions())
    assert again.empty and again.notes == ["0000:0b:00.0 (enp11s0f0): 4 VFs already enabled, nothing to do"]


def test_a_refusal_carries_who_holds_the_device_as_data() -> None:
    s = session()
    vf = s.find("enp11s0f0#1")
    s.host.dry_run = False
    apply_binding(s.host, s.inv, _bind_plan(s, vf, "vfio-pci"), BindOptions())
    hold_vfio(str(vf.iommu_group))
    s = session()
    with pytest.raises(InterlockError) as e:
        plan_disable(s.host, s.inv, s.find("enp11s0f0"), force=False)
    (holder,) = e.value.holders
    assert holder.kind is UseKind.PROCESS and holder.id == "4242"
    assert "--force" not in e.value.message + str(e.value.hint)  # the CLI adds its own option names
    forced = plan_disable(s.host, s.inv, s.find("enp11s0f0"), force=True)
    assert [n.kind for n in forced.notices] == [NoticeKind.FORCED] and "4242" in forced.notices[0].text


def _bind_plan(s: Session, d: object, driver: str) -> Plan:
    plan = Plan("vf-bind", s.host.label)
    plan_bind(s.host, s.inv, d, driver, BindOptions(), plan)  # type: ignore[arg-type]
    return plan


def test_the_default_route_interface_is_refused_with_a_cut_off_remedy() -> None:
    host = open_sim("igb-82576")
    s = Session(host)
    eno1 = s.find("eno1")
    with pytest.raises(InterlockError) as e:
        plan_unbind(host, s.inv, eno1, False, Plan("vf-unbind", host.label))
    assert e.value.remedy == "force-cut-off" and any(u.kind is UseKind.DEFAULT_ROUTE for u in e.value.holders)


def test_vf_attribute_plan_has_before_and_after_from_the_netlink_view() -> None:
    s = session()
    vfs = vf_targets(s.inv, ["enp11s0f0#0-1"])
    sp = plan_set(s.host, s.inv, [(v, VfSettings(vlan=42, trust=True)) for v in vfs])
    assert [(c.target, c.attr, c.before, c.after) for c in sp.plan.changes] == [
        ("enp11s0f0#0", "vlan", [0, 0, "802.1Q"], [42, 0, "802.1Q"]), ("enp11s0f0#0", "trust", False, True),
        ("enp11s0f0#1", "vlan", [0, 0, "802.1Q"], [42, 0, "802.1Q"]), ("enp11s0f0#1", "trust", False, True)]
    out = apply_set(s.host, sp)
    assert out.verified and len(out.applied) == 4 and out.extra["netlink_requests"] == 2


def test_attribute_errors_name_the_attribute_in_the_library_and_the_option_in_the_cli() -> None:
    with pytest.raises(UsageError) as e:
        VfSettings(vlan=5000).validate("0000:0b:10.0", 1)
    assert e.value.message == "0000:0b:10.0: VLAN 5000: must be 0..4095"
    r = cli(*S, "vf", "set", "enp11s0f0#0", "--vlan", "5000")
    assert r.code == 64 and "0000:0b:10.0: --vlan 5000: must be 0..4095" in r.err


@pytest.mark.parametrize("verb", [
    ("vf", "enable", "enp11s0f0", "3", "--reset"), ("vf", "disable", "enp11s0f1"),
    ("vf", "set", "enp11s0f0#0-2", "--vlan", "9"), ("vf", "bind", "enp11s0f0#1", "vfio-pci"),
    ("vf", "unbind", "enp11s0f0#1")])
def test_dry_run_json_prints_the_plan_and_changes_nothing(verb: tuple[str, ...]) -> None:
    from helpers import tree_hash

    root = open_sim("igb-82576").root
    before = tree_hash(root)
    r = cli(*S, "--json", *verb, "--dry-run")
    assert r.code == 0, r.err
    doc = r.json()
    validate(doc, "vf-action")
    assert doc["outcome"] is None and doc["plan"]["changes"]
    assert all({"kind", "target", "before", "after", "why"} <= set(c) for c in doc["plan"]["changes"])
    assert tree_hash(root) == before
    applied = cli(*S, "--json", *verb)
    assert applied.code == 0, applied.err
    doc = applied.json()
    validate(doc, "vf-action")
    assert doc["outcome"]["applied"] == doc["plan"]["changes"] and doc["outcome"]["verified"] is True


_HOLDER = r"""
import fcntl, os, sys, time
path = sys.argv[1]
os.makedirs(os.path.dirname(path), exist_ok=True)
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, f"{os.getpid()}\n".encode())
print("locked", flush=True)
time.sleep(600)
"""


def test_a_second_writer_waits_for_the_pf_lock_then_exits_75_naming_the_holder() -> None:
    host = open_sim("igb-82576")
    lock = Path(host.lock_dir()) / "0000:0b:00.0.lock"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        r = cli(*S, "vf", "enable", "enp11s0f0", "3", "--reset", "--wait", "1.5")
        waited = time.monotonic() - t0
        assert r.code == 75, r.err
        assert f"another sriovctl (pid {holder.pid}) is changing this PF" in r.err and "--wait" in r.err
        assert waited >= 1.5
        assert host.read_text("sys/bus/pci/devices/0000:0b:00.0/sriov_numvfs") == "7"  # nothing written
        j = cli(*S, "--json", "vf", "disable", "enp11s0f0", "--wait", "0.2")
        assert j.code == 75 and j.json()["error"]["exit_code"] == 75
        other = cli(*S, "vf", "disable", "enp11s0f1", "--wait", "0.2")  # another PF: not held
        assert other.code == 0, other.err
        dry = cli(*S, "vf", "disable", "enp11s0f0", "--dry-run", "--wait", "0.2")  # a dry run writes nothing
        assert dry.code == 0, dry.err
    finally:
        holder.kill()
        holder.wait()
    r = cli(*S, "vf", "enable", "enp11s0f0", "3", "--reset", "--wait", "1.5")
    assert r.code == 0, r.err


def test_the_lock_is_taken_in_library_calls_with_a_deadline_on_the_host_clock() -> None:
    host = open_sim("igb-82576")
    clock = [0.0]
    host.monotonic = lambda: clock[0]  # type: ignore[method-assign]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    host.sleep = sleep  # type: ignore[method-assign]
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(Path(host.lock_dir()) / "0000:0b:00.1.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(TemporaryError) as e, host.pf_lock("0000:0b:00.1", 30.0):
            pass
        assert f"pid {holder.pid}" in e.value.message and clock[0] >= 30.0
    finally:
        holder.kill()
        holder.wait()
    with host.pf_lock("0000:0b:00.1", 1.0), host.pf_lock("0000:0b:00.1", 1.0):  # re-entrant
        assert (Path(host.lock_dir()) / "0000:0b:00.1.lock").read_text().strip() == str(__import__("os").getpid())


_WRITER = r"""
import io, sys
from sriovctl.cli.main import run
rounds, ops = int(sys.argv[1]), sys.argv[2:]
for i in range(rounds):
    for op in ops:
        code, _ = run(["--sim", "igb-82576", *op.split(), "--wait", "120"], out=io.StringIO(), err=sys.stderr)
        if code:
            sys.exit(code)
"""


def test_two_processes_never_interleave_their_writes_on_one_pf(tmp_path: Path) -> None:
    host = open_sim("igb-82576")
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    a = subprocess.Popen([sys.executable, str(script), "6", "vf unbind enp11s0f0#0-2", "vf bind enp11s0f0#0-2 host"],
                         stderr=subprocess.PIPE, text=True)
    b = subprocess.Popen([sys.executable, str(script), "6", "vf bind enp11s0f0#3-5 vfio-pci",
                          "vf bind enp11s0f0#3-5 host"], stderr=subprocess.PIPE, text=True)
    for p in (a, b):
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    log = host.write_log()
    runs = [rec["run"] for rec in log]
    assert len(set(runs)) == 6 * 2 * 2 and {rec["pid"] for rec in log} == {a.pid, b.pid}
    assert len(log) == 6 * (3 + 6 + 9 + 9)  # unbind 3; native bind 2 each; vfio-pci and back 3 each
    for run in set(runs):  # each run's writes are one unbroken stretch of the log
        idx = [i for i, r in enumerate(runs) if r == run]
        assert idx == list(range(idx[0], idx[-1] + 1)), (run, idx)
    switches = sum(1 for x, y in itertools.pairwise(log) if x["pid"] != y["pid"])
    print(f"write log: {len(log)} writes of {len(set(runs))} runs, the writer changed {switches} times")
    assert json.dumps(log)
