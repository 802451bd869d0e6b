"""Inventory of each built-in simulated host against expectations written by hand."""

from __future__ import annotations

from sriovctl.host.sim.catalog import open_sim
from sriovctl.inventory import read_inventory
from sriovctl.pci.address import PciAddress

A = PciAddress.parse

# Written by hand from the reference document (lspci listing of the 82576 box) - not computed.
IGB_PF0_VFS = ["0000:0b:10.0", "0000:0b:10.2", "0000:0b:10.4", "0000:0b:10.6", "0000:0b:11.0", "0000:0b:11.2",
               "0000:0b:11.4"]
IGB_PF1_VFS = ["0000:0b:10.1", "0000:0b:10.3", "0000:0b:10.5", "0000:0b:10.7", "0000:0b:11.1", "0000:0b:11.3",
               "0000:0b:11.5"]
IGB_ALL_VFS = ["0000:0b:10.0", "0000:0b:10.1", "0000:0b:10.2", "0000:0b:10.3", "0000:0b:10.4", "0000:0b:10.5",
               "0000:0b:10.6", "0000:0b:10.7", "0000:0b:11.0", "0000:0b:11.1", "0000:0b:11.2", "0000:0b:11.3",
               "0000:0b:11.4", "0000:0b:11.5"]


def test_igb_82576() -> None:
    inv = read_inventory(open_sim("igb-82576"))
    assert [str(p.address) for p in inv.pfs] == ["0000:0b:00.0", "0000:0b:00.1"]
    assert sorted(str(v.address) for v in inv.vfs) == IGB_ALL_VFS
    pf0, pf1 = inv.devices[A("0b:00.0")], inv.devices[A("0b:00.1")]
    assert [str(v) for v in pf0.vfs] == IGB_PF0_VFS
    assert [str(v) for v in pf1.vfs] == IGB_PF1_VFS
    for pf, name in ((pf0, "enp11s0f0"), (pf1, "enp11s0f1")):
        assert (pf.vendor_id, pf.device_id, pf.class_code, pf.revision) == (0x8086, 0x10C9, 0x020000, 1)
        assert pf.driver == "igb" and pf.module == "igb"
        assert [n.name for n in pf.netdevs] == [name]
        assert pf.numa_node == 0
        s = pf.sriov
        assert s is not None
        assert (s.totalvfs, s.numvfs, s.offset, s.stride, s.vf_device, s.drivers_autoprobe) == (7, 7, 128, 2, 0x10CA, True)
        assert s.state.value == "enabled"
        cap = s.capability
        assert cap is not None
        assert (cap.total_vfs, cap.initial_vfs, cap.num_vfs, cap.vf_offset, cap.vf_stride, cap.vf_device_id) == \
            (8, 8, 7, 128, 2, 0x10CA)  # config space says 8; the igb driver caps sriov_totalvfs at 7
        assert cap.vf_enable and cap.vf_mse
        assert pf.device_name == "82576 Gigabit Network Connection"
    groups = set()
    for v in inv.vfs:
        assert (v.vendor_id, v.device_id) == (0x8086, 0x10CA)
        assert v.driver == "igbvf"
        assert v.device_name == "82576 Virtual Function"
        assert len(v.netdevs) == 1
        assert v.iommu_group is not None and inv.groups[v.iommu_group].members == (v.address,)
        groups.add(v.iommu_group)
        assert v.assignability is not None and v.assignability.assignable, v.assignability
    assert len(groups) == 14  # one IOMMU group per VF
    assert inv.devices[A("0b:10.2")].vf_index == 1 and inv.devices[A("0b:10.2")].physfn == A("0b:00.0")
    assert inv.devices[A("0b:11.5")].vf_index == 6 and inv.devices[A("0b:11.5")].physfn == A("0b:00.1")
    # the ICH9 functions share one group (a non-isolated multi-function device without ACS)
    ich9 = {inv.devices[A(x)].iommu_group for x in ("00:1f.0", "00:1f.2", "00:1f.3")}
    assert len(ich9) == 1
    assert not inv.devices[A("00:1f.2")].assignability.assignable  # type: ignore[union-attr]
    assert inv.iommu_groups_present


def test_no_iommu() -> None:
    inv = read_inventory(open_sim("no-iommu"))
    assert len(inv.pfs) == 2 and len(inv.vfs) == 14
    assert not inv.iommu_groups_present
    for v in inv.vfs:
        assert v.iommu_group is None
        assert v.assignability is not None and not v.assignability.assignable
        assert "no IOMMU group" in v.assignability.reason


def test_no_acs_switch() -> None:
    inv = read_inventory(open_sim("no-acs-switch"))
    (pf,) = inv.pfs
    assert str(pf.address) == "0000:03:00.0"
    dn = inv.devices[A("02:00.0")]
    assert dn.is_bridge and dn.config is not None and dn.config.acs is None
    assert pf.parent == A("02:00.0")
    # PF, its 7 VFs and the downstream port: one group
    grp = inv.groups[pf.iommu_group]  # type: ignore[index]
    assert set(grp.members) == {A("02:00.0"), A("03:00.0"), *(v for v in pf.vfs)}
    assert len(pf.vfs) == 7
    for v in inv.vfs_of(pf):
        assert v.assignability is not None and not v.assignability.assignable
        assert "0000:03:00.0 (its PF) driven by igb" in v.assignability.reason
    root_port = inv.devices[A("00:01.0")]
    assert root_port.config is not None and root_port.config.acs is not None
    assert root_port.iommu_group != pf.iommu_group


def test_e810_2x256() -> None:
    inv = read_inventory(open_sim("e810-2x256"))
    assert [str(p.address) for p in inv.pfs] == ["0000:17:00.0", "0000:17:00.1"]
    assert len(inv.vfs) == 512
    pf0, pf1 = inv.pfs
    assert pf0.sriov and pf0.sriov.totalvfs == 256 and pf0.sriov.numvfs == 256
    # port 0: offset 8, stride 1 -> first VF 17:01.0, last VF (255) at routing ID 0x1707 + 256 = 0x1807 -> 18:00.7
    assert str(pf0.vfs[0]) == "0000:17:01.0" and str(pf0.vfs[255]) == "0000:18:00.7"
    # port 1: offset 263 -> first VF at 0x1701 + 263 = 0x1808 -> 18:01.0; last 0x1907 -> 19:00.7
    assert str(pf1.vfs[0]) == "0000:18:01.0" and str(pf1.vfs[255]) == "0000:19:00.7"
    assert {v.driver for v in inv.vfs} == {"iavf"}
    assert {(v.vendor_id, v.device_id) for v in inv.vfs} == {(0x8086, 0x1889)}
    assert all(v.assignability and v.assignability.assignable for v in inv.vfs)
    assert len({v.iommu_group for v in inv.vfs}) == 512


def test_pf_with_capability_but_no_driver_support(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sriovctl.host.sim.catalog import create_sim

    spec = tmp_path / "s.yaml"
    spec.write_text("""
name: nodrv
iommu: {units: [dmar0], groups: true}
firmware: {acpi_tables: [DMAR]}
devices:
  - {address: "0000:00:00.0", kind: host-bridge, device: "29c0", class: "060000"}
  - {address: "0000:00:03.0", kind: nic, model: intel-82576, sriov_driver_support: false}
""")
    create_sim("nodrv", spec)
    inv = read_inventory(open_sim("nodrv"))
    (pf,) = inv.pfs
    assert pf.sriov is not None and pf.sriov.state.value == "no-driver-support"
    assert pf.sriov.totalvfs is None and pf.sriov.capability is not None and pf.sriov.capability.total_vfs == 8


def test_header_only_config_says_capabilities_need_root(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """As a non-root user sees sysfs: config files give only the 64-byte header."""
    import shutil

    from helpers import cli
    from sriovctl.snapshot import open_root

    src = open_sim("igb-82576").root
    dst = tmp_path / "root"
    shutil.copytree(src, dst, symlinks=True)
    for cfg in dst.glob("sys/devices/**/config"):
        cfg.write_bytes(cfg.read_bytes()[:64])
    inv = read_inventory(open_root(str(dst)))
    assert not inv.config_readable
    assert any("root" in n for n in inv.notes)
    pf = inv.devices[A("0b:00.0")]
    assert pf.sriov is not None and pf.sriov.capability is None and pf.sriov.numvfs == 7
    r = cli("--root", str(dst), "show", "0b:00.0")
    assert r.code == 0 and "only the 64-byte header" in r.out


def test_uevent_and_the_attribute_files_give_the_same_inventory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A function's identity and driver come from its uevent (one read for five files and a link); a tree without
    uevent (a snapshot taken before it was captured) and one whose uevent is damaged read from the files, with the
    same result. The simulator's uevent follows binds and unbinds as dev_uevent() does."""
    import os
    import shutil

    from sriovctl.cli.jsonout import status_json
    from sriovctl.host.sim.catalog import reset_sim
    from sriovctl.ops.session import open_host

    root = reset_sim("igb-82576")
    vf = "sys/bus/pci/devices/0000:0b:10.0"
    assert (root / vf / "uevent").read_text().startswith("DRIVER=igbvf\nPCI_CLASS=20000\nPCI_ID=8086:10CA\n")
    shutil.copytree(root, tmp_path / "as-is", symlinks=True)
    want = status_json(read_inventory(open_host(None, str(tmp_path / "as-is"))))  # a tree: no netlink, as below
    assert want["vfs"][0]["driver"] == "igbvf" and want["vfs"][0]["subsystem_id"] is not None
    for variant in ("none", "damaged", "hostile driver"):
        tree = tmp_path / variant.replace(" ", "-")
        shutil.copytree(root, tree, symlinks=True)
        for name in os.listdir(tree / "sys/bus/pci/devices"):
            uevent = tree / "sys/bus/pci/devices" / name / "uevent"
            if variant == "none":
                uevent.unlink()
            elif variant == "damaged":
                uevent.write_text(uevent.read_text().replace("PCI_ID=", "PCI_ID=zz"))
        if variant == "hostile driver":
            (tree / vf / "uevent").write_text((tree / vf / "uevent").read_text().replace("igbvf", "../../etc"))
        got = status_json(read_inventory(open_host(None, str(tree))))
        got["host"] = want["host"]  # the tree's path
        if variant == "hostile driver":  # a DRIVER= that is not a name names no driver; the rest stands
            (vf_doc,) = [v for v in got["vfs"] if v["address"] == "0000:0b:10.0"]
            assert vf_doc["driver"] is None and vf_doc["vendor_id"] == "8086"
            continue
        assert got == want, variant
    sim = open_sim("igb-82576")
    from sriovctl.host.sim.tree import SimTree

    t = SimTree(str(root))
    t.unbind(A("0000:0b:10.0"), "igbvf")
    assert not (root / vf / "uevent").read_text().startswith("DRIVER=")
    t.bind(A("0000:0b:10.0"), "vfio-pci")
    assert (root / vf / "uevent").read_text().startswith("DRIVER=vfio-pci\nPCI_CLASS=")
    t.save()
    assert read_inventory(sim).devices[A("0000:0b:10.0")].driver == "vfio-pci"


def test_a_netdev_renamed_while_it_is_read_is_found_under_its_new_name(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """udev renames a new netdev just after its driver bound (eth0 → enp0s11v1): an entry listed can be gone
    when opened (seen in CI: the lab's `vf bind … host` then read no netdev for the VF)."""
    import os

    from sriovctl.host import base
    from sriovctl.host.base import Host

    (tmp_path / "dev/net/eth0").mkdir(parents=True)
    (tmp_path / "dev/net/eth0/address").write_text("02:00:00:00:00:01\n")
    real_open = os.open
    renamed = []

    def racing_open(path, flags, mode=0o777, *, dir_fd=None):  # type: ignore[no-untyped-def]
        if path == "eth0" and not renamed:
            renamed.append(True)
            os.rename(tmp_path / "dev/net/eth0", tmp_path / "dev/net/enp0s11v1")
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(base.os, "open", racing_open)
    _, _, nested = Host(root=str(tmp_path)).read_dir_tree("dev", (), (), "net", ("address",))
    assert renamed and nested == {"enp0s11v1": {"address": b"02:00:00:00:00:01\n"}}
