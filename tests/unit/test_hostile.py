"""Hostile input, class by class (issue 10): every case is refused with a one-line error naming the bad field
or value, its documented exit code, never an internal error (70), and nothing outside the host's root changes."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers import cli, tree_hash, validate
from sriovctl import archive
from sriovctl.host.sim.catalog import open_sim, sim_dir

S = ("--sim", "igb-82576")
BASE_SPEC = {
    "name": "h1",
    "kernel": {"release": "6.1.0-sim", "modules": ["igb"], "config": {"CONFIG_PCI_IOV": "y"}},
    "firmware": {"acpi_tables": ["DMAR", "APIC"]},
    "iommu": {"units": ["dmar0"], "groups": True},
    "network": {"default_route": "eth0", "up": ["eth0"], "addresses": {"eth0": ["10.0.0.2/24"]}},
    "devices": [{"address": "0000:00:00.0", "kind": "host-bridge"},
                {"address": "0000:0b:00.0", "kind": "nic", "model": "intel-82576", "netdev": "eth0",
                 "mac": "00:1b:21:3c:9d:f8"}],
}


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    """A tree beside the simulated hosts that nothing may touch."""
    s = tmp_path / "sentinel"
    (s / "a" / "b").mkdir(parents=True)
    (s / "f").write_text("keep\n")
    (s / "a" / "b" / "g").write_text("keep too\n")
    return s


def _spec(tmp_path: Path, mutate: object) -> Path:
    import copy

    data = copy.deepcopy(BASE_SPEC)
    mutate(data)  # type: ignore[operator]
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _set(path: str, value: object) -> object:
    def mutate(d: dict[str, object]) -> None:
        keys = path.split(".")
        cur: object = d
        for k in keys[:-1]:
            cur = cur[int(k)] if isinstance(cur, list) else cur[k]  # type: ignore[index]
        if isinstance(cur, list):
            cur[int(keys[-1])] = value
        else:
            cur[keys[-1]] = value  # type: ignore[index]
    return mutate


TRAVERSAL = "x/../../../../sentinel/pwned"


# ---------------------------------------------------------------- 1. spec fields become paths

@pytest.mark.parametrize("field,value,needle", [
    ("kernel.release", TRAVERSAL, "kernel.release"),
    ("kernel.modules", ["igb", "../../../../sentinel/m"], "kernel.modules[1]"),
    ("iommu.units", ["dmar0", "../../../x"], "iommu.units[1]"),
    ("firmware.acpi_tables", ["DMAR", "../../../../sentinel/t"], "firmware.acpi_tables[1]"),
    ("devices.1.netdev", "../../x", "devices[1].netdev"),
    ("devices.1.driver", "../../../../sentinel/d", "devices[1].driver"),
    ("network.up", ["../../../sentinel/u"], "network.up[0]"),
    ("network.default_route", "../x", "network.default_route"),
    ("network.addresses", {"../../a": ["10.0.0.1/24"]}, "network.addresses"),
    ("kernel.config", {"../../CONFIG_X": "y"}, "kernel.config"),
    ("kernel.config", {"CONFIG_X": "y\nCONFIG_EVIL=y"}, "kernel.config.CONFIG_X"),
    ("kernel.cmdline", "ro\n../../x", "kernel.cmdline"),
    ("kernel.release", "..", "kernel.release"),
    ("kernel.release", "a\x00b", "kernel.release"),
])
def test_spec_path_fields_are_plain_names(tmp_path: Path, sentinel: Path, field: str, value: object, needle: str) -> None:
    spec = _spec(tmp_path, _set(field, value))
    before = tree_hash(str(tmp_path))
    r = cli("sim", "create", "h1", "--from", str(spec))
    assert r.code == 65, r.err
    assert needle in r.err and r.err.count("\n") == 1
    assert tree_hash(str(tmp_path)) == before
    assert not (sim_dir() / "h1").exists()
    assert not list(sim_dir().glob(".h1.building*")) if sim_dir().exists() else True
    assert not (sentinel / "pwned").exists() and not list(tmp_path.rglob("pwned"))
    assert sorted(p.name for p in sentinel.rglob("*")) == ["a", "b", "f", "g"]


def test_a_tampered_spec_in_the_sim_dir_is_refused_on_reset(tmp_path: Path, sentinel: Path) -> None:
    assert cli("sim", "create", "h1", "--from", str(_spec(tmp_path, lambda d: None))).code == 0
    root = sim_dir() / "h1"
    before = tree_hash(str(root))
    data = yaml.safe_load((root / "spec.yaml").read_text())
    data["iommu"]["units"] = ["dmar0", "../../../../sentinel/x"]
    (root / "spec.yaml").write_text(yaml.safe_dump(data))
    r = cli("sim", "reset", "h1")
    assert r.code == 65 and "iommu.units[1]" in r.err
    data["iommu"]["units"] = ["dmar0"]
    (root / "spec.yaml").write_text(yaml.safe_dump(data))
    assert tree_hash(str(root)) == before
    assert sorted(p.name for p in sentinel.rglob("*")) == ["a", "b", "f", "g"]


@given(st.text(min_size=1, max_size=40))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_release_string_is_a_plain_name_or_refused(text: str) -> None:
    from sriovctl.errors import DataError
    from sriovctl.host.sim.spec import parse_spec

    data = {**BASE_SPEC, "kernel": {"release": text}}
    try:
        spec = parse_spec(data, "spec")
    except DataError as e:
        assert "kernel.release" in e.message and "\n" not in e.message
        return
    assert "/" not in spec.kernel_release and spec.kernel_release not in (".", "..")
    assert spec.kernel_release.isascii() and spec.kernel_release.isprintable()


# ---------------------------------------------------------------- 2. snapshot archives

def _tar(path: Path, members: list[tuple[str, str, object]]) -> Path:
    """members: (name, kind, payload) with kind file|dir|sym|hard|fifo|dev."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, payload in members:
            ti = tarfile.TarInfo(name)
            data = b""
            if kind == "file":
                data = payload if isinstance(payload, bytes) else str(payload).encode()
                ti.size = len(data)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, str(payload)
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, str(payload)
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            elif kind == "dev":
                ti.type = tarfile.CHRTYPE
            tar.addfile(ti, io.BytesIO(data) if kind == "file" else None)
    return path


def _realpath_attack(path: Path, dest_len: int) -> Path:
    """CPython's test_realpath_limit_attack archive (CVE-2025-4517), built here."""
    steps = "abcdefghijklmnop"
    max_path = os.pathconf("/", "PC_PATH_MAX")
    component = "d" * ((max_path - dest_len - 1) // (len(steps) + 1))
    members: list[tuple[str, str, object]] = []
    p = ""
    for s in steps:
        members.append((os.path.join(p, component), "dir", None))
        members.append((os.path.join(p, s), "sym", component))
        p = os.path.join(p, component)
    linkpath = os.path.join(*steps, "l" * 254)
    members.append((linkpath, "sym", os.path.join(*[".."] * len(steps))))
    members.append(("escape", "sym", os.path.join(linkpath, "..")))
    members.append(("flaglink", "hard", os.path.join("escape", "flag")))
    members.append(("flaglink", "file", "overwrite"))
    members.append(("escape/newfile", "file", "new"))
    members.append(("sys/bus/pci/devices/.keep", "file", ""))
    return _tar(path, members)


def _leftovers(tmp: Path) -> list[str]:
    return [p.name for p in tmp.iterdir() if p.name.startswith(archive.PREFIX)]


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    t = tmp_path / "tmp"
    t.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(t))
    return t


def test_cpython_realpath_limit_archive_is_refused(tmp_path: Path, private_tmp: Path) -> None:
    (private_tmp.parent / "flag").write_text("secret\n")
    bad = _realpath_attack(tmp_path / "attack.tar.gz", len(str(private_tmp)) + 40)
    before = tree_hash(str(tmp_path))
    r = cli("--root", str(bad), "status")
    assert r.code == 65 and "attack.tar.gz" in r.err, r.err
    assert (private_tmp.parent / "flag").read_text() == "secret\n"
    assert not (private_tmp.parent / "newfile").exists()
    assert _leftovers(private_tmp) == []
    assert tree_hash(str(tmp_path)) == before


@pytest.mark.parametrize("members,needle", [
    ([("../evil", "file", "x")], "not a relative path"),
    ([("/etc/evil", "file", "x")], "not a relative path"),
    ([("sys/bus/pci/devices/a/../../../../x", "file", "x")], "not a relative path"),
    ([("sys/x", "sym", "/etc/passwd")], "absolute"),
    ([("sys/a", "sym", "b/.."), ("sys/b", "sym", "../.."), ("sys/c", "sym", "a/../b/x")], "leaves the snapshot"),
    ([("sys/l1", "sym", "l2"), ("sys/l2", "sym", "l1")], "links deep"),
    ([("x", "sym", "."), ("x/evil", "file", "x")], "not a directory"),
    ([("sys/h", "hard", "../../etc/passwd")], "hard link"),
    ([("sys/fifo", "fifo", None)], "FIFO"),
    ([("sys/dev", "dev", None)], "device node"),
    ([("sys/f", "file", "1"), ("sys/f", "file", "2")], "appears twice"),
    ([("sys/\x1b[31mred", "file", "x")], "not a relative path"),
])
def test_archive_members_are_checked(tmp_path: Path, private_tmp: Path, members: list[tuple[str, str, object]],
                                     needle: str) -> None:
    bad = _tar(tmp_path / "bad.tar.gz", [("sys/bus/pci/devices/.keep", "file", ""), *members])
    r = cli("--root", str(bad), "status")
    assert r.code == 65 and needle in r.err and r.err.count("\n") == 1, r.err
    assert "\x1b" not in r.err
    assert _leftovers(private_tmp) == []
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


def test_archive_limits(tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keep = ("sys/bus/pci/devices/.keep", "file", "")
    monkeypatch.setattr(archive, "LIMITS", archive.Limits(members=50, total_bytes=1 << 20, file_bytes=256 << 10,
                                                          depth=8, header_bytes=4096))
    cases = [
        ([keep, *((f"sys/f{i}", "file", "x") for i in range(60))], "more than 50 members"),
        ([keep, ("sys/big", "file", b"\0" * (300 << 10))], "larger than the 262144-byte limit"),
        ([keep, *((f"sys/m{i}", "file", b"\0" * (200 << 10)) for i in range(6))], "more than 1048576 bytes"),
        ([keep, ("/".join(["d"] * 9) + "/f", "file", "x")], "deeper than 8"),
        ([keep, ("sys/" + "n" * 3000, "file", "x")], "longer than 255 bytes"),
        ([keep, ("sys/" + "n" * 5000, "file", "x")], "extended header"),
    ]
    for members, needle in cases:
        bad = _tar(tmp_path / "lim.tar.gz", members)
        r = cli("--root", str(bad), "status")
        assert r.code == 65 and needle in r.err, (needle, r.err)
        assert _leftovers(private_tmp) == []


def test_a_compression_bomb_stops_at_the_limit(tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "LIMITS", archive.Limits(stream_bytes=8 << 20, file_bytes=64 << 20))
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:
        ti = tarfile.TarInfo("sys/zeros")
        ti.size = 64 << 20
        tar.addfile(ti, io.BytesIO(bytes(ti.size)))
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    r = cli("--root", str(bomb), "status")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r.code == 65 and "decompresses to more than" in r.err, r.err
    assert peak < 32 << 20
    assert _leftovers(private_tmp) == []


def test_leftovers_of_killed_runs_are_removed(tmp_path: Path, private_tmp: Path) -> None:
    snap = tmp_path / "s.tar.gz"
    assert cli(*S, "snapshot", str(snap)).code == 0
    dead = private_tmp / f"{archive.PREFIX}999999999-abc"
    (dead / "sys").mkdir(parents=True)
    alive = private_tmp / f"{archive.PREFIX}{os.getpid()}-keep"
    alive.mkdir()
    other = private_tmp / "someone-elses"
    other.mkdir()
    r = cli("--root", str(snap), "status")
    assert r.code == 0, r.err
    assert not dead.exists() and alive.exists() and other.exists()


def test_sigterm_during_extraction_removes_the_private_dir(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    members = [("SRIOVCTL-SNAPSHOT.json", "file", "{}")] + [(f"sys/bus/pci/devices/d{i // 500}/f{i}", "file", "x")
                                                           for i in range(40_000)]
    big = _tar(tmp_path / "big.tar.gz", members)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    p = subprocess.Popen([sys.executable, "-m", "sriovctl.cli.main", "--root", str(big), "status"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120  # a slow, loaded machine: wait for the extraction to start, however long
    while not _leftovers(tmp) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _leftovers(tmp), "the extraction never started"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert _leftovers(tmp) == [] and "Traceback" not in err


def test_a_directory_root_is_never_followed_outside(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"\xad\xde\xef\xbeTOP-SECRET" + bytes(250))  # vendor dead, device beef
    snap = tmp_path / "s.tar.gz"
    assert cli(*S, "snapshot", str(snap)).code == 0
    d = tmp_path / "dir"
    d.mkdir()
    with tarfile.open(snap) as tar:
        tar.extractall(d, filter="tar")  # our own archive, to make a directory snapshot of it
    pf = Path(os.path.realpath(d / "sys/bus/pci/devices/0000:0b:00.0"))
    (pf / "config").unlink()
    (pf / "config").symlink_to(secret)  # absolute: outside the tree
    (pf / "numa_node").unlink()
    (pf / "numa_node").symlink_to(os.path.relpath(tmp_path / "secret", pf))  # relative, but outside
    os.symlink("../../../../../../../../../..", d / "sys/bus/pci/devices/0000:ff:00.0")
    r = cli("--root", str(d), "--json", "show", "0b:00.0")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["config"] is None and "dead" not in r.out and "TOP-SECRET" not in r.out, doc["config"]
    assert doc["device"]["numa_node"] is None
    out = tmp_path / "again.tar.gz"
    assert cli("--root", str(d), "snapshot", str(out)).code == 0
    with tarfile.open(out) as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isreg() else None
            assert f is None or b"TOP-SECRET" not in f.read(), m.name


def test_hostile_names_inside_a_snapshot_are_neither_paths_nor_terminal_output(tmp_path: Path) -> None:
    snap = tmp_path / "s.tar.gz"
    assert cli(*S, "snapshot", str(snap)).code == 0
    d = tmp_path / "dir"
    d.mkdir()
    with tarfile.open(snap) as tar:
        tar.extractall(d, filter="tar")
    pf = Path(os.path.realpath(d / "sys/bus/pci/devices/0000:0b:00.0"))
    vf = Path(os.path.realpath(d / "sys/bus/pci/devices/0000:0b:10.0"))
    (pf / "driver").unlink()
    (pf / "driver").symlink_to("..")  # a driver named ".." would be a path out of sys/bus/pci/drivers
    (vf / "driver").unlink()
    (vf / "driver").symlink_to("../../../bus/pci/drivers/\x1b]0;pwned\x07evil")
    (vf / "driver_override").write_text("\x1b[2J\x1b[31mred\n")
    nd = next((pf / "net").iterdir())
    nd.rename(pf / "net" / "eth\x1b[31m")
    for args in (("status",), ("--json", "status"), ("show", "0b:00.0"), ("show", "0b:10.0"), ("tree",), ("list", "--all")):
        r = cli("--root", str(d), *args)
        assert r.code == 0, (args, r.err)
        assert "\x1b" not in r.out and "\x07" not in r.out, (args, r.out)
    for bad in ('{"enp11s0f0": [{"vf": 0, "mac": "\\u001b[31m", "evil": 1}]}', "[[[[" * 50000, "{not json",
                '{"enp11s0f0": [{"vf": 0, "stats": {"rx": "x"}}]}', '{"enp11s0f0": 5}'):
        (d / "netlink.json").write_text(bad)
        r = cli("--root", str(d), "--json", "show", "0b:10.0")
        assert r.code == 0 and r.json()["device"]["netlink"] is None, (bad[:40], r.err)


# ---------------------------------------------------------------- 3. empty host options

@pytest.mark.parametrize("args", [("--sim", ""), ("--root", ""), ("--sim", "  "), ("--root", " \t")])
def test_empty_host_option_never_means_the_live_host(args: tuple[str, str]) -> None:
    r = cli(*args, "vf", "disable", "0000:00:00.0")
    assert r.code == 64 and args[0] in r.err and r.err.count("\n") == 1
    assert r.ctx is not None and r.ctx.host is None  # no host was opened, so nothing could be written


# ---------------------------------------------------------------- 4. the in-use check fails closed

BOMB = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">' +
        "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)) +
        ']><domstatus><domain><name>&i;</name></domain></domstatus>')


@pytest.mark.parametrize("content,needle", [
    (BOMB, "does not parse"),
    ("<domstatus><domain><name>vm1</name><devices><hostdev><source><address domain='0x0000' bus='0x0b'",
     "does not parse"),
    ("<domstatus>" + " " * (5 << 20) + "</domstatus>", "larger than"),
])
def test_unparseable_libvirt_xml_makes_every_vf_maybe_in_use(content: str, needle: str) -> None:
    root = Path(open_sim("igb-82576").root)
    (root / "run/libvirt/qemu").mkdir(parents=True)
    (root / "run/libvirt/qemu/vm1.xml").write_text(content)
    before = tree_hash(str(root / "sys"))
    r = cli(*S, "vf", "disable", "enp11s0f0")
    assert r.code == 77 and "maybe in use" in r.err and needle in r.err, r.err
    assert tree_hash(str(root / "sys")) == before
    r = cli(*S, "vf", "bind", "enp11s0f0#1", "vfio-pci")
    assert r.code == 77 and "maybe in use" in r.err
    r = cli(*S, "vf", "disable", "enp11s0f0", "--force")
    assert r.code == 0 and "warning: --force" in r.out


# ---------------------------------------------------------------- 7. resource limits

def test_vf_ranges_are_bounded_before_expansion() -> None:
    open_sim("igb-82576")
    tracemalloc.start()
    for name, code in (("enp11s0f0#0-9999999", 64), ("enp11s0f0#0-65535", 66), ("enp11s0f0#" + "9" * 5000, 64),
                       ("enp11s0f0#" + ",".join(["0-6"] * 300), 64), ("enp11s0f0#7", 66)):
        r = cli(*S, "show", name)
        assert r.code == code and r.err.count("\n") == 1, (name, r.err)
    assert tracemalloc.get_traced_memory()[1] < 16 << 20
    tracemalloc.stop()


def test_spec_size_alias_bomb_and_recursion(tmp_path: Path) -> None:
    bomb = "name: h1\ndevices: []\ndescription: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"k{i}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8))
    cases = {"bomb.yaml": (bomb.encode(), "expands to more than"),
             "rec.yaml": (b"name: h1\ndevices: &d [*d]\n", "refers to a node that contains it"),
             "deep.yaml": (b"name: h1\ndevices: " + b"[" * 200 + b"]" * 200 + b"\n", "nested deeper"),
             "big.yaml": (b"name: h1\n#" + b"x" * (2 << 20) + b"\n", "limit"),
             "bin.yaml": (bytes(range(256)) * 4, "not UTF-8"),
             "deepdev.yaml": (yaml.safe_dump({"name": "h1", "devices": [_deep(40)]}).encode(), "nested deeper than")}
    for fname, (content, needle) in cases.items():
        p = tmp_path / fname
        p.write_bytes(content)
        r = cli("sim", "create", "h1", "--from", str(p))
        assert r.code == 65 and needle in r.err and r.err.count("\n") == 1, (fname, r.err[:300])
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    r = cli("sim", "create", "h1", "--from", str(fifo))
    assert r.code == 65 and "not a regular file" in r.err
    assert not sim_dir().exists() or not list(sim_dir().glob(".h1.*"))


def test_topology_depth_and_device_count_are_bounded() -> None:
    from sriovctl.errors import DataError
    from sriovctl.host.sim.spec import parse_spec

    with pytest.raises(DataError, match="nested deeper than 32 bridges"):
        parse_spec({"name": "h1", "devices": [_deep(40)]}, "spec")
    many = [{"address": f"0000:{b:02x}:{s:02x}.0", "kind": "endpoint"} for b in range(40) for s in range(32)]
    with pytest.raises(DataError, match="more than 1024 devices"):
        parse_spec({"name": "h1", "devices": many}, "spec")


def _deep(n: int) -> dict[str, object]:
    d: dict[str, object] = {"address": f"0000:{n:02x}:00.0", "kind": "endpoint"}
    for i in range(n):
        d = {"address": f"0000:{i:02x}:01.0", "kind": "pci-bridge", "children": [d]}
    return d


def test_pci_decode_reads_regular_files_only_and_bounded(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x86\x80" + bytes(8190))
    huge = tmp_path / "huge.txt"
    huge.write_text("00: 86 80\n" * (7_000_000))  # 70 MB
    for path, needle in (("/dev/zero", "not a regular file"), (str(fifo), "not a regular file"),
                         (str(big), "more than a configuration space"), (str(huge), "limit"),
                         (str(tmp_path), "directory")):
        r = cli("pci", "decode", path)
        assert r.code == 65 and needle in r.err, (path, r.err)


# ---------------------------------------------------------------- 8. validation

def test_full_match_validation_and_no_raw_control_characters() -> None:
    root = Path(open_sim("igb-82576").root)
    before = tree_hash(str(root))
    cases = [
        (("vf", "set", "enp11s0f0#0", "--mac", "52:54:00:00:00:01\n"), 64, "--mac"),
        (("vf", "bind", "enp11s0f0#0", "vfio-pci\n"), 64, "driver"),
        (("vf", "bind", "enp11s0f0#0", "../../x"), 64, "driver"),
        (("show", "enp11s0f0#\u0663"), 64, "VF index"),
        (("show", "0b:10.0\n"), 64, "0b:10.0\\x0a"),
        (("show", "\x1b[2J\x1b[31mevil"), 64, "\\x1b"),
        (("qemu", "args", "enp11s0f0#0", "--bus", "rp1,host=0000:00:00.0"), 64, "not a QEMU id"),
        (("qemu", "args", "enp11s0f0#0", "--bus", "rp1=x"), 64, "not a QEMU id"),
        (("vf", "set", "enp11s0f0#0", "--vlan", "\u0664\u0662"), 64, "not a non-negative number"),
        (("vf", "set", "enp11s0f0#0", "--vlan", "1_0"), 64, "not a non-negative number"),
        (("vf", "enable", "enp11s0f0", "7", "--module-param", "max_vfs\n"), 64, "--module-param"),
    ]
    for args, code, needle in cases:
        r = cli(*S, *args)
        assert r.code == code and needle in r.err and r.err.count("\n") == 1, (args, r.code, r.err)
        assert not any(ord(c) < 32 for c in r.err.rstrip("\n")), r.err
    assert tree_hash(str(root)) == before


@given(st.text(min_size=1, max_size=30))
@settings(max_examples=80, deadline=None)
def test_any_device_name_is_refused_cleanly(name: str) -> None:
    # "--debug" where a name could be is the global option (accepted anywhere on the line), which shows tracebacks
    assume(name != "--debug")
    r = cli(*S, "show", name)
    assert r.code in (0, 64, 66), (name, r.code, r.err)
    if r.code:
        assert r.err.count("\n") == 1 and not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in r.err[:-1]), r.err


# ---------------------------------------------------------------- 9. clear errors, not exit 70

@pytest.mark.parametrize("field,value,needle", [
    ("devices.1.vf_offset", 70000, "vf_offset"),
    ("devices.1.vf_offset", 65000, "beyond the 16-bit space"),
    ("devices.1.numa_node", 10 ** 30, "numa_node"),
    ("devices.1.numvfs", -1, "numvfs"),
    ("devices.1.vendor", "fffffffff", "vendor"),
    ("devices.1.revision", 300, "revision"),
    ("devices.1.mac", "zz", "devices[1].mac"),
    ("devices.1.frobnicate", 1, "devices[1].frobnicate: unknown key"),
    ("network.addresses", {"eth0": ["not-an-ip"]}, "not an IP address"),
    ("cpu", {"flags": ["vmx", {"x": 1}]}, "cpu.flags[1]"),
])
def test_out_of_range_spec_values(tmp_path: Path, field: str, value: object, needle: str) -> None:
    r = cli("sim", "create", "h1", "--from", str(_spec(tmp_path, _set(field, value))))
    assert r.code == 65 and needle in r.err, r.err


def test_bridge_bus_numbers_out_of_range(tmp_path: Path) -> None:
    def mutate(d: dict[str, object]) -> None:
        d["devices"] = [{"address": "0000:00:01.0", "kind": "root-port", "secondary_bus": 300,
                         "children": [{"address": "0000:01:00.0", "kind": "endpoint"}]}]
    r = cli("sim", "create", "h1", "--from", str(_spec(tmp_path, mutate)))
    assert r.code == 65 and "secondary_bus" in r.err, r.err
    assert not sim_dir().exists() or not list(sim_dir().glob(".h1.*"))


# ---------------------------------------------------------------- 10. output contract

def test_json_is_one_document_for_errors_and_partial_results() -> None:
    open_sim("igb-82576")
    r = cli(*S, "--json", "vf", "set", "enp11s0f0#1-2", "--vlan", "7", "--state", "disable")
    assert r.code == 3
    import json

    doc = json.loads(r.out)
    validate(doc, "error")
    assert doc["error"]["exit_code"] == 3 and any("EOPNOTSUPP" in m for m in doc["messages"])
    assert doc["writes"] and doc["host"] == "simulated host igb-82576"
    for args in (("show", "eth9"), ("vf", "set", "enp11s0f0#0", "--vlan", "9999"), ("pci", "decode", "/nope")):
        r = cli(*S, "--json", *args)
        assert r.code in (64, 66) and r.out.count("\n") == 1
        validate(json.loads(r.out), "error")
    r = cli(*S, "show", "eth9", "--json")  # --json after the verb
    validate(json.loads(r.out), "error")


def test_dry_run_never_claims_a_change() -> None:
    root = Path(open_sim("igb-82576").root)
    before = tree_hash(str(root))
    for args in (("vf", "disable", "enp11s0f0", "--dry-run"), ("vf", "enable", "enp11s0f0", "3", "--reset", "--dry-run"),
                 ("vf", "unbind", "enp11s0f0#0", "--dry-run"), ("vf", "bind", "enp11s0f0#0", "vfio-pci", "--dry-run")):
        r = cli(*S, *args)
        assert r.code == 0, r.err
        assert "nothing was changed" in r.out
        for claim in ("VFs disabled", "VFs enabled", "unbound from", "bound to", "loaded module"):
            assert claim not in r.out, (args, r.out)
    assert tree_hash(str(root)) == before


def test_config_files_are_never_written_through_a_link_out_of_the_tree(tmp_path: Path) -> None:
    root = Path(open_sim("igb-82576").root)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "etc").symlink_to(outside)
    r = cli(*S, "vf", "enable", "enp11s0f0", "3", "--module-param", "max_vfs", "--force")
    assert r.code == 74 and "/etc/modprobe.d/sriovctl.conf: cannot write" in r.err, r.err
    assert list(outside.iterdir()) == []


def test_files_get_explicit_modes_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        snap = tmp_path / "s.tar.gz"
        assert cli(*S, "snapshot", str(snap)).code == 0
        assert stat.S_IMODE(snap.stat().st_mode) == 0o644
        root = Path(open_sim("igb-82576").root)
        r = cli(*S, "vf", "enable", "enp11s0f0", "3", "--module-param", "max_vfs", "--force")
        assert r.code == 0, r.err
        conf = root / "etc/modprobe.d/sriovctl.conf"
        assert stat.S_IMODE(conf.stat().st_mode) == 0o644
        assert stat.S_IMODE((root / "etc/modprobe.d").stat().st_mode) == 0o755
        assert stat.S_IMODE((root / "sim.json").stat().st_mode) == 0o644
        assert stat.S_IMODE(os.stat(os.path.join(sim_dir(), ".igb-82576.lock")).st_mode) == 0o600
    finally:
        os.umask(old)


def test_opening_beneath_a_tree_survives_renames_elsewhere(tmp_path: Path) -> None:
    """openat2(RESOLVE_BENEATH) answers EAGAIN when any rename on the system runs while it resolves "..": a
    reader of a simulated host, whose writers rename their state file constantly, must retry, not see an
    empty directory (CI saw "PF has 0 VFs" from exactly this)."""
    import threading

    from sriovctl.host.base import Host

    (tmp_path / "devices/pci/dev0").mkdir(parents=True)
    for i in range(8):
        (tmp_path / f"devices/pci/dev0/virtfn{i}").write_text("x")
    (tmp_path / "bus").mkdir()
    (tmp_path / "bus/dev0").symlink_to("../devices/pci/dev0")
    stop = threading.Event()

    def renamer() -> None:
        a, b = tmp_path / "a", tmp_path / "b"
        a.write_text("1")
        while not stop.is_set():
            os.replace(a, b)
            os.replace(b, a)

    t = threading.Thread(target=renamer)
    t.start()
    try:
        host = Host(root=str(tmp_path))
        empty = sum(len(host.listdir("bus/dev0")) != 8 for _ in range(3000))
    finally:
        stop.set()
        t.join()
    assert empty == 0
