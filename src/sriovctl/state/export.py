"""`state export KIND`: the inverse of `state import` — a host's desired state in the formats of the tools that
hand its VFs out at run time (docs/FLEET.md names the source of every key):

- ``device-plugin``: the SR-IOV network device plugin's config.json (`resourceList[]`), and the ConfigMap a
  cluster applies (`--configmap`, one key per node);
- ``network-attachment``: a Multus NetworkAttachmentDefinition per resource, with sriov-cni's config;
- ``nfd``: a Node Feature Discovery local feature file (what NFD's own labels lack);
- ``nova``: `[pci] device_spec` for a compute node, `[pci] alias` for the API, and the neutron SR-IOV agent's
  `physical_device_mappings`.

A resource is the VFs one state entry names with one `resource-name`; VFs without one form a resource per PF and
driver, named ``<pf>_<driver>`` with every character outside [A-Za-z0-9] made `_` (the plugin's rule for a name).
Vendor and device IDs and the driver of `driver: host` come from the host (its inventory): a state read from a
file about another host exports what this host can say, and no more.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sriovctl.attrs import BY_KEY
from sriovctl.drivers import is_vm_safe
from sriovctl.model import Inventory, NetPf, PciDevice
from sriovctl.resolve import format_indices
from sriovctl.state.desired import DesiredState, PfState
from sriovctl.state.match import select

PLUGIN_DEFAULT_PREFIX = "intel.com"  # the device plugin's resourcePrefix when a config names none
NFD_PREFIX = "sriovctl.io"  # our NFD labels' one prefix (NFD reserves *.kubernetes.io for its own)
NFD_LIMIT = 64 * 1024  # a local feature file NFD reads whole
_NAME_CHARS = re.compile(r"[^A-Za-z0-9]")


@dataclass
class Resource:
    """VFs handed out under one name: per PF, the VF indices and the drivers they are bound to."""

    name: str
    prefix: str
    pfs: dict[str, set[int]] = field(default_factory=dict)  # PF netdev (or address) → VF indices
    roots: dict[str, str] = field(default_factory=dict)  # PF name → its PCI address, for PFs chosen by address
    totals: dict[str, int] = field(default_factory=dict)  # PF name → its VF count
    drivers: set[str] = field(default_factory=set)
    vendors: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    attrs: list[dict[str, object]] = field(default_factory=list)  # each VF's state attributes (for sriov-cni)
    physnet: str | None = None


def resource_name(pf: str, driver: str) -> str:
    """The name of the resource of a PF's VFs on one driver when the state gives none: ``<pf>_<driver>``."""
    return _NAME_CHARS.sub("_", f"{pf}_{driver}")


def _pf_name(pf: PciDevice | NetPf | None, entry: PfState) -> str:
    if isinstance(pf, NetPf):
        return pf.name
    if pf is not None and pf.netdevs:
        return pf.netdevs[0].name
    return entry.selector.name or entry.selector.pci_address or str(entry.selector)


def _vf_driver(vf: PciDevice | None, want: str | None) -> str | None:
    """The driver a VF is (or will be) on: the state's word, or the host's for ``host`` and for no word."""
    if want not in (None, "host"):
        return None if want == "none" else want
    if vf is None or vf.driver is None or (want == "host" and is_vm_safe(vf.driver)):
        return None
    return vf.driver


def resources(state: DesiredState, inv: Inventory) -> list[Resource]:
    """The state's resources in a stable order (by name)."""
    out: dict[str, Resource] = {}
    for entry in state.pfs:
        pf = select(inv, entry.selector)
        name = _pf_name(pf, entry)
        prefix = entry.resource_prefix or PLUGIN_DEFAULT_PREFIX
        total = entry.total_vfs if entry.total_vfs is not None else \
            (pf.numvfs if isinstance(pf, NetPf) else pf.sriov.numvfs if pf is not None and pf.sriov else None) or 0
        listed = [(i, vs.driver, vs.resource, vs.attrs) for vs in entry.vfs or () for i in vs.ids] if entry.vfs else \
            [(i, None, None, {}) for i in range(total)]
        vfs = {v.vf_index: v for v in inv.vfs_of(pf)} if isinstance(pf, PciDevice) else {}
        for i, want, res_name, attrs in listed:
            driver = _vf_driver(vfs.get(i), want)
            if driver is None and res_name is None:
                continue  # unbound, or bound to nothing this host can name: nothing to hand out
            key = res_name or resource_name(name, driver or "")
            r = out.setdefault(key, Resource(key, prefix, physnet=entry.physical_network))
            r.pfs.setdefault(name, set()).add(i)
            r.totals[name] = total
            if entry.selector.pci_address is not None:
                r.roots[name] = entry.selector.pci_address
            if driver is not None:
                r.drivers.add(driver)
            if isinstance(pf, PciDevice) and pf.sriov is not None and pf.sriov.vf_device is not None:
                r.vendors.add(f"{pf.vendor_id:04x}")
                r.devices.add(f"{pf.sriov.vf_device:04x}")
            r.attrs.append(attrs)
    return [out[k] for k in sorted(out)]


def device_plugin(state: DesiredState, inv: Inventory) -> dict[str, Any]:
    """The device plugin's config.json: one resource per name, selectors as a list."""
    resource_list = []
    for r in resources(state, inv):
        selector: dict[str, Any] = {}
        if r.vendors:
            selector["vendors"] = sorted(r.vendors)
        if r.devices:
            selector["devices"] = sorted(r.devices)
        if r.drivers:
            selector["drivers"] = sorted(r.drivers)
        # a PF the state chose by address, all of whose VFs are in the resource: rootDevices (its address); any
        # other: pfNames with the VF range (the plugin's "PF#0,2-7,9")
        whole = {pf for pf, addr in r.roots.items() if r.pfs[pf] == set(range(r.totals[pf]))}
        by_name = {pf: ids for pf, ids in r.pfs.items() if pf not in whole}
        if by_name:
            selector["pfNames"] = [f"{pf}#{format_indices(sorted(ids))}" for pf, ids in sorted(by_name.items())]
        if whole:
            selector["rootDevices"] = sorted(r.roots[pf] for pf in whole)
        res: dict[str, Any] = {"resourceName": r.name}
        if r.prefix != PLUGIN_DEFAULT_PREFIX:
            res["resourcePrefix"] = r.prefix
        res["deviceType"] = "netDevice"  # the plugin's type for VFs on a netdev driver and on vfio-pci alike
        res["selectors"] = [selector]
        resource_list.append(res)
    return {"resourceList": resource_list}


def configmap(config: dict[str, Any], node: str, name: str = "sriovdp-config",
              namespace: str = "kube-system") -> dict[str, Any]:
    """The ConfigMap the device plugin's DaemonSet mounts, keyed by node: the plugin reads `config.json`; the
    SR-IOV network operator's own layout keys each node's config by the node's name."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {node: json.dumps(config, indent=2, sort_keys=True)}}


_CNI_ATTRS = (("vlan", "vlan"), ("qos", "vlanQoS"), ("spoofchk", "spoofchk"), ("trust", "trust"),
              ("link_state", "link_state"), ("min_tx_rate", "min_tx_rate"), ("max_tx_rate", "max_tx_rate"))


def network_attachments(state: DesiredState, inv: Inventory, namespace: str = "default") -> list[dict[str, Any]]:
    """A NetworkAttachmentDefinition per resource: sriov-cni with the attributes every VF of the resource shares
    in the state, where they differ from a new VF's (a VLAN given to some of its VFs only is left to the pod's own
    configuration)."""
    out = []
    for r in resources(state, inv):
        name = r.name.lower().replace("_", "-").strip("-")[:63] or "sriov"
        config: dict[str, Any] = {"cniVersion": "0.4.0", "name": name, "type": "sriov"}
        for key, cni in _CNI_ATTRS:
            values = {json.dumps(a.get(key)) for a in r.attrs}
            value = r.attrs[0].get(key) if r.attrs else None
            if len(values) == 1 and value is not None and value != BY_KEY[key].default:  # a new VF's value: unsaid
                config[cni] = ("on" if value else "off") if isinstance(value, bool) else value
        config["ipam"] = {}
        out.append({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
                    "metadata": {"name": name, "namespace": namespace,
                                 "annotations": {"k8s.v1.cni.cncf.io/resourceName": f"{r.prefix}/{r.name}"}},
                    "spec": {"config": json.dumps(config, sort_keys=True)}})
    return out


def _label(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:63]


def nfd_features(inv: Inventory, in_sync: bool | None) -> str:
    """NFD's local feature file: assignable VFs per PF, the IOMMU, whether every VF of a PF has an IOMMU group
    of its own (the ACS path is clean), and whether the host is in its desired state."""
    lines = [f"# sriovctl: SR-IOV facts NFD's own labels lack (labels under {NFD_PREFIX}/)",
             f"{NFD_PREFIX}/iommu={'true' if inv.iommu_groups_present else 'false'}"]
    for pf in inv.pfs:
        vfs = inv.vfs_of(pf)
        name = _label(pf.netdevs[0].name if pf.netdevs else str(pf.address).replace(":", "-"))
        assignable = sum(1 for v in vfs if v.assignability is not None and v.assignability.assignable)
        lines.append(f"{NFD_PREFIX}/{name}.assignable-vfs={assignable}")
        lines.append(f"{NFD_PREFIX}/{name}.acs-clean={'true' if vfs and assignable == len(vfs) else 'false'}")
    if in_sync is not None:
        lines.append(f"{NFD_PREFIX}/state-in-sync={'true' if in_sync else 'false'}")
    text = "\n".join(lines) + "\n"
    if len(text.encode()) > NFD_LIMIT:
        raise ValueError(f"NFD feature file of {len(text.encode())} bytes: more than {NFD_LIMIT}")
    return text


def nova(state: DesiredState, inv: Inventory, part: str) -> str:
    """``compute``: `[pci] device_spec` per resource; ``api``: `[pci] alias` per resource; ``neutron``: the SR-IOV
    agent's `[sriov_nic] physical_device_mappings` (PFs with a physical-network)."""
    rs = resources(state, inv)
    if part == "neutron":
        pairs = sorted({f"{r.physnet}:{pf}" for r in rs if r.physnet for pf in r.pfs})
        return "[sriov_nic]\n" + (f"physical_device_mappings = {','.join(pairs)}\n" if pairs else "")
    lines = ["[pci]"]
    for r in rs:
        for pf in sorted(r.pfs):
            if part == "compute":
                spec: dict[str, Any] = {"devname": pf}
                if r.physnet:
                    spec["physical_network"] = r.physnet
                else:
                    spec.update({k: v for k, v in (("vendor_id", min(r.vendors, default=None)),
                                                    ("product_id", min(r.devices, default=None))) if v})
                lines.append(f"device_spec = {json.dumps(spec, sort_keys=True)}")
        if part == "api" and r.vendors and r.devices:
            alias = {"name": r.name, "vendor_id": min(r.vendors), "product_id": min(r.devices),
                     "device_type": "type-VF"}
            lines.append(f"alias = {json.dumps(alias, sort_keys=True)}")
    return "\n".join(dict.fromkeys(lines)) + "\n"  # a PF in two resources is one device_spec
