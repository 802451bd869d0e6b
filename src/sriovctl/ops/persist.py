"""The persistence operations front ends call: install the state and the boot unit, udev rule and modprobe.d
rendered from it (on the host, or into an image tree), remove them, say what is installed."""

from __future__ import annotations

import os

from sriovctl.errors import NoInputError, UsageError
from sriovctl.host.base import Host, WriteKind
from sriovctl.persist import install as inst
from sriovctl.persist import render
from sriovctl.persist.install import PersistReport
from sriovctl.state.desired import DesiredState

__all__ = ["PersistReport", "install", "status", "uninstall"]


def _root(host: Host | None, destdir: str | None) -> str:
    if destdir is not None:
        if not os.path.isdir(destdir) or os.path.islink(destdir):
            raise NoInputError(f"--destdir {destdir!r}: not a directory", hint="create the image tree first")
        return os.path.abspath(destdir)
    assert host is not None
    if host.read_only:
        raise UsageError(f"{host.label}: a snapshot is read-only", hint="use the live host, --sim or --destdir")
    return host.root


def _on_host(host: Host, state: DesiredState) -> tuple[dict[int, str], set[str]]:
    """Each entry's PF driver on this host (modprobe.d names the module) and the PFs' netdev names (a second
    owner's files are looked up by them), from one read of the host; checks the state against the host."""
    from sriovctl.ops.desired.planner import make_plan
    from sriovctl.ops.session import Session

    s = Session(host)
    sp = make_plan(host, s.inv, state, scan_users=False)
    drivers = {}
    for m in sp.matched:
        drv = getattr(m.pf, "driver", None)
        if isinstance(drv, str):
            drivers[state.pfs.index(m.entry)] = drv
    return drivers, {n.name for pf in s.inv.pfs for n in pf.netdevs}


def install(host: Host | None, destdir: str | None, state: DesiredState, text: str, exe: str | None,
            dry_run: bool, exporter: bool = False, textfile_dir: str | None = None) -> PersistReport:
    """``destdir``: an image tree, the state checked against the schema only (no host to check it against).
    ``exporter``: also install the exporter's service and timer, writing into ``textfile_dir`` (default:
    Debian's node_exporter textfile directory)."""
    if textfile_dir is not None and not exporter:
        raise UsageError("persist install --textfile-dir: only with --exporter")
    root = _root(host, destdir)
    exe = inst.check_exe(exe) if exe is not None else inst.default_exe()
    textdir = inst.check_dir(textfile_dir or render.TEXTFILE_DIR) if exporter else None
    drivers: dict[int, str] = {}
    names = {p.selector.name for p in state.pfs if p.selector.name}
    if destdir is None and host is not None:
        drivers, netdevs = _on_host(host, state)
        names |= netdevs
    items = inst.items(state, text, exe, drivers, textdir)

    def record(path: str, value: str) -> None:
        if destdir is None and host is not None:
            host.record(WriteKind.FILE, path, value)

    rep = inst.install(root, items, dry_run, record, textdir)
    rep.warnings += inst.other_owners(root, names)
    if any(p.create == "module-param" for p in state.pfs) and destdir is not None:
        rep.warnings.append(f"create: module-param: /{render.MODPROBE_PATH} needs the PFs' drivers; install it on "
                            "the host itself")
    return rep


def uninstall(host: Host | None, destdir: str | None, dry_run: bool) -> PersistReport:
    return inst.uninstall(_root(host, destdir), dry_run)


def status(host: Host | None, destdir: str | None, exe: str | None) -> PersistReport:
    """What is installed; a file is *stale* when rendering the stored state now gives something else."""
    from sriovctl.ops.state import read_stored_state

    root = _root(host, destdir)
    expected = None
    # read as sriovctl's own file: a planted etc/sriovctl/state.yaml -> /etc/shadow was read and its first line
    # shown in the error; a FIFO there hung the command
    stored = read_stored_state(root)
    if stored is not None:
        state, text = stored.state, stored.text
        try:
            run = inst.check_exe(exe) if exe is not None else inst.default_exe()
        except UsageError:
            run = None
        if run is not None:
            expected = [it for it in inst.items(state, text, run, {}, inst.installed_exporter(root))
                        if it.path != render.MODPROBE_PATH]
    return inst.status(root, expected)
