"""VF lifecycle, attributes and binding on simulated hosts (the same semantics as the lab's kernel)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import cli, hold_vfio, tree_hash, validate
from sriovctl.host.sim.catalog import open_sim, sim_dir

S = ("--sim", "igb-82576")
PF0 = "sys/bus/pci/devices/0000:0b:00.0"


def numvfs(pf: str = PF0) -> str:
    return open_sim("igb-82576").read_text(f"{pf}/sriov_numvfs") or ""


def test_enable_disable_reset() -> None:
    r = cli(*S, "vf", "enable", "enp11s0f0", "3")
    assert r.code == 64 and "cannot set 3 VFs: 7 already enabled (write 0 first, or use --reset)" in r.err
    assert numvfs() == "7"
    r = cli(*S, "vf", "enable", "enp11s0f0", "8")
    assert r.code == 64 and "sriov_totalvfs is 7" in r.err
    r = cli(*S, "vf", "enable", "enp11s0f0", "3", "--reset")
    assert r.code == 0 and "3 VFs enabled" in r.out, r.err
    assert numvfs() == "3"
    r = cli(*S, "vf", "disable", "enp11s0f0")
    assert r.code == 0 and numvfs() == "0"
    r = cli(*S, "vf", "enable", "enp11s0f0", "2", "--no-autoprobe")
    assert r.code == 0, r.err
    h = open_sim("igb-82576")
    assert h.readlink("sys/bus/pci/devices/0000:0b:10.0/driver") is None
    r = cli(*S, "--json", "vf", "disable", "0b:00.0")
    validate(r.json(), "vf-action")
    assert r.json()["writes"] == [{"path": f"/{PF0}/sriov_numvfs", "value": "0", "dry_run": False}]


def test_dry_run_prints_the_writes_and_changes_nothing() -> None:
    open_sim("igb-82576")
    before = tree_hash(str(sim_dir()))
    r = cli(*S, "vf", "enable", "enp11s0f0", "3", "--reset", "--dry-run")
    assert r.code == 0
    assert f"/{PF0}/sriov_numvfs <- '0'" in r.out and f"/{PF0}/sriov_numvfs <- '3'" in r.out
    r = cli(*S, "vf", "set", "enp11s0f0#0-6", "--vlan", "9", "--dry-run")
    assert r.code == 0 and "netlink:RTM_SETLINK enp11s0f0: vf 0 vlan=9 qos 0 802.1Q" in r.out
    r = cli(*S, "vf", "bind", "enp11s0f0#1", "vfio-pci", "--dry-run")
    assert r.code == 0 and "driver_override <- 'vfio-pci'" in r.out
    assert tree_hash(str(sim_dir())) == before


def test_in_use_vfs_block_destruction_until_force() -> None:
    assert cli(*S, "vf", "bind", "enp11s0f0#2", "vfio-pci").code == 0
    h = open_sim("igb-82576")
    group = h.link_name("sys/bus/pci/devices/0000:0b:10.4/iommu_group")
    assert group and h.exists(f"dev/vfio/{group}")
    hold_vfio(group)
    for args in (["vf", "disable", "enp11s0f0"], ["vf", "enable", "enp11s0f0", "3", "--reset"]):
        r = cli(*S, *args)
        assert r.code == 77, r.err
        assert f"process 4242 (dpdk-testpmd) holds /dev/vfio/{group} open" in r.err
        assert r.err.count("\n") == 1
    assert numvfs() == "7"
    r = cli(*S, "vf", "disable", "enp11s0f0", "--force")
    assert r.code == 0 and "warning: --force" in r.out
    assert numvfs() == "0"


def test_a_qemu_holding_a_vf_is_named_by_guest_and_qmp_socket() -> None:
    """A VF hot-plugged through QMP has no libvirt domain: the QEMU process is named from its command line."""
    assert cli(*S, "vf", "bind", "enp11s0f0#2", "vfio-pci").code == 0
    group = open_sim("igb-82576").link_name("sys/bus/pci/devices/0000:0b:10.4/iommu_group")
    assert group
    hold_vfio(group, pid=5150, comm="qemu-system-x86",
               argv=("/usr/bin/qemu-system-x86_64", "-name", "guest=web1,debug-threads=on", "-machine", "q35",
                     "-qmp", "unix:/run/web1.qmp,server=on,wait=off", "-S"))
    r = cli(*S, "vf", "disable", "enp11s0f0")
    assert r.code == 77 and f"QEMU guest web1 (pid 5150, QMP /run/web1.qmp) holds /dev/vfio/{group} open" in r.err
    r = cli(*S, "vf", "bind", "enp11s0f0#2", "host")
    assert r.code == 77 and "QEMU guest web1" in r.err


def test_in_use_asks_libvirt_when_it_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """$SRIOVCTL_LIBVIRT_URI (libvirt's test driver here; qemu:///system on a live host when its socket
    exists) replaces the file scan: vm1 of the test driver is running with 0b:10.0."""
    pytest.importorskip("libvirt", reason="libvirt-python not installed (the [libvirt] extra)")
    node = Path(__file__).parent.parent / "fixtures" / "libvirt" / "test-node.xml"
    monkeypatch.setenv("SRIOVCTL_LIBVIRT_URI", f"test://{node}")
    r = cli(*S, "vf", "disable", "enp11s0f0")
    assert r.code == 77 and "0000:0b:10.0: libvirt domain vm1 (running)" in r.err, r.err
    # vm3 is shut off: its definition names 0b:11.1, but no running guest has it, so PF 1 may be reset
    assert cli(*S, "vf", "disable", "enp11s0f1").code == 0
    monkeypatch.setenv("SRIOVCTL_LIBVIRT_URI", "qemu+unix:///system?socket=/nonexistent")  # nobody answers: files
    assert cli(*S, "vf", "disable", "enp11s0f0").code == 0


def test_libvirt_domain_and_moved_netdev_count_as_in_use() -> None:
    root = Path(open_sim("igb-82576").root)
    (root / "run/libvirt/qemu").mkdir(parents=True)
    (root / "run/libvirt/qemu/vm1.xml").write_text(
        "<domstatus><domain type='kvm'><name>vm1</name><devices><interface type='hostdev' managed='yes'>"
        "<source><address type='pci' domain='0x0000' bus='0x0b' slot='0x10' function='0x1'/></source>"
        "</interface></devices></domain></domstatus>")
    # an interface from a hostdev network: the status XML records the VF libvirt picked as <actual>
    (root / "run/libvirt/qemu/vm-pool.xml").write_text(
        "<domstatus><domain type='kvm'><name>vm-pool</name><devices><interface type='network'>"
        "<source network='sriov-pool'/><actual type='hostdev' managed='yes'><source>"
        "<address type='pci' domain='0x0000' bus='0x0b' slot='0x10' function='0x3'/></source></actual>"
        "</interface></devices></domain></domstatus>")
    r = cli(*S, "vf", "disable", "enp11s0f1")
    assert r.code == 77 and "0000:0b:10.1: libvirt domain vm1" in r.err
    assert "0000:0b:10.3: libvirt domain vm-pool" in r.err
    # a VF's netdev moved into another namespace: bound to igbvf, no netdev here
    vf_net = root / "sys/devices/pci0000:00/0000:00:01.0/0000:0b:11.0/net"
    for nd in list(vf_net.iterdir()):
        (root / "sys/class/net" / nd.name).unlink()
        shutil.rmtree(nd)
    r = cli(*S, "vf", "disable", "enp11s0f0")
    assert r.code == 77 and "not in this network namespace" in r.err


def test_bind_vfio_and_back_and_interlocks() -> None:
    r = cli(*S, "vf", "bind", "enp11s0f0#1", "vfio-pci")
    assert r.code == 0 and "/dev/vfio/" in r.out
    r = cli(*S, "--json", "show", "enp11s0f0#1")
    assert r.json()["device"]["driver"] == "vfio-pci" and r.json()["device"]["driver_override"] == "vfio-pci"
    r = cli(*S, "vf", "bind", "enp11s0f0#1", "host")
    assert r.code == 0 and "bound to igbvf" in r.out
    dev = cli(*S, "--json", "show", "enp11s0f0#1").json()["device"]
    assert dev["driver"] == "igbvf" and dev["driver_override"] is None and len(dev["netdevs"]) == 1
    r = cli(*S, "vf", "bind", "00:1f.2", "vfio-pci")  # shares a group with host-driven ICH9 functions
    assert r.code == 77 and "not assignable" in r.err
    r = cli(*S, "vf", "unbind", "eno1")
    assert r.code == 77 and "carries the default route" in r.err
    assert open_sim("igb-82576").link_name("sys/bus/pci/devices/0000:00:19.0/driver") == "e1000e"
    r = cli(*S, "vf", "bind", "enp11s0f0#3", "no_such_driver")
    assert r.code == 66 and r.err.count("\n") == 1 and "no such module" in r.err and "[" not in r.err
    assert open_sim("igb-82576").link_name("sys/bus/pci/devices/0000:0b:10.6/driver") == "igbvf"  # restored


def test_host_binding_with_autoprobe_off_needs_a_driver_name() -> None:
    assert cli(*S, "vf", "enable", "enp11s0f0", "2", "--reset", "--no-autoprobe").code == 0
    r = cli(*S, "vf", "bind", "0b:10.0", "host")
    assert r.code == 69 and "sriov_drivers_autoprobe is 0" in r.err
    r = cli(*S, "vf", "bind", "0b:10.0", "igbvf")
    assert r.code == 0 and "bound to igbvf" in r.out


def test_set_attributes_and_partial_on_igb() -> None:
    r = cli(*S, "vf", "set", "enp11s0f0#0", "--max-rate", "100")
    assert r.code == 3 and "rate min 0 max 100 Mbit/s: refused by igb: EINVAL" in r.err  # igb: no link, no rate
    (Path(open_sim("igb-82576").root) / "sys/class/net/enp11s0f0/operstate").write_text("up\n")  # `ip link set up`
    r = cli(*S, "vf", "set", "enp11s0f0#0", "--mac", "52:54:00:6d:90:02", "--vlan", "42", "--qos", "3",
            "--spoofchk", "off", "--trust", "on", "--max-rate", "100")
    assert r.code == 0, r.err
    nl = cli(*S, "--json", "show", "enp11s0f0#0").json()["device"]["netlink"]
    assert (nl["mac"], nl["vlan"], nl["qos"], nl["spoofchk"], nl["trust"], nl["max_tx_rate"]) == \
        ("52:54:00:6d:90:02", 42, 3, False, True, 100)
    r = cli(*S, "vf", "set", "enp11s0f0#1-3", "--vlan", "7", "--state", "disable", "--trust", "on")
    assert r.code == 3
    assert "3 refused" in r.err and "link state disable: refused by igb: EOPNOTSUPP" in r.err
    for i in (1, 2, 3):
        nl = cli(*S, "--json", "show", f"enp11s0f0#{i}").json()["device"]["netlink"]
        assert nl["vlan"] == 7 and nl["trust"] is True and nl["link_state"] == "auto"
    r = cli(*S, "vf", "set", "enp11s0f0#4", "--vlan", "5", "--proto", "802.1ad")
    assert r.code == 3 and "EPROTONOSUPPORT" in r.err
    r = cli(*S, "vf", "set", "enp11s0f0#4", "--min-rate", "10", "--max-rate", "100")
    assert r.code == 3 and "EINVAL" in r.err


def test_256_vfs_in_two_round_trips() -> None:
    from sriovctl.inventory import read_inventory
    from sriovctl.ops import vfattrs as vf

    host = open_sim("e810-2x256")
    inv = read_inventory(host, netlink=False)
    pf = inv.pfs[0]
    vfs = inv.vfs_of(pf)
    assert len(vfs) == 256
    plan = [(d, vf.VfSettings(mac=f"52:54:00:aa:{d.vf_index >> 8:02x}:{d.vf_index & 0xFF:02x}", vlan=100 + d.vf_index % 7,
                              trust=True, link_state="enable")) for d in vfs]
    res = vf.set_vfs(host, inv, plan)
    assert res.extra["netlink_requests"] == 2 and len(res.applied) == 256 * 4 and not res.refused
    r = cli("--sim", "e810-2x256", "vf", "set", "ens2f1#0-255", "--spoofchk", "off", "--max-rate", "1000")
    assert r.code == 0 and r.out.count("spoof check off") == 256


def test_legacy_module_parameter() -> None:
    r = cli(*S, "vf", "enable", "enp11s0f0", "4", "--module-param", "max_vfs")
    assert r.code == 0, r.err
    assert "deprecated" in r.out and "affects every port it drives: 0000:0b:00.0 (enp11s0f0), 0000:0b:00.1" in r.out
    h = open_sim("igb-82576")
    assert h.read_text("etc/modprobe.d/sriovctl.conf").splitlines()[-1] == "options igb max_vfs=4"  # type: ignore[union-attr]
    assert numvfs() == "4" and numvfs("sys/bus/pci/devices/0000:0b:00.1") == "4"
    r = cli(*S, "vf", "enable", "enp11s0f0", "4", "--module-param", "max vfs")
    assert r.code == 64


BAD_SET = st.one_of(
    st.fixed_dictionaries({"--vlan": st.integers(4096, 10**6)}),
    st.fixed_dictionaries({"--vlan": st.integers(0, 4095), "--qos": st.integers(8, 1000)}),
    st.fixed_dictionaries({"--qos": st.integers(0, 7)}),
    st.fixed_dictionaries({"--proto": st.sampled_from(["802.1Q", "802.1ad"])}),
    st.fixed_dictionaries({"--mac": st.from_regex(r"\A[0-9a-f][13579bdf](:[0-9a-f]{2}){5}\Z")}),  # multicast
    st.fixed_dictionaries({"--mac": st.just("00:00:00:00:00:00")}),
    st.fixed_dictionaries({"--mac": st.text(min_size=1, max_size=20).filter(lambda t: not t.startswith("-"))
                           .filter(lambda t: t.count(":") != 5)}),
    st.tuples(st.integers(1, 10**6), st.integers(0, 10**6)).filter(lambda p: p[0] > p[1] > 0)
    .map(lambda p: {"--min-rate": p[0], "--max-rate": p[1]}),
    st.fixed_dictionaries({"--max-rate": st.integers(-10**6, -1)}),
    st.fixed_dictionaries({"--state": st.text(min_size=1, max_size=8).filter(lambda t: t not in ("auto", "enable", "disable")
                                                                          and not t.startswith("-"))}),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=BAD_SET, target=st.sampled_from(["enp11s0f0#0", "enp11s0f0#1-3", "enp11s0f0#7", "enp11s0f0#0-9"]))
def test_invalid_vf_set_arguments_change_nothing(bad: dict[str, object], target: str) -> None:
    open_sim("igb-82576")
    before = tree_hash(str(sim_dir()))
    args = [x for k, v in bad.items() for x in (k, str(v))]
    r = cli(*S, "vf", "set", target, *args)
    assert r.code in (64, 66), (r.code, r.err)
    assert r.err.startswith("sriovctl: ") and r.err.count("\n") == 1 and "Traceback" not in r.err
    assert r.ctx is None or r.ctx.host is None or r.ctx.host.writes == []
    assert tree_hash(str(sim_dir())) == before
