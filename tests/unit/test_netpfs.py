"""PFs not on PCI and VF representors, read from trees shaped as the lab kernel showed them (netdevsim10's
port eni10np1 with phys_port_name p1, representors pf0vfN): and from hostile trees that only look so."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from helpers import cli
from sriovctl.errors import UsageError
from sriovctl.host import sysfs
from sriovctl.host.base import Host
from sriovctl.inventory import read_inventory
from sriovctl.ops.vfattrs import sequential_macs

SWITCH = "4a18330c063c9643"


def _netdev(root: Path, device: str, name: str, port: str | None, ifindex: int) -> None:
    d = root / device / "net" / name
    d.mkdir(parents=True)
    for f, v in (("address", "02:00:00:00:00:01"), ("operstate", "up"), ("mtu", "1500"), ("ifindex", str(ifindex))):
        (d / f).write_text(v + "\n")
    if port is not None:
        (d / "phys_port_name").write_text(port + "\n")
        (d / "phys_switch_id").write_text(SWITCH + "\n")
    link = root / "sys/class/net" / name
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(d, link.parent), link)


def nsim_tree(tmp_path: Path, representors: int = 0) -> Path:
    root = tmp_path / "host"
    dev = root / "sys/devices/netdevsim10"
    dev.mkdir(parents=True)
    (dev / "sriov_numvfs").write_text("4\n")
    (root / "sys/bus/netdevsim/drivers/netdevsim").mkdir(parents=True)
    os.symlink("../../bus/netdevsim", dev / "subsystem")
    os.symlink("../../bus/netdevsim/drivers/netdevsim", dev / "driver")
    (root / "sys/bus/pci/devices").mkdir(parents=True)
    _netdev(root, "sys/devices/netdevsim10", "eni10np1", "p1", 2)
    for i in range(representors):
        _netdev(root, "sys/devices/netdevsim10", f"eni10npf0vf{i}", f"pf0vf{i}", 10 + i)
    _netdev(root, "sys/devices/virtual", "lo", None, 1)
    return root


def test_a_netdevsim_port_is_a_pf_named_by_its_netdev_with_its_representors(tmp_path: Path) -> None:
    inv = read_inventory(Host(root=str(nsim_tree(tmp_path, representors=3)), read_only=True, label="t"))
    assert list(inv.net_pfs) == ["eni10np1"]  # lo (virtual) and the representors are not PFs
    pf = inv.net_pfs["eni10np1"]
    assert (pf.bus, pf.device, pf.devlink, pf.driver, pf.numvfs, pf.port_name) == (
        "netdevsim", "netdevsim10", "netdevsim/netdevsim10", "netdevsim", 4, "p1")
    assert [(r.name, r.pf_number, r.vf, r.ifindex) for r in pf.representors] == [
        (f"eni10npf0vf{i}", 0, i, 10 + i) for i in range(3)]


@pytest.mark.parametrize("link", [
    "../../devices/virtual/net/x",  # virtual
    "../../devices/pci0000:00/0000:00:03.0/net/x",  # PCI: the PCI pass reads it
    "../../devices/netdevsim10/net/y",  # not its own name
    "../../devices/../../../etc/net/x",  # climbs out
    "../../devices//net/x", "/sys/devices/netdevsim10/net/x", "../../devices/a/b/c/d/e/f/g/h/i/j/k/l/m/net/x",
    None,
])
def test_only_a_plain_path_down_sys_devices_names_a_pf_device(link: str | None) -> None:
    assert sysfs.bus_device_of_netdev("x", link) is None


def test_a_bus_device_path() -> None:
    assert sysfs.bus_device_of_netdev("x", "../../devices/netdevsim10/net/x") == "sys/devices/netdevsim10"


def test_hostile_port_names_and_switch_ids_are_not_representors(tmp_path: Path) -> None:
    root = nsim_tree(tmp_path)
    _netdev(root, "sys/devices/netdevsim10", "evil", "pf0vf1\x1b[2J", 30)
    _netdev(root, "sys/devices/netdevsim10", "evil2", "pf0vf99999999", 31)
    inv = read_inventory(Host(root=str(root), read_only=True, label="t"))
    assert inv.net_pfs["evil"].representors == () and "evil2" in inv.net_pfs  # taken as ports, never as VF reps
    assert inv.net_pfs["evil"].port_name is None  # not a plain name: dropped


def test_sequential_macs_count_up_in_the_low_three_octets() -> None:
    assert sequential_macs("pf", "02:00:00:00:00:fe", 3) == ["02:00:00:00:00:fe", "02:00:00:00:00:ff",
                                                             "02:00:00:00:01:00"]
    with pytest.raises(UsageError, match="leaves no room for 3 MACs"):
        sequential_macs("pf", "02:00:00:ff:ff:fe", 3)
    with pytest.raises(UsageError, match="a multicast address"):
        sequential_macs("pf", "03:00:00:00:00:00", 3)


def test_macs_from_gives_each_vf_its_own_mac_through_the_cli() -> None:
    S = ("--sim", "e810-2x256")
    r = cli(*S, "vf", "set", "ens2f0#0-255", "--macs-from", "02:aa:00:00:00:00", "--trust", "on", "--json")
    assert r.code == 0, r.err
    r = cli(*S, "show", "ens2f0#255", "--json")
    assert r.json()["device"]["netlink"]["mac"] == "02:aa:00:00:00:ff" and r.json()["device"]["netlink"]["trust"] is True
    r = cli(*S, "vf", "set", "ens2f0#0-1", "--macs-from", "02:aa:00:00:00:00", "--mac", "02:bb:00:00:00:00")
    assert r.code == 64 and "--mac and --macs-from: choose one" in r.err
    r = cli(*S, "vf", "set", "ens2f0#0", "ens2f0#0", "--trust", "off", "--json")  # named twice: set once
    assert r.code == 0 and len(r.json()["plan"]["changes"]) == 1, r.err


def test_a_pci_verb_on_a_pf_not_on_pci_says_what_it_is(tmp_path: Path) -> None:
    from sriovctl.resolve import resolve

    inv = read_inventory(Host(root=str(nsim_tree(tmp_path)), read_only=True, label="t"))
    with pytest.raises(UsageError, match=r"eni10np1 is a PF not on PCI \(netdevsim/netdevsim10\)"):
        resolve(inv, "eni10np1")


def test_a_pci_pf_in_switchdev_mode_keeps_its_own_netdev_and_maps_its_representors(tmp_path: Path) -> None:
    """mlx5-style: the representors are netdevs of the PF's own PCI function (its net/ directory), named
    pfNvfM by phys_port_name beside the uplink's p0; sorted by name, a representor may come first."""
    import shutil

    from sriovctl.host.sim.catalog import open_sim

    root = tmp_path / "snap"
    shutil.copytree(open_sim("igb-82576").root, root, symlinks=True)
    pf_dir = (root / "sys/bus/pci/devices/0000:0b:00.0").resolve()
    uplink = pf_dir / "net" / "enp11s0f0"
    (uplink / "phys_port_name").write_text("p0\n")
    (uplink / "phys_switch_id").write_text(SWITCH + "\n")
    for i in (1, 0):
        rep = pf_dir / "net" / f"aaa_rep{i}"  # sorts before the uplink
        rep.mkdir()
        for f, v in (("ifindex", str(50 + i)), ("phys_port_name", f"pf0vf{i}"), ("phys_switch_id", SWITCH)):
            (rep / f).write_text(v + "\n")
    r = cli("--root", str(root), "show", "enp11s0f0", "--json")
    assert r.code == 0, r.err
    dev = r.json()["device"]
    assert [n["name"] for n in dev["netdevs"]] == ["enp11s0f0"]
    assert [(x["name"], x["vf"]) for x in dev["representors"]] == [("aaa_rep0", 0), ("aaa_rep1", 1)]
    r = cli("--root", str(root), "show", "enp11s0f0#1", "--json")
    assert r.code == 0 and r.json()["device"]["representor"] == "aaa_rep1", r.err
    r = cli("--root", str(root), "show", "enp11s0f0#2")
    assert r.code == 0 and re.search(r"^  representor +-$", r.out, re.M), r.out  # VF 2 has none
    r = cli("--root", str(root), "tree")
    assert "VF 1: " in r.out and "representor aaa_rep1" in r.out, r.out
    r = cli("--root", str(root), "status", "--json")
    assert "net_pfs" not in r.json()  # a PCI PF's representors are not PFs of their own


def test_vf_enable_and_disable_take_a_pf_not_on_pci_by_its_netdev(tmp_path: Path) -> None:
    """One VF-count step for PCI and non-PCI PFs (issue 19): `vf enable eni10np1 N` writes its device's
    sriov_numvfs on its own bus (through 0: the kernel's EBUSY rule), under the PF's lock, and reads it back;
    the module-parameter way is refused for it; `vf disable` writes 0. (The lab does the same on netdevsim.)"""
    from sriovctl.errors import UsageError as Usage
    from sriovctl.ops.session import Session
    from sriovctl.ops.vfcount import EnableOptions, disable, enable

    root = nsim_tree(tmp_path)
    (root / "sys/bus/netdevsim/devices").mkdir()
    os.symlink("../../../devices/netdevsim10", root / "sys/bus/netdevsim/devices/netdevsim10")  # as the kernel has it
    numvfs = root / "sys/devices/netdevsim10/sriov_numvfs"
    host = Host(root=str(root), label="t")
    with pytest.raises(Usage, match="4 already enabled"):
        enable(Session(host), "eni10np1", 8, EnableOptions())
    out = enable(Session(host), "eni10np1", 8, EnableOptions(reset=True))
    assert [(c.kind, c.target, c.before, c.after) for c in out.applied] == [
        ("vf-count", "netdevsim-netdevsim10", 4, 0), ("vf-count", "netdevsim-netdevsim10", 0, 8)]
    assert out.verified and numvfs.read_text().strip() == "8"
    assert [w.path for w in host.writes] == ["/sys/bus/netdevsim/devices/netdevsim10/sriov_numvfs"] * 2
    assert enable(Session(host), "eni10np1", 8, EnableOptions()).plan.notes == ["eni10np1: 8 VFs already enabled, "
                                                                                "nothing to do"]
    with pytest.raises(Usage, match="eni10np1: not a PCI device"):
        enable(Session(host), "eni10np1", 8, EnableOptions(reset=True), module_param="max_vfs")
    assert numvfs.read_text().strip() == "8"
    out = disable(Session(host), "eni10np1", EnableOptions())
    assert out.verified and numvfs.read_text().strip() == "0"
    dry = Host(root=str(root), label="t", dry_run=True)
    enable(Session(dry), "eni10np1", 2, EnableOptions())
    assert numvfs.read_text().strip() == "0" and [w.value for w in dry.writes] == ["2"]
