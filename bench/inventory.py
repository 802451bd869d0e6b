"""Benchmark: full inventory (`sriovctl --root TREE --json status`) of a 16 PF x 256 VF host on tmpfs,
against `lspci -vvv -A linux-sysfs -O sysfs.path=TREE/sys/bus/pci` on the same tree; and the cold start
of `sriovctl --version`. Each command is a fresh process (no cache survives between runs); medians of N.

    .venv/bin/python bench/inventory.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics

from timing import SRIOVCTL, create_bench_host, timed, workdir  # bench/ is on sys.path when a benchmark runs as a script


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=7)
    a = p.parse_args()
    work, on_tmpfs = workdir()
    env = dict(os.environ, SRIOVCTL_SIM_DIR=work)
    try:
        build = create_bench_host(env)
        tree = f"{work}/bench"
        ndev = len(os.listdir(f"{tree}/sys/bus/pci/devices"))
        ours = timed([SRIOVCTL, "--root", tree, "--json", "status"], a.runs, env)
        lspci = timed(["lspci", "-vvv", "-A", "linux-sysfs", "-O", f"sysfs.path={tree}/sys/bus/pci"], a.runs, env)
        version = timed([SRIOVCTL, "--version"], a.runs, env)
        m_ours, m_lspci, m_ver = statistics.median(ours), statistics.median(lspci), statistics.median(version)
        print(f"tree: {ndev} PCI devices on {'tmpfs' if on_tmpfs else 'disk'} (built in {build:.1f} s)")
        print(f"sriovctl --json status : median {m_ours * 1000:7.1f} ms  (runs: {', '.join(f'{x * 1000:.0f}' for x in ours)})")
        print(f"lspci -vvv             : median {m_lspci * 1000:7.1f} ms  (runs: {', '.join(f'{x * 1000:.0f}' for x in lspci)})")
        print(f"ratio sriovctl/lspci   : {m_ours / m_lspci:.2f}  (target <= 1.0: absolute times drift with the machine)")
        print(f"sriovctl --version     : median {m_ver * 1000:7.1f} ms  (target <= 100 ms)")
        ok = m_ours <= m_lspci and m_ver <= 0.1
        print("targets met" if ok else "TARGETS MISSED")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
