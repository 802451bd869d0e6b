"""Scoped reads (issue 19), side by side in one process, runs alternating, medians:

1. A locked section after another sriovctl wrote: one 256-VF PF of the simulated e810-2x256 read again
   (inventory.reread_pfs) against the whole host read again (read_inventory) — the target is <= 20 %.
2. The stats read an exporter makes (vfstats.read_vf_stats: VF counters + driver and group, no config spaces)
   of the same 2 x 256 VFs against a full inventory read with counters — the target is <= 50 %.
3. `vf set` on one PF of the 16 x 256 host after another writer: the files its locked section opens (a Python
   audit hook on "open"), against those a whole re-read opens; none may belong to another PF's VFs.

    python bench/scoped.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

from timing import create_bench_host, workdir


def _alternate(a: Callable[[], object], b: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    ta, tb = [], []
    for _ in range(runs):
        for f, out in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            f()
            out.append(time.perf_counter() - t0)
    return ta, tb


def _ms(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1000:7.1f} ms"


OPENED: list[str] = []
RECORDING = [False]


def _hook(event: str, args: tuple[object, ...]) -> None:
    if RECORDING[0] and event == "open" and isinstance(args[0], str):
        OPENED.append(args[0])


def _opened(f: Callable[[], object]) -> list[str]:
    OPENED.clear()
    RECORDING[0] = True
    try:
        f()
    finally:
        RECORDING[0] = False
    return list(OPENED)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=15)
    a = p.parse_args()
    work, on_tmpfs = workdir()
    os.environ["SRIOVCTL_SIM_DIR"] = work
    from sriovctl.host.sim.catalog import open_sim
    from sriovctl.inventory import read_inventory, reread_pfs
    from sriovctl.ops.session import Session
    from sriovctl.ops.vfcount import EnableOptions, enable
    from sriovctl.pci.address import PciAddress
    from sriovctl.vfstats import read_vf_stats

    host = open_sim("e810-2x256")
    inv = read_inventory(host)
    pf0 = PciAddress.parse("0000:17:00.0")
    whole, scoped = _alternate(lambda: read_inventory(host), lambda: reread_pfs(host, inv, [pf0]), a.runs)
    r1 = statistics.median(scoped) / statistics.median(whole)
    print(f"e810-2x256 ({'tmpfs' if on_tmpfs else 'disk'}), {a.runs} runs each, alternating")
    print(f"whole-host read            : {_ms(whole)}")
    print(f"one 256-VF PF read again   : {_ms(scoped)}   = {r1:.0%} of the whole read (target <= 20 %)")
    full, stats = _alternate(lambda: read_inventory(host, stats=True), lambda: read_vf_stats(host), a.runs)
    r2 = statistics.median(stats) / statistics.median(full)
    print(f"full read with counters    : {_ms(full)}")
    print(f"stats read (2 x 256 VFs)   : {_ms(stats)}   = {r2:.0%} of the full read (target <= 50 %)")

    env = dict(os.environ)
    create_bench_host(env)
    big = open_sim("bench")
    s = Session(big)
    first = big.label and sorted(s.inv.pfs, key=lambda d: d.address)[0]
    assert first
    enable(Session(open_sim("bench")), str(first.address), 256, EnableOptions(reset=True))  # another writer
    sys.addaudithook(_hook)

    def locked() -> None:
        with s.locked(str(first.address), 10.0):
            pass

    mine = _opened(locked)
    others = {str(v) for pf in s.inv.pfs if pf.address != first.address for v in pf.vfs}
    foreign = [x for x in mine if any(part in others for part in x.split("/"))]
    every = _opened(lambda: read_inventory(big))
    print(f"16 x 256: a locked section after another writer opened {len(mine)} files (a whole re-read: "
          f"{len(every)}); files of the other 15 PFs' VFs among them: {len(foreign)}; scoped: "
          f"{s.scoped_rereads == 1}")
    ok = r1 <= 0.2 and r2 <= 0.5 and not foreign and s.scoped_rereads == 1
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
