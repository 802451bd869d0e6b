"""The state file's keys, one table: a VF's keys are attrs.VF_ATTRS' nmstate names (an nmstate
``ethernet.sr-iov.vfs`` entry pastes in unchanged) plus ours where nmstate has none; a PF's keys below."""

from __future__ import annotations

from sriovctl.attrs import VF_ATTRS, VfAttr

# VF attributes nmstate does not name, under the names the state file gives them (rss_query_en: not a state key)
OWN_VF_KEYS = {"link_state": "link-state"}

VF_KEYS: dict[str, VfAttr] = {k: a for a in VF_ATTRS if (k := a.nmstate or OWN_VF_KEYS.get(a.key))}
VF_ID, VF_DRIVER = "id", "driver"
ALL_VF_KEYS = (VF_ID, *VF_KEYS, VF_DRIVER)

# driver: vfio-pci, host (the VF's own driver, the kernel's choice), none (unbound) or a driver name
DRIVER_WORDS = ("vfio-pci", "host", "none")

# A PF: one selector, then its settings
PF_SELECTORS = ("name", "pci-address", "vendor")  # vendor goes with device and index
PF_KEYS = ("name", "pci-address", "vendor", "device", "index", "total-vfs", "create", "drivers-autoprobe",
           "externally-managed", "vfs")
CREATE_WAYS = ("sysfs", "module-param")

MAX_PFS = 256
MAX_VF_ENTRIES = 16384  # 16 PFs x 1,024 VFs (netdevsim's most); the reader's limits leave room for it in any spelling
MAX_TOTAL_VFS = 65535  # TotalVFs is 16 bits
