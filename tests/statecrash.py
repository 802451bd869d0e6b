"""kill -9 during `state apply` on the simulated e810-2x256 (512 VFs), then apply again: the host must end up
exactly as a clean apply leaves it (shared by tests/unit/test_state_crash.py, 10 points, and
bench/state_apply.py, 100 points).

The kill lands after the k-th change of the simulated tree (the hardening issue's hook): inside a VF-count
change (the simulated kernel's own journal completes it, as a real kernel finishes an sriov_numvfs write),
between netlink batches, between bindings. k is spread evenly over the changes a clean apply makes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from helpers import cli
from sriovctl.host.sim.tree import KILL_HOOK

SIM = "e810-2x256"
# A VF-count change (256 → 128: destroy, create), VLAN+QoS on 124 VFs, MACs on 2, VLAN and spoof-check off on
# 252 VFs of the other port, 6 VFs to vfio-pci: every phase of apply
STATE: dict[str, Any] = {"pfs": [
    {"name": "ens2f0", "total-vfs": 128, "vfs": [
        {"id": "4-127", "vlan-id": 100, "qos": 2},
        {"id": 0, "mac-address": "02:00:00:00:00:01", "vlan-id": 100},
        {"id": 1, "mac-address": "02:00:00:00:00:02", "vlan-id": 100},
        {"id": "2-3", "driver": "vfio-pci"}]},
    {"name": "ens2f1", "vfs": [
        {"id": "0-251", "spoof-check": False, "vlan-id": 200},
        {"id": "252-255", "driver": "vfio-pci", "trust": False}]}]}


def write_state(path: Path) -> str:
    path.write_text(json.dumps(STATE))  # JSON is YAML
    return str(path)


def shown() -> Any:
    r = cli("--sim", SIM, "--json", "state", "show")
    assert r.code == 0, r.err
    return r.json()["state"]


def clean_apply(state_file: str) -> tuple[Any, int]:
    """From a fresh host: the state a clean apply leaves, and how many changes of the tree it made."""
    assert cli("sim", "reset", SIM).code == 0
    r = cli("--sim", SIM, "state", "apply", state_file)
    assert r.code == 0, r.err
    assert r.ctx is not None and r.ctx.host is not None
    return shown(), int(r.ctx.host.tree._changes)  # type: ignore[attr-defined]


def killed_apply(state_file: str, k: int) -> int:
    """Fork; the child runs `state apply` in-process and is SIGKILLed at its k-th change of the tree."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.environ[KILL_HOOK] = str(k)
            devnull = open(os.devnull, "w")  # noqa: SIM115
            from sriovctl.cli.main import run

            code, _ = run(["--sim", SIM, "state", "apply", state_file], out=devnull, err=devnull)
            os._exit(code)
        except BaseException:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    return status


def one_point(state_file: str, k: int, reference: Any) -> dict[str, Any]:
    """Kill at change k of a fresh host's apply, apply again: identical to the clean apply, then no changes."""
    assert cli("sim", "reset", SIM).code == 0
    status = killed_apply(state_file, k)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    again = cli("--sim", SIM, "state", "apply", state_file)
    assert again.code == 0, (k, again.out, again.err)
    now = shown()
    third = cli("--sim", SIM, "state", "apply", state_file)
    writes = len(third.ctx.host.writes) if third.ctx is not None and third.ctx.host is not None else -1
    return {"k": k, "killed": killed, "journal_found": "interrupted apply's journal" in again.out,
            "identical": now == reference, "then_no_changes": third.out == "no changes\n" and writes == 0,
            "differences": differences(reference, now)}


def differences(a: Any, b: Any) -> list[str]:
    """Where two state documents differ (PF keys and VF entries), for the report of a failed point."""
    out = []
    for i, (pa, pb) in enumerate(zip(a["pfs"], b["pfs"], strict=False)):
        out += [f"pfs[{i}].{k}: {pa.get(k)} != {pb.get(k)}" for k in pa if k != "vfs" and pa.get(k) != pb.get(k)]
        out += [f"pfs[{i}] vf {va.get('id')}: {va} != {vb}" for va, vb in zip(pa["vfs"], pb["vfs"], strict=False)
                if va != vb]
    if len(a["pfs"]) != len(b["pfs"]):
        out.append(f"{len(a['pfs'])} PFs != {len(b['pfs'])}")
    return out[:10]


def points(total: int, n: int) -> list[int]:
    """n kill points spread evenly over a run of ``total`` changes (first and last included)."""
    return sorted({max(1, round(1 + i * (total - 1) / (n - 1))) for i in range(n)})
