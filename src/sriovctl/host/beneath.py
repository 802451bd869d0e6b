"""Open a path inside a directory tree without ever leaving it, whatever symlinks the tree holds.

A snapshot or simulated tree is data from elsewhere: ``config -> /etc/passwd`` or
``devices -> ../../../../root`` must not make sriovctl read (or copy into a new snapshot) a file of the host
it runs on. Linux ≥ 5.6 resolves a path with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) and refuses,
atomically, any step out of the directory (EXDEV); where openat2 is missing (ENOSYS: an old kernel, a
seccomp filter) the path's real location is checked instead. The live host (root "/") needs neither.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from typing import Any

_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437, "ppc64le": 437, "s390x": 437, "riscv64": 437}.get(os.uname().machine)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
_have_openat2: bool | None = None


_HOW: dict[int, bytes] = {}  # struct open_how per open flags, packed once (this is the inventory's hot path)
_syscall: Any = None
# openat2 with RESOLVE_BENEATH answers EAGAIN when any rename on the system ran while it resolved a ".."
# (fs/namei.c: the global rename_lock seqcount changed, so it cannot prove the walk stayed inside); the man
# page says to retry. A simulated host's writers rename their state file all the time: unretried, a
# concurrent reader's listdir came back empty ("PF has 0 VFs", sriov_totalvfs unreadable → exit 69) — seen
# in CI and in a 100-kill bench run beside the unit suite.
EAGAIN_RETRIES = 10_000


def _openat2(dirfd: int, rel: str, flags: int) -> int:
    global _syscall, _have_openat2
    if _syscall is None:
        _syscall = ctypes.CDLL(None, use_errno=True).syscall
    how = _HOW.get(flags)
    if how is None:
        how = _HOW[flags] = struct.pack("QQQ", flags | os.O_CLOEXEC, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
    path = rel.encode("utf-8", "surrogateescape")
    for _ in range(EAGAIN_RETRIES):
        fd: int = _syscall(_SYS_OPENAT2, dirfd, path, how, 24)
        if fd >= 0 or ctypes.get_errno() != errno.EAGAIN:
            break
    if fd < 0:
        code = ctypes.get_errno()
        if code == errno.ENOSYS:
            _have_openat2 = False
        raise OSError(code, os.strerror(code), rel)
    _have_openat2 = True
    return fd


def open_beneath(root: str, rootfd: int, rel: str, flags: int) -> int:
    """A file descriptor for ``root/rel`` opened with ``flags``; OSError(EXDEV) when resolving it would
    leave ``root`` (an absolute symlink, or ``..`` past the top)."""
    if _SYS_OPENAT2 is not None and _have_openat2 is not False:
        try:
            return _openat2(rootfd, rel, flags)
        except OSError as e:
            if e.errno != errno.ENOSYS:
                raise
    path = os.path.join(root, rel)
    real = os.path.realpath(path)
    top = os.path.realpath(root)
    if real != top and not real.startswith(top.rstrip("/") + "/"):
        raise OSError(errno.EXDEV, "path leaves its tree", rel)
    fd = os.open(path, flags | os.O_CLOEXEC)
    # the tree could have changed between the check and the open: check what was opened
    opened = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else real
    if opened != top and not opened.startswith(top.rstrip("/") + "/"):
        os.close(fd)
        raise OSError(errno.EXDEV, "path leaves its tree", rel)
    return fd
