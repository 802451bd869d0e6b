"""Scoped reads (issue 19): under a PF's lock, after another sriovctl wrote, only that PF is read again —
and what it gives must be exactly what reading the whole host gives (the devices, their verdicts, the IOMMU
groups), whatever the other writer did to that PF: its VF count, its VFs' drivers, a member of its group."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from sriovctl.host.base import Host
from sriovctl.host.sim.catalog import open_sim, reset_sim
from sriovctl.inventory import read_inventory, reread_pfs
from sriovctl.model import Inventory
from sriovctl.ops.binding import BindOptions, bind_named
from sriovctl.ops.session import Session
from sriovctl.ops.vfcount import EnableOptions, disable, enable
from sriovctl.pci.address import PciAddress


@pytest.fixture(autouse=True)
def _fresh() -> None:
    for name in ("igb-82576", "no-acs-switch", "e810-2x256"):
        reset_sim(name)


def _same(scoped: Inventory | None, whole: Inventory) -> None:
    assert scoped is not None
    assert list(scoped.devices) == list(whole.devices)
    diff = [a for a in whole.devices if scoped.devices[a] != whole.devices[a]]
    assert not diff, (diff[:3], [scoped.devices[a] for a in diff[:1]], [whole.devices[a] for a in diff[:1]])
    assert scoped.groups == whole.groups


def _writes(sim: str, pf: str, steps: list[tuple[str, ...]]) -> None:
    """Another sriovctl's writes (its own session), then ours: the scoped re-read equals the whole one."""
    ours = Session(open_sim(sim))
    other = Session(open_sim(sim))
    for step in steps:
        if step[0] == "enable":
            enable(other, pf, int(step[1]), EnableOptions(reset=True))
        elif step[0] == "disable":
            disable(other, pf, EnableOptions())
        else:
            bind_named(other, step[1], step[2] if len(step) > 2 else None, BindOptions(force=True))
        other = Session(other.host)
    host = open_sim(sim)
    _same(reread_pfs(host, ours.inv, [PciAddress.parse(ours.find(pf).address.__str__())]), read_inventory(host))


@pytest.mark.parametrize("steps", [
    [("disable",)],
    [("disable",), ("enable", "3")],  # new VFs: read whole
    [("enable", "2")],  # fewer VFs at the same addresses
    [("bind", "0000:0b:10.0", "vfio-pci")],
    [("bind", "0000:0b:10.0", "vfio-pci"), ("unbind", "0000:0b:10.2")],
    [("unbind", "0000:0b:00.0")],  # the PF itself
])
def test_a_scoped_reread_equals_a_whole_read_on_igb(steps: list[tuple[str, ...]]) -> None:
    _writes("igb-82576", "0000:0b:00.0", steps)


@pytest.mark.parametrize("steps", [
    [("bind", "0000:03:10.0", "vfio-pci")],
    [("unbind", "0000:03:00.0")],  # the PF leaves the shared group's drivers: the VFs' verdicts change
    [("disable",), ("enable", "4")],
])
def test_a_shared_iommu_group_is_judged_as_it_is_now(steps: list[tuple[str, ...]]) -> None:
    _writes("no-acs-switch", "0000:03:00.0", steps)


def test_another_member_of_the_group_rebound_meanwhile_changes_the_verdict(tmp_path: Path) -> None:
    """Both ports of the 82576 in one IOMMU group (no ACS between functions): PF 0b:00.1 is a member of the
    group of PF 0b:00.0. When 0b:00.1 leaves igb meanwhile, the scoped re-read of 0b:00.0 — which does not
    read 0b:00.1 whole — still judges 0b:00.0 by the driver 0b:00.1 has now, as the whole read does."""
    root = tmp_path / "host"
    shutil.copytree(open_sim("igb-82576").root, root, symlinks=True)
    pf1 = (root / "sys/bus/pci/devices/0000:0b:00.1").resolve()
    (pf1 / "iommu_group").unlink()
    pf0_group = os.readlink(root / "sys/bus/pci/devices/0000:0b:00.0/iommu_group")
    (pf1 / "iommu_group").symlink_to(os.path.relpath(
        os.path.normpath((root / "sys/bus/pci/devices/0000:0b:00.0").resolve() / pf0_group), pf1))
    host = Host(root=str(root), read_only=True, label="t")
    before = read_inventory(host)
    pf0 = PciAddress.parse("0000:0b:00.0")
    got = before.devices[pf0].assignability
    assert got is not None and not got.assignable and "0000:0b:00.1 driven by igb" in got.reason
    (pf1 / "driver").unlink()  # unbound meanwhile: the link goes, and dev_uevent() no longer says DRIVER=
    (pf1 / "uevent").write_text("".join(x for x in (pf1 / "uevent").read_text().splitlines(True)
                                        if not x.startswith("DRIVER=")))
    scoped, whole = reread_pfs(host, before, [pf0]), read_inventory(host)
    _same(scoped, whole)
    assert scoped is not None
    now = scoped.devices[pf0].assignability
    assert now is not None and "0000:0b:00.1" not in now.reason, now
    assert scoped.devices[PciAddress.parse("0000:0b:00.1")].driver is None


def test_not_a_pf_any_more_or_gone_falls_back_to_a_whole_read() -> None:
    host = open_sim("igb-82576")
    inv = read_inventory(host)
    assert reread_pfs(host, inv, [PciAddress.parse("0000:0b:10.0")]) is None  # a VF is no PF
    assert reread_pfs(host, inv, [PciAddress.parse("0000:ee:00.0")]) is None  # not on this host


def test_a_locked_section_reads_only_its_pf_after_another_writer() -> None:
    """On the 2 x 256 e810 host: `vf set` on ens2f0 after another process disabled and re-enabled ens2f1's
    neighbour ... reads ens2f0's directory tree only: no file of the other PF's 256 VFs is opened."""
    host = open_sim("e810-2x256")
    s = Session(host)
    enable(Session(open_sim("e810-2x256")), "ens2f0", 256, EnableOptions(reset=True))  # another writer: the stamp moves
    opened: list[str] = []

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "open" and isinstance(args[0], str) and recording:
            opened.append(args[0])

    recording = False
    sys.addaudithook(hook)
    recording = True
    try:
        with s.locked("0000:17:00.0", 10.0) as inv:
            pass
    finally:
        recording = False
    assert s.scoped_rereads == 1 and inv.devices[PciAddress.parse("0000:17:00.0")].sriov is not None
    other_pf_vfs = {str(a) for a in inv.devices[PciAddress.parse("0000:17:00.1")].vfs}
    assert other_pf_vfs and not [p for p in opened if p in other_pf_vfs], [p for p in opened if p in other_pf_vfs][:3]
    _same(inv, read_inventory(open_sim("e810-2x256")))
