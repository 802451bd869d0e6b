"""`persist install | uninstall | status`: put the state and the files rendered from it on a host (or into an
image tree with --destdir), take away exactly what was put, and say what is there.

Each file is written beside its final name and renamed over it (a reader — systemd, udev, modprobe — sees the
old file or the new one, never half of one), directories are entered one component at a time without following
symlinks (an image tree is data), and a manifest (/etc/sriovctl/persist.json) lists what was installed with
each file's SHA-256: uninstall removes those, and leaves (and names) a file someone changed since."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field

from sriovctl import safefs
from sriovctl.errors import HostIOError, SriovctlError, UsageError
from sriovctl.persist import render
from sriovctl.state.desired import DesiredState

MAX_FILE = 1 << 20


@dataclass(frozen=True)
class Item:
    path: str  # relative to the root: etc/…
    content: str | None = None
    link: str | None = None  # a symlink's target (the .wants link)

    def digest(self) -> str:
        return _sha(self.content if self.content is not None else f"-> {self.link}")


@dataclass
class PersistReport:
    root: str
    dry_run: bool
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # changed since install: left in place
    warnings: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # status: path → installed|missing|changed|absent

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def default_exe() -> str:
    """The absolute path of this sriovctl's command (the unit and the rule run it by that path)."""
    beside = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "sriovctl")
    if os.access(beside, os.X_OK):
        return beside
    raise UsageError("sriovctl: cannot tell the absolute path of the sriovctl command",
                     hint="name it with --exec /path/to/sriovctl")


def _unit_safe(path: str) -> bool:
    """An absolute path systemd and udev take as one word, unexpanded (no space, quote, $, %, ;, `)."""
    return path.startswith("/") and not any(c.isspace() or c in "\"'\\$%;`" or not c.isprintable() for c in path)


def check_exe(exe: str) -> str:
    if not _unit_safe(exe):
        raise UsageError(f"--exec {exe!r}: must be an absolute path without spaces, quotes or $ and %",
                         hint="systemd and udev would split or expand it")
    return exe


def check_dir(path: str) -> str:
    if not _unit_safe(path) or path.rstrip("/") == "" or "/../" in f"{path}/":
        raise UsageError(f"--textfile-dir {path!r}: must be an absolute path without spaces, quotes, $, % or ..",
                         hint="systemd would split or expand it")
    return path.rstrip("/")


def items(state: DesiredState, text: str, exe: str, drivers: dict[int, str], exporter: str | None = None) -> list[Item]:
    """The files to install; ``exporter``: also the exporter's service and timer, writing into that directory."""
    out = [Item(render.STATE_PATH, text), Item(render.UNIT_PATH, render.render_unit(exe, state)),
           Item(render.WANTS_LINK, link=f"../{render.UNIT_NAME}"), Item(render.RULE_PATH, render.render_rule(exe))]
    if exporter is not None:
        out += [Item(render.EXPORTER_SERVICE_PATH, render.render_exporter_service(exe, exporter)),
                Item(render.EXPORTER_TIMER_PATH, render.render_exporter_timer()),
                Item(render.EXPORTER_WANTS_LINK, link=f"../{render.EXPORTER_TIMER}")]
    conf = render.render_modprobe(state, drivers)
    if conf is not None:
        out.append(Item(render.MODPROBE_PATH, conf))
    return out


FILE_MODE = 0o644  # systemd, udev and modprobe read them as other users may: world-readable, root-writable


def _current(root: str, it: Item) -> str | None:
    """What is at the item's path now, in the item's terms (None: nothing, or not what we would put there — a
    file with another mode than ours counts as different, so install rewrites it and status says changed).
    Reached through safefs: a link at any directory component, a FIFO, a device or a directory is never
    followed or opened, and nothing read from such a path is returned."""
    if it.link is not None:
        parent, _, base = it.path.rpartition("/")
        try:
            with safefs.directory(root, parent) as dfd:
                return None if dfd is None else f"-> {os.readlink(base, dir_fd=dfd)}"
        except OSError:
            return None
    try:
        data = safefs.read(root, it.path, MAX_FILE)
    except OSError:
        return None
    if data is None:
        return None
    if safefs.mode_of(root, it.path) != FILE_MODE:
        return "\x00mode"  # never equal to rendered text
    return data.decode("utf-8", "replace")


def _put(root: str, it: Item) -> None:
    if it.link is None:
        safefs.write_atomic(root, it.path, (it.content or "").encode(), FILE_MODE, 0o755)
        return
    parent, _, base = it.path.rpartition("/")
    with safefs.directory(root, parent, create=True, mode=0o755) as dfd:
        assert dfd is not None
        tmp = f".{base}.sriovctl-{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dfd)
        os.symlink(it.link, tmp, dir_fd=dfd)
        os.replace(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)


def _remove(root: str, rel: str) -> bool:
    return safefs.unlink(root, rel)


def _shown(it: Item) -> str | None:
    return it.content if it.link is None else f"-> {it.link}"


# Every path an install may write (a manifest is read back from the host: uninstall deletes only these)
OURS = (render.STATE_PATH, render.UNIT_PATH, render.WANTS_LINK, render.RULE_PATH, render.MODPROBE_PATH,
        render.EXPORTER_SERVICE_PATH, render.EXPORTER_TIMER_PATH, render.EXPORTER_WANTS_LINK)
LINKS = (render.WANTS_LINK, render.EXPORTER_WANTS_LINK)


def install(root: str, its: list[Item], dry_run: bool, record: object = None,
            exporter: str | None = None) -> PersistReport:
    """Write every item that differs, then the manifest (last: an interrupted install is re-done by running it
    again). ``record(path, value)`` logs each write (the live host's write log). ``exporter``: the textfile
    directory the exporter's units write to, kept in the manifest (status renders them again from it)."""
    rep = PersistReport(root, dry_run)
    manifest: dict[str, object] = {"files": {it.path: it.digest() for it in its}}
    if exporter is not None:
        manifest["exporter"] = exporter
    old = _manifest(root)
    for it in its:
        if _current(root, it) == _shown(it):
            rep.unchanged.append("/" + it.path)
            continue
        rep.written.append("/" + it.path)
        if not dry_run:
            try:
                _put(root, it)
            except SriovctlError:
                raise
            except OSError as e:
                raise HostIOError(f"/{it.path}: cannot write: {e.strerror}", hint="check the directory") from None
            if callable(record):
                record(it.path, _shown(it) or "")
    # a file the previous install wrote that this one does not (modprobe.d when no PF uses module-param now)
    for path, digest in (old or {}).items():
        if path not in {it.path for it in its}:
            _drop(root, path, digest, rep)
    man = Item(render.MANIFEST_PATH, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    if _current(root, man) != man.content and not dry_run:
        _put(root, man)
    return rep


def _manifest_doc(root: str) -> dict[str, object] | None:
    text = _current(root, Item(render.MANIFEST_PATH, ""))
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _manifest(root: str) -> dict[str, str] | None:
    doc = _manifest_doc(root)
    files = None if doc is None else doc.get("files")
    if not isinstance(files, dict):
        return None
    # only our own paths: a manifest is read back from the host, and uninstall deletes what it names
    return {p: d for p, d in files.items() if p in OURS and isinstance(d, str)}


def installed_exporter(root: str) -> str | None:
    """The textfile directory of the exporter units the manifest lists (None: not installed, or not ours)."""
    doc = _manifest_doc(root)
    value = None if doc is None else doc.get("exporter")
    if not isinstance(value, str):
        return None
    try:
        return check_dir(value)
    except UsageError:
        return None


def managed_files(root: str) -> set[str]:
    """The files a `persist install` keeps on this host (relative paths). A manifest that is there but cannot be
    read counts as keeping every one of them: an interlock that is unsure refuses."""
    if _current(root, Item(render.MANIFEST_PATH, "")) is None:
        return set()
    files = _manifest(root)
    if files is None:
        return set(OURS)
    return set(files)


def _drop(root: str, path: str, digest: str, rep: PersistReport) -> None:
    link = path in LINKS
    now = _current(root, Item(path, link=(link and "x") or None, content=None if link else ""))
    if now is None:
        return
    if _sha(now) != digest:
        rep.kept.append("/" + path)
        return
    rep.removed.append("/" + path)
    if not rep.dry_run:
        _remove(root, path)


def uninstall(root: str, dry_run: bool) -> PersistReport:
    rep = PersistReport(root, dry_run)
    files = _manifest(root)
    if files is None:
        rep.warnings.append(f"nothing installed here (no /{render.MANIFEST_PATH})")
        return rep
    for path, digest in files.items():
        _drop(root, path, digest, rep)
    if not dry_run:
        _remove(root, render.MANIFEST_PATH)
    rep.removed.append("/" + render.MANIFEST_PATH)
    return rep


def status(root: str, expected: list[Item] | None) -> PersistReport:
    """Each installed file: installed (as the manifest says), changed (edited since), missing; with
    ``expected`` (rendered from the stored state now): stale when the installed file differs from it."""
    rep = PersistReport(root, True)
    files = _manifest(root)
    if files is None:
        rep.files = {"/" + render.MANIFEST_PATH: "absent"}
        return rep
    want = {it.path: it for it in expected or []}
    for path, digest in sorted(files.items()):
        link = path in LINKS
        now = _current(root, Item(path, link="x" if link else None, content=None if link else ""))
        if now is None:
            rep.files["/" + path] = "missing"
        elif _sha(now) != digest:
            rep.files["/" + path] = "changed"
        elif path in want and want[path].digest() != digest:
            rep.files["/" + path] = "stale"
        else:
            rep.files["/" + path] = "installed"
    return rep


# Configuration of other tools that `persist install` scans for a second owner of a PF's SR-IOV: (directory,
# file suffix, what marks SR-IOV in it, the key that names the interface).
OTHER_OWNER_FILES = (("etc/systemd/network", ".network", "[SR-IOV]", "Name="),
                     ("etc/systemd/network", ".link", "SR-IOVVirtualFunctions=", "OriginalName="),
                     ("etc/NetworkManager/system-connections", ".nmconnection", "[sriov]", "interface-name="))


def other_owners(root: str, names: set[str]) -> list[str]:
    """NetworkManager or systemd-networkd configuring SR-IOV on a PF this state also configures: two owners
    fight (each re-applies its own VF count and attributes). A name we cannot tell is not reported."""
    found = []
    for d, ext, section, key in OTHER_OWNER_FILES:
        try:
            entries = safefs.listdir(root, d, 1000)
        except OSError:
            continue
        for e in entries:
            if not e.endswith(ext):
                continue
            text = _current(root, Item(f"{d}/{e}", "")) or ""
            if section not in text:
                continue
            for line in text.splitlines():
                line = line.strip()
                if line.startswith(key):
                    for n in line[len(key):].split():
                        if n in names:
                            owner = "NetworkManager" if ext == ".nmconnection" else "systemd-networkd"
                            found.append(f"/{d}/{e}: {owner} also configures SR-IOV on {n}: two owners fight "
                                         "over its VFs; remove one")
    return found
