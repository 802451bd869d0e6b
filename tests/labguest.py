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
