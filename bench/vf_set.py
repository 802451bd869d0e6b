"""Benchmarks of the VF-configuration path that need no lab:
- the whole `sriovctl vf set` command for 256 VFs on the simulated e810-2x256 host (CLI overhead only: the
  kernel is simulated there), fresh process per run;
- cold start of the CLI, and of the netlink layer (pyroute2's IPRSocket opened), fresh process per run.

    .venv/bin/python bench/vf_set.py [--runs 7]

The real-kernel comparison (7 VFs of the lab's 82576: one library call vs one `ip` process per VF) is
tests/lab/test_vf.py::test_benchmark_mac_vlan_on_7_vfs; its result lands in lab/out/default/bench-vf-set.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import timed  # bench/ is on sys.path when a benchmark runs as a script

BIN = Path(sys.executable).parent


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=7)
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="sriovctl-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    env = dict(os.environ, SRIOVCTL_SIM_DIR=work)
    try:
        subprocess.run([str(BIN / "sriovctl"), "sim", "reset", "e810-2x256"], check=True, env=env, stdout=subprocess.DEVNULL)
        sriovctl = str(BIN / "sriovctl")
        vf_set = timed([sriovctl, "--sim", "e810-2x256", "vf", "set", "ens2f0#0-255", "--vlan", "100", "--spoofchk", "off",
                        "--trust", "on"], a.runs, env)
        version = timed([sriovctl, "--version"], a.runs, env)
        nl = timed([sys.executable, "-c", "from sriovctl.host.netlink_real import PyrouteNetlink; PyrouteNetlink()._sock()"],
                   a.runs, env)
        for label, runs in (("vf set 256 VFs (sim e810)", vf_set), ("sriovctl --version", version),
                            ("netlink layer cold load", nl)):
            print(f"{label:28}: median {statistics.median(runs) * 1000:7.1f} ms  "
                  f"(runs: {', '.join(f'{x * 1000:.0f}' for x in runs)})")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
