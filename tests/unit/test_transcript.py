"""Behaviour kept: every step of tests/transcript.py gives the exit code, text and JSON recorded in
tests/fixtures/transcript.json (recorded before the engine refactoring, issue 11)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from transcript import STEPS, TRANSCRIPT, record


@pytest.fixture(scope="module")
def recorded() -> list[dict[str, Any]]:
    return list(json.loads(TRANSCRIPT.read_text()))


def test_the_transcript_has_enough_commands(recorded: list[dict[str, Any]]) -> None:
    commands = [s for s in recorded if "code" in s]
    assert len(commands) >= 60
    assert {s["argv"][1] for s in commands if s["argv"][0] == "--sim"} >= {
        "igb-82576", "e810-2x256", "no-acs-switch", "no-iommu"}
    assert [s.get("argv", s.get("step")) for s in recorded] == [list(s) for s in STEPS]


# Intended differences since the recording, each with its reason (listed in issue 11's closing note too).
ADDED_KEYS = {
    # writing verbs print their plan and outcome as data (issue 11): only added, every recorded field stays
    "plan", "outcome",
}


def _without_added(got: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(got.get("stdout"), dict) or not isinstance(want.get("stdout"), dict):
        return got
    kept = {k: v for k, v in got["stdout"].items() if k not in ADDED_KEYS or k in want["stdout"]}
    return {**got, "stdout": kept}


def test_every_command_behaves_as_recorded(recorded: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    now = record()
    differences = []
    for want, got in zip(recorded, now, strict=True):
        got = _without_added(got, want)
        if want != got:
            argv = " ".join(want.get("argv", want.get("step", [])))
            fields = [k for k in ("code", "stdout", "stderr") if want.get(k) != got.get(k)]
            differences.append(f"{argv}: {', '.join(fields)} differ:\n  was {json.dumps({k: want.get(k) for k in fields})[:600]}"
                               f"\n  now {json.dumps({k: got.get(k) for k in fields})[:600]}")
    assert not differences, "\n".join(differences)
