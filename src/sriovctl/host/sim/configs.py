"""Config spaces the simulated kernel creates on its own: a VF's, when sriov_numvfs makes one."""

from __future__ import annotations

from sriovctl.pci.build import ConfigBuilder
from sriovctl.pci.config import PortType


def vf_config(pf_class: int, revision: int, on_root_bus: bool, bar0: int, bar3: int) -> bytes:
    b = ConfigBuilder(0xFFFF, 0xFFFF, pf_class, revision)  # VFs read all ones here (SR-IOV 9.3.4.1.1)
    b.add_cap(0x11, bytes([2, 0, 3, 0, 0, 0, 3, 0x20, 0, 0]), 12)
    b.pcie(PortType.RC_INTEGRATED_ENDPOINT if on_root_bus else PortType.ENDPOINT)
    b.add_ext_cap(0x01, 2, bytes(0x3C), 0x50)  # AER at 0x100, ARI at 0x150: the layout of the lab's real VF
    b.ari()
    b.data[0x10:0x18] = (bar0 | 0xC).to_bytes(8, "little")
    b.data[0x1C:0x24] = (bar3 | 0xC).to_bytes(8, "little")
    return b.bytes()
