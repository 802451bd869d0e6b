"""Crash safety of `state apply` (issue 13): SIGKILL at 10 points spread over a whole apply on the simulated
e810-2x256 (512 VFs), then apply again → identical to a clean apply, every time. The 100-point run is
bench/state_apply.py (results in docs/PERFORMANCE.md)."""

from __future__ import annotations

from pathlib import Path

from statecrash import clean_apply, one_point, points, write_state


def test_kill_9_at_10_points_of_an_apply_then_apply_again_is_a_clean_apply(tmp_path: Path) -> None:
    f = write_state(tmp_path / "state.json")
    reference, total = clean_apply(f)
    assert total > 5000  # a VF-count change of 256 VFs alone is thousands of files and links
    results = [one_point(f, k, reference) for k in points(total, 10)]
    bad = [r for r in results if not (r["identical"] and r["then_no_changes"])]
    assert not bad, bad
    assert sum(r["killed"] for r in results) >= 9  # the last point may be past the final change
    assert sum(r["journal_found"] for r in results) >= 8  # a kill before the journal's first write leaves none
