"""Compare sriovctl's decoder with pciutils' own decode (`lspci -vvv`), field by field, on SR-IOV, ACS and
ARI. The keys name lspci's fields; each side maps to them independently."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sriovctl.pci.config import ConfigSpace

_CAP = re.compile(r"^\tCapabilities: \[([0-9a-f]+)(?: v\d+)?\] (.*)$")
_FLAG = re.compile(r"([A-Za-z0-9]+)([+-])")


def _flags(text: str, prefix: str) -> dict[str, bool]:
    return {f"{prefix}.{k}": v == "+" for k, v in _FLAG.findall(text)}


def parse_lspci_vvv(text: str) -> dict[str, dict[str, object]]:
    """Per device (lspci's address text): the SR-IOV/ACS/ARI fields lspci printed."""
    out: dict[str, dict[str, object]] = {}
    dev: dict[str, object] | None = None
    section = ""
    for line in text.splitlines():
        if line and not line[0].isspace():
            addr = line.split(" ", 1)[0]
            dev = out.setdefault(addr, {})
            section = ""
            continue
        if dev is None:
            continue
        m = _CAP.match(line)
        if m:
            name = m.group(2)
            section = ("sriov" if "SR-IOV" in name else "acs" if "Access Control Services" in name
                       else "ari" if "(ARI)" in name else "")
            if section:
                dev[f"{section}.capoffset"] = int(m.group(1), 16)
            continue
        if not line.startswith("\t\t") or not section:
            if not line.startswith("\t\t"):
                section = ""
            continue
        body = line.strip()
        key, _, rest = body.partition(":")
        if section == "sriov":
            if key in ("IOVCap", "IOVCtl", "IOVSta"):
                num = re.search(r"Interrupt Message Number: ([0-9a-f]+)", rest)
                if num:
                    dev["sriov.IOVCap.IntMsgNum"] = int(num.group(1), 16)
                    rest = rest[:num.start()]
                dev.update(_flags(rest, f"sriov.{key}"))
            elif body.startswith("Initial VFs"):
                m2 = re.match(r"Initial VFs: (\d+), Total VFs: (\d+), Number of VFs: (\d+), "
                              r"Function Dependency Link: ([0-9a-f]+)", body)
                assert m2, body
                dev.update({"sriov.initial": int(m2.group(1)), "sriov.total": int(m2.group(2)),
                            "sriov.num": int(m2.group(3)), "sriov.fdl": int(m2.group(4), 16)})
            elif body.startswith("VF offset"):
                m2 = re.match(r"VF offset: (\d+), stride: (\d+), Device ID: ([0-9a-f]+)", body)
                assert m2, body
                dev.update({"sriov.vfoffset": int(m2.group(1)), "sriov.stride": int(m2.group(2)),
                            "sriov.device": int(m2.group(3), 16)})
            elif body.startswith("Supported Page Size"):
                m2 = re.match(r"Supported Page Size: ([0-9a-f]+), System Page Size: ([0-9a-f]+)", body)
                assert m2, body
                dev.update({"sriov.psize": int(m2.group(1), 16), "sriov.sysps": int(m2.group(2), 16)})
            elif body.startswith("Region"):
                m2 = re.match(r"Region (\d+): Memory at ([0-9a-f]+) \((\d+)-bit, (non-)?prefetchable\)", body)
                assert m2, body
                i = int(m2.group(1))
                dev[f"sriov.bar{i}"] = (int(m2.group(2), 16), m2.group(3) == "64", m2.group(4) is None)
            elif body.startswith("VF Migration"):
                m2 = re.match(r"VF Migration: offset: ([0-9a-f]+), BIR: (\d+)", body)
                assert m2, body
                dev.update({"sriov.mig_offset": int(m2.group(1), 16), "sriov.mig_bir": int(m2.group(2))})
        elif section == "acs" and key in ("ACSCap", "ACSCtl"):
            dev.update(_flags(rest, f"acs.{key}"))
        elif section == "ari" and key in ("ARICap", "ARICtl"):
            head, _, tail = rest.partition(",")
            dev.update(_flags(head, f"ari.{key}"))
            m2 = re.search(r"(Next Function|Function Group): (\d+)", tail)
            if m2:
                dev[f"ari.{key}.{m2.group(1)}"] = int(m2.group(2))
    return out


_ACS = {"SrcValid": "source_validation", "TransBlk": "translation_blocking", "ReqRedir": "p2p_request_redirect",
        "CmpltRedir": "p2p_completion_redirect", "UpstreamFwd": "upstream_forwarding",
        "EgressCtrl": "p2p_egress_control", "DirectTrans": "direct_translated_p2p"}


def ours(c: ConfigSpace) -> dict[str, object]:
    """Our decoder's values under lspci's keys."""
    d: dict[str, object] = {}
    if c.sriov:
        s = c.sriov
        d.update({
            "sriov.capoffset": s.offset, "sriov.vfoffset": s.vf_offset,
            "sriov.IOVCap.Migration": s.migration_capable, "sriov.IOVCap.10BitTagReq": s.vf_10bit_tag_requester_supported,
            "sriov.IOVCap.IntMsgNum": s.migration_interrupt_message_number,
            "sriov.IOVCtl.Enable": s.vf_enable, "sriov.IOVCtl.Migration": s.migration_enable,
            "sriov.IOVCtl.Interrupt": s.migration_interrupt_enable, "sriov.IOVCtl.MSE": s.vf_mse,
            "sriov.IOVCtl.ARIHierarchy": s.ari_capable_hierarchy,
            "sriov.IOVCtl.10BitTagReq": s.vf_10bit_tag_requester_enable,
            "sriov.IOVSta.Migration": s.migration_status,
            "sriov.initial": s.initial_vfs, "sriov.total": s.total_vfs, "sriov.num": s.num_vfs,
            "sriov.fdl": s.function_dependency_link,
            "sriov.stride": s.vf_stride, "sriov.device": s.vf_device_id,
            "sriov.psize": s.supported_page_sizes, "sriov.sysps": s.system_page_size,
            "sriov.mig_offset": s.migration_state_offset, "sriov.mig_bir": s.migration_state_bir,
        })
        for b in s.vf_bars:
            d[f"sriov.bar{b.index}"] = (b.address, b.is_64bit, b.prefetchable)
    if c.acs:
        d["acs.capoffset"] = c.acs.offset
        for short, attr in _ACS.items():
            d[f"acs.ACSCap.{short}"] = getattr(c.acs.capability, attr)
            d[f"acs.ACSCtl.{short}"] = getattr(c.acs.control, attr)
    if c.ari:
        a = c.ari
        d.update({"ari.capoffset": a.offset, "ari.ARICap.MFVC": a.mfvc_function_groups, "ari.ARICap.ACS": a.acs_function_groups,
                  "ari.ARICap.Next Function": a.next_function, "ari.ARICtl.MFVC": a.mfvc_enable,
                  "ari.ARICtl.ACS": a.acs_enable, "ari.ARICtl.Function Group": a.function_group})
    return d


def compare(lspci_fields: dict[str, object], decoded: ConfigSpace) -> int:
    """Assert every field lspci printed equals ours. Returns how many fields were compared."""
    mine = ours(decoded)
    n = 0
    for key, val in lspci_fields.items():
        n += 1
        assert key in mine, f"lspci printed {key}={val!r}, our decoder has no such field"
        assert mine[key] == val, f"{key}: lspci {val!r}, sriovctl {mine[key]!r}"
    # capabilities lspci did not print must be absent on our side too
    for sec in ("sriov", "acs", "ari"):
        if not any(k.startswith(sec + ".") for k in lspci_fields):
            assert not any(k.startswith(sec + ".") for k in mine), f"{sec}: decoded by sriovctl, not by lspci"
    return n


def lspci_dump_vvv(dump: Path) -> str:
    return subprocess.run(["lspci", "-F", str(dump), "-vvv"], capture_output=True, text=True, check=True).stdout
