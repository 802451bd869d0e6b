"""Every libvirt XML variant sriovctl generates, as CLI arguments: the unit tests compare each with its golden
file and validate it against libvirt's schemas; the lab defines each in a real libvirtd. One list, so both
always cover the same variants."""

from __future__ import annotations


def variants(pf0: str, pf1: str) -> dict[str, list[str]]:
    """CLI arguments per variant name, for the netdev names of two PFs (the same name twice is fine)."""
    return {
        "interface-mac-vlan": ["virt", "xml", f"{pf0}#0", "--mac", "52:54:00:6d:90:02", "--vlan", "42"],
        "interface-generated-mac": ["virt", "xml", f"{pf0}#1"],
        "interface-full": ["virt", "xml", f"{pf1}#3", "--mac", "52:54:00:00:00:33", "--vlan", "7", "--vfio-driver",
                           "--rom-bar", "off", "--alias", "ua-sriov-net0", "--guest-address", "0000:01:00.0"],
        "interface-profile-forced": ["virt", "xml", f"{pf0}#2", "--profile", "finance", "--force"],
        "hostdev": ["virt", "xml", f"{pf0}#4", "--hostdev", "--vfio-driver", "--alias", "ua-vf4"],
        "network-pf": ["virt", "network-xml", pf0, "--name", f"sriov-{pf0}"],
        "network-vfs": ["virt", "network-xml", pf1, "--name", "sriov-list", "--vfs"],
    }
