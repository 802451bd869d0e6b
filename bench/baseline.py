"""The same commands on the same tree, this checkout against an earlier commit, run side by side (interleaved, one
fresh process each): ratios, not absolute times, because the machine's speed drifts.

    .venv/bin/python bench/baseline.py --rev ba100ee --runs 7
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import create_bench_host, workdir

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rev", required=True, help="the baseline commit")
    p.add_argument("--runs", type=int, default=7)
    a = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="sriovctl-baseline-"))
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(base / "tree"), a.rev], check=True,
                   capture_output=True)
    for src in (REPO / "src", base / "tree" / "src"):  # both sides with bytecode, as scripts/setup leaves them
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True, capture_output=True)
    work, _ = workdir()
    env = dict(os.environ, SRIOVCTL_SIM_DIR=work)
    try:
        create_bench_host(env)
        tree = f"{work}/bench"
        sides = {"now": dict(env, PYTHONPATH=str(REPO / "src")),
                 a.rev: dict(env, PYTHONPATH=str(base / "tree" / "src"))}
        commands = {"--json status (4,129 devices)": ["--root", tree, "--json", "status"],
                    "--version": ["--version"],
                    "vf set 256 VFs --dry-run": ["--sim", "bench", "vf", "set", "ens1f0#0-255", "--vlan", "9",
                                                 "--dry-run"],
                    "vf set 256 VFs": ["--sim", "bench", "vf", "set", "ens1f0#0-255", "--trust", "on"]}
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(a.runs):
            for what, argv in commands.items():
                for side, side_env in sides.items():
                    t0 = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "sriovctl", *argv], check=True, env=side_env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    times.setdefault((what, side), []).append(time.perf_counter() - t0)
        for what in commands:
            now, old = (statistics.median(times[(what, s)]) for s in sides)
            print(f"{what:<32} now {now * 1000:7.1f} ms   {a.rev} {old * 1000:7.1f} ms   ratio now/{a.rev} "
                  f"{now / old:.2f}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base / "tree")], check=False,
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
