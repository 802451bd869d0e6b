"""The fidelity sequence on the simulated host alone, against the trace the lab's real kernel produced
(tests/fixtures/lab/fidelity-kernel.json, recorded by tests/lab/test_fidelity.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fidelity import run_sequence
from sriovctl.host.sim.catalog import open_sim

RECORDED = Path(__file__).parent.parent / "fixtures" / "lab" / "fidelity-kernel.json"


def test_sim_matches_the_recorded_kernel_trace() -> None:
    if not RECORDED.exists():
        pytest.skip("no recorded kernel trace yet (lab/capture-fixtures)")
    kernel = json.loads(RECORDED.read_text())
    sim = json.loads(json.dumps(run_sequence(open_sim("igb-82576"), "0000:0b:00.0")))
    assert len(sim) == len(kernel) == 20
    for k, s in zip(kernel, sim, strict=True):
        assert k == s, f"step {k[0]!r}: kernel {k[1:]} vs simulation {s[1:]}"


def test_sim_vf_settings_match_the_recorded_kernel_answers() -> None:
    from fidelity import run_vf_sequence

    recorded = RECORDED.parent / "fidelity-netlink-kernel.json"
    if not recorded.exists():
        pytest.skip("no recorded kernel trace yet (lab/capture-fixtures)")
    h = open_sim("igb-82576")
    h.write("sys/bus/pci/devices/0000:0b:00.0/sriov_numvfs", "0")
    h.write("sys/bus/pci/devices/0000:0b:00.0/sriov_numvfs", "3")
    sim = json.loads(json.dumps(run_vf_sequence(h, "0000:0b:00.0")))
    assert sim == json.loads(recorded.read_text())


def test_sim_exporter_matches_the_recorded_kernel_trace() -> None:
    """Issue 21: where each VF's counters come from (igb's IFLA_VF_STATS zeros, igbvf's netdev, none on
    vfio-pci) and who holds it, as the lab's kernel and libvirtd said (tests/lab/test_libvirt.py)."""
    from fidelity import sim_exporter_trace

    recorded = RECORDED.parent / "fidelity-exporter-kernel.json"
    assert json.loads(json.dumps(sim_exporter_trace())) == json.loads(recorded.read_text())
