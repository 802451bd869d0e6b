"""Benchmark: opening snapshot archives (`sriovctl --root X.tar.gz`) is linear in the member count and
stays within its limit — 200,000 members in <= 15 s — and a snapshot of the 16 PF x 256 VF bench host
(~160,000 members) opens. Our extraction (archive.py: every member checked, links resolved inside the
archive's own tree) runs side by side with the standard library's `tarfile.extractall(filter="data")` on the
same archives, the baseline it replaced. Archives and extraction directories on tmpfs when there is one.

    .venv/bin/python bench/snapshot_open.py [--runs 3]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from timing import SRIOVCTL, create_bench_host, workdir  # bench/ is on sys.path when run as a script


def synthetic(path: Path, members: int) -> int:
    """A sysfs-shaped archive: per device a directory, 8 small attribute files and a relative link to it."""
    per_dev = 10
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        tar.addfile(tarfile.TarInfo("SRIOVCTL-SNAPSHOT.json"), io.BytesIO(b""))
        n = 1
        dev = 0
        while n < members:
            d = f"sys/devices/pci0000:00/0000:00:01.0/0000:{dev // 2048:02x}:{(dev // 8) % 32:02x}.{dev % 8}-{dev}"
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            tar.addfile(ti)
            for name in ("vendor", "device", "class", "revision", "numa_node", "driver_override", "enable", "irq")[
                    :per_dev - 2]:
                data = b"0x8086\n"
                ti = tarfile.TarInfo(f"{d}/{name}")
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            ti = tarfile.TarInfo(f"sys/bus/pci/devices/dev{dev}")
            ti.type, ti.linkname = tarfile.SYMTYPE, f"../../../devices/pci0000:00/0000:00:01.0/{d.rsplit('/', 1)[-1]}"
            tar.addfile(ti)
            n += per_dev
            dev += 1
    return n


def ours(archive: Path, scratch: str) -> float:
    from sriovctl import archive as arc

    dest = tempfile.mkdtemp(dir=scratch)
    t0 = time.perf_counter()
    arc.extract(str(archive), dest)
    dt = time.perf_counter() - t0
    shutil.rmtree(dest)
    return dt


def stdlib(archive: Path, scratch: str) -> float:
    dest = tempfile.mkdtemp(dir=scratch)
    t0 = time.perf_counter()
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(dest, filter="data")
    dt = time.perf_counter() - t0
    shutil.rmtree(dest)
    return dt


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    work, _ = workdir()
    ok = True
    try:
        rows = []
        for members in (50_000, 100_000, 200_000):
            path = Path(work) / f"m{members}.tar.gz"
            count = synthetic(path, members)
            o = [ours(path, work) for _ in range(a.runs)]
            s = [stdlib(path, work) for _ in range(a.runs)]
            rows.append((count, statistics.median(o), statistics.median(s)))
        env = dict(os.environ, SRIOVCTL_SIM_DIR=work)
        create_bench_host(env)
        snap = Path(work) / "bench16x256.tar.gz"
        subprocess.run([SRIOVCTL, "--sim", "bench", "snapshot", str(snap)], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        with tarfile.open(snap) as tar:
            snap_members = sum(1 for _ in tar)
        o = [ours(snap, work) for _ in range(a.runs)]
        s = [stdlib(snap, work) for _ in range(a.runs)]
        rows.append((snap_members, statistics.median(o), statistics.median(s)))
        t0 = time.perf_counter()
        r = subprocess.run([SRIOVCTL, "--root", str(snap), "--json", "status"],
                           env=dict(env, TMPDIR=work), stdout=subprocess.DEVNULL)  # extracted where the bench runs
        whole = time.perf_counter() - t0
        print(f"{'members':>9} {'ours s':>8} {'stdlib s':>9} {'ours/stdlib':>12} {'us/member':>10}")
        for i, (m, o_, s_) in enumerate(rows):
            label = "  (16x256 snapshot)" if i == len(rows) - 1 else ""
            print(f"{m:>9} {o_:>8.2f} {s_:>9.2f} {o_ / s_:>12.2f} {o_ / m * 1e6:>10.1f}{label}")
        per = [o_ / m for m, o_, _ in rows[:3]]
        linear = max(per) / min(per)
        print(f"per-member time, largest/smallest of the synthetic runs: {linear:.2f} (1.0 = linear)")
        print(f"sriovctl --root 16x256.tar.gz --json status: exit {r.returncode}, {whole:.2f} s (open + inventory)")
        big = rows[2][1]
        ok = big <= 15 and linear <= 1.5 and r.returncode == 0
        print("targets met (200,000 members <= 15 s, linear, 16x256 snapshot opens)" if ok else "TARGETS MISSED")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
