"""The CLI: every verb's JSON against its schema, human output, and bad input (one line, exit code, no
traceback, no write)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import cli, tree_hash, validate
from sriovctl.host.sim.catalog import open_sim, sim_dir


@pytest.mark.parametrize("sim", ["igb-82576", "e810-2x256", "no-iommu", "no-acs-switch"])
def test_every_json_output_validates(sim: str, tmp_path: Path) -> None:
    cases = [(["status"], "status"), (["list", "--vfs"], "list"), (["list", "--all"], "list"),
             (["tree"], "tree"), (["nodedev", "list"], "nodedev-list"), (["sim", "list"], "sim-list")]
    for args, schema in cases:
        r = cli("--sim", sim, "--json", *args)
        assert r.code == 0, r.err
        validate(r.json(), schema)
    status = cli("--sim", sim, "--json", "status").json()
    for dev in [status["pfs"][0]["address"], status["vfs"][0]["address"], "0000:00:00.0"]:
        r = cli("--sim", sim, "--json", "show", dev)
        validate(r.json(), "show")
        r = cli("--sim", sim, "--json", "nodedev", "dumpxml", dev)
        validate(r.json(), "nodedev-dumpxml")
    r = cli("--sim", sim, "--json", "snapshot", str(tmp_path / "s.tar.gz"))
    validate(r.json(), "snapshot")
    r = cli("--json", "sim", "reset", sim)
    validate(r.json(), "sim-reset")


def test_pci_decode_json_validates() -> None:
    fix = Path(__file__).parent.parent / "fixtures" / "lab"
    for f in ("igb-pf.lspci-xxxx", "igb-vf.lspci-xxxx"):
        r = cli("--json", "pci", "decode", str(fix / f))
        assert r.code == 0, r.err
        validate(r.json(), "pci-decode")
    doc = cli("--json", "pci", "decode", str(fix / "igb-pf.lspci-xxxx")).json()
    assert doc["devices"][0]["config"]["sriov"]["vf_offset"] == 128


def test_status_counts_and_list_lines() -> None:
    st = cli("--sim", "igb-82576", "status")
    assert st.code == 0
    assert "2 SR-IOV PFs, 14 VFs" in st.out
    assert "enp11s0f0#3" in st.out
    lines = cli("--sim", "igb-82576", "list", "--vfs").out.splitlines()
    assert lines[0] == "0b:00.0 Ethernet controller: Intel Corporation 82576 Gigabit Network Connection (rev 01)"
    assert "0b:10.0 Ethernet controller: Intel Corporation 82576 Virtual Function (rev 01)" in lines
    assert len(lines) == 16
    assert cli("--sim", "igb-82576").out == st.out  # status is the default verb


@pytest.mark.parametrize("name,expected", [
    ("0000:0b:10.6", "0000:0b:10.6"), ("0b:10.6", "0000:0b:10.6"), ("pci_0000_0b_10_6", "0000:0b:10.6"),
    ("enp11s0f0#3", "0000:0b:10.6"), ("enp11s0f1", "0000:0b:00.1"), ("0b:00.0#6", "0000:0b:11.4"),
])
def test_device_names(name: str, expected: str) -> None:
    r = cli("--sim", "igb-82576", "--json", "show", name)
    assert r.code == 0, r.err
    assert r.json()["device"]["address"] == expected


BAD = [
    (["--sim", "igb-82576", "show", "0b:99.0"], 64, "0b:99.0"),
    (["--sim", "igb-82576", "show", "zz:zz"], 64, "zz:zz"),
    (["--sim", "igb-82576", "show", "0000:0c:00.0"], 66, "0000:0c:00.0"),
    (["--sim", "igb-82576", "show", "eth9"], 66, "eth9"),
    (["--sim", "igb-82576", "show", "enp11s0f0#7"], 66, "no VF 7"),
    (["--sim", "igb-82576", "show", "enp11s0f0#x"], 64, "enp11s0f0#x"),
    (["--sim", "igb-82576", "show", "0b:10.0#1"], 64, "not an SR-IOV PF"),
    (["--sim", "igb-82576", "show", "enp11s0f0#0-3"], 64, "names 4 devices"),
    (["--sim", "no-such-host", "status"], 66, "no-such-host"),
    (["--sim", "../etc", "status"], 64, "../etc"),
    (["--sim", "igb-82576", "frobnicate"], 64, "frobnicate"),
    (["--sim", "igb-82576", "--root", "/", "status"], 64, "not allowed with"),
    (["--sim", "igb-82576", "snapshot", "out.zip"], 64, "out.zip"),
]


@pytest.mark.parametrize("args,code,needle", BAD)
def test_bad_input_is_one_line_with_the_documented_code(args: list[str], code: int, needle: str) -> None:
    open_sim("igb-82576")
    before = tree_hash(str(sim_dir()))
    r = cli(*args)
    assert r.code == code, (r.code, r.err)
    assert r.err.count("\n") == 1 and r.err.startswith("sriovctl: "), r.err
    assert needle in r.err
    assert "Traceback" not in r.err
    assert r.ctx is None or r.ctx.host is None or r.ctx.host.writes == []
    assert tree_hash(str(sim_dir())) == before


def test_bad_files(tmp_path: Path) -> None:
    txt = tmp_path / "notes.txt"
    txt.write_text("hello\n")
    cut = tmp_path / "cut.x"
    cut.write_text("0b:00.0 Ethernet controller: x\n00: 86 80 c9 10\n20: 00 00\n")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    short = tmp_path / "short.bin"
    short.write_bytes(b"\x86\x80\xc9\x10" + b"\x00\xff" * 10)
    cases = [(["pci", "decode", str(tmp_path / "missing")], 66, "missing: no such file"),
             (["pci", "decode", str(txt)], 65, "no configuration-space dump"),
             (["pci", "decode", str(cut)], 65, "expected 0x4"),
             (["pci", "decode", str(empty)], 65, "empty file"),
             (["pci", "decode", str(short)], 65, "truncated: 24 bytes"),
             (["--root", str(txt), "status"], 65, "not a snapshot"),
             (["--root", str(tmp_path), "status"], 65, "not a snapshot"),
             (["--root", str(tmp_path / "nope.tar.gz"), "status"], 66, "nope.tar.gz")]
    for args, code, needle in cases:
        r = cli(*args)
        assert (r.code, r.err.count("\n")) == (code, 1), (args, r.code, r.err)
        assert needle in r.err, r.err
        assert "Traceback" not in r.err


def test_debug_shows_the_traceback() -> None:
    r = cli("--debug", "--sim", "igb-82576", "show", "eth9")
    assert r.code == 66 and "Traceback" in r.err and r.err.rstrip().endswith("PF#N)")


def test_console_script_runs_and_version_is_cheap() -> None:
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-m", "sriovctl", "--version"], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.startswith("sriovctl ")
    mods = subprocess.run([sys.executable, "-c", "import sys, sriovctl.cli.main; "
                           "print(' '.join(m for m in ('rich', 'yaml', 'sriovctl.inventory') if m in sys.modules))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert mods == ""  # heavy modules load lazily


def test_nodedev_dumpxml_golden() -> None:
    golden = Path(__file__).parent.parent / "fixtures" / "golden"
    for name in ("pci_0000_0b_00_0", "pci_0000_0b_10_2"):
        r = cli("--sim", "igb-82576", "nodedev", "dumpxml", name)
        assert r.code == 0
        path = golden / f"igb-82576.{name}.xml"
        if os.environ.get("SRIOVCTL_REGEN_GOLDEN"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(r.out)
        assert r.out == path.read_text()
    xml = cli("--sim", "igb-82576", "nodedev", "dumpxml", "pci_0000_0b_10_2").out
    assert "<capability type='phys_function'>" in xml and "function='0x0'/>" in xml


def test_readme_main_job_runs(tmp_path: Path) -> None:
    """README's first command (scripts/demo) plays the recipe on the demo host to the end."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "SRIOVCTL_SIM_DIR": str(tmp_path), "TERM": "dumb"}
    p = subprocess.run(["bash", str(repo / "scripts" / "demo")], capture_output=True, text=True, env=env,
                       check=False, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    for needle in ("2 SR-IOV PFs, 14 VFs", "<name>pci_0000_0b_00_0</name>", "result: info",
                   "enp11s0f0#0: set MAC 52:54:00:6d:90:02, VLAN 42", "0000:0b:10.0 (enp11s16): bound to vfio-pci",
                   "<mac address='52:54:00:6d:90:02'/>", "<pf dev='enp11s0f1'/>",
                   "-device vfio-pci,host=0000:0b:10.0,id=sriov-0b-10-0",
                   "mac 52:54:00:6d:90:02, vlan 42 qos 0 802.1Q"):
        assert needle in p.stdout, needle
