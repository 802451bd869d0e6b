"""Reading a snapshot archive from another host: every member checked and extracted by our own code.

Nothing here relies on ``tarfile``'s extraction filters, whose safety depends on the Python release
(CVE-2025-4517: 3.11.7's ``filter="data"`` lets CPython's own realpath-limit archive write outside the
target). ``tarfile`` only parses headers; this module decides what is written where:

- members are regular files, directories and symlinks only (no hard links, devices, FIFOs); a name is a
  relative path of plain components (no ``..``, no empty, no control characters), each name appears once,
  and nothing is stored below a member that is a symlink;
- a symlink's target is resolved against the archive's own tree (its members, not the disk): it must stay
  inside it however many links it goes through (at most 40, as the kernel's MAXSYMLINKS), and absolute
  targets are refused. Links are created last, after every file is written, so no write passes through one;
- limits (:data:`LIMITS`): members, total and per-file bytes, depth, name length, and the size of any one
  header (a pax or GNU long-name header is read into memory by ``tarfile``);
- extraction goes into a private directory (mode 0700) named after our PID; the caller removes it on any
  exit, and :func:`remove_stale` removes those whose process is gone (a run that was SIGKILLed).
"""

from __future__ import annotations

import contextlib
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from sriovctl.errors import DataError, NoInputError
from sriovctl.leftovers import owner_gone
from sriovctl.untrusted import has_control, shown


@dataclass(frozen=True)
class Limits:
    members: int = 500_000  # a snapshot of the 16×256 bench host has ~160,000
    total_bytes: int = 256 << 20  # what may be written to disk (the 16x256 bench host: ~20 MB)
    file_bytes: int = 64 << 20  # netlink.json of 4,096 VFs is ~1 MB
    depth: int = 32  # components in a name (sysfs paths in snapshots are ≤ 12)
    name_bytes: int = 4096  # PATH_MAX
    header_bytes: int = 1 << 20  # one pax/GNU long-name header
    stream_bytes: int = 1 << 30  # the decompressed archive as a whole (headers, padding, contents)
    link_hops: int = 40  # MAXSYMLINKS


LIMITS = Limits()
PREFIX = "sriovctl-root-"


class _BoundedInfo(tarfile.TarInfo):
    """A TarInfo that refuses an oversized extended header before tarfile reads it into memory."""

    def _proc_member(self, tarfile_: Any) -> Any:
        if self.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                         tarfile.SOLARIS_XHDTYPE) and self.size > LIMITS.header_bytes:
            raise tarfile.HeaderError(f"an extended header of {self.size} bytes (limit {LIMITS.header_bytes})")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise tarfile.HeaderError("a sparse member")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


class _CappedReader:
    """The archive file with a cap on the decompressed bytes read through it."""

    def __init__(self, f: IO[bytes], cap: int) -> None:
        self.f, self.cap, self.done = f, cap, 0

    def read(self, n: int = -1) -> bytes:
        b = self.f.read(n)
        self.done += len(b)
        if self.done > self.cap:
            raise DataError(f"decompresses to more than {self.cap} bytes")
        return b


def remove_stale(tmpdir: str | None = None) -> int:
    """Remove extraction directories left by runs that were killed (their PID is gone). Returns how many."""
    base = tmpdir or tempfile.gettempdir()
    n = 0
    try:
        entries = os.listdir(base)
    except OSError:
        return 0
    for e in entries:
        if not e.startswith(PREFIX):
            continue
        p = os.path.join(base, e)
        if owner_gone(e[len(PREFIX):].split("-", 1)[0]):
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
                shutil.rmtree(p, ignore_errors=True)
                n += 1
    return n


def make_private_dir() -> str:
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")


def _check_name(raw: str, source: str) -> str:
    name = raw
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if len(os.fsencode(name)) > LIMITS.name_bytes:
        raise DataError(f"{source}: member {shown(raw)}: name longer than {LIMITS.name_bytes} bytes")
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts) or has_control(name):
        raise DataError(f"{source}: member {shown(raw)}: not a relative path inside the snapshot",
                        hint="a snapshot is made by `sriovctl snapshot`; this archive was not, or was altered")
    if any(len(os.fsencode(p)) > 255 for p in parts):
        raise DataError(f"{source}: member {shown(raw)}: a name component longer than 255 bytes (NAME_MAX)")
    if len(parts) > LIMITS.depth:
        raise DataError(f"{source}: member {shown(raw)}: deeper than {LIMITS.depth} levels")
    return name


class _Tree:
    """The archive's own tree: what each name is, for resolving symlinks without touching the disk."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.kinds: dict[str, str] = {}  # name → "d" | "f" | "l"
        self.links: dict[str, str] = {}

    def add(self, name: str, kind: str, raw: str) -> None:
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            k = self.kinds.get(parent)
            if k is None:
                self.kinds[parent] = "d"
            elif k != "d":
                raise DataError(f"{self.source}: member {shown(raw)}: below {shown(parent)}, which is not a directory")
        if name in self.kinds and not (kind == "d" and self.kinds[name] == "d"):
            raise DataError(f"{self.source}: member {shown(raw)}: appears twice in the archive")
        self.kinds[name] = kind

    def resolve(self, link: str) -> None:
        """Refuse a symlink whose target, followed through the archive's links, leaves the archive."""
        hops = 0
        todo = self.links[link].split("/")
        path = link.split("/")[:-1]
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not path:
                    raise DataError(f"{self.source}: symlink {shown(link)} -> {shown(self.links[link])}: leaves the snapshot",
                                    hint="links in a snapshot stay inside it")
                path.pop()
                continue
            path.append(part)
            here = "/".join(path)
            if self.kinds.get(here) == "l":
                hops += 1
                if hops > LIMITS.link_hops:
                    raise DataError(f"{self.source}: symlink {shown(link)}: more than {LIMITS.link_hops} links deep (a loop?)")
                target = self.links[here]
                if target.startswith("/"):
                    raise DataError(f"{self.source}: symlink {shown(here)} -> {shown(target)}: absolute")
                path.pop()
                todo = target.split("/") + todo


def extract(archive: str, dest: str) -> dict[str, int]:
    """Extract the snapshot ``archive`` into the empty private directory ``dest``. Returns counts."""
    source = shown(archive)
    try:
        st = os.stat(archive)
    except FileNotFoundError:
        raise NoInputError(f"{source}: no such snapshot file") from None
    except OSError as e:
        raise NoInputError(f"{source}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{source}: not a regular file", hint="a snapshot is a .tar.gz file or a directory")
    tree = _Tree(source)
    members = total = files = 0
    made_dirs: set[str] = {""}
    try:
        with open(archive, "rb") as raw, _decompressed(raw) as plain:
            capped = _CappedReader(plain, LIMITS.stream_bytes)  # counts what comes out of the decompressor
            with tarfile.open(fileobj=capped, mode="r|", tarinfo=_BoundedInfo) as tar:  # type: ignore[call-overload]
                for ti in tar:
                    tar.members.clear()  # stream mode: no list of every member kept in memory
                    members += 1
                    if members > LIMITS.members:
                        raise DataError(f"{source}: more than {LIMITS.members} members",
                                        hint="see docs/SECURITY.md for the snapshot limits")
                    name = _check_name(ti.name, source)
                    if ti.isdir():
                        tree.add(name, "d", ti.name)
                        _makedirs(dest, name, made_dirs)
                    elif ti.isreg():
                        if ti.size > LIMITS.file_bytes:
                            raise DataError(f"{source}: member {shown(ti.name)}: {ti.size} bytes, "
                                            f"larger than the {LIMITS.file_bytes}-byte limit")
                        total += ti.size
                        if total > LIMITS.total_bytes:
                            raise DataError(f"{source}: more than {LIMITS.total_bytes} bytes of files",
                                            hint="see docs/SECURITY.md for the snapshot limits")
                        tree.add(name, "f", ti.name)
                        _makedirs(dest, name.rpartition("/")[0], made_dirs)
                        f = tar.extractfile(ti)
                        assert f is not None
                        _write(os.path.join(dest, name), f, ti.size)
                        files += 1
                    elif ti.issym():
                        if len(os.fsencode(ti.linkname)) > LIMITS.name_bytes or not ti.linkname or "\0" in ti.linkname:
                            raise DataError(f"{source}: symlink {shown(ti.name)}: bad target {shown(ti.linkname)}")
                        if ti.linkname.startswith("/"):
                            raise DataError(f"{source}: symlink {shown(ti.name)} -> {shown(ti.linkname)}: absolute target",
                                            hint="links in a snapshot are relative and stay inside it")
                        tree.add(name, "l", ti.name)
                        tree.links[name] = ti.linkname
                    else:
                        what = ("a hard link" if ti.islnk() else "a FIFO" if ti.isfifo() else
                                "a device node" if ti.isdev() else "an unknown member type")
                        raise DataError(f"{source}: member {shown(ti.name)}: {what}; snapshots hold files, "
                                        "directories and symlinks only")
        for link in tree.links:
            tree.resolve(link)
        for link, target in sorted(tree.links.items()):
            _makedirs(dest, link.rpartition("/")[0], made_dirs)
            os.symlink(target, os.path.join(dest, link))
    except (tarfile.TarError, EOFError, OSError, ValueError, UnicodeError, RecursionError, MemoryError, lzma.LZMAError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{source}: not a readable snapshot archive: {type(e).__name__}: {shown(str(e), 200)}") from None
    return {"members": members, "files": files, "bytes": total, "links": len(tree.links)}


_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}  # magic → what `_decompressed` opens


def compression(head: bytes) -> str | None:
    """What a file's first 512 bytes say it is: "gzip" (what `sriovctl snapshot` writes), "bzip2", "xz", "tar"
    (ustar magic at 257), or None."""
    for magic, kind in _COMPRESSED.items():
        if head.startswith(magic):
            return kind
    return "tar" if head[257:262] == b"ustar" else None


def _decompressed(raw: IO[bytes]) -> Any:
    """The archive's tar stream, decompressed by us so that LIMITS.stream_bytes counts real bytes."""
    import bz2
    import gzip

    kind = compression(raw.read(512))
    raw.seek(0)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(raw, "rb")
    if kind == "xz":
        return lzma.LZMAFile(raw, "rb")
    return contextlib.nullcontext(raw)


def _makedirs(dest: str, rel: str, made: set[str]) -> None:
    # Safe by construction: dest is private (0700) and holds no symlink until every file is written.
    if rel in made:
        return
    os.makedirs(os.path.join(dest, rel), mode=0o755, exist_ok=True)
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        made.add("/".join(parts[:i]))


def _write(path: str, src: IO[bytes], size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as out:
        left = size
        while left > 0:
            b = src.read(min(left, 1 << 20))
            if not b:
                raise DataError(f"{path}: archive member cut short")
            out.write(b)
            left -= len(b)
