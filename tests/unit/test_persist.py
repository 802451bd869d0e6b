"""persist install / uninstall / status (issue 13): the state, the boot unit, the udev rule and modprobe.d
written atomically into the host's root (a simulated host here; the lab boots with them) or an image tree;
uninstall removes exactly what install wrote; hostile trees and manifests are not followed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import cli, validate
from sriovctl.host.sim.catalog import open_sim
from sriovctl.persist.render import unit_escape_path

IGB = "igb-82576"
EXE = str(Path(sys.executable).parent / "sriovctl")
STATE = {"pfs": [{"name": "enp11s0f0", "total-vfs": 4, "vfs": [{"id": 0, "vlan-id": 7}, {"id": 1, "driver": "vfio-pci"}]},
                 {"pci-address": "0000:0b:00.1", "vfs": [{"id": 0, "trust": True}]}]}
FILES = ["etc/sriovctl/state.yaml", "etc/systemd/system/sriovctl.service",
         "etc/systemd/system/multi-user.target.wants/sriovctl.service", "etc/udev/rules.d/70-sriovctl.rules"]


def _state(tmp_path: Path, doc: object = STATE) -> str:
    f = tmp_path / "state.yaml"
    f.write_text(yaml.safe_dump(doc))
    return str(f)


def test_install_status_uninstall_on_a_host(tmp_path: Path) -> None:
    root = Path(open_sim(IGB).root)
    f = _state(tmp_path)
    dry = cli("--sim", IGB, "persist", "install", f, "--exec", EXE, "--dry-run")
    assert dry.code == 0 and dry.out.count("would write") == 4 and not (root / FILES[0]).exists(), dry.out
    r = cli("--sim", IGB, "--json", "persist", "install", f, "--exec", EXE)
    assert r.code == 0, r.err
    validate(r.json(), "persist")
    assert sorted(r.json()["written"]) == sorted("/" + p for p in FILES)
    assert (root / FILES[0]).read_text() == Path(f).read_text()
    unit = (root / FILES[1]).read_text()
    assert f"ExecStart={EXE} state apply /etc/sriovctl/state.yaml" in unit
    assert "After=sys-subsystem-net-devices-enp11s0f0.device" in unit and "Before=network.target" in unit
    for u in ("libvirtd.service", "virtqemud.service", "libvirt-guests.service", "NetworkManager.service",
              "systemd-networkd.service"):
        assert u in unit.split("Before=")[1].splitlines()[0]
    assert "udev-settle" not in unit
    assert os.readlink(root / FILES[2]) == "../sriovctl.service"
    rule = (root / FILES[3]).read_text()
    assert f'RUN+="{EXE} state apply /etc/sriovctl/state.yaml $id"' in rule and 'TEST=="device/sriov_totalvfs"' in rule
    # again: nothing to write
    again = cli("--sim", IGB, "persist", "install", f, "--exec", EXE)
    assert again.code == 0 and "installed already" in again.out
    assert again.ctx is not None and again.ctx.host is not None and again.ctx.host.writes == []
    st = cli("--sim", IGB, "--json", "persist", "status", "--exec", EXE)
    assert st.code == 0 and set(st.json()["files"].values()) == {"installed"}, st.out
    # someone edits the rule: status says so (exit 9); uninstall leaves it and removes the rest
    (root / FILES[3]).write_text("# mine\n")
    st = cli("--sim", IGB, "persist", "status", "--exec", EXE)
    assert st.code == 9 and "/etc/udev/rules.d/70-sriovctl.rules: changed" in st.out, st.out
    un = cli("--sim", IGB, "persist", "uninstall")
    assert un.code == 0 and "kept /etc/udev/rules.d/70-sriovctl.rules" in un.out, un.out
    assert [p for p in FILES if os.path.lexists(root / p)] == [FILES[3]]
    assert not (root / "etc/sriovctl/persist.json").exists()
    assert cli("--sim", IGB, "persist", "uninstall").out == ""


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    dest = tmp_path / "img"
    dest.mkdir()
    assert cli("persist", "install", _state(tmp_path), "--destdir", str(dest), "--exec", EXE).code == 0
    p = subprocess.run(["systemd-analyze", "verify", str(dest / FILES[1])], capture_output=True, text=True,
                       cwd=tmp_path)
    assert p.returncode == 0 and "sriovctl.service" not in p.stderr, p.stderr


def test_unit_names_are_escaped_as_systemd_escape_does() -> None:
    names = ["enp11s0f0", "eth-0", "br.lan", "a@b", "x_y:z", "ä0"]
    ours = [unit_escape_path(f"/sys/subsystem/net/devices/{n}") for n in names]
    assert ours[1] == "sys-subsystem-net-devices-eth\\x2d0"
    if shutil.which("systemd-escape"):
        theirs = subprocess.run(["systemd-escape", "--path", *(f"/sys/subsystem/net/devices/{n}" for n in names)],
                                capture_output=True, text=True, check=True).stdout.split()
        assert ours == theirs


def test_destdir_checks_the_schema_only_and_module_param_writes_modprobe_d(tmp_path: Path) -> None:
    dest = tmp_path / "img"
    dest.mkdir()
    other_host = {"pfs": [{"name": "ens9f0", "total-vfs": 64}]}  # not on this machine: fine for an image
    r = cli("persist", "install", _state(tmp_path, other_host), "--destdir", str(dest), "--exec", EXE)
    assert r.code == 0, r.err
    assert "sys-subsystem-net-devices-ens9f0.device" in (dest / FILES[1]).read_text()
    bad = cli("persist", "install", _state(tmp_path, {"pfs": [{"name": "ens9f0", "total-vfs": -1}]}),
              "--destdir", str(dest), "--exec", EXE)
    assert bad.code == 65 and "pfs[0].total-vfs" in bad.err
    assert yaml.safe_load((dest / FILES[0]).read_text()) == other_host  # the bad file wrote nothing
    # on the host itself, module-param PFs get their driver's option
    mp = {"pfs": [{"name": "enp11s0f0", "total-vfs": 3, "create": "module-param"}]}
    r = cli("--sim", IGB, "persist", "install", _state(tmp_path, mp), "--exec", EXE)
    assert r.code == 0, r.err
    conf = Path(open_sim(IGB).root) / "etc/modprobe.d/sriovctl.conf"
    assert conf.read_text().endswith("options igb max_vfs=3\n")
    # the next install without module-param takes its modprobe.d file away again
    assert cli("--sim", IGB, "persist", "install", _state(tmp_path), "--exec", EXE).code == 0
    assert not conf.exists()


def test_a_second_owner_of_the_pf_is_warned_about(tmp_path: Path) -> None:
    root = Path(open_sim(IGB).root)
    net = root / "etc/systemd/network"
    net.mkdir(parents=True)
    (net / "10-pf.network").write_text("[Match]\nName=enp11s0f0\n\n[SR-IOV]\nVirtualFunction=0\nVLANId=5\n")
    nm = root / "etc/NetworkManager/system-connections"
    nm.mkdir(parents=True)
    (nm / "pf1.nmconnection").write_text("[connection]\ninterface-name=enp11s0f1\n[sriov]\ntotal-vfs=4\n")
    r = cli("--sim", IGB, "persist", "install", _state(tmp_path), "--exec", EXE)
    assert r.code == 0
    assert "10-pf.network: systemd-networkd also configures SR-IOV on enp11s0f0" in r.err, r.err
    assert "pf1.nmconnection: NetworkManager also configures SR-IOV on enp11s0f1" in r.err, r.err


def test_hostile_trees_exec_paths_and_manifests(tmp_path: Path) -> None:
    f = _state(tmp_path)
    r = cli("persist", "install", f, "--destdir", str(tmp_path / "none"))
    assert r.code == 66 and "not a directory" in r.err
    for exe in ("relative/sriovctl", "/bin/x y", "/bin/$x", "/bin/%n"):
        r = cli("persist", "install", f, "--destdir", str(tmp_path), "--exec", exe)
        assert r.code == 64 and "--exec" in r.err, (exe, r.err)
    # a symlink in the image tree is not followed out of it
    dest, outside = tmp_path / "img", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "etc").symlink_to(outside)
    r = cli("persist", "install", f, "--destdir", str(dest), "--exec", EXE)
    assert r.code == 74 and "Traceback" not in r.err, r.err
    assert list(outside.iterdir()) == []
    # a manifest naming files that are not ours: uninstall removes none of them
    (dest / "etc").unlink()
    victim = dest / "victim"
    victim.write_text("x")
    (dest / "etc/sriovctl").mkdir(parents=True)
    (dest / "etc/sriovctl/persist.json").write_text(json.dumps({"files": {"victim": "0" * 64, "../victim": "1"}}))
    r = cli("persist", "uninstall", "--destdir", str(dest))
    assert r.code == 0 and victim.exists(), r.out + r.err


def test_vf_enable_module_param_and_persist_keep_one_modprobe_file(tmp_path: Path) -> None:
    """One owner of modprobe.d content (issue 19: `vf enable --module-param` wrote /etc/modprobe.d/igb.conf
    while `persist install` wrote sriovctl.conf — two counts for one module, modprobe picking one): both
    write sriovctl.conf's line for the module; while `persist install` keeps that file, changing it behind
    the state's back is refused (77), --force warns and `persist status` then says what changed."""
    root = Path(open_sim(IGB).root)
    conf = root / "etc/modprobe.d/sriovctl.conf"
    r = cli("--sim", IGB, "vf", "enable", "enp11s0f0", "3", "--module-param", "max_vfs", "--force")
    assert r.code == 0, r.err
    assert conf.read_text().splitlines()[-1] == "options igb max_vfs=3"
    assert sorted(os.listdir(root / "etc/modprobe.d")) == ["sriovctl.conf"]
    mp = {"pfs": [{"name": "enp11s0f0", "total-vfs": 5, "create": "module-param"}]}
    assert cli("--sim", IGB, "persist", "install", _state(tmp_path, mp), "--exec", EXE).code == 0
    assert conf.read_text().splitlines()[-1] == "options igb max_vfs=5"
    before = conf.read_text()
    r = cli("--sim", IGB, "vf", "enable", "enp11s0f0", "2", "--module-param", "max_vfs", "--reset")
    assert r.code == 77 and "kept by the persisted state" in r.err and r.err.count("\n") <= 2, r.err
    assert conf.read_text() == before
    r = cli("--sim", IGB, "vf", "enable", "enp11s0f0", "2", "--module-param", "max_vfs", "--force")
    assert r.code == 0 and "warning: --force: igb's VF count at boot is kept by the persisted state" in r.out, r.out
    assert conf.read_text().splitlines()[-1] == "options igb max_vfs=2"
    status = cli("--sim", IGB, "persist", "status")
    assert status.code != 0 and "sriovctl.conf" in status.out + status.err, status.out + status.err
