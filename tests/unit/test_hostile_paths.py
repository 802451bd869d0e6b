"""Issue 18: a FIFO, a device node, a directory and a symlink (at the file, at its directory, at the top
directory) at every path sriovctl reads or writes under a root (the table in ops/ownpaths.py), for every verb
that touches it: no hang, no write outside the root, nothing read through the link shown, never exit 70."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from mutate import deadline

from helpers import Result, cli
from sriovctl.host.sim.catalog import open_sim
from sriovctl.ops.ownpaths import OwnPath, persist_paths, state_paths

IGB = "igb-82576"
KEY = "0000:0b:00.0"
SECRET = "root:$6$SECRET-SHADOW-LINE:19000:0:99999:7:::"
KINDS = ("fifo", "device", "directory", "link-file", "link-dir", "link-top")
CASE_SECONDS = 30  # per verb: generous for a loaded machine; a blocked open never returns at all


def _table() -> list[OwnPath]:
    from sriovctl.host.sim.host import SimHost

    host = SimHost("/nonexistent")  # only its layout (ledger_rel, lock_file) is used: no tree is read
    return state_paths(host, KEY) + persist_paths(["enp11s0f0"])


CASES = [(p, k) for p in _table() for k in KINDS]


def _snapshot(d: Path) -> dict[str, str]:
    out = {}
    for p in sorted(d.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(d))] = (hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode)
                                      else oct(st.st_mode))
    return out


def _plant(root: Path, rel: str, kind: str, outside: Path) -> None:
    """Put the hostile thing at ``root/rel`` (or at a directory on its way), replacing what is there."""
    target = root / rel
    parts = Path(rel).parts
    if kind in ("link-dir", "link-top"):
        at = root / (Path(*parts[:-1]) if kind == "link-dir" else parts[0])
        if len(parts) < 2:
            pytest.skip("no directory on the way")
        if at.is_symlink() or at.is_file():
            at.unlink()
        elif at.exists():
            import shutil

            shutil.rmtree(at)
        at.parent.mkdir(parents=True, exist_ok=True)
        # the outside tree mirrors the inside one, with a secret where the file would be
        inner = outside / "mirror"
        mirror = inner / Path(*parts[len(at.relative_to(root).parts):])
        mirror.parent.mkdir(parents=True, exist_ok=True)
        mirror.write_text(SECRET + "\n")
        os.chmod(mirror, 0o600)
        at.symlink_to(inner)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.is_file() or target.is_fifo():
        target.unlink()
    elif target.is_dir():
        import shutil

        shutil.rmtree(target)
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":
        os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero: endless bytes to a naive reader
    elif kind == "directory":
        target.mkdir()
        (target / "x").write_text(SECRET)
    else:
        (outside / "secret").write_text(SECRET + "\n")
        os.chmod(outside / "secret", 0o600)
        target.symlink_to(outside / "secret")


def _state_file(tmp: Path) -> str:
    f = tmp / "want.yaml"
    f.write_text(json.dumps({"pfs": [{"name": "enp11s0f0", "vfs": [{"id": 0, "vlan-id": 8}]}]}))
    return str(f)


def _run(verb: str, want: str, destdir: Path) -> Result:
    argv = {
        "vf set": ["--sim", IGB, "vf", "set", "enp11s0f0#0", "--vlan", "7"],
        "state apply": ["--sim", IGB, "state", "apply", want],
        "state status": ["--sim", IGB, "state", "status", want],
        "persist install": ["persist", "install", want, "--destdir", str(destdir), "--exec", "/usr/bin/sriovctl"],
        "persist install --exporter": ["persist", "install", want, "--destdir", str(destdir), "--exec",
                                       "/usr/bin/sriovctl", "--exporter"],
        "persist status": ["persist", "status", "--destdir", str(destdir), "--exec", "/usr/bin/sriovctl"],
        "persist uninstall": ["persist", "uninstall", "--destdir", str(destdir)],
    }[verb]
    with deadline(CASE_SECONDS, verb):
        return cli(*argv)


@pytest.mark.parametrize(("path", "kind"), CASES, ids=[f"{p.rel}-{k}" for p, k in CASES])
def test_every_path_every_hostile_kind(path: OwnPath, kind: str, tmp_path: Path) -> None:
    want = _state_file(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    destdir = tmp_path / "image"
    destdir.mkdir()
    if path.persist:
        root = destdir
        if "install" not in path.verbs or len(path.verbs) > 1:  # status/uninstall look at an installed tree
            exporter = ["--exporter"] if "persist install --exporter" in path.verbs else []
            assert cli(*_run_args_install(want, destdir), *exporter).code == 0
    else:
        root = Path(open_sim(IGB).root)
        assert cli("--sim", IGB, "state", "apply", want).code == 0  # the record, the log, the lock exist
        (root / "state" / "state-journal").mkdir(parents=True, exist_ok=True)
        (root / "state" / "state-journal" / f"{KEY}.json").write_text("{}")
    _plant(root, path.rel, kind, outside)
    before = _snapshot(outside)
    for verb in path.verbs:
        r = _run(verb, want, destdir)
        said = r.out + r.err
        assert r.code != 70 and "internal error" not in said, f"{verb}: {said}"
        assert "SECRET" not in said, f"{verb} showed what the link reached: {said}"
        assert r.code in (0, 7, 8, 9, 65, 74, 77), f"{verb}: exit {r.code}: {said}"
        if kind != "directory" and r.code == 74:
            assert path.rel.split("/")[-1] in said or "refused" in said or "lock" in said, said
        assert _snapshot(outside) == before, f"{verb} wrote outside the root through {path.rel} ({kind})"


def _run_args_install(want: str, destdir: Path) -> list[str]:
    return ["persist", "install", want, "--destdir", str(destdir), "--exec", "/usr/bin/sriovctl"]


def test_the_table_names_every_file_sriovctl_made(tmp_path: Path) -> None:
    """The table is the code's: after an apply, a vf set and a persist install, every regular file sriovctl left
    in its state directory and in the image tree is one the table lists (a new path must be added to it)."""
    want = _state_file(tmp_path)
    destdir = tmp_path / "image"
    destdir.mkdir()
    assert cli("--sim", IGB, "vf", "set", "enp11s0f0#1", "--vlan", "3").code == 0
    assert cli("--sim", IGB, "state", "apply", want).code == 0
    assert cli(*_run_args_install(want, destdir)).code == 0
    listed = {p.rel for p in _table()}
    root = Path(open_sim(IGB).root)
    made = {str(p.relative_to(root)) for p in (root / "state").rglob("*") if p.is_file()}
    made |= {str(p.relative_to(destdir)) for p in destdir.rglob("*") if p.is_file() or p.is_symlink()}
    made = {m for m in made if not m.startswith("state/") or KEY in m or "/" not in m[6:]}
    assert made and made <= listed, made - listed


def test_persist_status_does_not_show_a_file_reached_through_a_link(tmp_path: Path) -> None:
    """The issue's example: state.yaml a link to a 0600 file — on --destdir and on --sim, and with etc or
    etc/sriovctl the link."""
    secret = tmp_path / "shadow"
    secret.write_text(SECRET + "\n")
    os.chmod(secret, 0o600)
    for where in ("etc/sriovctl/state.yaml", "etc/sriovctl", "etc"):
        for sim in (False, True):
            root = Path(open_sim(IGB).root) if sim else tmp_path / f"d-{where.replace('/', '_')}"
            root.mkdir(exist_ok=True)
            link = root / where
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.is_file():
                link.unlink()
            elif link.is_dir():
                import shutil

                shutil.rmtree(link)
            if where == "etc/sriovctl/state.yaml":
                link.symlink_to(secret)
            else:
                mirror = tmp_path / f"m-{where.replace('/', '_')}-{sim}"
                (mirror / "sriovctl" if where == "etc" else mirror).mkdir(parents=True, exist_ok=True)
                (mirror / ("sriovctl/state.yaml" if where == "etc" else "state.yaml")).symlink_to(secret)
                (mirror / ("sriovctl/persist.json" if where == "etc" else "persist.json")).write_text(
                    json.dumps({"files": {"etc/sriovctl/state.yaml": "0" * 64}}))
                link.symlink_to(mirror)
            args = ["--sim", IGB] if sim else []
            r = cli(*args, "persist", "status", *([] if sim else ["--destdir", str(root)]), "--exec", "/bin/true")
            assert "SECRET" not in r.out + r.err and r.code in (0, 9, 74), (where, sim, r.code, r.out, r.err)
            if link.is_symlink():
                link.unlink()


def test_a_symlinked_state_or_lock_directory_is_not_followed(tmp_path: Path) -> None:
    """The PF lock, write log, journals and record are never created where a planted directory link points."""
    root = Path(open_sim(IGB).root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state = root / "state"
    if state.exists():
        import shutil

        shutil.rmtree(state)
    state.symlink_to(elsewhere)
    want = _state_file(tmp_path)
    for argv in (["vf", "set", "enp11s0f0#0", "--vlan", "9"], ["state", "apply", want]):
        r = cli("--sim", IGB, *argv)
        assert r.code == 74 and "symbolic link" in r.err, r.err
    assert list(elsewhere.iterdir()) == []


def test_a_fifo_lock_is_refused_not_truncated(tmp_path: Path) -> None:
    root = Path(open_sim(IGB).root)
    (root / "state").mkdir(exist_ok=True)
    os.mkfifo(root / "state" / f"{KEY}.lock")
    with deadline(CASE_SECONDS, "vf set"):
        r = cli("--sim", IGB, "vf", "set", "enp11s0f0#0", "--vlan", "9")
    assert r.code == 74 and "a FIFO" in r.err and "internal" not in r.err, r.err


def test_directories_made_by_persist_get_0755_under_umask_077(tmp_path: Path) -> None:
    want = _state_file(tmp_path)
    old = os.umask(0o077)
    try:
        assert cli(*_run_args_install(want, tmp_path)).code == 0
    finally:
        os.umask(old)
    for d in ("etc/sriovctl", "etc/systemd/system", "etc/systemd/system/multi-user.target.wants", "etc/udev/rules.d"):
        assert stat.S_IMODE((tmp_path / d).stat().st_mode) == 0o755, d
    unit = tmp_path / "etc/systemd/system/sriovctl.service"
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    os.chmod(unit, 0o666)  # world-writable: anyone could make the boot run their command
    r = cli("--json", "persist", "status", "--destdir", str(tmp_path), "--exec", "/usr/bin/sriovctl")
    assert r.code == 9 and r.json()["files"]["/etc/systemd/system/sriovctl.service"] == "changed", r.out
    r = cli("--json", *_run_args_install(want, tmp_path))
    assert r.code == 0 and "/etc/systemd/system/sriovctl.service" in r.json()["written"], r.out
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644


def test_host_write_file_names_a_refused_path(tmp_path: Path) -> None:
    """Host.write_file (modprobe.d for `vf enable --module-param`) goes through safefs: a link on the way is
    refused with what it is, not followed, and the message says why (not "cannot write: None")."""
    from sriovctl.errors import HostIOError
    from sriovctl.host.base import Host

    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "etc").symlink_to(outside)
    with pytest.raises(HostIOError, match=r"^/etc/modprobe.d/igb.conf: cannot write: .*/etc: a symbolic link "
                                          r"where a directory belongs: refused"):
        Host(str(root)).write_file("etc/modprobe.d/igb.conf", "options igb max_vfs=7\n")
    assert list(outside.iterdir()) == []
