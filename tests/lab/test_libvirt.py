"""Lab, topology `libvirt`: sriovctl's node devices against a real libvirtd's (Debian 12, libvirt 9.0)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from labguest import set_numvfs, sh, start_libvirtd

pytestmark = pytest.mark.lab("libvirt")


@pytest.fixture(scope="module")
def libvirt_up(host, pfs):  # type: ignore[no-untyped-def]
    if host is None:
        return None
    (pf,) = pfs
    set_numvfs(host, pf, 7)  # before libvirtd starts: without udevd it sees no hotplug events
    start_libvirtd()
    return pf


def facts(xml: str) -> dict[str, object]:
    root = ET.fromstring(xml)
    cap = root.find("./capability[@type='pci']")
    assert cap is not None

    def addrs(node: ET.Element | None) -> list[str]:
        if node is None:
            return []
        return [f"{int(a.get('domain', '0'), 16):04x}:{int(a.get('bus', '0'), 16):02x}:"
                f"{int(a.get('slot', '0'), 16):02x}.{int(a.get('function', '0'), 16)}" for a in node.findall("address")]
    vfs = cap.find("./capability[@type='virt_functions']")
    grp = cap.find("iommuGroup")
    return {
        "name": root.findtext("name"), "path": root.findtext("path"), "parent": root.findtext("parent"),
        "driver": root.findtext("driver/name"), "class": cap.findtext("class"),
        "address": tuple(int(cap.findtext(k) or "-1") for k in ("domain", "bus", "slot", "function")),
        "product_id": cap.find("product").get("id"), "vendor_id": cap.find("vendor").get("id"),  # type: ignore[union-attr]
        "product": cap.findtext("product"), "vendor": cap.findtext("vendor"),
        "vf_max": None if vfs is None else vfs.get("maxCount"), "vfs": addrs(vfs),
        "physfn": addrs(cap.find("./capability[@type='phys_function']")),
        "group": None if grp is None else grp.get("number"), "group_members": addrs(grp),
    }


def test_nodedev_list_matches_virsh(libvirt_up, host) -> None:  # type: ignore[no-untyped-def]
    import io

    from sriovctl.cli.main import run

    virsh = sorted(sh("virsh", "-c", "qemu:///system", "nodedev-list", "--cap", "pci").split())
    out = io.StringIO()
    assert run(["nodedev", "list"], out=out)[0] == 0
    assert sorted(out.getvalue().split()) == virsh
    assert len(virsh) > 10


@pytest.mark.parametrize("which", ["pf", "vf0", "vf6"])
def test_nodedev_dumpxml_matches_virsh(libvirt_up, host, which: str) -> None:  # type: ignore[no-untyped-def]
    import io

    from sriovctl.cli.main import run
    from sriovctl.pci.address import PciAddress

    pf = libvirt_up
    name = PciAddress.parse(pf).nodedev_name if which == "pf" else f"{pf}#{which[2:]}"
    out = io.StringIO()
    assert run(["nodedev", "dumpxml", name], out=out)[0] == 0
    ours = facts(out.getvalue())
    theirs = facts(sh("virsh", "-c", "qemu:///system", "nodedev-dumpxml", str(ours["name"])))
    assert ours == theirs
    if which == "pf":
        assert ours["vf_max"] == "7" and len(ours["vfs"]) == 7  # type: ignore[arg-type]
    else:
        assert ours["physfn"] == [pf]
