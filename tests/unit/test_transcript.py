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


def test_every_command_behaves_as_recorded(recorded: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    now = record()
    differences = []
    for want, got in zip(recorded, now, strict=True):
        if want != got:
            argv = " ".join(want.get("argv", want.get("step", [])))
            fields = [k for k in ("code", "stdout", "stderr") if want.get(k) != got.get(k)]
            differences.append(f"{argv}: {', '.join(fields)} differ:\n  was {json.dumps({k: want.get(k) for k in fields})[:600]}"
                               f"\n  now {json.dumps({k: got.get(k) for k in fields})[:600]}")
    assert not differences, "\n".join(differences)
