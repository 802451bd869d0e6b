"""libvirt node-device names and XML, with the facts Debian 12's libvirt 9.0 prints for PCI devices."""

from __future__ import annotations

from xml.sax.saxutils import escape

from sriovctl.host import sysfs
from sriovctl.model import Inventory, PciDevice
from sriovctl.pci.address import PciAddress


def _addr(a: PciAddress, indent: str) -> str:
    return (f"{indent}<address domain='0x{a.domain:04x}' bus='0x{a.bus:02x}' slot='0x{a.slot:02x}' "
            f"function='0x{a.function:x}'/>")


def nodedev_names(inv: Inventory) -> list[str]:
    return [a.nodedev_name for a in sorted(inv.devices)]


def sysfs_path(inv: Inventory, d: PciDevice) -> str:
    chain = [d.address]
    p = d.parent
    while p is not None:
        chain.append(p)
        parent = inv.devices.get(p)
        p = parent.parent if parent else None
    root = chain[-1]
    return sysfs.device_path(list(reversed(chain)), root.domain, root.bus)


def dumpxml(inv: Inventory, d: PciDevice) -> str:
    a = d.address
    lines = ["<device>", f"  <name>{a.nodedev_name}</name>", f"  <path>{escape(sysfs_path(inv, d))}</path>",
             f"  <parent>{d.parent.nodedev_name if d.parent else 'computer'}</parent>"]
    if d.driver:
        lines += ["  <driver>", f"    <name>{escape(d.driver)}</name>", "  </driver>"]
    lines += ["  <capability type='pci'>", f"    <class>0x{d.class_code:06x}</class>",
              f"    <domain>{a.domain}</domain>", f"    <bus>{a.bus}</bus>", f"    <slot>{a.slot}</slot>",
              f"    <function>{a.function}</function>"]
    product = d.device_name if not d.device_name.startswith("Device ") else None
    vendor = d.vendor_name if not d.vendor_name.startswith("Vendor ") else None
    lines.append(f"    <product id='0x{d.device_id:04x}'>{escape(product)}</product>" if product
                 else f"    <product id='0x{d.device_id:04x}'/>")
    lines.append(f"    <vendor id='0x{d.vendor_id:04x}'>{escape(vendor)}</vendor>" if vendor
                 else f"    <vendor id='0x{d.vendor_id:04x}'/>")
    if d.physfn is not None:
        lines += ["    <capability type='phys_function'>", _addr(d.physfn, "      "), "    </capability>"]
    if d.sriov is not None and d.sriov.totalvfs is not None:
        lines.append(f"    <capability type='virt_functions' maxCount='{d.sriov.totalvfs}'>"
                     if d.vfs else f"    <capability type='virt_functions' maxCount='{d.sriov.totalvfs}'/>")
        if d.vfs:
            lines += [_addr(v, "      ") for v in d.vfs] + ["    </capability>"]
    if d.iommu_group is not None and d.iommu_group in inv.groups:
        lines.append(f"    <iommuGroup number='{d.iommu_group}'>")
        lines += [_addr(m, "      ") for m in inv.groups[d.iommu_group].members]
        lines.append("    </iommuGroup>")
    if d.numa_node is not None:
        lines.append(f"    <numa node='{d.numa_node}'/>")
    lines += ["  </capability>", "</device>"]
    return "\n".join(lines) + "\n"
