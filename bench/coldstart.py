"""Cold start, as a udev rule or a boot unit pays it: whole processes, side by side in one run.

1. `sriovctl --version` against a bare interpreter (`python3 -S -c pass`, and `python3 -c pass` with site), runs
   alternating, medians.
2. What a `sriovctl vf set` process imports (`python -X importtime`): the top-level cumulative import times
   summed (what `python3 -c pass` imports itself — site, encodings — not counted), and the number of modules.
   Run whole on the simulated e810 host; and the live host's import set on this machine (no SR-IOV NIC here):
   the same sriovctl modules without the simulator's (host/sim, beneath) and with the live rtnetlink
   (host/netlink_real) — what `vf set` imports on a real kernel (the lab checks pyroute2 is not among them).

    python bench/coldstart.py [--runs 21]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

from timing import SRIOVCTL, timed

PY = sys.executable
BARE = ("site", "encodings")  # what `python3 -c pass` imports itself
SIM_ONLY = ("sriovctl.host.sim", "sriovctl.host.beneath", "sriovctl.snapshot")
_ROW = re.compile(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)")


def importtime(argv: list[str], env: dict[str, str]) -> tuple[float, list[str]]:
    """Milliseconds of top-level cumulative import time (the interpreter's own imports excluded) and every
    module imported, of one process."""
    r = subprocess.run([PY, "-X", "importtime", *argv], capture_output=True, text=True, env=env, check=False)
    if r.returncode:
        raise SystemExit(f"{argv}: exit {r.returncode}: {r.stderr[-500:]}")
    rows = [m.groups() for m in _ROW.finditer(r.stderr)]
    top = sum(int(cum) for cum, indent, name in rows if indent == " " and name not in BARE)
    return top / 1000, [name for _, _, name in rows]


def median_importtime(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, list[float], list[str]]:
    times, modules = [], []
    for _ in range(runs):
        t, modules = importtime(argv, env)
        times.append(t)
    return statistics.median(times), times, modules


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=21)
    a = p.parse_args()
    env = dict(os.environ, SRIOVCTL_SIM_DIR=tempfile.mkdtemp(prefix="sriovctl-cold-"))
    subprocess.run([SRIOVCTL, "--sim", "e810-2x256", "status"], env=env, check=True, stdout=subprocess.DEVNULL)

    version, bare_s, bare = [], [], []
    for _ in range(a.runs):  # alternating: a drift of the machine hits all three alike
        version += timed([SRIOVCTL, "--version"], 1, env)
        bare_s += timed([PY, "-S", "-c", "pass"], 1, env)
        bare += timed([PY, "-c", "pass"], 1, env)
    mv, ms, mb = statistics.median(version), statistics.median(bare_s), statistics.median(bare)
    print(f"sriovctl --version      : median {mv * 1000:6.1f} ms")
    print(f"python3 -S -c pass      : median {ms * 1000:6.1f} ms   --version / it = {mv / ms:.2f}x")
    print(f"python3 -c pass         : median {mb * 1000:6.1f} ms   --version / it = {mv / mb:.2f}x")
    _, vmods = importtime([SRIOVCTL, "--version"], env)
    print(f"sriovctl --version imports {len(vmods)} modules ({sum(m.startswith('sriovctl') for m in vmods)} "
          "of sriovctl)")

    argv = [SRIOVCTL, "--sim", "e810-2x256", "vf", "set", "ens2f0#0-255", "--macs-from", "02:cc:00:00:00:00",
            "--vlan", "42"]
    runs = max(5, a.runs // 4)
    sim_ms, sim_all, sim_mods = median_importtime(argv, env, runs)
    print(f"vf set (simulated host) : imports {sim_ms:5.1f} ms cumulative (median of {runs}: "
          f"{', '.join(f'{x:.1f}' for x in sim_all)}), {len(sim_mods)} modules")
    live = sorted({m for m in sim_mods if m.startswith("sriovctl") and not m.startswith(SIM_ONLY)}
                  | {"sriovctl.host.netlink_real"})
    code = "import " + ", ".join(live)
    live_ms, live_all, live_mods = median_importtime(["-c", code], env, runs)
    pyroute2 = [m for m in live_mods if m.startswith("pyroute2")]
    print(f"vf set (live import set): imports {live_ms:5.1f} ms cumulative (median of {runs}: "
          f"{', '.join(f'{x:.1f}' for x in live_all)}), {len(live_mods)} modules, "
          f"{sum(m.startswith('sriovctl') for m in live_mods)} of sriovctl, pyroute2: {pyroute2 or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
