"""Every user-error class (exit 64, 65, 66, 77) as a real process, the way a hostile or careless caller meets
it: umask 000, a 1 GiB address-space limit, HOME/TMPDIR/XDG_*/SRIOVCTL_SIM_DIR inside the test directory.
Each case: its exit code, a message that names the bad field or value, never exit 70, and nothing changed —
not the simulated host's tree, not a sentinel tree around it, not /tmp."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from helpers import tree_hash


def _limits() -> None:
    os.umask(0)
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "SRIOVCTL_"))}
    for name in ("home", "tmp", "state", "config", "cache", "runtime", "sim", "sentinel/deep/er", "in"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "sentinel/keep").write_text("keep\n")
    (tmp_path / "sentinel/deep/er/keep").write_text("keep too\n")
    env.update(HOME=str(tmp_path / "home"), TMPDIR=str(tmp_path / "tmp"), XDG_STATE_HOME=str(tmp_path / "state"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               XDG_RUNTIME_DIR=str(tmp_path / "runtime"), SRIOVCTL_SIM_DIR=str(tmp_path / "sim"),
               SRIOVCTL_PCI_IDS=os.environ.get("SRIOVCTL_PCI_IDS", ""))
    inp = tmp_path / "in"
    (inp / "traversal.yaml").write_text("name: h1\nkernel: {release: 'x/../../../../sentinel/pwned'}\ndevices: []\n")
    (inp / "bomb.yaml").write_text("name: h1\ndevices: []\na: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"k{i}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)))
    (inp / "notes.txt").write_text("hello\n")
    with tarfile.open(inp / "evil.tar.gz", "w:gz") as tar:
        ti = tarfile.TarInfo("sys/bus/pci/devices/x")
        ti.type, ti.linkname = tarfile.SYMTYPE, "../../../../../../../sentinel"
        tar.addfile(ti)
    r = _sriovctl(env, "--sim", "igb-82576", "status")  # build the host first: the cases must change nothing
    assert r.returncode == 0, r.stderr
    r = _sriovctl(env, "--sim", "igb-82576", "snapshot", str(inp / "snap.tar.gz"))
    assert r.returncode == 0, r.stderr
    return tmp_path, env


def _sriovctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sriovctl.cli.main", *args], env=env, capture_output=True, text=True,
                          preexec_fn=_limits, timeout=300, cwd=env["HOME"])


CASES: list[tuple[tuple[str, ...], int, str]] = [
    # 64: the command line is wrong
    (("--sim", "", "vf", "disable", "0000:00:00.0"), 64, "--sim: empty value"),
    (("--root", " ", "status"), 64, "--root: empty value"),
    (("--sim", "igb-82576", "show", "enp11s0f0#x"), 64, "'x' is not N"),
    (("--sim", "igb-82576", "show", "enp11s0f0#0-9999999"), 64, "'0-9999999'"),
    (("--sim", "igb-82576", "vf", "set", "enp11s0f0#0", "--mac", "52:54:00:00:00:01\n"), 64, "--mac '52:54:00:00:00:01\\x0a'"),
    (("--sim", "igb-82576", "vf", "bind", "enp11s0f0#0", "vfio-pci\n"), 64, "'vfio-pci\\x0a'"),
    (("--sim", "igb-82576", "qemu", "args", "enp11s0f0#0", "--bus", "rp1,host=0000:00:00.0"), 64, "'rp1,host=0000:00:00.0'"),
    (("--sim", "igb-82576", "vf", "set", "enp11s0f0#0", "--vlan", "\u0664\u0662"), 64, "--vlan"),
    (("--sim", "bad/../name", "status"), 64, "'bad/../name'"),
    (("frobnicate",), 64, "'frobnicate'"),
    # 65: input data is malformed
    (("sim", "create", "h1", "--from", "{in}/traversal.yaml"), 65, "kernel.release"),
    (("sim", "create", "h1", "--from", "{in}/bomb.yaml"), 65, "bomb.yaml: expands to more than"),
    (("pci", "decode", "/dev/zero"), 65, "/dev/zero: not a regular file"),
    (("--root", "{in}/notes.txt", "status"), 65, "notes.txt': not a snapshot"),
    (("--root", "{in}/evil.tar.gz", "status"), 65, "leaves the snapshot"),
    # 66: a named thing does not exist
    (("--sim", "igb-82576", "show", "eth9"), 66, "'eth9'"),
    (("--sim", "igb-82576", "show", "enp11s0f0#9"), 66, "no VF 9"),
    (("--sim", "nosuch", "status"), 66, "'nosuch': no such host"),
    (("pci", "decode", "{in}/missing"), 66, "missing: no such file"),
    (("--root", "{in}/missing.tar.gz", "status"), 66, "missing.tar.gz"),
    # 77: not allowed
    (("--sim", "igb-82576", "vf", "unbind", "eno1"), 77, "default route"),
    (("--sim", "igb-82576", "vf", "bind", "0000:00:19.0", "vfio-pci"), 77, "0000:00:19.0"),
    (("--root", "{in}/snap.tar.gz", "vf", "disable", "enp11s0f0"), 77, "read-only"),
]


def test_every_user_error_class_under_hostile_conditions(world: tuple[Path, dict[str, str]]) -> None:
    root, env = world
    tmp_before = set(os.listdir("/tmp"))
    before = tree_hash(str(root))
    seen: set[int] = set()
    for args, code, needle in CASES:
        argv = [a.replace("{in}", str(root / "in")) for a in args]
        for json_too in (False, True):
            r = _sriovctl(env, *(["--json"] if json_too else []), *argv)
            assert r.returncode == code, (argv, r.returncode, r.stderr)
            assert needle in r.stderr, (argv, r.stderr)
            assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and "internal error" not in r.stderr
            if json_too:
                import json

                assert json.loads(r.stdout)["error"]["exit_code"] == code
        seen.add(code)
        assert tree_hash(str(root)) == before, argv
    assert seen == {64, 65, 66, 77}
    assert not (root / "sentinel" / "pwned").exists()
    new_in_tmp = {n for n in set(os.listdir("/tmp")) - tmp_before if "sriovctl" in n}
    assert not new_in_tmp and not os.listdir(root / "tmp")
