"""The lab's boot deadline follows progress (found under load, issue 19: the fixed 900 s per boot failed every
test of the `default` boot at once when the machine was slow; issue 18 added a test to that boot): a guest that
keeps finishing tests is never cut off at a fixed time, one that stops progressing is, and the tests it
finished before keep their results. A stand-in for virtme-ng (a shell script) plays the guest."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

import labkit


def _guest(rw: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labkit, "vng_argv", lambda topo, command, rwdir: ["/bin/sh", "-c", script])


def test_a_progressing_guest_runs_past_the_stall_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labkit, "STALL_DEADLINE", 3)
    log = tmp_path / "guest.log"
    _guest(tmp_path, f"for i in 1 2 3 4 5 6 7 8; do echo . >> {log}; sleep 1; done; exit 0", monkeypatch)
    t0 = time.monotonic()
    rc, _, started = labkit._boot(labkit.TOPOLOGIES["default"], "", tmp_path, timeout=600)
    assert rc == 0 and started and time.monotonic() - t0 >= 7  # 8 s of work, never 3 s without progress


def test_a_stalled_guest_is_given_up_and_keeps_what_it_reported(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labkit, "STALL_DEADLINE", 3)
    log, report = tmp_path / "guest.log", tmp_path / "report.json"
    _guest(tmp_path, f"echo . >> {log}; echo '{{\"t::a\": {{\"outcome\": \"passed\"}}}}' > {report}; sleep 600",
           monkeypatch)
    t0 = time.monotonic()
    rc, _, started = labkit._boot(labkit.TOPOLOGIES["default"], "", tmp_path, timeout=600)
    took = time.monotonic() - t0
    assert rc == 124 and started and 3 <= took < 60, took
    assert report.read_text().startswith('{"t::a"')


if sys.platform != "linux":  # pragma: no cover
    pytest.skip("the lab is Linux-only", allow_module_level=True)
