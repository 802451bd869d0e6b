"""sriovctl's decoder against pciutils' own decode (lspci -F DUMP -vvv), field by field."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lspci_compare import compare, lspci_dump_vvv, parse_lspci_vvv
from sriovctl.host.sim.catalog import open_sim
from sriovctl.pci.address import PciAddress
from sriovctl.pci.build import ConfigBuilder
from sriovctl.pci.config import decode
from sriovctl.pci.dump import format_dump, read_dump

FIX = Path(__file__).parent.parent / "fixtures"
pytestmark = pytest.mark.skipif(shutil.which("lspci") is None, reason="pciutils (lspci) not installed")


def _compare_file(path: Path) -> int:
    fields = parse_lspci_vvv(lspci_dump_vvv(path))
    dumped = {d.address.short if d.address else "": d for d in read_dump(path)}
    total = 0
    for addr, f in fields.items():
        total += compare(f, decode(dumped[addr].data))
    return total


def test_lab_pf_capture_agrees_with_lspci() -> None:
    assert _compare_file(FIX / "lab" / "igb-pf.lspci-xxxx") >= 25  # SR-IOV and ARI of the real 82576 emulation


def test_lab_vf_capture_agrees_with_lspci() -> None:
    f = FIX / "lab" / "igb-vf.lspci-xxxx"
    assert _compare_file(f) >= 7  # the VF's ARI capability; no SR-IOV on either side
    (dev,) = read_dump(f)
    c = decode(dev.data)
    assert (c.vendor_id, c.device_id) == (0xFFFF, 0xFFFF)  # a VF's own config space, as the kernel shows it
    assert c.sriov is None and c.acs is None and c.ari is not None
    assert [x.name for x in c.capabilities] == ["Express", "MSI-X"]


def test_mixed_vvv_and_hex_dump_of_several_devices(tmp_path: Path) -> None:
    """`lspci -vvv -xxxx` output (decode lines between device lines and hex) of a whole simulated host."""
    host = open_sim("no-acs-switch")
    text = subprocess.run(["lspci", "-A", "linux-sysfs", "-O", f"sysfs.path={host.root}/sys/bus/pci", "-vvv", "-xxxx"],
                          capture_output=True, text=True, check=True).stdout
    f = tmp_path / "mixed.txt"
    f.write_text(text)
    devices = read_dump(f)
    assert len(devices) == len(host.listdir("sys/bus/pci/devices")) == 12
    assert _compare_file(f) > 30  # root port ACS, the PF's SR-IOV and ARI


@pytest.mark.parametrize("sim", ["igb-82576", "e810-2x256", "no-acs-switch"])
def test_simulated_devices_agree_with_lspci(sim: str, tmp_path: Path) -> None:
    host = open_sim(sim)
    dumps = []
    for name in host.listdir("sys/bus/pci/devices"):
        data = host.read_bytes(f"sys/bus/pci/devices/{name}/config", 4096)
        assert data is not None
        dumps.append(format_dump(PciAddress.parse(name), "Device", data))
    f = tmp_path / "all.x"
    f.write_text("\n".join(dumps))
    assert _compare_file(f) > 20


@st.composite
def config_spaces(draw: st.DrawFn) -> bytes:
    b = ConfigBuilder(draw(st.integers(0, 0xFFFE)), draw(st.integers(0, 0xFFFF)), 0x020000, draw(st.integers(0, 255)))
    b.standard_endpoint_caps()
    if draw(st.booleans()):
        b.ari(draw(st.integers(0, 255)), mfvc=draw(st.booleans()), acs=draw(st.booleans()),
              mfvc_enable=draw(st.booleans()), acs_enable=draw(st.booleans()), group=draw(st.integers(0, 7)))
    if draw(st.booleans()):
        b.acs(draw(st.integers(0, 0x7F)), draw(st.integers(0, 0x7F)))
    total = draw(st.integers(1, 0xFFFF))
    lo64 = draw(st.integers(0, 0xFFFF_FFF0)) & ~0xF
    bars = [draw(st.sampled_from([0, lo64 | 0xC, lo64 | 0x4, lo64 & 0xFFFFFFF0, lo64 | 0x8])) for _ in range(5)]
    bars.append(draw(st.sampled_from([0, lo64 & 0xFFFFFFF0, lo64 | 0x8])))  # a 64-bit BAR 5 is invalid: see below
    b.sriov(initial_vfs=draw(st.integers(0, total)), total_vfs=total, num_vfs=draw(st.integers(0, total)),
            vf_offset=draw(st.integers(0, 0xFFFF)), vf_stride=draw(st.integers(0, 0xFFFF)),
            vf_device=draw(st.integers(0, 0xFFFF)), capabilities=draw(st.integers(0, 0xFFFFFFFF)),
            control=draw(st.integers(0, 0x3F)), status=draw(st.integers(0, 1)),
            function_dependency_link=draw(st.integers(0, 255)), supported_page_sizes=draw(st.integers(0, 0xFFFFFFFF)),
            system_page_size=draw(st.integers(0, 0xFFFFFFFF)), vf_bars=bars,
            migration_state=draw(st.integers(0, 0xFFFFFFFF)))
    return b.bytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config_spaces())
def test_generated_config_spaces_agree_with_lspci(tmp_path: Path, data: bytes) -> None:
    f = tmp_path / "gen.x"
    f.write_text(format_dump(PciAddress.parse("01:00.0"), "Device", data))
    fields = parse_lspci_vvv(lspci_dump_vvv(f))["01:00.0"]
    assert compare(fields, decode(data)) > 0


def test_a_64bit_last_vf_bar_is_reported_not_guessed() -> None:
    b = ConfigBuilder(0x8086, 0x10C9, 0x020000)
    b.standard_endpoint_caps()
    b.sriov(initial_vfs=8, total_vfs=8, num_vfs=0, vf_offset=128, vf_stride=2, vf_device=0x10CA,
            vf_bars=(0, 0, 0, 0, 0, 0xFE00000C), migration_state=1)
    c = decode(b.bytes())
    assert c.sriov is not None and c.sriov.vf_bars[0].address == 0xFE000000
    assert any("VF BAR 5" in p for p in c.problems)


def test_truncated_dump_and_looping_chain_give_messages(tmp_path: Path) -> None:
    from sriovctl.errors import DataError

    with pytest.raises(DataError, match="truncated: 40 bytes"):
        decode(bytes(40), what="x")
    b = ConfigBuilder(0x8086, 0x10C9, 0x020000)
    b.standard_endpoint_caps()
    b.sriov(initial_vfs=8, total_vfs=8, num_vfs=0, vf_offset=128, vf_stride=2, vf_device=0x10CA)
    data = bytearray(b.bytes())
    data[0x41] = 0x40  # the first capability points back at itself
    data[0x102:0x104] = (0x100 << 4).to_bytes(2, "little")  # extended chain: SR-IOV at 0x100 points at 0x100
    c = decode(bytes(data))
    assert any("capability chain loops at 0x40" in p for p in c.problems)
    assert any("extended capability chain loops at 0x100" in p for p in c.problems)
    cut = decode(bytes(data[:0x110]))  # SR-IOV header present, body cut
    assert any("truncated" in p for p in cut.problems)
