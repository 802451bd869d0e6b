"""libvirt XML: every variant against a golden file, against libvirt's RNG schemas (virt-xml-validate) inside
a full domain or network document, parse/build round trips, and libvirt's run-time rules refused first."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import cli
from sriovctl.pci.address import PciAddress
from sriovctl.virt.xml import Hostdev, HostdevInterface, HostdevNetwork, domain_wrapper
from virt_variants import variants

GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden" / "virt"
S = ("--sim", "igb-82576")

VARIANTS = variants("enp11s0f0", "enp11s0f1")


def _validate(xml: str, kind: str, tmp_path: Path) -> None:
    if shutil.which("virt-xml-validate") is None:
        pytest.skip("virt-xml-validate (libvirt-clients) not installed")
    f = tmp_path / f"{kind}.xml"
    f.write_text(domain_wrapper(xml) if kind == "domain" else xml)
    p = subprocess.run(["virt-xml-validate", str(f), kind], capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_golden_and_schema(name: str, tmp_path: Path) -> None:
    r = cli(*S, *VARIANTS[name])
    assert r.code == 0, r.err
    path = GOLDEN / f"{name}.xml"
    if os.environ.get("SRIOVCTL_REGEN_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(r.out)
    assert r.out == path.read_text()
    _validate(r.out, "network" if name.startswith("network") else "domain", tmp_path)


def test_generated_mac_is_stable_and_unique() -> None:
    a = cli(*S, "virt", "xml", "enp11s0f0#1").out
    assert a == cli(*S, "virt", "xml", "enp11s0f0#1").out
    macs = {HostdevInterface.parse(cli(*S, "virt", "xml", f"enp11s0f{p}#{i}").out).mac for p in (0, 1) for i in range(7)}
    assert len(macs) == 14 and all(m and m.startswith("52:54:00:") for m in macs)
    # a MAC already on a VF is never generated again
    taken = HostdevInterface.parse(a).mac
    assert cli(*S, "vf", "set", "enp11s0f1#6", "--mac", str(taken)).code == 0
    assert HostdevInterface.parse(cli(*S, "virt", "xml", "enp11s0f0#1").out).mac != taken


def test_parse_build_round_trip_keeps_unknown_xml() -> None:
    text = ("<interface type='hostdev' managed='yes'><mac address='52:54:00:00:00:01'/>"
            "<source><address type='pci' domain='0x0000' bus='0x0b' slot='0x10' function='0x2'/></source>"
            "<boot order='2'/><teaming type='transient' persistent='ua-backup0'/></interface>")
    dev = HostdevInterface.parse(text)
    assert dev.source == PciAddress.parse("0b:10.2") and dev.mac == "52:54:00:00:00:01"
    dev.set_vlan(100)
    dev.source = PciAddress.parse("0b:10.4")
    out = dev.to_xml()
    assert "<boot order='2'/>" in out and "<teaming type='transient' persistent='ua-backup0'/>" in out
    again = HostdevInterface.parse(out)
    assert again.vlan_tags == [100] and again.source == PciAddress.parse("0b:10.4")
    h = Hostdev.parse(Hostdev.new(PciAddress.parse("0b:11.0")).to_xml())
    assert h.source == PciAddress.parse("0b:11.0")
    n = HostdevNetwork.parse(HostdevNetwork.new("pool", vfs=[PciAddress.parse("0b:10.0")]).to_xml())
    assert n.name == "pool" and n.vfs == [PciAddress.parse("0b:10.0")] and n.pf is None


@pytest.mark.parametrize("xml,needle", [
    ("<vlan trunk='yes'><tag id='1'/><tag id='2'/></vlan>", "VLAN trunks are refused"),
    ("<vlan><tag id='1'/><tag id='2'/></vlan>", "VLAN trunks are refused"),
    ("<virtualport type='802.1Qbg'><parameters managerid='1' typeid='2' typeidversion='1'/></virtualport>", "802.1Qbg"),
    ("<virtualport type='802.1Qbh'><parameters profileid='x'/></virtualport>", "Cisco enic"),
])
def test_libvirt_runtime_rules_refused_before_libvirt(xml: str, needle: str) -> None:
    from sriovctl.errors import UsageError

    dev = HostdevInterface.parse("<interface type='hostdev' managed='yes'><source><address type='pci' domain='0' "
                                 f"bus='0xb' slot='0x10' function='0'/></source>{xml}</interface>")
    with pytest.raises(UsageError, match=needle):
        dev.check_libvirt_rules("igb")
    if "802.1Qbh" in xml:
        assert dev.check_libvirt_rules("enic") == []


def test_cli_refusals() -> None:
    r = cli(*S, "virt", "xml", "enp11s0f0#0", "--profile", "finance")
    assert r.code == 64 and "Cisco enic" in r.err and "igb" in r.err
    r = cli(*S, "virt", "xml", "00:1f.2", "--hostdev")
    assert r.code == 77 and "not assignable" in r.err
    r = cli(*S, "virt", "xml", "enp11s0f0#0", "--mac", "01:00:5e:00:00:01")
    assert r.code == 64 and "--mac 01:00:5e:00:00:01: a multicast address" in r.err  # the one MAC rule (attrs.py)
    r = cli(*S, "virt", "xml", "enp11s0f0#0", "--alias", "net0")
    assert r.code == 64 and "ua-" in r.err
    r = cli(*S, "virt", "xml", "enp11s0f0", "--hostdev")  # the PF itself is alone in its group: allowed as hostdev
    assert r.code == 0
    r = cli(*S, "virt", "xml", "enp11s0f0")
    assert r.code == 64 and "not a VF" in r.err
