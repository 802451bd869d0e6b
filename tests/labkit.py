"""The real-kernel lab: boot Debian's kernel in QEMU (TCG) through virtme-ng with an emulated Intel 82576
(igb) and a virtual VT-d, run one pytest process inside the guest per topology, bring results back.

Used by tests/conftest.py (lab tests run on the host as proxies of their in-guest results) and by the
scripts in lab/. See docs/LAB.md.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("SRIOVCTL_VENV", REPO / ".venv"))
OUT = REPO / "lab" / "out"

_IOMMU = "-device intel-iommu,intremap=on,caching-mode=on -machine kernel-irqchip=split"
_IGB = "-device igb,netdev=n{i} -netdev user,id=n{i}"


@dataclass(frozen=True)
class Topology:
    name: str
    qemu_opts: str
    append: str
    memory: str = "1G"
    description: str = ""


TOPOLOGIES: dict[str, Topology] = {
    "default": Topology("default", f"{_IOMMU} {_IGB.format(i=0)}", "intel_iommu=on",
                        description="q35 + intel-iommu (intremap, caching-mode) + one igb"),
    # default's hardware booted a second time: the state persisted by the default boot (tests/lab/test_desired_state.py)
    "reboot": Topology("reboot", f"{_IOMMU} {_IGB.format(i=0)}", "intel_iommu=on",
                       description="default again: a second boot that finds the files `persist install` wrote"),
    "no-iommu": Topology("no-iommu", _IGB.format(i=0), "intel_iommu=off",
                         description="one igb, no IOMMU device, intel_iommu=off"),
    # Each igb on its own root port: on one bus, QEMU would place the second PF's VFs on the first's slots.
    "two-pf": Topology("two-pf", f"{_IOMMU} -device pcie-root-port,id=rpa,chassis=11,slot=1 "
                       "-device igb,netdev=n0,bus=rpa -netdev user,id=n0 "
                       "-device pcie-root-port,id=rpb,chassis=12,slot=2 -device igb,netdev=n1,bus=rpb -netdev user,id=n1",
                       "intel_iommu=on", description="two igb devices, each on its own pcie-root-port, with VT-d"),
    "switch": Topology(
        "switch",
        f"{_IOMMU} -device pcie-root-port,id=rp1,chassis=1,slot=1 -device x3130-upstream,id=up1,bus=rp1 "
        "-device xio3130-downstream,id=dn1,bus=up1,chassis=2,slot=0 -device igb,netdev=n0,bus=dn1 -netdev user,id=n0 "
        "-device pcie-root-port,id=rp2,chassis=4,slot=2 -device igb,netdev=n2,bus=rp2 -netdev user,id=n2",
        "intel_iommu=on",
        description="one igb behind a TI XIO3130 switch (no ACS), one on an ACS-capable pcie-root-port"),
    "libvirt": Topology("libvirt", f"{_IOMMU} {_IGB.format(i=0)} -device pcie-root-port,id=rp9,chassis=9,slot=9",
                        "intel_iommu=on", memory="2G",
                        description="default + a spare pcie-root-port; virtlogd and libvirtd run in the guest"),
    # No NIC on PCI: netdevsim (built by lab/install.sh) is loaded by the tests; 1,024 VFs and their
    # representors want more than 1 GiB.
    "netdevsim": Topology("netdevsim", "", "intel_iommu=off", memory="2G",
                          description="netdevsim (built for the lab kernel): 64-1024 VFs, devlink, switchdev"),
}


def kernel() -> str | None:
    found = sorted(glob.glob("/boot/vmlinuz-*"), key=lambda p: [int(x) if x.isdigit() else x
                                                                for x in re.split(r"(\d+)", p)])
    return found[-1] if found else None


def netdevsim_module() -> Path | None:
    """netdevsim.ko for the lab kernel, as lab/install.sh builds it (None: not built)."""
    k = kernel()
    if k is None:
        return None
    path = Path("/var/cache/sriovctl-lab") / os.path.basename(k).removeprefix("vmlinuz-") / "netdevsim.ko"
    return path if path.exists() else None


def missing() -> str | None:
    """Why the lab cannot run here, or None."""
    if not (VENV / "bin" / "vng").exists():
        return f"virtme-ng not installed in {VENV} (run lab/install.sh)"
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        return "qemu-system-x86_64 not installed (run lab/install.sh)"
    out = subprocess.run([qemu, "--version"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"version (\d+)\.", out)
    if not m or int(m.group(1)) < 8:
        return f"QEMU >= 8 needed for -device igb, found: {out.splitlines()[0] if out else '?'}"
    if kernel() is None:
        return "no kernel in /boot (run lab/install.sh)"
    if not shutil.which("busybox"):
        return "busybox not installed (virtme-ng needs it for its initramfs; run lab/install.sh)"
    if netdevsim_module() is None:
        return "netdevsim.ko not built for the lab kernel (run lab/install.sh)"
    return None


def vng_argv(topo: Topology, command: str | None, rwdir: Path | None) -> list[str]:
    argv = [str(VENV / "bin" / "vng"), "-r", str(kernel()), "--disable-kvm", "--memory", topo.memory,
            "--cpus", "2", "--append", topo.append] + ([f"--qemu-opts={topo.qemu_opts}"] if topo.qemu_opts else [])
    module = netdevsim_module()
    if module is not None:  # virtme-ng hides the host's /var/cache: share the module's directory read-only
        argv += [f"--rodir={module.parent}"]
    if rwdir is not None:
        argv += ["--rwdir", str(rwdir)]
    if command is not None:
        argv += ["--exec", command]
    return argv


def boot_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


@dataclass
class GuestRun:
    topology: str
    results: dict[str, dict[str, str]]  # nodeid -> {"outcome": ..., "longrepr": ...}
    returncode: int
    seconds: float
    log: str
    dmesg_tail: str


BOOT_DEADLINE = 240  # seconds until the guest must have started its script (a boot takes ~15 s under TCG)


STALL_DEADLINE = 600  # seconds without progress (a test finished, the guest wrote its log) before a boot is
# given up: 8x the slowest lab test on an idle machine (75 s); a loaded machine is slower but still progresses
HARD_DEADLINE = 3600  # a boot that keeps progressing but never ends (CI's whole budget is 5,400 s)


def _progress(rw: Path) -> tuple[int, int]:
    """What grows while the guest works: its log and the per-test report (tests/conftest.py)."""
    out = []
    for name in ("guest.log", "report.json"):
        try:
            st = (rw / name).stat()
            out.append(st.st_size + st.st_mtime_ns)
        except OSError:
            out.append(0)
    return out[0], out[1]


def _boot(topo: Topology, command: str, rw: Path, timeout: float) -> tuple[int, str, bool]:
    """Boot once; (exit code, virtme output, whether the guest script started). The deadline follows progress:
    a boot is given up when the guest has not started its script within BOOT_DEADLINE, or has made no progress
    for STALL_DEADLINE, or runs past ``timeout`` — not at a fixed budget a slow machine's whole run may need."""
    log = rw / "guest.log"
    if log.exists():
        log.unlink()
    proc = subprocess.Popen(vng_argv(topo, command, rw), env=boot_env(), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    t0 = last = time.monotonic()
    seen = _progress(rw)
    try:
        while True:
            try:
                out, _ = proc.communicate(timeout=2)
                return proc.returncode, out or "", True if log.exists() else bool(out)
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                elapsed = now - t0
                if _progress(rw) != seen:
                    seen, last = _progress(rw), now
                stalled = log.exists() and now - last > STALL_DEADLINE
                if (not log.exists() and elapsed > BOOT_DEADLINE) or stalled or elapsed > timeout:
                    os.killpg(proc.pid, 9)
                    out, _ = proc.communicate()
                    return 124, out or "", log.exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)


def run_guest_pytest(topo_name: str, nodeids: list[str], timeout: float = HARD_DEADLINE) -> GuestRun:
    """Boot ``topo_name`` once and run the given lab tests in one pytest process inside it."""
    topo = TOPOLOGIES[topo_name]
    OUT.mkdir(parents=True, exist_ok=True)
    rw = OUT / topo_name
    if rw.exists():
        shutil.rmtree(rw)
    rw.mkdir(parents=True)
    report = rw / "report.json"
    py = shlex.quote(str(VENV / "bin" / "python"))
    # The selection travels in a file: on the kernel command line (virtme-ng passes the script there) it
    # would overflow the 2,048 bytes x86 allows, and the guest would hang at boot.
    selection = rw / "selection.txt"
    selection.write_text("".join(n + "\n" for n in nodeids))
    files = sorted({n.split("::", 1)[0] for n in nodeids})
    args = " ".join(shlex.quote(f) for f in files)
    guest_env = (f"SRIOVCTL_LAB_GUEST={shlex.quote(topo_name)} SRIOVCTL_LAB_OUT={shlex.quote(str(rw))} "
                 f"SRIOVCTL_LAB_BENCH={shlex.quote(os.environ.get('SRIOVCTL_LAB_BENCH', ''))} "
                 f"SRIOVCTL_SIM_DIR=/tmp/sriovctl-sim PYTHONDONTWRITEBYTECODE=1 HOME=/tmp "
                 f"SRIOVCTL_LAB_REPORT={shlex.quote(str(report))} SRIOVCTL_LAB_SELECT={shlex.quote(str(selection))}")
    command = (f"exec >{shlex.quote(str(rw / 'guest.log'))} 2>&1; cd {shlex.quote(str(REPO))} && "
               f"env {guest_env} {py} -m pytest -p no:cacheprovider -q -rA -m lab "
               f"-o addopts= {args}; rc=$?; dmesg | tail -n 60 > {shlex.quote(str(rw / 'dmesg.txt'))}; exit $rc")
    t0 = time.monotonic()
    rc, vng_out = 124, ""
    for attempt in (1, 2):  # one retry when the guest never reaches its script (a silent boot hang)
        rc, vng_out, started = _boot(topo, command, rw, timeout)
        if started:
            break
        vng_out = f"attempt {attempt}: the guest did not start its script within {BOOT_DEADLINE} s\n{vng_out}"
    seconds = time.monotonic() - t0
    results: dict[str, dict[str, str]] = {}
    if report.exists():
        results = json.loads(report.read_text())
    log = (rw / "guest.log").read_text(errors="replace") if (rw / "guest.log").exists() else ""
    dmesg = (rw / "dmesg.txt").read_text(errors="replace") if (rw / "dmesg.txt").exists() else ""
    if not log:
        log = vng_out
    return GuestRun(topo_name, results, rc, seconds, log, dmesg)


def main(argv: list[str]) -> int:
    """lab/boot: an interactive shell (or a command) in a topology."""
    import argparse

    p = argparse.ArgumentParser(prog="lab/boot", description="boot a lab topology")
    p.add_argument("topology", choices=sorted(TOPOLOGIES), nargs="?", default="default")
    p.add_argument("--exec", dest="command", help="run this command as root in the guest instead of a shell")
    a = p.parse_args(argv)
    why = missing()
    if why:
        print(f"lab: {why}", file=sys.stderr)
        return 69
    return subprocess.call(vng_argv(TOPOLOGIES[a.topology], a.command, None), env=boot_env(), cwd=REPO)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
