"""The state file's keys, one table: a VF's keys are attrs.VF_ATTRS' nmstate names (an nmstate
``ethernet.sr-iov.vfs`` entry pastes in unchanged) plus ours where nmstate has none; a PF's keys below."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sriovctl.attrs import VF_ATTRS, ValueKind, VfAttr
from sriovctl.model import NetPf, PciDevice, pf_numvfs

# VF attributes nmstate does not name, under the names the state file gives them (rss_query_en: not a state key)
OWN_VF_KEYS = {"link_state": "link-state"}

VF_KEYS: dict[str, VfAttr] = {k: a for a in VF_ATTRS if (k := a.nmstate or OWN_VF_KEYS.get(a.key))}
VF_ID, VF_DRIVER = "id", "driver"
# the name the SR-IOV network device plugin hands these VFs out under (its rule for a resourceName): VFs someone
# else configures at run time (sriov-cni at pod attach, neutron at port binding)
VF_RESOURCE = "resource-name"
RESOURCE_NAME = r"[A-Za-z0-9_]{1,64}"
# a pool sriovctl hands these VFs out from (`sriovctl pool allocate`): the entry's attributes and driver are the
# pool's defaults, restored at release
VF_POOL = "pool"
POOL_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
ALL_VF_KEYS = (VF_ID, *VF_KEYS, VF_DRIVER, VF_RESOURCE, VF_POOL)

# driver: vfio-pci, host (the VF's own driver, the kernel's choice), none (unbound) or a driver name
DRIVER_WORDS = ("vfio-pci", "host", "none")

MAX_PFS = 256
MAX_VF_ENTRIES = 16384  # 16 PFs x 1,024 VFs (netdevsim's most); the reader's limits leave room for it in any spelling
MAX_TOTAL_VFS = 65535  # TotalVFs is 16 bits
CREATE_WAYS = ("sysfs", "module-param")


@dataclass(frozen=True, slots=True)
class PfKey:
    """One setting of a PF entry: its key in the file, its field of state.desired.PfState, how it is read and
    checked (kind, range, choices), what an entry without it means (``default``), and whether `state show`
    prints the host's value (``read``; externally-managed says who owns the VF count, not a fact of the PF)."""

    key: str
    field: str
    kind: ValueKind
    default: object
    help: str
    read: Callable[[PciDevice | NetPf], object] | None  # the host's value (`state show`); None: not a host fact
    high: int = 0
    choices: tuple[str, ...] = ()
    pattern: str = ""  # a TEXT value's rule (re.fullmatch, ASCII)


def _autoprobe(pf: PciDevice | NetPf) -> bool | None:
    return pf.sriov.drivers_autoprobe if isinstance(pf, PciDevice) and pf.sriov else None  # None: not on PCI


PF_SETTINGS: tuple[PfKey, ...] = (
    PfKey("total-vfs", "total_vfs", ValueKind.INT, None, "how many VFs the PF has (sriov_numvfs)", pf_numvfs,
          high=MAX_TOTAL_VFS),
    # how VFs came to be cannot be read back: the host shows what sriovctl does by default
    PfKey("create", "create", ValueKind.CHOICE, "sysfs", "how its VFs are created: sriov_numvfs, or the driver's "
          "VF-count module parameter when the module loads (igb max_vfs)", lambda pf: "sysfs", choices=CREATE_WAYS),
    PfKey("drivers-autoprobe", "drivers_autoprobe", ValueKind.BOOL, None,
          "new VFs bind to their own driver (sriov_drivers_autoprobe)", _autoprobe),
    PfKey("externally-managed", "externally_managed", ValueKind.BOOL, False,
          "we configure its VFs, never change its VF count", None),
    # where its VFs are handed out: the device plugin's resourcePrefix (a DNS subdomain), and the neutron/nova
    # physical network they reach (state export; not facts of the host)
    PfKey("resource-prefix", "resource_prefix", ValueKind.TEXT, None, "the device plugin's resourcePrefix for "
          "this PF's resources (state export device-plugin)", None,
          pattern=r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?){0,8}"),
    PfKey("physical-network", "physical_network", ValueKind.TEXT, None, "the physical network its VFs reach "
          "(nova's physical_network, neutron's physical_device_mappings)", None, pattern=r"[A-Za-z0-9_.-]{1,64}"),
)
PF_BY_KEY = {k.key: k for k in PF_SETTINGS}

# A PF: one selector, then its settings
PF_SELECTORS = ("name", "pci-address", "vendor")  # vendor goes with device and index
PF_VFS = "vfs"
PF_KEYS = ("name", "pci-address", "vendor", "device", "index", *PF_BY_KEY, PF_VFS)
