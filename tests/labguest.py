"""Helpers and fixtures for tests that run inside the lab guest (as root, against the real /sys and netlink)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sriovctl.host.base import Host

IN_GUEST = os.environ.get("SRIOVCTL_LAB_GUEST")
LAB_OUT = Path(os.environ.get("SRIOVCTL_LAB_OUT", "/tmp"))


def wait_for(pred: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def sh(*argv: str, check: bool = True) -> str:
    p = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and p.returncode:
        raise AssertionError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


@pytest.fixture(scope="session")
def host() -> Host | None:
    return Host(root="/", label="lab guest") if IN_GUEST else None


def igb_pfs() -> list[str]:
    out = []
    for name in sorted(os.listdir("/sys/bus/pci/devices")):
        d = Path(f"/sys/bus/pci/devices/{name}")
        if (d / "vendor").read_text().strip() == "0x8086" and (d / "device").read_text().strip() == "0x10c9":
            out.append(name)
    return out


@pytest.fixture(scope="session")
def pfs() -> list[str] | None:
    """The igb PFs, driver loaded and netdevs present (modprobe returns before the netdev exists)."""
    if not IN_GUEST:
        return None
    sh("modprobe", "igb")
    sh("modprobe", "vfio-pci")
    found = igb_pfs()
    assert found, "no 82576 (8086:10c9) in the guest"
    for pf in found:
        wait_for(lambda pf=pf: os.path.isdir(f"/sys/bus/pci/devices/{pf}/net"), f"{pf} netdev")
    return found


def set_numvfs(host: Host, pf: str, n: int) -> None:
    d = f"sys/bus/pci/devices/{pf}"
    if host.read_text(f"{d}/sriov_numvfs") != str(n):
        if host.read_text(f"{d}/sriov_numvfs") != "0":
            host.write(f"{d}/sriov_numvfs", "0")
        host.write(f"{d}/sriov_numvfs", str(n))

    def settled() -> bool:
        vfs = [x for x in os.listdir(f"/{d}") if x.startswith("virtfn")]
        return len(vfs) == n and all(os.path.isdir(f"/{d}/{v}/net") for v in vfs)
    wait_for(settled, f"{n} VFs of {pf} bound with netdevs")


def start_libvirtd() -> None:
    """virtlogd + libvirtd in the guest (shared/LAB.md: qemu.conf as root, the run/log dirs, virtlogd first)."""
    for d in ("/var/log/libvirt/qemu", "/var/lib/libvirt/qemu", "/var/cache/libvirt/qemu", "/run/libvirt"):
        os.makedirs(d, exist_ok=True)
    conf = Path("/etc/libvirt/qemu.conf")
    text = conf.read_text() if conf.exists() else ""
    if 'user = "root"' not in text.splitlines():
        conf.write_text(text + '\nuser = "root"\ngroup = "root"\n')
    sh("virtlogd", "-d")
    wait_for(lambda: os.path.exists("/run/libvirt/virtlogd-sock"), "virtlogd socket")
    sh("libvirtd", "-d")
    wait_for(lambda: os.path.exists("/run/libvirt/libvirt-sock"), "libvirtd socket", timeout=60)
    wait_for(lambda: subprocess.run(["virsh", "-c", "qemu:///system", "version"], capture_output=True,
                                    check=False).returncode == 0, "libvirtd answering", timeout=60)


NSIM_ID = 10  # the netdevsim device id: its devlink handle is netdevsim/netdevsim10


def netdevsim(max_vfs: int = 1024) -> tuple[str, str]:
    """Load netdevsim (shared/LAB.md: psample first, else "Unknown symbol") and create one device with one
    port that may have ``max_vfs`` VFs; (its bus device directory, its port's netdev name)."""
    bus = f"/sys/bus/netdevsim/devices/netdevsim{NSIM_ID}"
    if not os.path.isdir(bus):
        sh("modprobe", "psample")
        if not os.path.isdir("/sys/bus/netdevsim"):
            sh("insmod", f"/var/cache/sriovctl-lab/{os.uname().release}/netdevsim.ko")  # lab/install.sh built it
        if not os.path.ismount("/sys/kernel/debug"):
            sh("mount", "-t", "debugfs", "none", "/sys/kernel/debug")
        Path("/sys/bus/netdevsim/new_device").write_text(f"{NSIM_ID} 1")
        wait_for(lambda: os.path.isdir(f"{bus}/net") and os.listdir(f"{bus}/net"), "the netdevsim port's netdev")
        # udev renames the port (eth0 -> eni10np1) a moment later (seen in the lab): wait for the final name
        sh("udevadm", "settle", "--timeout=120", check=False)
        wait_for(lambda: not any(n.startswith("eth") for n in os.listdir(f"{bus}/net")), "udev to name the port",
                 timeout=120)
    if Path(f"{bus}/sriov_numvfs").read_text().strip() != "0":
        Path(f"{bus}/sriov_numvfs").write_text("0")
    Path(f"/sys/kernel/debug/netdevsim/netdevsim{NSIM_ID}/max_vfs").write_text(str(max_vfs))  # only with 0 VFs
    ports = [n for n in os.listdir(f"{bus}/net") if not _is_representor(n)]
    assert len(ports) == 1, ports
    return bus, ports[0]


def _is_representor(ifname: str) -> bool:
    try:
        return Path(f"/sys/class/net/{ifname}/phys_port_name").read_text().strip().startswith("pf")
    except OSError:
        return False
