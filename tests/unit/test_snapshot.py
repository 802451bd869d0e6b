from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from helpers import cli


def _status(*host: str) -> dict:  # type: ignore[type-arg]
    r = cli(*host, "--json", "status")
    assert r.code == 0, r.err
    doc = r.json()
    doc.pop("host")
    return doc


@pytest.mark.parametrize("sim", ["igb-82576", "no-acs-switch", "no-iommu"])
def test_round_trip_gives_identical_json(sim: str, tmp_path: Path) -> None:
    snap = tmp_path / "s.tar.gz"
    r = cli("--sim", sim, "snapshot", str(snap))
    assert r.code == 0, r.err
    assert _status("--sim", sim) == _status("--root", str(snap))
    for verb in (["tree"], ["nodedev", "list"], ["list", "--vfs"]):
        a, b = cli("--sim", sim, "--json", *verb), cli("--root", str(snap), "--json", *verb)
        assert a.json().get("nodedevs", a.json().get("devices")) == b.json().get("nodedevs", b.json().get("devices"))


def _extracted_snapshot(tmp_path: Path) -> Path:
    snap = tmp_path / "s.tar.gz"
    assert cli("--sim", "igb-82576", "snapshot", str(snap)).code == 0
    d = tmp_path / "x"
    with tarfile.open(snap) as t:
        t.extractall(d, filter="data")
    return d


def test_edited_snapshot_changes_the_output(tmp_path: Path) -> None:
    d = _extracted_snapshot(tmp_path)
    before = _status("--root", str(d))
    dev = d / "sys/bus/pci/devices/0000:0b:00.0"
    (dev.resolve() / "numa_node").write_text("1\n")
    (dev.resolve() / "driver_override").write_text("pci-stub\n")
    after = _status("--root", str(d))
    pf_before = next(p for p in before["pfs"] if p["address"] == "0000:0b:00.0")
    pf_after = next(p for p in after["pfs"] if p["address"] == "0000:0b:00.0")
    assert (pf_before["numa_node"], pf_after["numa_node"]) == (0, 1)
    assert (pf_before["driver_override"], pf_after["driver_override"]) == (None, "pci-stub")


def test_snapshot_keeps_no_secrets_and_is_read_only(tmp_path: Path) -> None:
    snap = tmp_path / "s.tar.gz"
    assert cli("--sim", "igb-82576", "snapshot", str(snap)).code == 0
    with tarfile.open(snap) as t:
        names = t.getnames()
        tables = [m for m in t.getmembers() if m.name.startswith("sys/firmware/acpi/tables/") and m.isfile()]
    assert "SRIOVCTL-SNAPSHOT.json" in names
    assert tables and all(m.size == 0 for m in tables)  # names only
    assert not any(n.startswith(("etc/", "proc/self", "dev/")) for n in names)


@pytest.mark.skipif(shutil.which("lspci") is None, reason="pciutils not installed")
def test_lspci_reads_the_snapshot(tmp_path: Path) -> None:
    d = _extracted_snapshot(tmp_path)
    out = subprocess.run(["lspci", "-A", "linux-sysfs", "-O", f"sysfs.path={d}/sys/bus/pci", "-n"],
                         capture_output=True, text=True, check=True).stdout
    assert "0b:10.0 0200: 8086:10ca (rev 01)" in out
    assert out.count("8086:10ca") == 14


def test_lab_capture_fixture_reads_like_the_real_kernel() -> None:
    """A snapshot captured in the lab (tests/fixtures/lab/, made by lab/capture-fixtures)."""
    snap = Path(__file__).parent.parent / "fixtures" / "lab" / "default.tar.gz"
    if not snap.exists():
        pytest.skip("lab capture not made yet (lab/capture-fixtures)")
    doc = _status("--root", str(snap))
    (pf,) = doc["pfs"]
    assert pf["device_id"] == "10c9" and pf["sriov"]["totalvfs"] == 7 and pf["sriov"]["numvfs"] == 7
    assert pf["sriov"]["capability"]["total_vfs"] == 8
    assert len(doc["vfs"]) == 7 and all(v["driver"] == "igbvf" for v in doc["vfs"])
    assert all(v["assignable"] for v in doc["vfs"])
    assert len({v["iommu_group"]["number"] for v in doc["vfs"]}) == 7
