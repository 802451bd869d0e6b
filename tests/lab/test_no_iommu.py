"""Lab, topology `no-iommu`: the same 82576, no IOMMU device, intel_iommu=off."""

from __future__ import annotations

import os

import pytest

from labguest import set_numvfs

pytestmark = pytest.mark.lab("no-iommu")


def test_vfs_exist_but_no_groups_and_nothing_is_assignable(host, pfs) -> None:  # type: ignore[no-untyped-def]
    from sriovctl.inventory import read_inventory
    from sriovctl.pci.address import PciAddress

    (pf_name,) = pfs
    set_numvfs(host, pf_name, 7)
    assert os.listdir("/sys/kernel/iommu_groups") == []
    assert not os.path.exists("/sys/class/iommu") or os.listdir("/sys/class/iommu") == []
    inv = read_inventory(host)
    assert not inv.iommu_groups_present
    pf = inv.devices[PciAddress.parse(pf_name)]
    vfs = inv.vfs_of(pf)
    assert len(vfs) == 7
    for v in vfs:
        assert v.iommu_group is None
        assert v.assignability is not None and not v.assignability.assignable
        assert "no IOMMU group" in v.assignability.reason


def test_snapshot_capture(host, pfs) -> None:  # type: ignore[no-untyped-def]
    import io

    from labguest import LAB_OUT
    from sriovctl.cli.main import run

    (pf,) = pfs
    set_numvfs(host, pf, 7)
    err = io.StringIO()
    code, _ = run(["snapshot", str(LAB_OUT / "no-iommu.tar.gz")], out=io.StringIO(), err=err)
    assert code == 0, err.getvalue()
