"""libvirt through libvirt-python (an optional extra: `pip install sriovctl[libvirt]`): who uses which VF,
attach and detach. libvirt's errors become our one-line errors with a hint."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from sriovctl.errors import NoInputError, RefusedError, SriovctlError, UnavailableError
from sriovctl.pci.address import PciAddress
from sriovctl.virt.xml import parse_address, pci_source


@dataclass(frozen=True)
class DomainUse:
    domain: str
    running: bool  # active: QEMU runs (paused or not)
    state: str  # as virsh says it: "running", "paused", "shut off", …
    address: PciAddress
    kind: str  # "interface" or "hostdev"
    mac: str | None


# virDomainState, in virsh's words
_STATES = ("no state", "running", "idle", "paused", "in shutdown", "shut off", "crashed", "pmsuspended")


def state_name(dom: Any) -> str:
    code = int(dom.state()[0])
    return _STATES[code] if 0 <= code < len(_STATES) else f"state {code}"


def _lib() -> Any:
    try:
        import libvirt
    except ImportError:
        raise UnavailableError("libvirt-python is not installed", hint="pip install 'sriovctl[libvirt]' "
                               "(building it needs libvirt-dev and pkg-config)") from None
    return libvirt


def connect(uri: str) -> Any:
    libvirt = _lib()
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as e:
        raise UnavailableError(f"libvirt {uri}: cannot connect: {e.get_error_message()}",
                               hint="is libvirtd (or virtqemud) running, and may this user use its socket?") from None


def _uses_in(xml: str, name: str, running: bool, state: str) -> list[DomainUse]:
    out = []
    for el in ET.fromstring(xml).iter():
        addr = pci_source(el)
        if addr is not None:
            mac = el.find("mac")
            out.append(DomainUse(name, running, state, addr, "hostdev" if el.tag == "hostdev" else "interface",
                                 None if mac is None else mac.get("address")))
    return out


def pool_networks(conn: Any, address: PciAddress, pf_netdev: str | None) -> list[str]:
    """Active libvirt hostdev networks whose pool holds this VF (listed, or through <pf dev=…/>)."""
    out = []
    for net in conn.listAllNetworks():
        if not net.isActive():
            continue
        fwd = ET.fromstring(net.XMLDesc(0)).find("forward")
        if fwd is None or fwd.get("mode") != "hostdev":
            continue
        listed = {parse_address(a) for a in fwd.findall("address")}
        pfs = {p.get("dev") for p in fwd.findall("pf")}
        if address in listed or (pf_netdev is not None and pf_netdev in pfs):
            out.append(str(net.name()))
    return out


def domain_uses(conn: Any) -> list[DomainUse]:
    """Every VF (PCI hostdev) referenced by any domain, live XML for running ones, persistent XML as well."""
    libvirt = _lib()
    out: list[DomainUse] = []
    for dom in conn.listAllDomains():
        running, state = bool(dom.isActive()), state_name(dom)
        seen = set()
        flags = [0] + ([libvirt.VIR_DOMAIN_XML_INACTIVE] if dom.isPersistent() else [])
        for f in flags:
            for u in _uses_in(dom.XMLDesc(f), dom.name(), running, state):
                if u.address not in seen:
                    seen.add(u.address)
                    out.append(u)
    return out


def _error(e: Any, what: str) -> SriovctlError:
    msg = e.get_error_message() if hasattr(e, "get_error_message") else str(e)
    hint = None
    if "Requested operation is not valid: domain is not running" in msg:
        hint = "change its persistent definition only, or start it"
    elif "not supported" in msg.lower():
        hint = "this libvirt/QEMU does not support that here"
    return RefusedError(f"{what}: libvirt refused: {msg}", hint=hint,
                        remedy="config-only" if hint and hint.startswith("change its persistent") else None)


def lookup(conn: Any, name: str) -> Any:
    libvirt = _lib()
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError:
        raise NoInputError(f"domain {name!r}: no such libvirt domain", hint="`virsh list --all` shows them") from None


def _device_op(conn: Any, domain: str, xml: str, live: bool, config: bool, action: str) -> None:
    libvirt = _lib()
    dom = lookup(conn, domain)
    flags = (libvirt.VIR_DOMAIN_AFFECT_LIVE if live else 0) | (libvirt.VIR_DOMAIN_AFFECT_CONFIG if config else 0)
    op = dom.attachDeviceFlags if action == "attach" else dom.detachDeviceFlags
    try:
        op(xml, flags or libvirt.VIR_DOMAIN_AFFECT_CURRENT)
    except libvirt.libvirtError as e:
        raise _error(e, f"domain {domain}: {action}") from None


def attach(conn: Any, domain: str, xml: str, live: bool, config: bool) -> None:
    _device_op(conn, domain, xml, live, config, "attach")


def detach(conn: Any, domain: str, xml: str, live: bool, config: bool) -> None:
    _device_op(conn, domain, xml, live, config, "detach")


def device_xml_of(conn: Any, domain: str, address: PciAddress, live: bool = True) -> str | None:
    """The domain's own element for this VF (libvirt wants it back to detach), from its live definition or
    (live=False) its persistent one."""
    dom = lookup(conn, domain)
    root = ET.fromstring(dom.XMLDesc(0 if live or not dom.isPersistent() else _lib().VIR_DOMAIN_XML_INACTIVE))
    for el in root.iter():
        if el.tag in ("interface", "hostdev") and any(pci_source(x) == address for x in el.iter()):
            return ET.tostring(el, encoding="unicode")
    return None
