"""`sriovctl doctor` on simulated hosts: finding ids and severities asserted explicitly per host; golden
files for the human report on top."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import cli, validate
from sriovctl.host.sim.catalog import create_sim

SPECS = Path(__file__).parent.parent / "fixtures" / "specs"
GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden"


def findings(*host: str, device: str | None = None) -> tuple[int, dict[str, set[tuple[str, str]]], dict]:  # type: ignore[type-arg]
    r = cli(*host, "--json", "doctor", *([device] if device else []))
    doc = r.json()
    validate(doc, "doctor")
    by_id: dict[str, set[tuple[str, str]]] = {}
    for f in doc["findings"]:
        by_id.setdefault(f["id"], set()).add((f["subject"], f["severity"]))
    return r.code, by_id, doc


def sev(by_id: dict[str, set[tuple[str, str]]], fid: str) -> set[str]:
    return {s for _, s in by_id.get(fid, set())}


def test_igb_82576_is_healthy() -> None:
    code, f, doc = findings("--sim", "igb-82576")
    assert code == 0
    assert sev(f, "platform.iommu.firmware") == {"ok"} and sev(f, "platform.iommu.kernel") == {"ok"}
    assert sev(f, "platform.iommu.irq_remapping") == {"ok"}
    assert sev(f, "platform.vfio") == {"ok"} and sev(f, "platform.kernel.pci_iov") == {"ok"}
    assert sev(f, "isolation.acs.path") == {"ok"} and "isolation.vf.assignable" not in f
    assert sev(f, "device.sriov.vf_bars") == {"ok"} and sev(f, "device.sriov.bus_range") == {"ok"}
    assert sev(f, "isolation.group.shared") == {"info"}  # the ICH9 functions: info, not a failure
    assert doc["capacity"] == [
        {"pf": "0000:0b:00.0", "netdev": "enp11s0f0", "vfs": 7, "assignable": 7, "groups": 7},
        {"pf": "0000:0b:00.1", "netdev": "enp11s0f1", "vfs": 7, "assignable": 7, "groups": 7}]
    assert not any(x["severity"] in ("warn", "fail") for x in doc["findings"])


def test_no_iommu() -> None:
    code, f, doc = findings("--sim", "no-iommu")
    assert code == 5
    assert sev(f, "platform.iommu.firmware") == {"fail"} and sev(f, "platform.iommu.kernel") == {"fail"}
    hints = {x["id"]: x["hint"] for x in doc["findings"]}
    assert "firmware setup" in hints["platform.iommu.firmware"]
    assert len(f["isolation.vf.assignable"]) == 14


def test_no_acs_switch_names_the_hop() -> None:
    code, _f, doc = findings("--sim", "no-acs-switch")
    assert code == 5
    path = next(x for x in doc["findings"] if x["id"] == "isolation.acs.path")
    assert path["severity"] == "fail" and "isolation breaks at 0000:02:00.0: no ACS capability" in path["message"]
    vfs = [x for x in doc["findings"] if x["id"] == "isolation.vf.assignable"]
    assert len(vfs) == 7
    assert ("shares group" in vfs[0]["message"] and "with its PF 0000:03:00.0, driven by igb" in vfs[0]["message"]
            and "because switch port 0000:02:00.0 has no acs capability: no VF of this PF can be assigned while igb "
                "drives the PF" in vfs[0]["message"])
    assert doc["capacity"][0]["assignable"] == 0


@pytest.mark.parametrize("spec,expect,code", [
    ("amd-iommu", {"platform.iommu.firmware": {"ok"}, "platform.iommu.kernel": {"ok"},
                   "platform.iommu.irq_remapping": {"ok"}, "platform.cpu.virtualization": {"ok"}}, 0),
    ("amd-iommu-off", {"platform.iommu.firmware": {"ok"}, "platform.iommu.kernel": {"fail"},
                       "platform.cmdline": {"fail"}}, 5),
    ("intel-iommu-off", {"platform.iommu.firmware": {"ok"}, "platform.iommu.kernel": {"fail"},
                         "platform.cmdline": {"fail"}}, 5),
    ("irq-remap-off", {"platform.iommu.irq_remapping": {"warn"}, "platform.iommu.kernel": {"ok"}}, 4),
    ("vf-bars-unassigned", {"device.sriov.vf_bars": {"fail", "ok"}}, 5),
    ("no-driver-support", {"device.sriov.no_driver_support": {"warn"}}, 4),
])
def test_simulated_problem_hosts(spec: str, expect: dict[str, set[str]], code: int) -> None:
    create_sim(spec, SPECS / f"{spec}.yaml")
    got_code, f, doc = findings("--sim", spec)
    for fid, sevs in expect.items():
        assert sev(f, fid) == sevs, (fid, f.get(fid))
    assert got_code == code
    hints = {x["id"]: x["hint"] for x in doc["findings"] if x["severity"] in ("warn", "fail")}
    if spec in ("intel-iommu-off",):
        assert hints["platform.iommu.kernel"] == "remove intel_iommu=off from the kernel command line"
    if spec == "amd-iommu-off":
        assert hints["platform.iommu.kernel"] == "remove amd_iommu=off from the kernel command line"
        assert "IVRS" in next(x for x in doc["findings"] if x["id"] == "platform.iommu.firmware")["evidence"][0]["value"]
    if spec == "vf-bars-unassigned":
        assert "pci=realloc" in hints["device.sriov.vf_bars"]
        r = cli("--sim", spec, "vf", "enable", "enp11s0f0", "2")
        assert r.code == 69 and "pci=realloc" in r.err


def test_doctor_for_one_device() -> None:
    code, _f, doc = findings("--sim", "no-acs-switch", device="enp3s0#2")
    assert code == 5
    subjects = {x["subject"] for x in doc["findings"] if x["area"] != "platform"}
    assert subjects and all("0000:03:" in s for s in subjects)


def test_human_report_golden() -> None:
    for host in ("igb-82576", "no-acs-switch"):
        r = cli("--sim", host, "doctor")
        path = GOLDEN / f"doctor.{host}.txt"
        if os.environ.get("SRIOVCTL_REGEN_GOLDEN"):
            path.write_text(r.out)
        assert r.out == path.read_text()
    assert "result: info" in (GOLDEN / "doctor.igb-82576.txt").read_text()
