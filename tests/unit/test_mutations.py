"""Issue 18: random byte-level mutations of valid state files, nmstate documents, .network files and device-
plugin configs through the CLI: exit 0 or 65 with the file named, never 70, never a hang, the host unchanged
when refused (tests/mutate.py; bench/mutations.py runs 10,000)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mutate import KINDS, run

PER_KIND = 100  # 5 kinds: 500 cases


@pytest.mark.parametrize("kind", list(KINDS))
def test_random_mutations_exit_0_or_65_naming_the_file(kind: str, tmp_path: Path) -> None:
    verdicts = run([kind], PER_KIND, tmp_path)
    bad = [v for v in verdicts if not v.ok]
    assert not bad, "\n".join(f"{v.case}: {v.why}" for v in bad[:10])
    refused = sum(v.code == 65 for v in verdicts)
    assert 0 < refused < len(verdicts) or kind == "device-plugin", refused  # the mutations reach both outcomes
