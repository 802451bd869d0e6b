"""Shared by the benchmarks: time a command in a fresh process per run; a work directory on tmpfs; the
16 PF x 256 VF bench host."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SPEC_16X256 = Path(__file__).resolve().parent / "spec-16x256.yaml"
SRIOVCTL = str(Path(sys.executable).parent / "sriovctl")


def workdir() -> tuple[str, bool]:
    """A fresh directory on tmpfs (/dev/shm) when there is one, else in the temp dir; and whether it is tmpfs.
    Named by this process's pid: the tree of a benchmark that was killed (its `finally` never ran; a 16 x 256 host
    is 250,000 inodes) is removed by the next one, once its pid is gone."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    import glob
    import shutil

    for old in glob.glob(os.path.join(base, "sriovctl-bench-*-*")):
        pid = os.path.basename(old).split("-")[2]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"sriovctl-bench-{os.getpid()}-", dir=base), base == "/dev/shm"


def in_workdir(run: Callable[[str, bool], int]) -> int:
    """``run(work, on_tmpfs)`` in a fresh work directory (workdir), which is removed afterwards."""
    import shutil

    work, on_tmpfs = workdir()
    try:
        return run(work, on_tmpfs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def create_bench_host(env: dict[str, str], name: str = "bench") -> float:
    """Build the simulated 16 x 256 host in $SRIOVCTL_SIM_DIR; seconds taken."""
    t0 = time.perf_counter()
    subprocess.run([SRIOVCTL, "sim", "create", name, "--from", str(SPEC_16X256)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def timed(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
        out.append(time.perf_counter() - t0)
    return out
