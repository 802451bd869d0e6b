"""Handing VFs to VMs: libvirt XML (and, later, the libvirt API and QEMU)."""
