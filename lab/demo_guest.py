"""The classic SR-IOV recipe, played on the lab's real kernel (run inside a `libvirt` lab guest by lab/demo)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from labguest import start_libvirtd
from sriovctl.cli.main import run


def step(title: str) -> None:
    print(f"\n\033[1m==> {title}\033[0m", flush=True)


def sriovctl(*args: str) -> int:
    print(f"$ sriovctl {' '.join(args)}", flush=True)
    out, err = io.StringIO(), io.StringIO()
    code, _ = run(list(args), out=out, err=err)
    sys.stdout.write(out.getvalue())
    sys.stdout.write(err.getvalue())
    return code


def sh(*argv: str) -> str:
    print(f"$ {' '.join(argv)}", flush=True)
    p = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    sys.stdout.write(p.stdout + p.stderr)
    return p.stdout


def main() -> int:
    subprocess.run(["modprobe", "igb"], check=True)
    subprocess.run(["modprobe", "vfio-pci"], check=True)
    from labguest import igb_pfs

    (pf,) = igb_pfs()
    while not os.path.isdir(f"/sys/bus/pci/devices/{pf}/net"):
        time.sleep(0.1)
    step("1. Can this host do SR-IOV safely? (IOMMU in firmware and kernel, interrupt remapping, ACS, drivers)")
    sriovctl("doctor")
    step("2. Create 7 VFs (the modern form of `modprobe igb max_vfs=7`)")
    sriovctl("vf", "enable", pf, "7", "--reset")
    ifname = os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0]
    step("3. The VFs: can each go to its own VM? lspci-style, and as libvirt node devices")
    sriovctl("status")
    sriovctl("list", "--vfs")
    sriovctl("nodedev", "list")
    sriovctl("nodedev", "dumpxml", f"{ifname}#0")
    step("4. A small paused guest under libvirt (no OS; native PCIe hotplug, so QEMU can let go of a VF without one)")
    start_libvirtd()
    from sriovctl.virt.qemu import NATIVE_PCIE_HOTPLUG
    from sriovctl.virt.xml import domain_wrapper

    with open("/tmp/demo-vm.xml", "w") as f:
        f.write(domain_wrapper("", name="MyGuest", qemu_args=NATIVE_PCIE_HOTPLUG))
    sh("virsh", "-c", "qemu:///system", "define", "/tmp/demo-vm.xml")
    sh("virsh", "-c", "qemu:///system", "start", "--paused", "MyGuest")
    step("5. Give VF 0 to the guest with MAC 52:54:00:6d:90:02 and VLAN 42 (live and persistent)")
    sriovctl("virt", "xml", f"{ifname}#0", "--mac", "52:54:00:6d:90:02", "--vlan", "42")
    if sriovctl("virt", "attach", "MyGuest", f"{ifname}#0", "--mac", "52:54:00:6d:90:02", "--vlan", "42",
                "--live", "--config"):
        sh("ip", "link", "set", "dev", ifname, "up")
        sriovctl("virt", "attach", "MyGuest", f"{ifname}#0", "--mac", "52:54:00:6d:90:02", "--vlan", "42",
                 "--live", "--config")
    step("6. Both sides: the guest's live XML, the PF's view of VF 0, who uses which VF")
    xml = subprocess.run(["virsh", "-c", "qemu:///system", "dumpxml", "MyGuest"], capture_output=True, text=True).stdout
    start = xml.find("<interface type='hostdev'")
    print(xml[start:xml.find("</interface>", start) + len("</interface>")] if start >= 0 else xml)
    line = next((x for x in sh("ip", "-d", "link", "show", "dev", ifname).splitlines() if x.strip().startswith("vf 0")), "")
    print(f"-> {line.strip()}")
    sriovctl("virt", "list")
    sriovctl("show", f"{ifname}#0")
    step("7. Take it back: detach, and VF 0 is on igbvf again")
    sriovctl("virt", "detach", "MyGuest", f"{ifname}#0", "--live", "--config", "--wait", "20")
    line = next((x for x in sh("ip", "-d", "link", "show", "dev", ifname).splitlines() if x.strip().startswith("vf 0")), "")
    print(f"-> {line.strip()}")
    sriovctl("virt", "list")
    sriovctl("show", f"{ifname}#0")
    sh("virsh", "-c", "qemu:///system", "destroy", "MyGuest")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
