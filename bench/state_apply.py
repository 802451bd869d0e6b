"""Benchmarks of the desired state (issue 13) on the simulated e810-2x256 (no lab needed):

- plan and apply of 2 x 256 VFs (VF counts 0 → 256 on both ports, a MAC and VLAN on every VF, 8 VFs per port to
  vfio-pci): time, writes, netlink requests; beside it the same host change made with the imperative verbs
  (vf enable, vf set --macs-from, vf bind), the baseline; then apply of the converged host (verify only);
- --kills N: SIGKILL at N points spread over a whole 512-VF apply, then apply again → identical to a clean apply
  (tests/statecrash.py; the suite runs 10);
- --faults N: N generated invalid state files through the whole CLI (`state apply`), each named by its path,
  exit 65, the simulated host unchanged (tests/statefaults.py; the suite runs 10,000 through read_state_file).

    .venv/bin/python bench/state_apply.py [--runs 5] [--kills 100] [--faults 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from timing import SRIOVCTL, workdir  # bench/ is on sys.path when a benchmark runs as a script

TESTS = Path(__file__).resolve().parent.parent / "tests"
SIM = "e810-2x256"


def state(n: int = 256) -> dict[str, object]:
    def pf(name: str, port: int) -> dict[str, object]:
        return {"name": name, "total-vfs": n, "vfs": [
            *({"id": i, "mac-address": f"02:00:00:{port:02x}:{i >> 8:02x}:{i & 0xFF:02x}", "vlan-id": 100 + port}
              for i in range(n - 8)),
            {"id": f"{n - 8}-{n - 1}", "driver": "vfio-pci", "vlan-id": 100 + port}]}
    return {"pfs": [pf("ens2f0", 0), pf("ens2f1", 1)]}


def sh(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    took = time.perf_counter() - t0
    if p.returncode:
        raise SystemExit(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
    return took, p.stdout


def reset(env: dict[str, str]) -> None:
    sh([SRIOVCTL, "sim", "reset", SIM], env)
    for port in ("ens2f0", "ens2f1"):
        sh([SRIOVCTL, "--sim", SIM, "vf", "disable", port, "--force"], env)


def imperative(env: dict[str, str]) -> float:
    """The same change with one verb per step, as an operator scripts it today."""
    total = 0.0
    for port, pf in ((0, "ens2f0"), (1, "ens2f1")):
        total += sh([SRIOVCTL, "--sim", SIM, "vf", "enable", pf, "256"], env)[0]
        total += sh([SRIOVCTL, "--sim", SIM, "vf", "set", f"{pf}#0-247", "--macs-from", f"02:00:00:{port:02x}:00:00",
                     "--vlan", str(100 + port)], env)[0]
        total += sh([SRIOVCTL, "--sim", SIM, "vf", "set", f"{pf}#248-255", "--vlan", str(100 + port)], env)[0]
        for i in range(248, 256):
            total += sh([SRIOVCTL, "--sim", SIM, "vf", "bind", f"{pf}#{i}", "vfio-pci"], env)[0]
    return total


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--kills", type=int, default=0)
    p.add_argument("--faults", type=int, default=0)
    a = p.parse_args()
    work, _ = workdir()
    env = dict(os.environ, SRIOVCTL_SIM_DIR=work)
    f = Path(work) / "state.json"
    f.write_text(json.dumps(state()))
    try:
        plans, applies, verifies, base = [], [], [], []
        facts: dict[str, object] = {}
        for _ in range(a.runs):
            reset(env)
            plans.append(sh([SRIOVCTL, "--sim", SIM, "state", "plan", str(f)], env)[0])
            took, out = sh([SRIOVCTL, "--sim", SIM, "--json", "state", "apply", str(f)], env)
            applies.append(took)
            doc = json.loads(out)
            facts = {"changes": len(doc["plan"]["changes"]), "writes": doc["writes"],
                     "netlink_requests": doc["netlink_requests"]}
            took, out = sh([SRIOVCTL, "--sim", SIM, "--json", "state", "apply", str(f)], env)
            assert json.loads(out)["writes"] == 0 and not json.loads(out)["plan"]["changes"]
            verifies.append(took)
            reset(env)
            base.append(imperative(env))
        med = statistics.median
        print(f"state plan 2x256 (from 0 VFs)     : median {med(plans) * 1000:7.0f} ms")
        print(f"state apply 2x256                 : median {med(applies) * 1000:7.0f} ms  {facts}")
        print(f"imperative verbs, same change     : median {med(base) * 1000:7.0f} ms  (2 enable, 4 vf set, 16 vf bind)")
        print(f"  ratio imperative / state apply  : {med(base) / med(applies):.1f}x")
        print(f"state apply, converged (verify)   : median {med(verifies) * 1000:7.0f} ms  (0 writes)")
        if a.kills:
            sys.path.insert(0, str(TESTS))
            os.environ["SRIOVCTL_SIM_DIR"] = work
            from statecrash import clean_apply, one_point, points, write_state

            sf = write_state(Path(work) / "crash.json")
            t0 = time.perf_counter()
            reference, total = clean_apply(sf)
            results = [one_point(sf, k, reference) for k in points(total, a.kills)]
            ok = sum(r["identical"] and r["then_no_changes"] for r in results)
            print(f"kill -9 at {len(results)} points over {total} tree changes: {ok} identical to a clean apply, "
                  f"{sum(r['killed'] for r in results)} killed, {sum(r['journal_found'] for r in results)} journals "
                  f"rolled forward ({time.perf_counter() - t0:.0f} s)")
            if ok != len(results):
                print([r for r in results if not (r["identical"] and r["then_no_changes"])])
                return 1
        if a.faults:
            sys.path.insert(0, str(TESTS))
            os.environ["SRIOVCTL_SIM_DIR"] = work
            from statefaults import faults

            from helpers import cli, tree_hash
            from sriovctl.host.sim.catalog import open_sim

            root = open_sim("igb-82576").root
            before = tree_hash(root)
            bad = Path(work) / "bad.json"
            t0 = time.perf_counter()
            wrong = 0
            for n, (doc, path, _) in enumerate(faults(a.faults)):
                bad.write_text(json.dumps(doc))
                res = cli("--sim", "igb-82576", "state", "apply", str(bad))
                if res.code != 65 or not res.err.startswith(f"sriovctl: {bad}: {path}: ") or res.err.count("\n") != 1:
                    wrong += 1
                    print("wrong:", n, path, res.err.strip())
            same = tree_hash(root) == before
            print(f"{a.faults} invalid files through `state apply` (the CLI in-process): {a.faults - wrong} named at "
                  f"the fault's path with exit 65; host tree unchanged: {same} ({time.perf_counter() - t0:.0f} s)")
            if wrong or not same:
                return 1
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
