"""Random byte-level mutations of valid documents through the CLI in-process (issue 18; tests/mutate.py): state
files in YAML and JSON (`state apply` on the simulated igb-82576), nmstate documents, systemd-networkd .network
files and device-plugin configs (`state import`). Each must exit 0 or 65 with the file named first, never 70,
never hang (60 s a case), and leave the host unchanged when refused. The suite runs 500; this runs --cases
(10,000 by default) from another seed range, and reports the outcomes and the time a case takes.

    .venv/bin/python bench/mutations.py [--cases 10000] [--first-seed 1000]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from timing import workdir  # bench/ is on sys.path when a benchmark runs as a script

TESTS = Path(__file__).resolve().parent.parent / "tests"


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--first-seed", type=int, default=1000)
    a = p.parse_args()
    work, _ = workdir()
    os.environ["SRIOVCTL_SIM_DIR"] = work
    os.environ["SRIOVCTL_PCI_IDS"] = str(TESTS / "fixtures" / "pci.ids")
    sys.path.insert(0, str(TESTS))
    from mutate import KINDS, run

    try:
        per_kind = a.cases // len(KINDS)
        bad = []
        t0 = time.perf_counter()
        for kind in KINDS:
            k0 = time.perf_counter()
            docs = Path(tempfile.mkdtemp(dir=work))
            verdicts = run([kind], per_kind, docs, a.first_seed)
            took = time.perf_counter() - k0
            codes = collections.Counter(v.code for v in verdicts)
            wrong = [v for v in verdicts if not v.ok]
            bad += wrong
            print(f"{kind:14} {len(verdicts):6} cases: " + ", ".join(f"exit {c}: {n}" for c, n in sorted(codes.items()))
                  + f"; {len(wrong)} broke the contract; {took / len(verdicts) * 1000:.1f} ms a case")
        total = per_kind * len(KINDS)
        print(f"{total} mutated documents in {time.perf_counter() - t0:.0f} s: {total - len(bad)} held the contract "
              "(exit 0, or 65 naming the file; no hang; host unchanged when refused)")
        for v in bad[:20]:
            print(f"  {v.case}: {v.why}")
        return 1 if bad else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
