"""The Host: one injectable object for everything sriovctl reads from or writes to the OS.

Paths are relative to the host's root (``sys/bus/pci/devices/0000:0b:00.0/sriov_numvfs``). Every
component must come from a validated value (a parsed PciAddress, a name checked by :func:`safe_name`);
``..`` and absolute components are refused, so a crafted name cannot escape the tree.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from sriovctl import safefs
from sriovctl.errors import BugError, HostIOError, HostPermissionError, ReadOnlyError, SriovctlError, UsageError
from sriovctl.untrusted import is_plain_name, plain_name, sanitize_line

if TYPE_CHECKING:
    import subprocess

    from sriovctl.host.netlink import Netlink

def safe_name(value: str, what: str) -> str:
    """Validate one path component taken from user input or from the host (driver, netdev, group)."""
    return plain_name(value, what, UsageError)


class WriteKind(StrEnum):
    FILE = "file"  # a sysfs attribute or a configuration file (path relative to the root)
    NETLINK = "netlink"  # an rtnetlink request
    COMMAND = "command"  # a program run (modprobe)
    LIBVIRT = "libvirt"  # a libvirt API call
    QMP = "qmp"  # a QMP command


# How each kind names its target in the write log (files are shown as absolute paths on the host)
_PREFIX = {WriteKind.NETLINK: "netlink:", WriteKind.COMMAND: "exec", WriteKind.LIBVIRT: "libvirt:",
           WriteKind.QMP: "qmp:"}


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One write the host made (or would make, in a dry run). ``target``: a path relative to the root for files,
    the interface / URI / socket for the others."""

    kind: WriteKind
    target: str
    value: str
    dry_run: bool
    error: str | None = None

    @property
    def path(self) -> str:
        """The target as the write log shows it: ``/sys/…`` for files, ``netlink:RTM_SETLINK enp11s0f0``, ``exec``…"""
        if self.kind is WriteKind.FILE:
            return "/" + self.target
        if self.kind is WriteKind.COMMAND:
            return "exec"
        return _PREFIX[self.kind] + self.target


T = TypeVar("T")


@dataclass
class Host:
    """A host rooted at ``root``. ``read_only`` refuses every write (snapshots)."""

    root: str
    read_only: bool = False
    label: str = "live host"
    writes: list[WriteRecord] = field(default_factory=list)
    dry_run: bool = False
    _netlink: Any = field(default=None, repr=False)
    _devlink: Any = field(default=None, repr=False)
    _rootfd: int | None = field(default=None, repr=False)
    _locks: dict[str, list[int]] = field(default_factory=dict, repr=False)  # lock file (rel) → [fd, depth]
    _log_fd: int | None = field(default=None, repr=False)  # the write log, once opened (-1: cannot be)
    # One opened host, one run: the write log tells the writes of two runs in one process apart
    run_id: str = field(default_factory=lambda: f"{os.getpid()}-{os.urandom(4).hex()}", repr=False)

    # ---- where sriovctl keeps its own state on this host ----
    def lock_rel(self) -> str:
        """Per-PF lock files (``/run/sriovctl``: gone at reboot, as the locks are), relative to the root."""
        return "run/sriovctl"

    def ledger_rel(self) -> str:
        """Records that outlive a boot: the write log, journals, the applied record (``/var/lib/sriovctl``)."""
        return "var/lib/sriovctl"

    def write_log_file(self) -> str:
        """The write log, relative to the root."""
        return f"{self.ledger_rel()}/writes.jsonl"

    def lock_file(self, key: str) -> str:
        """A PF's lock file, relative to the root."""
        return f"{self.lock_rel()}/{key}.lock"

    def lock_dir(self) -> str:
        return os.path.join(self.root, self.lock_rel())

    def ledger_dir(self) -> str:
        return os.path.join(self.root, self.ledger_rel())

    # ---- the write log ----
    def record(self, kind: WriteKind, target: str, value: str, error: str | None = None) -> WriteRecord:
        """Log one write of any kind: in memory for this run, and (when not a dry run) appended to the host's
        write log, one JSON line with our pid, so the order of two processes' writes can be read back."""
        if self.read_only:  # a snapshot: no write of any kind, not even a dry run's (as for sysfs files)
            raise ReadOnlyError(f"{self.label}: read-only, cannot change {_PREFIX.get(kind, '/') + target}",
                                hint="a snapshot is for reading; use the live host or a simulated host", remedy="read-only")
        rec = WriteRecord(kind, target, value, self.dry_run, error)
        self.writes.append(rec)
        if not self.dry_run and not self.read_only:
            self._append_log(rec)
        return rec

    def _append_log(self, rec: WriteRecord) -> None:
        line = json.dumps({"pid": os.getpid(), "run": self.run_id, "time": time.time(), "kind": rec.kind.value,
                           "target": rec.path, "value": rec.value, "error": rec.error}) + "\n"
        if self._log_fd is None:
            # Opened once per Host: in the lab guest (9p root under TCG) an open per write cost ~3 ms, as much as
            # the netlink request it records.
            try:  # safefs: a planted link, FIFO or device at any component is refused, never followed or opened
                fd = safefs.open_file(self.root, self.write_log_file(),
                                      os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            except OSError:
                self._log_fd = -1  # the log is a record, not a precondition: a read-only /var must not stop a change
                return
            self._log_fd = fd
            weakref.finalize(self, os.close, fd)
        if self._log_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self._log_fd, line.encode())  # one write(2) with O_APPEND: lines of two processes never mix

    def ledger_stamp(self) -> tuple[int, int] | None:
        """Changes whenever any sriovctl process logs a write here: (size, mtime) of the write log."""
        return safefs.stamp(self.root, self.write_log_file())

    def write_log(self) -> list[dict[str, Any]]:
        """The persistent write log (oldest first)."""
        try:
            raw = safefs.read(self.root, self.write_log_file())
        except OSError:
            return []
        out = []
        for line in (raw or b"").decode("utf-8", "replace").split("\n"):
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    out.append(doc)
        return out

    # ---- one PF, one writer ----
    @contextlib.contextmanager
    def pf_lock(self, address: object, wait: float) -> Iterator[None]:
        """Hold the advisory lock of one PF (``flock`` on ``<lock dir>/<address>.lock``, holding our pid) while
        changing it, so two sriovctl processes never interleave their writes on it. Waits up to ``wait``
        seconds on this host's clock, then raises TemporaryError naming the holder's pid. Re-entrant; nothing
        to hold for a dry run or a read-only host."""
        import fcntl

        from sriovctl.errors import TemporaryError

        if self.dry_run or self.read_only:
            yield
            return
        path = self.lock_file(str(address))
        held = self._locks.get(path)
        if held is None:
            try:  # a link at any component, a FIFO (ftruncate: EINVAL) or a device is refused, not followed
                fd = safefs.open_file(self.root, path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as e:
                raise HostIOError(f"{address}: cannot open its lock: {getattr(e, 'message', None) or e.strerror}",
                                  hint="sriovctl keeps its PF locks there; check the directory") from None

            def take() -> bool | None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    return None

            if self.poll(wait, take, delay=0.02, max_delay=0.2) is None:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise TemporaryError(f"{address}: another sriovctl (pid {holder}) is changing this PF; waited {wait:g} s",
                                     hint="try again when it has finished", remedy="lock-wait")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            held = self._locks[path] = [fd, 0]
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
            if held[1] == 0:
                del self._locks[path]
                with contextlib.suppress(OSError):
                    os.ftruncate(held[0], 0)
                fcntl.flock(held[0], fcntl.LOCK_UN)
                os.close(held[0])

    # ---- drivers ----
    def driver_available(self, name: str) -> bool | None:
        """Whether ``modprobe NAME`` + the PCI core can give a device this driver: registered now, loaded, or a
        module (or built in) of the running kernel per modules.dep / modules.builtin. None: cannot tell (no
        readable module index: a snapshot, a container) — the caller then lets the bind itself decide."""
        if not is_plain_name(name):
            return False
        from sriovctl.host import sysfs

        if self.exists(sysfs.driver_dir(name)) or self.exists(sysfs.module_dir(name.replace("-", "_"))):
            return True
        release = (self.read_text("proc/sys/kernel/osrelease") or "").strip()
        if not is_plain_name(release):
            return None
        want = name.replace("-", "_")
        found_index = False
        for index in ("modules.dep", "modules.builtin"):
            raw = self.read_bytes(f"lib/modules/{release}/{index}", 16 << 20)
            if raw is None:
                continue
            found_index = True
            for line in raw.decode("utf-8", "replace").split("\n"):
                path = line.split(":", 1)[0]
                base = path.rsplit("/", 1)[-1].split(".ko", 1)[0]
                if base.replace("-", "_") == want:
                    return True
        return False if found_index else None

    # ---- netlink ----
    def netlink(self) -> Netlink:
        """The rtnetlink side of the host (created on first use: pyroute2 is imported only then)."""
        if self._netlink is None:
            self._netlink = self._make_netlink()
        return self._netlink  # type: ignore[no-any-return]

    def devlink(self) -> Any:
        """The devlink side of the live host (a snapshot or a simulated host has none: None)."""
        if self.confined:
            return None
        if self._devlink is None:
            from sriovctl.host.devlink_real import PyrouteDevlink

            self._devlink = PyrouteDevlink()
        return self._devlink

    def _make_netlink(self) -> Netlink:
        if self.read_only:
            return SnapshotNetlink(self)
        from sriovctl.host.netlink_real import RtNetlink

        return RtNetlink()

    def _abs(self, rel: str) -> str:
        if rel.startswith("/") or (".." in rel and "/../" in f"/{rel}/") or "\x00" in rel:
            raise BugError(f"host path {rel!r}: not a relative path inside the host tree")
        return self.root + rel if self.root.endswith("/") else f"{self.root}/{rel}"

    @property
    def confined(self) -> bool:
        """A tree that is not the live host's / (a snapshot, a simulated host): its symlinks are data from
        elsewhere and are never followed out of it."""
        return self.root.rstrip("/") != ""

    def _open(self, rel: str, flags: int) -> int:
        """Open ``rel`` under the root; inside a confined tree no symlink leads out (EXDEV)."""
        path = self._abs(rel)
        if not self.confined:
            return os.open(path, flags | os.O_CLOEXEC)
        from sriovctl.host.beneath import open_beneath

        if self._rootfd is None:
            self._rootfd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return open_beneath(self.root, self._rootfd, rel or ".", flags)

    def _parent(self, rel: str) -> tuple[int, str] | None:
        """(an O_PATH descriptor of rel's directory, rel's last component), or None when that directory is absent
        or outside the tree."""
        parent, _, base = rel.rpartition("/")
        if base in ("", ".", ".."):
            return None
        try:
            return self._open(parent or ".", os.O_PATH | os.O_DIRECTORY), base
        except OSError:
            return None

    # ---- reads: None when absent (or when reaching it would leave the tree) ----
    def read_bytes(self, rel: str, limit: int = 65536) -> bytes | None:
        try:
            fd = self._open(rel, os.O_RDONLY | os.O_NONBLOCK)
        except PermissionError as e:
            raise HostPermissionError(f"{rel}: permission denied", hint="run as root") from e
        except OSError:
            return None  # absent, or a link out of a confined tree (EXDEV, ELOOP)
        try:
            if self.confined and not stat.S_ISREG(os.fstat(fd).st_mode):
                return None  # a FIFO or device node in a tree from elsewhere is not data
            return os.read(fd, limit)  # one read: a sysfs attribute's whole value, or a regular file up to limit
        except OSError:
            return None  # sysfs attributes may refuse reads (EIO, EINVAL): treat as absent
        finally:
            os.close(fd)

    def read_text(self, rel: str) -> str | None:
        b = self.read_bytes(rel, 4096)
        return None if b is None else b.decode("utf-8", "replace").strip()

    def read_int(self, rel: str, base: int = 10) -> int | None:
        t = self.read_text(rel)
        if t is None or t == "" or not t.isascii():
            return None
        try:
            return int(t, base) if base != 16 else int(t, 16)
        except ValueError:
            return None

    def read_dir_attrs(self, rel: str, files: tuple[str, ...], links: tuple[str, ...] = (),
                       limit: int = 4096) -> tuple[dict[str, bytes], dict[str, str]]:
        """Many small attribute files and symlinks of one directory, opened relative to it (one path
        walk instead of one per file: this is the inventory's hot path). Absent entries are left out; an
        attribute that is a symlink is not an attribute (O_NOFOLLOW: sysfs attributes never are)."""
        values, targets, _ = self.read_dir_tree(rel, files, links, limit=limit)
        return values, targets

    def read_dir_tree(self, rel: str, files: tuple[str, ...], links: tuple[str, ...] = (), sub: str | None = None,
                      sub_files: tuple[str, ...] = (), limit: int = 4096,
                      ) -> tuple[dict[str, bytes], dict[str, str], dict[str, dict[str, bytes]]]:
        """:meth:`read_dir_attrs`, plus ``sub_files`` of every directory in the subdirectory ``sub`` (a device's
        ``net/NAME/``), each opened relative to its parent without following links: one path walk per device."""
        try:
            dfd = self._open(rel, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return {}, {}, {}
        targets: dict[str, str] = {}
        nested: dict[str, dict[str, bytes]] = {}
        dflags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            values = _read_files(dfd, files, limit)
            for name in links:
                try:
                    targets[name] = os.readlink(name, dir_fd=dfd)
                except OSError:
                    continue
            if sub is not None:
                try:
                    sfd = os.open(sub, dflags, dir_fd=dfd)
                except OSError:
                    sfd = -1
                if sfd >= 0:
                    try:
                        # udev renames a new netdev (eth0 → enp0s11v1) just after its driver bound: an entry
                        # listed can be gone when opened. Listed again (at most 3 times), the renamed one is found
                        # under its new name — a device is not shown without its netdev (seen in the lab, CI).
                        for _ in range(3):
                            nested.clear()
                            moved = False
                            for entry in sorted(os.listdir(sfd)):
                                try:
                                    efd = os.open(entry, dflags, dir_fd=sfd)
                                except FileNotFoundError:
                                    moved = True
                                    continue
                                except OSError:
                                    continue
                                try:
                                    nested[entry] = _read_files(efd, sub_files, limit)
                                finally:
                                    os.close(efd)
                            if not moved:
                                break
                    finally:
                        os.close(sfd)
        finally:
            os.close(dfd)
        return values, targets, nested

    def readlink(self, rel: str) -> str | None:
        if not self.confined:
            try:
                return os.readlink(self._abs(rel))
            except OSError:
                return None
        p = self._parent(rel)
        if p is None:
            return None
        try:
            return os.readlink(p[1], dir_fd=p[0])
        except OSError:
            return None
        finally:
            os.close(p[0])

    def link_name(self, rel: str) -> str | None:
        """Basename of a symlink's target (``driver`` → ``igb``)."""
        t = self.readlink(rel)
        return None if t is None else t.rstrip("/").rsplit("/", 1)[-1]

    def listdir(self, rel: str, strict: bool = False) -> list[str]:
        """Entries of a directory; [] when absent. ``strict``: a permission error is raised, not hidden."""
        try:
            fd = self._open(rel, os.O_RDONLY | os.O_DIRECTORY)
        except PermissionError as e:
            if strict:
                raise HostPermissionError(f"/{rel}: permission denied", hint="run as root") from e
            return []
        except OSError:
            return []
        try:
            return sorted(os.listdir(fd))
        except OSError:
            return []
        finally:
            os.close(fd)

    def exists(self, rel: str) -> bool:
        if not self.confined:
            return os.path.lexists(self._abs(rel))
        p = self._parent(rel)
        if p is None:
            return False
        try:
            os.stat(p[1], dir_fd=p[0], follow_symlinks=False)
            return True
        except OSError:
            return False
        finally:
            os.close(p[0])

    def is_dir(self, rel: str) -> bool:
        try:
            fd = self._open(rel, os.O_PATH | os.O_DIRECTORY)
        except OSError:
            return False
        os.close(fd)
        return True

    # ---- writes ----
    def write(self, rel: str, value: str) -> None:
        """Write ``value`` to a (sysfs) file, logging it; honours dry-run and read-only."""
        if self.read_only:
            raise ReadOnlyError(f"{self.label}: read-only, cannot write {value!r} to /{rel}",
                                hint="a snapshot is for reading; use the live host or a simulated host", remedy="read-only")
        if self.dry_run:
            self.record(WriteKind.FILE, rel, value)
            return
        try:
            self._do_write(rel, value)
        except OSError as e:
            self.record(WriteKind.FILE, rel, value, os.strerror(e.errno or 0))
            raise
        self.record(WriteKind.FILE, rel, value)

    def write_file(self, rel: str, content: str, mode: int = 0o644) -> None:
        """Create or replace a configuration file (e.g. etc/modprobe.d/igb.conf); logged, dry-run aware."""
        if self.read_only:
            raise ReadOnlyError(f"{self.label}: read-only, cannot write /{rel}")
        self.record(WriteKind.FILE, rel, content)
        if self.dry_run:
            return
        # safefs: directories made and entered one component at a time without following a link (on the live
        # host too: a link planted on the way to /etc/modprobe.d is refused, not followed); the file written
        # beside its final name with an explicit mode (not the umask's), fsynced and renamed over it.
        try:
            safefs.write_atomic(self.root, rel, content.encode(), mode, 0o755)
        except OSError as e:  # safefs's own refusals (a link, a FIFO, a directory in the way) say what and where
            why, hint = (e.message, e.hint) if isinstance(e, SriovctlError) else (e.strerror, None)
            raise HostIOError(f"/{rel}: cannot write: {why}",
                              hint=hint or "check the directory and its permissions") from None

    def run(self, argv: list[str]) -> str:
        """Run a program (argv, never a shell string); logged as a write, dry-run aware."""
        if self.read_only:
            raise ReadOnlyError(f"{self.label}: read-only, cannot run {argv[0]}")
        self.record(WriteKind.COMMAND, argv[0], " ".join(argv))
        if self.dry_run:
            return ""
        p = self._run(argv)
        if p.returncode != 0:
            last = ((p.stderr or "").strip().splitlines() or [""])[-1]
            raise HostIOError(f"{' '.join(argv)}: exit {p.returncode}" + (f": {sanitize_line(last[:200])}" if last else ""))
        return p.stdout

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        import subprocess  # only a command needs it: 3 ms of a cold start that runs none

        return subprocess.run(argv, capture_output=True, text=True, check=False)

    def _do_write(self, rel: str, value: str) -> None:
        fd = self._open(rel, os.O_WRONLY)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)

    # ---- clock ----
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def poll(self, timeout: float, probe: Callable[[], T | None], *, delay: float = 0.01,
             max_delay: float = 0.2) -> T | None:
        """The one deadline loop: call ``probe`` until it returns something (not None) or ``timeout`` seconds pass
        on this host's clock. It is called at least once, and once more after the deadline, so a slow machine
        that overshoots a sleep still sees the last state. The delay doubles from ``delay`` to ``max_delay``:
        a fast answer is seen fast, a slow one costs few wake-ups. None when the deadline passed."""
        deadline = self.monotonic() + timeout
        while True:
            result = probe()
            if result is not None:
                return result
            now = self.monotonic()
            if now >= deadline:
                return None
            self.sleep(min(delay, max(deadline - now, 0.001)))
            delay = min(delay * 2, max_delay)


def _read_files(dfd: int, names: tuple[str, ...], limit: int) -> dict[str, bytes]:
    """Attribute files of the directory ``dfd``: one read each (a sysfs attribute's whole value)."""
    values: dict[str, bytes] = {}
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    for name in names:
        try:
            fd = os.open(name, flags, dir_fd=dfd)
        except OSError:
            continue
        try:
            values[name] = os.read(fd, limit)
        except OSError:
            pass
        finally:
            os.close(fd)
    return values


def wrap_os_error(e: OSError, what: str) -> HostIOError:
    return HostIOError(f"{what}: {os.strerror(e.errno or 0)}")


NETLINK_SNAPSHOT = "netlink.json"

def _vf_types() -> dict[str, type]:
    """The type of each key of a VF's netlink view (attrs.VF_ATTRS, plus its index and counters)."""
    from sriovctl.attrs import VF_ATTRS, ValueKind

    kinds = {ValueKind.MAC: str, ValueKind.INT: int, ValueKind.BOOL: bool, ValueKind.CHOICE: str}
    return {"vf": int, **{a.key: kinds[a.kind] for a in VF_ATTRS}, "stats": dict}


class SnapshotNetlink:
    """The VF netlink view captured in a snapshot (``netlink.json``); read-only."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.requests = 0
        raw = host.read_bytes(NETLINK_SNAPSHOT, 1 << 26)
        try:
            data = json.loads(raw) if raw else {}
        except (ValueError, RecursionError):
            data = None
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}

    def get_vfs(self, ifname: str, stats: bool = False) -> list[Any]:
        from sriovctl.host.netlink import NetlinkError, VfNetlink

        self.requests += 1
        entries = self.data.get(ifname)
        if not isinstance(entries, list):
            raise NetlinkError(19, f"{ifname}: not in the snapshot's netlink view")
        out = []
        types = _vf_types()
        for v in entries:  # a snapshot from elsewhere: only known keys, each of its type
            ok = isinstance(v, dict) and isinstance(v.get("vf"), int) and all(
                k in types and (x is None or isinstance(x, types[k])) for k, x in v.items())
            stats_ = v.get("stats") if ok else None
            if stats_ is not None and not all(isinstance(k, str) and type(n) is int for k, n in stats_.items()):
                ok = False
            if not ok:
                raise NetlinkError(22, f"{ifname}: the snapshot's netlink view is malformed")
            fields: dict[str, Any] = {k: sanitize_line(x) if isinstance(x, str) else x for k, x in v.items()}
            out.append(VfNetlink(**fields))
        return out

    def set_vfs(self, ifname: str, changes: list[Any]) -> None:
        raise ReadOnlyError(f"{self.host.label}: read-only, cannot change VFs of {ifname}")
