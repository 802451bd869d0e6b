"""Lab, topology `default`: the simulated igb host reacts to the same writes as the real kernel."""

from __future__ import annotations

import json

import pytest

from fidelity import run_sequence
from labguest import LAB_OUT

pytestmark = pytest.mark.lab("default")


def test_sim_and_kernel_react_alike(host, pfs) -> None:  # type: ignore[no-untyped-def]
    from sriovctl.host.simdir import open_sim, reset_sim

    (pf,) = pfs
    real = run_sequence(host, pf)
    reset_sim("igb-82576")
    sim = run_sequence(open_sim("igb-82576"), "0000:0b:00.0")
    (LAB_OUT / "fidelity-kernel.json").write_text(json.dumps(real, indent=1))
    assert len(real) == len(sim) == 20
    for r, s in zip(real, sim, strict=True):
        assert r == s, f"step {r[0]!r}: kernel {r[1:]} vs simulation {s[1:]}"
