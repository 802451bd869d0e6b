"""virt and qemu verbs without a daemon: libvirt's test driver (state from a file) for who-uses-what and
the owner check, and the QEMU arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import cli, validate

S = ("--sim", "igb-82576")
NODE = Path(__file__).parent.parent / "fixtures" / "libvirt" / "test-node.xml"
URI = f"test://{NODE}"

libvirt = pytest.importorskip("libvirt", reason="libvirt-python not installed (the [libvirt] extra)")


def test_virt_list_reads_domain_xml() -> None:
    r = cli(*S, "virt", "list", "--connect", URI)
    assert r.code == 0, r.err
    assert [line.split(None, 2) for line in r.out.splitlines()] == [
        ["0000:0b:10.0", "vm1", "running  interface 52:54:00:6d:90:02"],
        ["0000:0b:11.1", "vm3", "shut off hostdev   -"]]  # a stopped domain's persistent definition counts too
    doc = cli(*S, "--json", "virt", "list", "--connect", URI).json()
    assert doc["uses"] == [
        {"domain": "vm1", "running": True, "state": "running", "address": "0000:0b:10.0", "kind": "interface",
         "mac": "52:54:00:6d:90:02"},
        {"domain": "vm3", "running": False, "state": "shut off", "address": "0000:0b:11.1", "kind": "hostdev",
         "mac": None}]


def test_attach_refuses_while_the_pf_is_down() -> None:
    r = cli(*S, "virt", "attach", "vm2", "enp11s0f0#3", "--live", "--connect", URI)
    assert r.code == 69 and "the PF is down" in r.err and "ip link set dev enp11s0f0 up" in r.err


def test_attach_warns_about_a_vf_in_a_hostdev_network_pool() -> None:
    """libvirt's hostdev networks do not know about VFs attached directly: say so before libvirt would."""
    r = cli(*S, "virt", "attach", "vm2", "enp11s0f0#3", "--live", "--connect", URI)
    assert r.err.splitlines()[0] == ("warning: 0000:0b:10.6 is in the pool of libvirt network sriov-pool: libvirt "
                                     "may hand it to another domain too, whose start then fails; use one method per PF")
    r = cli(*S, "virt", "attach", "vm2", "enp11s0f1#3", "--live", "--connect", URI)
    assert "warning" not in r.err and "the PF is down" in r.err  # PF 1 has no pool


def test_attach_refuses_a_vf_another_domain_has() -> None:
    r = cli(*S, "virt", "attach", "vm2", "enp11s0f0#0", "--live", "--connect", URI)
    assert r.code == 77 and "already given to domain vm1 (running)" in r.err and r.err.count("\n") == 1
    r = cli(*S, "virt", "attach", "vm2", "enp11s0f1#4", "--hostdev", "--config", "--connect", URI)
    assert r.code == 77 and "0000:0b:11.1: already given to domain vm3 (shut off)" in r.err
    r = cli(*S, "virt", "attach", "vm2", "00:1f.2", "--connect", URI)
    assert r.code == 64  # not a VF
    r = cli(*S, "virt", "attach", "nosuch", "enp11s0f0#1", "--connect", URI)
    assert r.code == 66 and "no such libvirt domain" in r.err
    r = cli(*S, "virt", "list", "--connect", "qemu+unix:///system?socket=/nonexistent")
    assert r.code == 69 and "cannot connect" in r.err


def test_qemu_args() -> None:
    r = cli(*S, "qemu", "args", "enp11s0f0#0", "enp11s0f1#2", "--bus", "rp1")
    assert r.code == 0
    assert r.out.split() == ["-device", "vfio-pci,host=0000:0b:10.0,id=sriov-0b-10-0,bus=rp1",
                             "-device", "vfio-pci,host=0000:0b:10.5,id=sriov-0b-10-5,bus=rp1"]
    r = cli(*S, "qemu", "args", "enp11s0f0#0-2")  # a range names three VFs: one -device each
    assert r.code == 0 and r.out.split()[1::2] == [f"vfio-pci,host=0000:0b:10.{f},id=sriov-0b-10-{f}" for f in (0, 2, 4)]
    r = cli(*S, "qemu", "args", "enp11s0f0#0-1", "0b:10.2")
    assert r.code == 64 and "0000:0b:10.2: named twice" in r.err
    r = cli(*S, "qemu", "args", "enp11s0f0#0", "--pci-assign")
    assert r.code == 64 and "removed from QEMU in 2.12" in r.err
    r = cli("--sim", "no-acs-switch", "qemu", "args", "enp3s0#0")
    assert r.code == 77 and "not assignable" in r.err


def test_json_outputs_validate() -> None:
    from helpers import validate

    validate(cli(*S, "--json", "virt", "xml", "enp11s0f0#0").json(), "virt-xml")
    validate(cli(*S, "--json", "virt", "network-xml", "enp11s0f0", "--name", "n").json(), "virt-xml")
    validate(cli(*S, "--json", "virt", "list", "--connect", URI).json(), "virt-list")
    validate(cli(*S, "--json", "qemu", "args", "enp11s0f0#0").json(), "qemu-args")


def test_attach_and_detach_dry_runs() -> None:
    from helpers import tree_hash
    from sriovctl.host.sim.catalog import open_sim, sim_dir

    root = open_sim("igb-82576").root
    flags = f"{root}/sys/class/net/enp11s0f0/flags"
    with open(flags, "w") as f:
        f.write("0x1003\n")  # IFF_UP
    before = tree_hash(str(sim_dir()))
    r = cli(*S, "virt", "attach", "vm2", "enp11s0f0#1", "--vlan", "5", "--live", "--config", "--dry-run", "--connect", URI)
    assert r.code == 0, r.err
    assert r.out.startswith("dry run: nothing was changed")
    assert (f"libvirt:{URI}: attach to vm2 (live and config): <interface type='hostdev' managed='yes'> <mac address='52:54:00:"
            in r.out) and "<tag id='5'/>" in r.out
    r = cli(*S, "virt", "detach", "vm1", "enp11s0f0#0", "--live", "--dry-run", "--connect", URI)
    assert r.code == 0, r.err
    assert f"libvirt:{URI}: detach from vm1 (live): <interface type=\"hostdev\" managed=\"yes\">" in r.out
    assert "0000:0b:10.0: would return to its host driver once QEMU lets go" in r.out
    doc = cli(*S, "--json", "virt", "detach", "vm1", "enp11s0f0#0", "--live", "--dry-run", "--connect", URI).json()
    validate(doc, "vf-action")
    assert doc["dry_run"] and doc["writes"][0]["path"] == f"libvirt:{URI}"
    assert doc["outcome"] is None and [(c["kind"], c["target"], c["before"], c["after"]) for c in doc["plan"]["changes"]] \
        == [("libvirt-detach", "vm1", "0000:0b:10.0", None)]
    doc = cli(*S, "--json", "virt", "attach", "vm2", "enp11s0f0#1", "--vlan", "5", "--live", "--config", "--dry-run",
              "--connect", URI).json()
    validate(doc, "vf-action")
    assert doc["outcome"] is None and [(c["kind"], c["target"], c["before"], c["after"]) for c in doc["plan"]["changes"]] \
        == [("libvirt-attach", "vm2", None, "0000:0b:10.2")]
    assert "VLAN 5" in doc["plan"]["changes"][0]["why"] and "live and config" in doc["plan"]["changes"][0]["why"]
    r = cli(*S, "virt", "detach", "vm2", "enp11s0f0#0", "--live", "--dry-run", "--connect", URI)
    assert r.code == 66 and "domain vm2: does not use 0000:0b:10.0" in r.err
    assert tree_hash(str(sim_dir())) == before


def test_attach_a_plain_hostdev() -> None:
    """--hostdev: no MAC or VLAN, so nothing goes through the PF (it may be down)."""
    r = cli(*S, "virt", "attach", "vm2", "enp11s0f1#2", "--hostdev", "--config", "--dry-run", "--connect", URI)
    assert r.code == 0, r.err
    assert (f"libvirt:{URI}: attach to vm2 (config): <hostdev mode='subsystem' type='pci' managed='yes'> <source> "
            "<address domain='0x0000' bus='0x0b' slot='0x10' function='0x5'/> </source> </hostdev>") in r.out
    r = cli(*S, "virt", "attach", "vm2", "enp11s0f1#2", "--hostdev", "--vlan", "3", "--connect", URI)
    assert r.code == 64 and "--hostdev: a plain hostdev carries no MAC or VLAN" in r.err


def test_attach_refuses_a_vf_a_guest_outside_libvirt_holds() -> None:
    """A VF hot-plugged into a QEMU that libvirt does not manage is refused live, naming that QEMU."""
    from helpers import hold_vfio
    from sriovctl.host.sim.catalog import open_sim

    assert cli(*S, "vf", "bind", "enp11s0f0#2", "vfio-pci").code == 0
    group = open_sim("igb-82576").link_name("sys/bus/pci/devices/0000:0b:10.4/iommu_group")
    assert group
    hold_vfio(group, pid=5150, comm="qemu-system-x86", argv=("qemu-system-x86_64", "-name", "guest=web1"))
    r = cli(*S, "virt", "attach", "vm2", "enp11s0f0#2", "--hostdev", "--live", "--connect", URI)
    assert r.code == 77 and r.err.count("\n") == 1, r.err
    assert (f"0000:0b:10.4: refusing to give it to vm2: QEMU guest web1 (pid 5150) holds /dev/vfio/{group} open"
            in r.err), r.err
    r = cli(*S, "virt", "attach", "vm2", "enp11s0f0#2", "--hostdev", "--config", "--dry-run", "--connect", URI)
    assert r.code == 0, r.err  # its persistent definition only: nothing is taken from anyone now
    r = cli(*S, "virt", "attach", "vm2", "enp11s0f0#2", "--hostdev", "--live", "--dry-run", "--force", "--connect", URI)
    assert r.code == 0 and "warning: --force: 0000:0b:10.4: refusing to give it to vm2" in r.err, r.err
