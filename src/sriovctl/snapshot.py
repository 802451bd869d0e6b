"""Snapshots: the files sriovctl reads, captured as a real directory tree (tar.gz), so that
``--root SNAPSHOT`` elsewhere prints the same thing, and lspci can read its PCI tree.

What goes in: the PCI sysfs subset (attribute files and links of every PCI device, driver and module
links), IOMMU groups, the net class, /sys/class/iommu, the *names* of ACPI tables (empty files, no
contents), /proc/cmdline, the vendor and flags lines of /proc/cpuinfo, the kernel release and the
IOMMU/VFIO/SR-IOV lines of the kernel config. Nothing else: no table contents, no other /proc data.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import time
from pathlib import Path
from typing import TypedDict

from sriovctl import __version__
from sriovctl.errors import DataError, HostPermissionError, NoInputError, UsageError
from sriovctl.host import sysfs
from sriovctl.host.base import NETLINK_SNAPSHOT, Host
from sriovctl.pci.ids import HOST_IDS, Ident, excerpt
from sriovctl.untrusted import shown

MARKER = "SRIOVCTL-SNAPSHOT.json"
_KCONFIG = re.compile(r"^(# )?CONFIG_[A-Z0-9_]*(IOMMU|VFIO|PCI_IOV|IRQ_REMAP|PCI_ATS|PCI_PRI|PCI_PASID|DMAR)[A-Z0-9_]*[= ]")


class _Writer:
    def __init__(self, src: Host, dst: str) -> None:
        self.src, self.dst = src, dst
        self.count = 0

    def copy(self, rel: str, limit: int = 65536) -> None:
        try:
            data = self.src.read_bytes(rel, limit)
        except HostPermissionError:
            return  # e.g. a write-only sysfs attribute

        if data is not None:
            self.put(rel, data)

    def put(self, rel: str, data: bytes) -> None:
        p = os.path.join(self.dst, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        self.count += 1

    def link(self, rel: str) -> str | None:
        t = self.src.readlink(rel)
        if t is None or t.startswith("/"):
            return None
        p = os.path.join(self.dst, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if not os.path.lexists(p):
            os.symlink(t, p)
        return t


def _netlink_view(host: Host) -> dict[str, list[dict[str, object]]]:
    """Each PF netdev's VF list as netlink reports it (what `ip -d link show` lists), for --root."""
    import dataclasses

    from sriovctl.host.netlink import NetlinkError

    out: dict[str, list[dict[str, object]]] = {}
    for name in host.listdir(sysfs.PCI_DEVICES):
        numvfs = sysfs.device_attr(name, sysfs.SRIOV_NUMVFS)
        if not host.exists(numvfs) or host.read_text(numvfs) in (None, "0"):
            continue
        for nd in host.listdir(sysfs.net_dir(name)):
            try:
                out[nd] = [dataclasses.asdict(v) for v in host.netlink().get_vfs(nd)]
            except (NetlinkError, OSError, ImportError):
                continue
    return out


def _device_names(host: Host) -> str:
    """The capturing host's names for its devices (pci.ids format), so the snapshot shows them anywhere."""
    from sriovctl.inventory import host_ids, read_inventory

    ids, _ = host_ids(host)
    inv = read_inventory(host, ids=ids, netlink=False)
    idents: list[Ident] = [(d.vendor_id, d.device_id, d.class_code, d.subsystem_vendor_id, d.subsystem_id)
                           for d in inv.devices.values()]
    return excerpt(ids, idents, f"names of the devices of {host.label}, from where it was captured")


def _norm(rel_dir: str, target: str) -> str:
    """A link's target as a path from the tree's top (it may start with ../ when the link leads out)."""
    return posixpath.normpath(posixpath.join(rel_dir, target))


class SnapshotMeta(TypedDict):
    """The marker file's content (what `snapshot --json` reports)."""

    format: int
    sriovctl: str
    source: str
    files: int
    captured_at: str


def capture(host: Host, out: Path) -> SnapshotMeta:
    """Capture ``host`` into the tarball ``out``. Returns the marker's metadata."""
    tmp = tempfile.mkdtemp(prefix="sriovctl-snap-")
    try:
        w = _Writer(host, tmp)
        drivers: set[str] = set()
        groups: set[str] = set()
        for name in host.listdir(sysfs.PCI_DEVICES):
            t = w.link(sysfs.device(name))
            if t is None:
                continue
            dev = _norm(sysfs.PCI_DEVICES, t)
            if dev == ".." or dev.startswith("../"):
                continue  # a link out of the tree it came from (a hostile directory root): not a device
            for f in sysfs.SNAPSHOT_FILES:
                w.copy(f"{dev}/{f}", 4096)
            for lk in sysfs.SNAPSHOT_LINKS:
                lt = w.link(f"{dev}/{lk}")
                if lt and lk == sysfs.DRIVER:
                    drivers.add(posixpath.basename(lt))
                if lt and lk == sysfs.IOMMU_GROUP:
                    groups.add(posixpath.basename(lt))
            for entry in host.listdir(dev):
                if sysfs.virtfn_index(entry) is not None:
                    w.link(f"{dev}/{entry}")
            for nd in host.listdir(f"{dev}/{sysfs.NET}"):
                for f in sysfs.SNAPSHOT_NETDEV_FILES:
                    w.copy(f"{dev}/{sysfs.NET}/{nd}/{f}", 256)
                w.link(sysfs.netdev(nd))
        for drv in sorted(drivers):
            d = sysfs.driver_dir(drv)
            os.makedirs(os.path.join(tmp, d), exist_ok=True)
            mod = w.link(f"{d}/{sysfs.MODULE}")
            if mod:
                os.makedirs(os.path.join(tmp, _norm(d, mod)), exist_ok=True)
            for entry in host.listdir(d):
                if ":" in entry:
                    w.link(f"{d}/{entry}")
        for g in sorted(groups, key=lambda x: int(x) if x.isdigit() else -1):
            for m in host.listdir(sysfs.group_devices(g)):
                w.link(f"{sysfs.group_devices(g)}/{m}")
            w.copy(f"{sysfs.group_dir(g)}/type", 64)
        os.makedirs(os.path.join(tmp, sysfs.IOMMU_GROUPS), exist_ok=True)
        for unit in host.listdir(sysfs.CLASS_IOMMU):
            t = w.link(f"{sysfs.CLASS_IOMMU}/{unit}")
            if t:
                os.makedirs(os.path.join(tmp, _norm(sysfs.CLASS_IOMMU, t)), exist_ok=True)
        os.makedirs(os.path.join(tmp, sysfs.CLASS_IOMMU), exist_ok=True)
        os.makedirs(os.path.join(tmp, sysfs.CLASS_NET), exist_ok=True)
        for table in host.listdir(sysfs.ACPI_TABLES):
            if host.is_dir(sysfs.acpi_table(table)):
                continue
            w.put(sysfs.acpi_table(table), b"")  # the name only
        w.put(HOST_IDS, _device_names(host).encode())
        w.copy("proc/cmdline", 4096)
        cpuinfo = (host.read_bytes("proc/cpuinfo", 1 << 20) or b"").decode("utf-8", "replace")
        keep = [ln for ln in cpuinfo.splitlines() if ln.startswith(("processor", "vendor_id", "flags"))
                or not ln.strip()]
        w.put("proc/cpuinfo", ("\n".join(keep) + "\n").encode())
        release = host.read_text("proc/sys/kernel/osrelease")
        if release:
            w.put("proc/sys/kernel/osrelease", (release + "\n").encode())
            kc = host.read_bytes(f"boot/config-{release}", 1 << 22)
            if kc:
                lines = [ln for ln in kc.decode("utf-8", "replace").splitlines() if _KCONFIG.match(ln)]
                w.put(f"boot/config-{release}", ("\n".join(lines) + "\n").encode())
        w.put(NETLINK_SNAPSHOT, json.dumps(_netlink_view(host)).encode())
        meta: SnapshotMeta = {"format": 1, "sriovctl": __version__, "source": host.label, "files": w.count,
                "captured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        w.put(MARKER, json.dumps(meta, indent=1).encode())
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written beside its name with an explicit mode (not the umask's), then renamed: a reader never sees
        # half an archive, and a name that is a symlink is replaced, not followed.
        part = out.parent / f".{out.name}.{os.getpid()}.part"
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), 0o644)
                with tarfile.open(fileobj=fh, mode="w:gz") as tar:
                    for entry in sorted(os.listdir(tmp)):
                        tar.add(os.path.join(tmp, entry), arcname=entry)
            os.replace(part, out)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
        return meta
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def open_root(path: str) -> Host:
    """A read-only host from a snapshot tarball, a snapshot directory, or any directory shaped like /.

    A directory is read in place, never followed outside itself (Host.confined); an archive is extracted by
    our own code (archive.py: limits, no link out) into a private directory removed when we exit."""
    from sriovctl import archive

    if not path.strip():
        raise UsageError("snapshot: empty path", hint="name a snapshot file or directory")
    p = Path(path)
    try:
        is_dir = p.is_dir()
        exists = p.exists()
    except OSError as e:
        raise NoInputError(f"{shown(path)}: {e.strerror}") from None
    if not exists:
        raise NoInputError(f"{shown(path)}: no such snapshot file or directory")
    if is_dir:
        if not (p / sysfs.PCI_DEVICES).is_dir():
            raise DataError(f"{shown(path)}: not a snapshot: no sys/bus/pci/devices inside",
                            hint="make one with `sriovctl snapshot OUT.tar.gz`")
        return Host(root=os.path.realpath(p), read_only=True, label=f"snapshot {path}")
    try:
        if not stat.S_ISREG(os.stat(p).st_mode):
            raise DataError(f"{shown(path)}: not a snapshot: not a regular file or directory")
        with open(p, "rb", buffering=0) as f:
            head = f.read(512)
    except OSError as e:
        raise NoInputError(f"{shown(path)}: {e.strerror}") from None
    if archive.compression(head) is None:
        raise DataError(f"{shown(path)}: not a snapshot: neither a directory nor a tar archive",
                        hint="make one with `sriovctl snapshot OUT.tar.gz`")
    archive.remove_stale()
    tmp = archive.make_private_dir()
    atexit.register(shutil.rmtree, tmp, True)
    try:
        archive.extract(path, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not os.path.isdir(os.path.join(tmp, sysfs.PCI_DEVICES)) and not os.path.isfile(os.path.join(tmp, MARKER)):
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"{shown(path)}: not a snapshot: the archive has no {MARKER} and no sys/bus/pci",
                        hint="make one with `sriovctl snapshot OUT.tar.gz`")
    return Host(root=tmp, read_only=True, label=f"snapshot {path}")


__all__ = ["MARKER", "capture", "io", "open_root"]
