"""The one way sriovctl opens a path it does not own outright: beneath a root, no symlink followed at any
component, regular files only, bounded.

Used for everything sriovctl keeps or installs on a host — its locks, write log, journals and applied record
(/run/sriovctl, /var/lib/sriovctl, a simulated host's state/), the files `persist` installs and reads (/etc/…,
or an image tree's) and the configuration it scans — so that a planted link, FIFO, device node or directory
can neither redirect a write, nor hang a read, nor have its target's content shown in a message.

The rules, each for an attack seen in the second hardening pass (issue 18):
- every directory component is entered with ``O_DIRECTORY | O_NOFOLLOW`` (a link to /etc is ENOTDIR, not
  followed: ``makedirs`` followed a planted /run/sriovctl → /etc and made locks there);
- the last component is ``lstat``-ed before it is opened and ``fstat``-ed after, and opened with
  ``O_NOFOLLOW | O_NONBLOCK`` (opening a FIFO for reading blocks until a writer comes; a FIFO lock file made
  ``ftruncate`` fail with EINVAL); anything but a regular file is refused;
- a directory sriovctl makes gets its mode by ``fchmod`` (not the umask: 0700 under umask 077 hid the unit
  from systemd's non-root readers);
- an error names the path and what it is (a link, a FIFO, a device, a directory), never what it holds.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from sriovctl.errors import HostIOError, HostPermissionError

MAX_FILE = 64 << 20  # anything sriovctl keeps is far smaller (a 1,024-VF journal is ~300 KB)


class UnsafePathError(HostIOError):
    """A path sriovctl keeps, installs or scans is a symlink, FIFO, device, socket or directory where a regular
    file (or a real directory) belongs: refused without following or opening it. The administrator must look:
    something else put it there."""


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def display(root: str, rel: str) -> str:
    """How a path is named in messages: absolute on the live host, ``root/rel`` elsewhere."""
    return "/" + rel if root.rstrip("/") == "" else os.path.join(root, rel)


def _parts(rel: str) -> list[str]:
    parts = [p for p in rel.split("/") if p]
    for p in parts:
        if p in (".", "..") or "\x00" in p:
            raise UnsafePathError(f"{rel!r}: not a plain relative path")
    return parts


def _refuse(root: str, rel: str, what: str) -> UnsafePathError:
    return UnsafePathError(f"{display(root, rel)}: {what}: refused (not followed, not opened)",
                           hint="sriovctl did not put it there: remove it, or find who did")


@contextlib.contextmanager
def directory(root: str, rel: str, create: bool = False, mode: int = 0o755) -> Iterator[int | None]:
    """The directory ``root/rel`` as an fd (None when it does not exist and ``create`` is false), entered one
    component at a time without following a link. Directories made here get ``mode`` exactly."""
    dfd = os.open(root or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    walked: list[str] = []
    try:
        for part in _parts(rel):
            walked.append(part)
            made = False
            if create:
                try:
                    os.mkdir(part, mode, dir_fd=dfd)
                    made = True
                except FileExistsError:
                    pass
                except PermissionError:
                    raise HostPermissionError(f"{display(root, '/'.join(walked))}: permission denied",
                                              hint="run as root") from None
            try:
                nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            except FileNotFoundError:
                yield None
                return
            except OSError as e:
                if e.errno in (errno.ENOTDIR, errno.ELOOP):
                    st = os.stat(part, dir_fd=dfd, follow_symlinks=False)
                    raise _refuse(root, "/".join(walked), f"{_kind(st.st_mode)} where a directory belongs") from None
                raise HostIOError(f"{display(root, '/'.join(walked))}: cannot open: {e.strerror}") from None
            os.close(dfd)
            dfd = nfd
            if made:
                os.fchmod(dfd, mode)
        yield dfd
    finally:
        os.close(dfd)


def _split(rel: str) -> tuple[str, str]:
    parts = _parts(rel)
    if not parts:
        raise UnsafePathError(f"{rel!r}: no file name")
    return "/".join(parts[:-1]), parts[-1]


def _lstat(dfd: int, base: str) -> os.stat_result | None:
    try:
        return os.stat(base, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _open_regular(root: str, rel: str, dfd: int, base: str, flags: int, mode: int = 0o600) -> int | None:
    """Open the regular file ``base`` in ``dfd`` (None: absent and not created); anything else is refused
    before it is opened, and checked again after (it could have been swapped in between)."""
    st = _lstat(dfd, base)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise _refuse(root, rel, _kind(st.st_mode))
    if st is None and not flags & os.O_CREAT:
        return None
    try:
        fd = os.open(base, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode, dir_fd=dfd)
    except FileNotFoundError:
        return None
    except PermissionError:
        raise HostPermissionError(f"{display(root, rel)}: permission denied", hint="run as root") from None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise _refuse(root, rel, "not a regular file") from None
        raise HostIOError(f"{display(root, rel)}: cannot open: {e.strerror}") from None
    st2 = os.fstat(fd)
    if not stat.S_ISREG(st2.st_mode):
        os.close(fd)
        raise _refuse(root, rel, _kind(st2.st_mode))
    return fd


def read(root: str, rel: str, limit: int = MAX_FILE) -> bytes | None:
    """The bytes of the regular file ``root/rel`` (None: it, or a directory on the way, does not exist);
    UnsafePathError for a link at any component or a file that is not regular; HostIOError past ``limit``."""
    folder, base = _split(rel)
    with directory(root, folder) as dfd:
        if dfd is None:
            return None
        fd = _open_regular(root, rel, dfd, base, os.O_RDONLY)
    if fd is None:
        return None
    try:
        data = read_fd(fd, limit)
    except OSError as e:
        raise HostIOError(f"{display(root, rel)}: cannot read: {e.strerror}") from None
    finally:
        os.close(fd)
    if data is None:
        raise HostIOError(f"{display(root, rel)}: larger than the {limit}-byte limit")
    return data


def read_fd(fd: int, limit: int) -> bytes | None:
    """At most ``limit`` bytes from an open file, in chunks of 1 MiB; None when there is more."""
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        b = os.read(fd, min(1 << 20, limit + 1 - total))
        if not b:
            break
        chunks.append(b)
        total += len(b)
    return None if total > limit else b"".join(chunks)


def _regular_stat(root: str, rel: str) -> os.stat_result | None:
    """lstat of ``root/rel`` reached without links, when it is a regular file (None otherwise)."""
    try:
        folder, base = _split(rel)
        with directory(root, folder) as dfd:
            st = None if dfd is None else _lstat(dfd, base)
    except (HostIOError, OSError):
        return None
    return st if st is not None and stat.S_ISREG(st.st_mode) else None


def mode_of(root: str, rel: str) -> int | None:
    """The permission bits of ``root/rel`` when it is a regular file reached without links (None otherwise)."""
    st = _regular_stat(root, rel)
    return None if st is None else stat.S_IMODE(st.st_mode)


def write_atomic(root: str, rel: str, data: bytes, mode: int = 0o644, dir_mode: int = 0o755,
                 sync: bool = True) -> None:
    """Replace ``root/rel`` with ``data``: written beside it (a private temporary name, O_EXCL), given ``mode``
    exactly, fsynced, renamed over it. A directory in its place is refused; a link, FIFO or device in its place
    is replaced, never written through (rename replaces the entry, whatever it is)."""
    folder, base = _split(rel)
    with directory(root, folder, create=True, mode=dir_mode) as dfd:
        assert dfd is not None
        st = _lstat(dfd, base)
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise _refuse(root, rel, "a directory where a file belongs")
        tmp = f".{base}.sriovctl-{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dfd)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dfd)
        except PermissionError:
            raise HostPermissionError(f"{display(root, rel)}: permission denied", hint="run as root") from None
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if sync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
        os.close(fd)
        try:
            os.replace(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise HostIOError(f"{display(root, rel)}: cannot write: {e.strerror}") from None
        if sync:
            with contextlib.suppress(OSError):
                os.fsync(dfd)


def open_file(root: str, rel: str, flags: int, mode: int = 0o600, dir_mode: int = 0o755) -> int:
    """An fd for the regular file ``root/rel`` opened with ``flags`` (O_CREAT makes it and its directories):
    the PF locks and the write log. Refuses a link, FIFO, device or directory at any component."""
    folder, base = _split(rel)
    with directory(root, folder, create=bool(flags & os.O_CREAT), mode=dir_mode) as dfd:
        if dfd is None:
            raise HostIOError(f"{display(root, rel)}: no such directory")
        fd = _open_regular(root, rel, dfd, base, flags, mode)
    if fd is None:
        raise HostIOError(f"{display(root, rel)}: no such file")
    return fd


def listdir(root: str, rel: str, limit: int = 100_000) -> list[str]:
    """The names in the directory ``root/rel`` ([] when it does not exist), reached without links."""
    with directory(root, rel) as dfd:
        if dfd is None:
            return []
        names = os.listdir(dfd)
    return sorted(names)[:limit]


def unlink(root: str, rel: str) -> bool:
    """Remove the entry ``root/rel`` (not what a link there points to); False when absent."""
    folder, base = _split(rel)
    with directory(root, folder) as dfd:
        if dfd is None:
            return False
        try:
            os.unlink(base, dir_fd=dfd)
        except FileNotFoundError:
            return False
        except IsADirectoryError:
            raise _refuse(root, rel, "a directory where a file belongs") from None
    return True


def stamp(root: str, rel: str) -> tuple[int, int] | None:
    """(size, mtime) of a regular file reached without links; None otherwise."""
    st = _regular_stat(root, rel)
    return None if st is None else (st.st_size, st.st_mtime_ns)
