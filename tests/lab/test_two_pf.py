"""Lab, topology `two-pf`: two emulated 82576 devices."""

from __future__ import annotations

import pytest

from labguest import set_numvfs

pytestmark = pytest.mark.lab("two-pf")


def test_both_pfs_get_their_own_vfs(host, pfs) -> None:  # type: ignore[no-untyped-def]
    from sriovctl.inventory import read_inventory

    assert len(pfs) == 2
    set_numvfs(host, pfs[0], 7)
    set_numvfs(host, pfs[1], 3)
    inv = read_inventory(host)
    assert sorted(str(p.address) for p in inv.pfs) == sorted(pfs)
    counts = {str(p.address): len(p.vfs) for p in inv.pfs}
    assert counts == {pfs[0]: 7, pfs[1]: 3}
    all_vfs = [v for p in inv.pfs for v in p.vfs]
    assert len(set(all_vfs)) == 10  # no VF routing ID is shared between the PFs
    assert all(inv.devices[v].assignability.assignable for v in all_vfs)  # type: ignore[union-attr]
    assert len({inv.devices[v].iommu_group for v in all_vfs}) == 10
