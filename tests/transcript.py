"""A transcript of the CLI on the simulated hosts: exit code, text and JSON of reads, writes, dry runs,
refusals and bad input, in order (writes change what later steps see). Recorded once at the commit the
engine refactoring started from (issue 11); ``tests/unit/test_transcript.py`` holds every later commit to it.

    python tests/transcript.py --write    # re-record (only for an intended, noted change)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
TRANSCRIPT = FIXTURES / "transcript.json"
LAB = FIXTURES / "lab"

# A step is a command line; ("hold", SIM, GROUP) puts a process holding /dev/vfio/GROUP into SIM's /proc.
Step = tuple[str, ...]

STEPS: list[Step] = [
    # reads, every built-in host
    *[s for h in ("igb-82576", "no-acs-switch", "no-iommu") for s in (
        ("--sim", h, "status"),
        ("--sim", h, "--json", "status"),
        ("--sim", h, "list", "--vfs"),
        ("--sim", h, "--json", "tree"),
        ("--sim", h, "doctor"),
        ("--sim", h, "--json", "doctor"),
    )],
    # the 512-VF host: text, and JSON of what is small enough to keep in the repository
    ("--sim", "e810-2x256", "status"),
    ("--sim", "e810-2x256", "doctor"),
    ("--sim", "e810-2x256", "--json", "doctor"),
    ("--sim", "igb-82576", "list", "--all"),
    ("--sim", "igb-82576", "--json", "list", "--all"),
    ("--sim", "igb-82576", "show", "enp11s0f0"),
    ("--sim", "igb-82576", "--json", "show", "enp11s0f0#2"),
    ("--sim", "igb-82576", "tree"),
    ("--sim", "igb-82576", "nodedev", "list"),
    ("--sim", "igb-82576", "nodedev", "dumpxml", "pci_0000_0b_10_2"),
    ("--sim", "igb-82576", "--json", "nodedev", "dumpxml", "0b:10.2"),
    ("--sim", "igb-82576", "doctor", "-v", "enp11s0f0"),
    ("--sim", "igb-82576", "virt", "xml", "enp11s0f0#1", "--vlan", "42"),
    ("--sim", "igb-82576", "--json", "virt", "xml", "enp11s0f0#1", "--hostdev", "--vfio-driver"),
    ("--sim", "igb-82576", "virt", "network-xml", "enp11s0f0", "--name", "pool0"),
    ("--sim", "igb-82576", "--json", "virt", "network-xml", "enp11s0f0", "--name", "pool0", "--vfs"),
    ("--sim", "igb-82576", "qemu", "args", "enp11s0f0#0-1"),
    ("--sim", "igb-82576", "--json", "qemu", "args", "enp11s0f0#3", "--bus", "rp1"),
    ("--sim", "e810-2x256", "show", "ens2f1#255"),
    ("--sim", "e810-2x256", "--json", "show", "ens2f0"),
    ("--sim", "no-acs-switch", "virt", "xml", "enp3s0#0"),
    ("--sim", "no-acs-switch", "--json", "qemu", "args", "enp3s0#0"),
    ("pci", "decode", "@LAB/igb-vf.lspci-xxxx"),
    ("--json", "pci", "decode", "@LAB/igb-pf.lspci-xxxx"),
    ("--json", "sim", "list"),
    # writes, dry runs and refusals on igb-82576 (7 VFs on each PF at the start)
    ("--sim", "igb-82576", "vf", "enable", "enp11s0f0", "4"),
    ("--sim", "igb-82576", "vf", "enable", "enp11s0f0", "4", "--reset", "--dry-run"),
    ("--sim", "igb-82576", "--json", "vf", "enable", "enp11s0f0", "4", "--reset", "--dry-run"),
    ("--sim", "igb-82576", "vf", "enable", "enp11s0f0", "4", "--reset"),
    ("--sim", "igb-82576", "vf", "enable", "enp11s0f0", "4"),
    ("--sim", "igb-82576", "vf", "enable", "enp11s0f0", "9", "--reset"),
    ("--sim", "igb-82576", "vf", "enable", "enp11s0f0#0", "2"),
    ("--sim", "igb-82576", "vf", "set", "enp11s0f0#1", "--mac", "52:54:00:6d:90:02", "--vlan", "42"),
    ("--sim", "igb-82576", "--json", "vf", "set", "enp11s0f0#0-3", "--spoofchk", "off", "--trust", "on"),
    ("--sim", "igb-82576", "vf", "set", "enp11s0f0#2", "--max-rate", "500", "--dry-run"),
    ("--sim", "igb-82576", "--json", "vf", "set", "enp11s0f0#2", "--vlan", "7", "--qos", "3", "--dry-run"),
    ("--sim", "igb-82576", "--json", "show", "enp11s0f0#1"),
    ("--sim", "igb-82576", "status"),
    ("--sim", "igb-82576", "vf", "bind", "enp11s0f0#1", "vfio-pci", "--dry-run"),
    ("--sim", "igb-82576", "--json", "vf", "bind", "enp11s0f0#1", "vfio-pci"),
    ("--sim", "igb-82576", "vf", "bind", "enp11s0f0#1", "vfio-pci"),
    ("hold", "igb-82576", "21"),
    ("--sim", "igb-82576", "vf", "disable", "enp11s0f0"),
    ("--sim", "igb-82576", "--json", "vf", "disable", "enp11s0f0"),
    ("--sim", "igb-82576", "vf", "bind", "enp11s0f0#1", "host"),
    ("--sim", "igb-82576", "vf", "unbind", "enp11s0f0#1"),
    ("--sim", "igb-82576", "--json", "qemu", "args", "enp11s0f0#1"),
    ("--sim", "igb-82576", "vf", "unbind", "enp11s0f0#2", "--dry-run"),
    ("--sim", "igb-82576", "vf", "unbind", "enp11s0f0#2"),
    ("--sim", "igb-82576", "vf", "bind", "enp11s0f0#2", "host"),
    ("--sim", "igb-82576", "vf", "disable", "enp11s0f1", "--dry-run"),
    ("--sim", "igb-82576", "vf", "disable", "enp11s0f1"),
    ("--sim", "igb-82576", "vf", "disable", "enp11s0f1"),
    ("--sim", "igb-82576", "--json", "vf", "enable", "enp11s0f1", "3", "--no-autoprobe"),
    ("--sim", "igb-82576", "vf", "bind", "enp11s0f1#0-1", "igbvf"),
    ("--sim", "igb-82576", "--json", "status"),
    ("--sim", "igb-82576", "vf", "disable", "enp11s0f0", "--force", "--dry-run"),
    ("--sim", "igb-82576", "--json", "vf", "unbind", "enp11s0f1", "--dry-run"),
    ("--sim", "igb-82576", "vf", "unbind", "enp11s0f1"),
    ("--sim", "igb-82576", "--json", "vf", "unbind", "0000:0b:00.1"),
    ("--sim", "igb-82576", "vf", "bind", "0000:0b:00.1", "host"),
    ("--sim", "igb-82576", "vf", "unbind", "0000:0b:00.1", "--force", "--dry-run"),
    ("--sim", "no-acs-switch", "vf", "bind", "enp3s0#0", "vfio-pci"),
    ("--sim", "no-acs-switch", "--json", "vf", "bind", "enp3s0#0", "vfio-pci", "--force", "--dry-run"),
    ("--sim", "no-iommu", "vf", "bind", "enp11s0f0#0", "vfio-pci"),
    ("--sim", "e810-2x256", "vf", "set", "ens2f0#0-255", "--vlan", "100", "--dry-run"),
    ("--sim", "e810-2x256", "--json", "vf", "set", "ens2f0#0-255", "--trust", "on"),
    ("--sim", "e810-2x256", "vf", "enable", "ens2f1", "16", "--reset"),
    ("--sim", "e810-2x256", "list"),
    ("--sim", "e810-2x256", "--json", "show", "ens2f0#17"),
    # libvirt and QMP with no libvirtd or QEMU here
    ("--sim", "igb-82576", "virt", "attach", "dom1", "enp11s0f0#0", "--dry-run"),
    ("--sim", "igb-82576", "--json", "virt", "detach", "dom1", "enp11s0f0#0", "--dry-run"),
    ("--sim", "igb-82576", "virt", "list"),
    ("--sim", "igb-82576", "qemu", "hotplug", "enp11s0f0#0", "--qmp", "@TMP/no-such.sock", "--dry-run"),
    # bad input
    ("--sim", "igb-82576", "show", "0b:1f.0"),
    ("--sim", "igb-82576", "--json", "show", "nosuchnic"),
    ("--sim", "igb-82576", "vf", "set", "enp11s0f0#0", "--mac", "01:00:00:00:00:01"),
    ("--sim", "igb-82576", "vf", "set", "enp11s0f0#0", "--vlan", "5000"),
    ("--sim", "igb-82576", "vf", "set", "enp11s0f0#0-1", "--mac", "52:54:00:00:00:01"),
    ("--sim", "igb-82576", "vf", "set", "enp11s0f0#0"),
    ("--sim", "igb-82576", "vf", "enable", "enp11s0f0", "x"),
    ("--sim", "igb-82576", "vf", "bind", "enp11s0f0#0", "../../x"),
    ("--sim", "", "status"),
    ("--sim", "no-such-host", "status"),
    ("--root", "@TMP/missing.tar.gz", "status"),
    ("--sim", "igb-82576", "frobnicate"),
    ("--json", "--sim", "igb-82576", "vf", "enable", "enp11s0f0", "99"),
    ("pci", "decode", "@TMP/missing"),
]


def _run_step(step: Step, tmp: Path) -> dict[str, Any]:
    from helpers import cli, hold_vfio

    if step[0] == "hold":
        hold_vfio(step[2], sim=step[1])
        return {"step": list(step)}
    argv = [a.replace("@LAB", str(LAB)).replace("@TMP", str(tmp)) for a in step]
    r = cli(*argv)

    def norm(text: str) -> str:
        return text.replace(str(tmp), "@TMP").replace(str(LAB), "@LAB").replace(os.environ["SRIOVCTL_SIM_DIR"], "@SIM")

    out: Any = norm(r.out)
    if "--json" in step and r.out.strip():
        out = json.loads(out)
    return {"argv": list(step), "code": r.code, "stdout": out, "stderr": norm(r.err)}


def record() -> list[dict[str, Any]]:
    """Run every step on fresh simulated hosts (SRIOVCTL_SIM_DIR and SRIOVCTL_PCI_IDS as the tests set them)."""
    with tempfile.TemporaryDirectory(prefix="sriovctl-transcript-") as t:
        return [_run_step(s, Path(t)) for s in STEPS]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/transcript.py --write")
    with tempfile.TemporaryDirectory(prefix="sriovctl-sim-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as d:
        os.environ["SRIOVCTL_SIM_DIR"] = d
        os.environ["SRIOVCTL_PCI_IDS"] = str(FIXTURES / "pci.ids")
        os.environ["COLUMNS"] = "160"
        TRANSCRIPT.write_text(json.dumps(record(), indent=1, ensure_ascii=False) + "\n")
    print(f"{TRANSCRIPT}: {len(STEPS)} steps")
