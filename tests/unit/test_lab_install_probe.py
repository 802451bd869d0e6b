"""lab/install.sh decides what to install by what it needs, not only by which commands exist: a machine with
libvirt's daemon and pkg-config but without libvirt's development files (libvirt.pc) gets them installed
(issue 19: pip could not build libvirt-python there). The probe runs with stand-in commands only."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("lspci", "virsh", "libvirtd", "busybox", "xmllint", "gcc")
REAL = ("bash", "sed", "head", "ls", "dirname", "id", "cat")  # what the probe itself runs


def _bin(tmp: Path, have: set[str], qemu_version: str = "8.2.2", libvirt_pc: bool = True) -> Path:
    d = tmp / "bin"
    d.mkdir()
    for name in REAL:
        real = shutil.which(name)
        assert real, name
        (d / name).symlink_to(real)
    for name in TOOLS:
        if name in have:
            (d / name).write_text("#!/bin/sh\nexit 0\n")
            (d / name).chmod(0o755)
    if "qemu" in have:
        (d / "qemu-system-x86_64").write_text(f"#!/bin/sh\necho 'QEMU emulator version {qemu_version}'\n")
        (d / "qemu-system-x86_64").chmod(0o755)
    if "pkg-config" in have:  # libvirt.pc found or not: pkg-config --exists answers 0 or 1
        (d / "pkg-config").write_text(f"#!/bin/sh\n[ \"$1 $2\" = '--exists libvirt' ] && exit {0 if libvirt_pc else 1}\n"
                                      "exit 0\n")
        (d / "pkg-config").chmod(0o755)
    return d


def _probe(tmp: Path, bindir: Path, kernel: bool = True) -> str:
    boot = tmp / "boot"
    boot.mkdir()
    if kernel:
        (boot / "vmlinuz-6.1.0-lab-amd64").write_text("")
    env = {"PATH": str(bindir), "SRIOVCTL_BOOT_DIR": str(boot), "HOME": str(tmp)}
    r = subprocess.run([str(bindir / "bash"), str(REPO / "lab" / "install.sh"), "--probe"], capture_output=True,
                       text=True, env=env, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


ALL = {"qemu", "pkg-config", *TOOLS}


def test_everything_present_installs_nothing(tmp_path: Path) -> None:
    assert _probe(tmp_path, _bin(tmp_path, ALL)) == "apt=0 missing: none"


def test_libvirt_without_its_development_files_installs_them(tmp_path: Path) -> None:
    """libvirtd, virsh and pkg-config are there; libvirt.pc is not: the probe asks for the packages."""
    assert _probe(tmp_path, _bin(tmp_path, ALL, libvirt_pc=False)) == "apt=1 missing: libvirt.pc"


@pytest.mark.parametrize(("have", "version", "kernel", "missing"), [
    (ALL - {"pkg-config"}, "8.2.2", True, "pkg-config"),
    (ALL - {"gcc"}, "8.2.2", True, "gcc"),
    (ALL, "7.2.0", True, "qemu"),  # Debian 12's own QEMU has no igb: backports' 8 is needed
    (ALL - {"qemu"}, "", True, "qemu"),
    (ALL, "8.2.2", False, "kernel"),
])
def test_each_missing_need_is_named(tmp_path: Path, have: set[str], version: str, kernel: bool, missing: str) -> None:
    out = _probe(tmp_path, _bin(tmp_path, have, version or "8.2.2"), kernel)
    assert out == f"apt=1 missing: {missing}", out


def test_the_probe_changes_nothing(tmp_path: Path) -> None:
    before = sorted(os.listdir("/etc/apt/sources.list.d")) if os.path.isdir("/etc/apt/sources.list.d") else []
    _probe(tmp_path, _bin(tmp_path, ALL, libvirt_pc=False))
    after = sorted(os.listdir("/etc/apt/sources.list.d")) if os.path.isdir("/etc/apt/sources.list.d") else []
    assert before == after
