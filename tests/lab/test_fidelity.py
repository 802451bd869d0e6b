"""Lab, topology `default`: the simulated igb host reacts to the same writes as the real kernel."""

from __future__ import annotations

import json
import os

import pytest

from fidelity import run_sequence, run_vf_sequence
from labguest import LAB_OUT

pytestmark = pytest.mark.lab("default")


def test_sim_and_kernel_react_alike(host, pfs) -> None:  # type: ignore[no-untyped-def]
    from sriovctl.host.sim.catalog import open_sim, reset_sim

    (pf,) = pfs
    real = run_sequence(host, pf)
    reset_sim("igb-82576")
    sim = run_sequence(open_sim("igb-82576"), "0000:0b:00.0")
    (LAB_OUT / "fidelity-kernel.json").write_text(json.dumps(real, indent=1))
    assert len(real) == len(sim) == 20
    for r, s in zip(real, sim, strict=True):
        assert r == s, f"step {r[0]!r}: kernel {r[1:]} vs simulation {s[1:]}"


def test_sim_and_kernel_answer_vf_settings_alike(host, pfs) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    from labguest import set_numvfs
    from sriovctl.host.sim.catalog import open_sim, reset_sim

    (pf,) = pfs
    set_numvfs(host, pf, 0)
    set_numvfs(host, pf, 3)
    ifname = os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0]
    subprocess.run(["ip", "link", "set", "dev", ifname, "down"], check=True)
    real = json.loads(json.dumps(run_vf_sequence(host, pf)))
    reset_sim("igb-82576")
    sim_host = open_sim("igb-82576")
    sim_host.write("sys/bus/pci/devices/0000:0b:00.0/sriov_numvfs", "0")
    sim_host.write("sys/bus/pci/devices/0000:0b:00.0/sriov_numvfs", "3")
    sim = json.loads(json.dumps(run_vf_sequence(sim_host, "0000:0b:00.0")))
    (LAB_OUT / "fidelity-netlink-kernel.json").write_text(json.dumps(real, indent=1))
    assert real == sim
