"""Lab, topology `switch`: one igb behind a TI XIO3130 switch (ports without ACS), one on an ACS-capable
pcie-root-port. Addresses are discovered, never hard-coded."""

from __future__ import annotations

import pytest

from labguest import LAB_OUT, set_numvfs

pytestmark = pytest.mark.lab("switch")


def test_groups_follow_acs(host, pfs) -> None:  # type: ignore[no-untyped-def]
    from sriovctl.inventory import read_inventory
    from sriovctl.pci.config import PortType

    assert len(pfs) == 2
    for pf in pfs:
        set_numvfs(host, pf, 3)
    inv = read_inventory(host)
    behind_switch = [p for p in inv.pfs if p.parent and inv.devices[p.parent].config
                     and inv.devices[p.parent].config.pcie.port_type == PortType.DOWNSTREAM_PORT]  # type: ignore[union-attr]
    on_root_port = [p for p in inv.pfs if p not in behind_switch]
    assert len(behind_switch) == 1 and len(on_root_port) == 1
    sw_pf, rp_pf = behind_switch[0], on_root_port[0]
    port = inv.devices[sw_pf.parent]  # type: ignore[index]
    assert port.config is not None and port.config.acs is None  # XIO3130 ports have no ACS capability
    rp = inv.devices[rp_pf.parent]  # type: ignore[index]
    assert rp.config is not None and rp.config.acs is not None
    assert rp.config.pcie is not None and rp.config.pcie.port_type == PortType.ROOT_PORT
    acs = rp.config.acs.control
    assert acs.source_validation and acs.p2p_request_redirect and acs.p2p_completion_redirect and acs.upstream_forwarding
    # behind the switch: port, PF and all VFs in one group; none assignable while igb drives the PF
    grp = inv.groups[sw_pf.iommu_group]  # type: ignore[index]
    assert set(grp.members) >= {port.address, sw_pf.address, *sw_pf.vfs}
    for v in inv.vfs_of(sw_pf):
        assert v.iommu_group == sw_pf.iommu_group
        assert v.assignability is not None and not v.assignability.assignable
        assert f"{sw_pf.address} (its PF) driven by igb" in v.assignability.reason
    # on the ACS root port: one group per VF, all assignable
    groups = {v.iommu_group for v in inv.vfs_of(rp_pf)}
    assert len(groups) == 3 and rp_pf.iommu_group not in groups
    assert all(v.assignability and v.assignability.assignable for v in inv.vfs_of(rp_pf))


def test_snapshot_capture(host, pfs) -> None:  # type: ignore[no-untyped-def]
    import io

    from sriovctl.cli.main import run

    for pf in pfs:
        set_numvfs(host, pf, 3)
    err = io.StringIO()
    code, _ = run(["snapshot", str(LAB_OUT / "switch.tar.gz")], out=io.StringIO(), err=err)
    assert code == 0, err.getvalue()
