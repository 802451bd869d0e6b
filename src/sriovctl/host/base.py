"""The Host: one injectable object for everything sriovctl reads from or writes to the OS.

Paths are relative to the host's root (``sys/bus/pci/devices/0000:0b:00.0/sriov_numvfs``). Every
component must come from a validated value (a parsed PciAddress, a name checked by :func:`safe_name`);
``..`` and absolute components are refused, so a crafted name cannot escape the tree.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sriovctl.errors import BugError, HostIOError, HostPermissionError, ReadOnlyError, UsageError

if TYPE_CHECKING:
    from sriovctl.host.netlink import Netlink

_SAFE = re.compile(r"^[A-Za-z0-9_.:@+-]{1,64}$")


def safe_name(value: str, what: str) -> str:
    """Validate one path component taken from user input or from the host (driver, netdev, group)."""
    if not _SAFE.match(value) or value in (".", ".."):
        raise UsageError(f"{what} {value!r}: not a valid name", hint="letters, digits and _.:@+- only")
    return value


@dataclass(frozen=True, slots=True)
class WriteRecord:
    path: str
    value: str
    dry_run: bool
    error: str | None = None


@dataclass
class Host:
    """A host rooted at ``root``. ``read_only`` refuses every write (snapshots)."""

    root: str
    read_only: bool = False
    label: str = "live host"
    writes: list[WriteRecord] = field(default_factory=list)
    dry_run: bool = False
    _netlink: Any = field(default=None, repr=False)

    # ---- netlink ----
    def netlink(self) -> Netlink:
        """The rtnetlink side of the host (created on first use: pyroute2 is imported only then)."""
        if self._netlink is None:
            self._netlink = self._make_netlink()
        return self._netlink  # type: ignore[no-any-return]

    def _make_netlink(self) -> Netlink:
        if self.read_only:
            return SnapshotNetlink(self)
        from sriovctl.host.netlink_real import PyrouteNetlink

        return PyrouteNetlink()

    def _abs(self, rel: str) -> str:
        if rel.startswith("/") or (".." in rel and "/../" in f"/{rel}/") or "\x00" in rel:
            raise BugError(f"host path {rel!r}: not a relative path inside the host tree")
        return self.root + rel if self.root.endswith("/") else f"{self.root}/{rel}"

    # ---- reads: None when absent ----
    def read_bytes(self, rel: str, limit: int = 65536) -> bytes | None:
        try:
            fd = os.open(self._abs(rel), os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except PermissionError as e:
            raise HostPermissionError(f"{rel}: permission denied", hint="run as root") from e
        try:
            return os.read(fd, limit)
        except OSError:
            return None  # sysfs attributes may refuse reads (EIO, EINVAL): treat as absent
        finally:
            os.close(fd)

    def read_text(self, rel: str) -> str | None:
        b = self.read_bytes(rel, 4096)
        return None if b is None else b.decode("utf-8", "replace").strip()

    def read_int(self, rel: str, base: int = 10) -> int | None:
        t = self.read_text(rel)
        if t is None or t == "":
            return None
        try:
            return int(t, base) if base != 16 else int(t, 16)
        except ValueError:
            return None

    def read_dir_attrs(self, rel: str, files: tuple[str, ...], links: tuple[str, ...] = (),
                       limit: int = 4096) -> tuple[dict[str, bytes], dict[str, str]]:
        """Many small attribute files and symlinks of one directory, opened relative to it (one path
        walk instead of one per file: this is the inventory's hot path). Absent entries are left out."""
        try:
            dfd = os.open(self._abs(rel), os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return {}, {}
        values: dict[str, bytes] = {}
        targets: dict[str, str] = {}
        try:
            for name in files:
                try:
                    fd = os.open(name, os.O_RDONLY, dir_fd=dfd)
                except OSError:
                    continue
                try:
                    values[name] = os.read(fd, limit)
                except OSError:
                    pass
                finally:
                    os.close(fd)
            for name in links:
                try:
                    targets[name] = os.readlink(name, dir_fd=dfd)
                except OSError:
                    continue
        finally:
            os.close(dfd)
        return values, targets

    def readlink(self, rel: str) -> str | None:
        try:
            return os.readlink(self._abs(rel))
        except OSError:
            return None

    def link_name(self, rel: str) -> str | None:
        """Basename of a symlink's target (``driver`` → ``igb``)."""
        t = self.readlink(rel)
        return None if t is None else t.rstrip("/").rsplit("/", 1)[-1]

    def listdir(self, rel: str, strict: bool = False) -> list[str]:
        """Entries of a directory; [] when absent. ``strict``: a permission error is raised, not hidden."""
        try:
            return sorted(os.listdir(self._abs(rel)))
        except PermissionError as e:
            if strict:
                raise HostPermissionError(f"/{rel}: permission denied", hint="run as root") from e
            return []
        except OSError:
            return []

    def exists(self, rel: str) -> bool:
        return os.path.lexists(self._abs(rel))

    def is_dir(self, rel: str) -> bool:
        return os.path.isdir(self._abs(rel))

    # ---- writes ----
    def write(self, rel: str, value: str) -> None:
        """Write ``value`` to a (sysfs) file, logging it; honours dry-run and read-only."""
        if self.read_only:
            raise ReadOnlyError(f"{self.label}: read-only, cannot write {value!r} to /{rel}",
                                hint="a snapshot is for reading; use the live host or --sim")
        if self.dry_run:
            self.writes.append(WriteRecord(rel, value, True))
            return
        try:
            self._do_write(rel, value)
        except OSError as e:
            self.writes.append(WriteRecord(rel, value, False, os.strerror(e.errno or 0)))
            raise
        self.writes.append(WriteRecord(rel, value, False))

    def write_file(self, rel: str, content: str) -> None:
        """Create or replace a configuration file (e.g. etc/modprobe.d/igb.conf); logged, dry-run aware."""
        if self.read_only:
            raise ReadOnlyError(f"{self.label}: read-only, cannot write /{rel}")
        self.writes.append(WriteRecord(rel, content, self.dry_run))
        if self.dry_run:
            return
        path = self._abs(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".sriovctl-tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(content)
        os.replace(tmp, path)

    def run(self, argv: list[str]) -> str:
        """Run a program (argv, never a shell string); logged as a write, dry-run aware."""
        if self.read_only:
            raise ReadOnlyError(f"{self.label}: read-only, cannot run {argv[0]}")
        self.writes.append(WriteRecord("exec", " ".join(argv), self.dry_run))
        if self.dry_run:
            return ""
        p = self._run(argv)
        if p.returncode != 0:
            raise HostIOError(f"{' '.join(argv)}: exit {p.returncode}: {(p.stderr or '').strip().splitlines()[-1:] or ''}")
        return p.stdout

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, check=False)

    def _do_write(self, rel: str, value: str) -> None:
        fd = os.open(self._abs(rel), os.O_WRONLY)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)

    # ---- clock ----
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def wrap_os_error(e: OSError, what: str) -> HostIOError:
    return HostIOError(f"{what}: {os.strerror(e.errno or 0)}")


NETLINK_SNAPSHOT = "netlink.json"


class SnapshotNetlink:
    """The VF netlink view captured in a snapshot (``netlink.json``); read-only."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.requests = 0
        raw = host.read_bytes(NETLINK_SNAPSHOT, 1 << 26)
        self.data: dict[str, Any] = json.loads(raw) if raw else {}

    def get_vfs(self, ifname: str, stats: bool = False) -> list[Any]:
        from sriovctl.host.netlink import NetlinkError, VfNetlink

        self.requests += 1
        if ifname not in self.data:
            raise NetlinkError(19, f"{ifname}: not in the snapshot's netlink view")
        return [VfNetlink(**v) for v in self.data[ifname]]

    def set_vfs(self, ifname: str, changes: list[Any]) -> None:
        raise ReadOnlyError(f"{self.host.label}: read-only, cannot change VFs of {ifname}")
