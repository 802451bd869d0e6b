"""The exporter (issue 21), side by side with a baseline in the same run, medians:

1. In process: one scrape of the simulated e810-2x256 (2 x 256 VFs: inventory with counters, owners, state,
   cached doctor, rendering) against the bare inventory read with counters it starts from — target <= 100 ms.
2. Whole processes, as a systemd timer runs it: `exporter --textfile DIR --once` against `--json status` of the
   same host and `python3 -S -c pass`, alternating; the modules a `--once` run imports.
3. Cardinality: series per host at 2 x 256 VFs and on the 16 x 256 bench host (4,096 VFs).

    python bench/exporter.py [--runs 15] [--skip-big]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from timing import SRIOVCTL, create_bench_host, in_workdir


def _alternate(fs: list[Callable[[], object]], runs: int) -> list[list[float]]:
    out: list[list[float]] = [[] for _ in fs]
    for _ in range(runs):
        for f, times in zip(fs, out, strict=True):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
    return out


def _med(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


def _series(text: str) -> int:
    return sum(1 for x in text.splitlines() if x and not x.startswith("#"))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--skip-big", action="store_true", help="leave out the 16 x 256 host (250,000 files to build)")
    a = p.parse_args()
    return in_workdir(lambda work, on_tmpfs: _run(a, work, on_tmpfs))


def _run(a: argparse.Namespace, work: str, on_tmpfs: bool) -> int:
    os.environ["SRIOVCTL_SIM_DIR"] = work
    from sriovctl.host.sim.catalog import open_sim
    from sriovctl.inventory import read_inventory
    from sriovctl.ops.metrics import Exporter
    from sriovctl.pci.ids import PciIds

    host = open_sim("e810-2x256")
    exp = Exporter(host)
    text = exp.scrape().text()  # the doctor runs once here, then is cached for the hour as in a live exporter
    inv, scrape = _alternate([lambda: read_inventory(host, ids=PciIds(""), stats=True), exp.scrape], a.runs)
    s_ms, i_ms = _med(scrape), _med(inv)
    print(f"e810-2x256 ({'tmpfs' if on_tmpfs else 'disk'}), {a.runs} runs each, alternating")
    print(f"inventory read with counters : median {i_ms:6.1f} ms")
    print(f"scrape (2 x 256 VFs)         : median {s_ms:6.1f} ms = {s_ms / i_ms:.2f}x the inventory read "
          f"(target <= 100 ms)")
    print(f"series: {_series(text)} ({len(text)} bytes) for 512 VFs")

    env = dict(os.environ)
    textdir = os.path.join(work, "textfile")
    os.mkdir(textdir)
    once = [SRIOVCTL, "--sim", "e810-2x256", "exporter", "--textfile", textdir, "--once"]
    status = [SRIOVCTL, "--sim", "e810-2x256", "--json", "status"]
    bare = [sys.executable, "-S", "-c", "pass"]

    def run(argv: list[str]) -> Callable[[], object]:
        return lambda: subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)

    t_once, t_status, t_bare = _alternate([run(once), run(status), run(bare)], a.runs)
    print(f"whole process `exporter --textfile DIR --once`: median {_med(t_once):6.1f} ms = "
          f"{_med(t_once) / _med(t_status):.2f}x `--json status` ({_med(t_status):.1f} ms), "
          f"{_med(t_once) / _med(t_bare):.1f}x `python3 -S -c pass` ({_med(t_bare):.1f} ms)")
    r = subprocess.run([sys.executable, "-X", "importtime", SRIOVCTL, *once[1:]], capture_output=True, text=True,
                       env=env, check=True)
    mods = re.findall(r"import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", r.stderr)
    print(f"a --once run imports {len(mods)} modules ({sum(m.startswith('sriovctl') for m in mods)} of sriovctl; "
          f"http.server: {'http.server' in mods}, libvirt: {'libvirt' in mods})")
    ok = s_ms <= 100
    if not a.skip_big:
        create_bench_host(env)
        big = Exporter(open_sim("bench"))
        text = big.scrape().text()
        (t_big,) = _alternate([big.scrape], max(3, a.runs // 5))
        vfs = 16 * 256
        print(f"16 x 256 (4,096 VFs): {_series(text)} series, {len(text) / 1e6:.1f} MB, scrape median "
              f"{_med(t_big):.0f} ms ({_series(text) / vfs:.2f} series per VF)")
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
