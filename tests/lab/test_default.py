"""Lab, topology `default`: q35 + VT-d + one emulated 82576."""

from __future__ import annotations

import io
import os

import pytest

from labguest import LAB_OUT, set_numvfs, sh

pytestmark = pytest.mark.lab("default")


def test_real_82576_inventory(host, pfs) -> None:  # type: ignore[no-untyped-def]
    from sriovctl.inventory import read_inventory
    from sriovctl.pci.address import PciAddress

    (pf_name,) = pfs
    set_numvfs(host, pf_name, 7)
    inv = read_inventory(host)
    pf = inv.devices[PciAddress.parse(pf_name)]
    assert pf.driver == "igb" and pf.sriov is not None
    assert (pf.sriov.totalvfs, pf.sriov.numvfs, pf.sriov.offset, pf.sriov.stride, pf.sriov.vf_device) == \
        (7, 7, 128, 2, 0x10CA)
    assert pf.sriov.capability is not None and pf.sriov.capability.total_vfs == 8  # config space: 8
    # VF addresses from offset/stride, worked out here by hand: routing ID of the PF + 128 + 2*i
    p = PciAddress.parse(pf_name)
    rid = (p.bus << 8) | (p.slot << 3) | p.function
    expected = [f"{p.domain:04x}:{(r >> 8):02x}:{(r >> 3) & 0x1F:02x}.{r & 7}" for r in
                (rid + 128 + 2 * i for i in range(7))]
    assert [str(v) for v in pf.vfs] == expected
    groups = set()
    for v in inv.vfs_of(pf):
        assert (v.vendor_id, v.device_id) == (0x8086, 0x10CA)
        assert v.driver == "igbvf" and len(v.netdevs) == 1
        assert v.iommu_group is not None and inv.groups[v.iommu_group].members == (v.address,)
        assert v.assignability is not None and v.assignability.assignable
        groups.add(v.iommu_group)
    assert len(groups) == 7
    ich9 = [d for d in inv.devices.values() if d.address.slot == 0x1F and d.address.bus == 0]
    assert len(ich9) == 3 and len({d.iommu_group for d in ich9}) == 1
    assert inv.groups[ich9[0].iommu_group].members == tuple(d.address for d in ich9)  # type: ignore[index]


def test_decode_of_the_pf_config_equals_the_guests_lspci(host, pfs) -> None:  # type: ignore[no-untyped-def]
    from lspci_compare import compare, parse_lspci_vvv
    from sriovctl.pci.config import decode

    (pf,) = pfs
    set_numvfs(host, pf, 7)
    data = host.read_bytes(f"sys/bus/pci/devices/{pf}/config", 4096)
    assert data is not None and len(data) == 4096
    fields = parse_lspci_vvv(sh("lspci", "-vvv", "-s", pf))
    (only,) = fields.values()
    n = compare(only, decode(data))
    assert n >= 25, n


def test_cli_in_process_and_snapshot_capture(host, pfs) -> None:  # type: ignore[no-untyped-def]
    import json

    from helpers import validate
    from sriovctl.cli.main import run

    (pf,) = pfs
    set_numvfs(host, pf, 7)
    out = io.StringIO()
    code, _ = run(["--json", "status"], out=out)
    assert code == 0
    doc = json.loads(out.getvalue())
    validate(doc, "status")
    assert [p["address"] for p in doc["pfs"]] == [pf]
    assert doc["pfs"][0]["assignable_vfs"] == 7
    out = io.StringIO()
    code, _ = run(["list", "--vfs"], out=out)
    assert code == 0 and out.getvalue().count("82576 Virtual Function") == 7
    snap = LAB_OUT / "default.tar.gz"
    err = io.StringIO()
    code, _ = run(["snapshot", str(snap)], out=io.StringIO(), err=err)
    assert code == 0 and snap.exists(), err.getvalue()
    out2 = io.StringIO()
    code, _ = run(["--root", str(snap), "--json", "status"], out=out2)
    a, b = doc, json.loads(out2.getvalue())
    a.pop("host"), b.pop("host")
    assert a == b
    (LAB_OUT / "lspci-n.txt").write_text(sh("lspci", "-n"))
    os.sync()
