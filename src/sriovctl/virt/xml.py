"""libvirt XML for VFs, built and parsed by the same objects; XML they do not model is left alone.

- :class:`HostdevInterface`: ``<interface type='hostdev' managed='yes'>`` — a network VF with MAC, one VLAN
  tag and an optional 802.1Qbh port profile (libvirt programs them on the VF through the PF).
- :class:`Hostdev`: ``<hostdev mode='subsystem' type='pci' managed='yes'>`` — any PCI function, no network
  configuration.
- :class:`HostdevNetwork`: ``<network>`` with ``<forward mode='hostdev' managed='yes'>`` and ``<pf dev=…/>`` or
  an explicit VF list, so a VM can ask for "any VF of this PF".

libvirt's run-time rules are checked here, before libvirt is called: one VLAN tag only (no trunks on hostdev
interfaces), no 802.1Qbg, 802.1Qbh only where the PF driver implements port profiles (Cisco enic).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Self

from sriovctl import attrs, drivers
from sriovctl.errors import FieldError, UsageError
from sriovctl.pci.address import PciAddress

_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", re.ASCII)
_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,64}", re.ASCII)


def _addr_el(parent: ET.Element, a: PciAddress, typed: bool = True) -> ET.Element:
    el = ET.SubElement(parent, "address")
    if typed:
        el.set("type", "pci")
    el.set("domain", f"0x{a.domain:04x}")
    el.set("bus", f"0x{a.bus:02x}")
    el.set("slot", f"0x{a.slot:02x}")
    el.set("function", f"0x{a.function:x}")
    return el


_SPACE = " \t\n\v\f\r"


def libvirt_uint(text: str) -> int:
    """A number as libvirt reads an address attribute: virXMLPropUInt(…, base 0) → virStrToLong_uip →
    strtoul(base 0): leading blanks, an optional '+', 0x… hex, 0… octal (`bus='013'` is bus 11), else
    decimal; nothing may follow, nothing negative, at most 32 bits. ValueError otherwise."""
    t = text.lstrip(_SPACE)
    t = t[1:] if t[:1] == "+" else t
    if t[:2] in ("0x", "0X"):
        digits, base, ok = t[2:], 16, "0123456789abcdefABCDEF"
    elif t[:1] == "0" and len(t) > 1:
        digits, base, ok = t[1:], 8, "01234567"
    else:
        digits, base, ok = t, 10, "0123456789"
    if not digits or len(digits) > 12 or any(c not in ok for c in digits):
        raise ValueError(text)
    n = int(digits, base)
    if n > 0xFFFFFFFF:
        raise ValueError(text)
    return n


def parse_address_strict(el: ET.Element | None) -> PciAddress | None:
    """libvirt's <address type='pci' domain='0x0000' bus='0x0b' slot='0x10' function='0x0'/> read as libvirt
    reads it; None if absent; ValueError when libvirt could read it and sriovctl cannot (or it is out of range)."""
    if el is None:
        return None
    return PciAddress(libvirt_uint(el.get("domain", "0")), libvirt_uint(el.get("bus", "0")),
                      libvirt_uint(el.get("slot", "0")), libvirt_uint(el.get("function", "0")))


def parse_address(el: ET.Element | None) -> PciAddress | None:
    """parse_address_strict, with a malformed address as None (where an address is only shown)."""
    try:
        return parse_address_strict(el)
    except ValueError:
        return None


def is_pci_source(el: ET.Element) -> bool:
    """<hostdev type='pci'> (or without a type), <interface type='hostdev'>, or the <actual type='hostdev'> that
    libvirt's status XML records for an interface from a hostdev network."""
    if el.tag == "hostdev":
        return el.get("type", "pci") == "pci"
    return el.tag in ("interface", "actual") and el.get("type") == "hostdev"


def pci_source(el: ET.Element) -> PciAddress | None:
    """The host PCI function a domain XML element hands to the guest (None: not such an element, or an
    address sriovctl cannot read — the in-use scan uses pci_source_strict and fails closed on that)."""
    return parse_address(el.find("./source/address")) if is_pci_source(el) else None


def pci_source_strict(el: ET.Element) -> PciAddress | None:
    return parse_address_strict(el.find("./source/address")) if is_pci_source(el) else None


def _child(parent: ET.Element, tag: str) -> ET.Element:
    el = parent.find(tag)
    return el if el is not None else ET.SubElement(parent, tag)


def to_string(el: ET.Element) -> str:
    ET.indent(el, space="  ")
    return ET.tostring(el, encoding="unicode").replace('"', "'").replace(" />", "/>") + "\n"


def check_mac(mac: str, what: str) -> str:
    """A guest interface's MAC: the same rule as a VF's (attrs.check_mac)."""
    return attrs.check_mac(what, mac)


class _Device:
    """A device element. ``element`` is the XML; properties read and write it in place."""

    tag = ""
    type = ""  # the element's type attribute
    described = ""  # for the error when parsing something else
    typed_source = True  # <interface>'s source address carries type='pci'; <hostdev>'s does not

    def __init__(self, element: ET.Element) -> None:
        self.element = element

    @classmethod
    def parse(cls, text: str) -> Self:
        el = ET.fromstring(text)
        if el.tag != cls.tag or el.get("type") != cls.type:
            raise UsageError(f"not {cls.described} element")
        return cls(el)

    @property
    def source(self) -> PciAddress | None:
        return parse_address(self.element.find("./source/address"))

    @source.setter
    def source(self, a: PciAddress) -> None:
        src = _child(self.element, "source")
        old = src.find("address")
        if old is not None:
            src.remove(old)
        _addr_el(src, a, typed=self.typed_source)

    @property
    def alias(self) -> str | None:
        el = self.element.find("alias")
        return None if el is None else el.get("name")

    @alias.setter
    def alias(self, name: str) -> None:
        if not name.startswith("ua-") or not _NAME.fullmatch(name):
            raise FieldError("alias", "alias", repr(name), "a user alias must start with 'ua-' and use letters, "
                             "digits, _.+-", hint="libvirt keeps only aliases with the ua- prefix")
        _child(self.element, "alias").set("name", name)

    @property
    def guest_address(self) -> PciAddress | None:
        el = self.element.find("./address[@type='pci']")
        return parse_address(el)

    @guest_address.setter
    def guest_address(self, a: PciAddress) -> None:
        old = self.element.find("./address[@type='pci']")
        if old is not None:
            self.element.remove(old)
        _addr_el(self.element, a)

    def set_rom(self, bar: bool | None = None, file: str | None = None) -> None:
        rom = _child(self.element, "rom")
        if bar is not None:
            rom.set("bar", "on" if bar else "off")
        if file is not None:
            rom.set("file", file)

    def set_driver_vfio(self) -> None:
        _child(self.element, "driver").set("name", "vfio")

    def to_xml(self) -> str:
        return to_string(self.element)


class HostdevInterface(_Device):
    tag = "interface"
    type = "hostdev"
    described = "an <interface type='hostdev'>"

    @classmethod
    def new(cls, source: PciAddress, mac: str | None = None) -> HostdevInterface:
        el = ET.Element("interface", {"type": "hostdev", "managed": "yes"})
        dev = cls(el)
        if mac is not None:
            dev.mac = mac
        dev.source = source
        return dev

    @property
    def mac(self) -> str | None:
        el = self.element.find("mac")
        return None if el is None else el.get("address")

    @mac.setter
    def mac(self, mac: str) -> None:
        _child(self.element, "mac").set("address", check_mac(mac, "interface"))

    @property
    def vlan_tags(self) -> list[int]:
        return [int(t.get("id", "0")) for t in self.element.findall("./vlan/tag")]

    def set_vlan(self, tag: int) -> None:
        if not 0 <= tag <= 4095:
            raise FieldError("vlan", "VLAN", tag, "must be 0..4095")
        old = self.element.find("vlan")
        if old is not None:
            self.element.remove(old)
        ET.SubElement(ET.SubElement(self.element, "vlan"), "tag", {"id": str(tag)})

    def set_port_profile(self, profile_id: str) -> None:
        if not _NAME.fullmatch(profile_id):
            raise FieldError("profile", "port profile", repr(profile_id), "not a port-profile name")
        old = self.element.find("virtualport")
        if old is not None:
            self.element.remove(old)
        vp = ET.SubElement(self.element, "virtualport", {"type": "802.1Qbh"})
        ET.SubElement(vp, "parameters", {"profileid": profile_id})

    def check_libvirt_rules(self, pf_driver: str | None) -> list[str]:
        """Raise for what libvirt refuses at run time; return warnings."""
        vlan = self.element.find("vlan")
        if vlan is not None and (vlan.get("trunk") == "yes" or len(vlan.findall("tag")) > 1):
            raise UsageError("interface: VLAN trunks are refused by libvirt on hostdev interfaces",
                             hint="give the VF one VLAN tag; for trunks use a bridge or macvtap interface")
        vp = self.element.find("virtualport")
        if vp is not None:
            kind = vp.get("type")
            if kind == "802.1Qbg":
                raise UsageError("interface: 802.1Qbg port profiles are refused by libvirt on hostdev interfaces",
                                 hint="use 802.1Qbh on an adapter that supports it, or drop the profile")
            if kind == "802.1Qbh" and not drivers.driver(pf_driver).port_profiles:
                raise UsageError(f"interface: an 802.1Qbh port profile needs a PF driver that implements port profiles "
                                 f"(Cisco enic); this VF's PF is driven by {pf_driver or 'no driver'}",
                                 hint="drop the port profile, or force it", remedy="drop-profile")
        return []


class Hostdev(_Device):
    tag = "hostdev"
    type = "pci"
    described = "a <hostdev type='pci'>"
    typed_source = False

    @classmethod
    def new(cls, source: PciAddress) -> Hostdev:
        el = ET.Element("hostdev", {"mode": "subsystem", "type": "pci", "managed": "yes"})
        dev = cls(el)
        dev.source = source
        return dev


class HostdevNetwork:
    """A libvirt network handing out VFs of a PF (libvirt picks a free one for each interface that uses it)."""

    def __init__(self, element: ET.Element) -> None:
        self.element = element

    @classmethod
    def new(cls, name: str, pf_netdev: str | None = None, vfs: list[PciAddress] | None = None) -> HostdevNetwork:
        if not _NAME.fullmatch(name):
            raise FieldError("name", "network name", repr(name), "a network name uses letters, digits, _.+-")
        if (pf_netdev is None) == (vfs is None):
            raise UsageError("network: name either the PF or an explicit VF list")
        el = ET.Element("network")
        ET.SubElement(el, "name").text = name
        fwd = ET.SubElement(el, "forward", {"mode": "hostdev", "managed": "yes"})
        ET.SubElement(fwd, "driver", {"name": "vfio"})
        if pf_netdev is not None:
            ET.SubElement(fwd, "pf", {"dev": pf_netdev})
        for a in vfs or []:
            _addr_el(fwd, a)
        return cls(el)

    @classmethod
    def parse(cls, text: str) -> HostdevNetwork:
        el = ET.fromstring(text)
        fwd = el.find("forward")
        if el.tag != "network" or fwd is None or fwd.get("mode") != "hostdev":
            raise UsageError("not a <network> with <forward mode='hostdev'>")
        return cls(el)

    @property
    def name(self) -> str | None:
        return self.element.findtext("name")

    @property
    def pf(self) -> str | None:
        el = self.element.find("./forward/pf")
        return None if el is None else el.get("dev")

    @property
    def vfs(self) -> list[PciAddress]:
        return [a for a in (parse_address(x) for x in self.element.findall("./forward/address")) if a is not None]

    def to_xml(self) -> str:
        return to_string(self.element)


def domain_wrapper(device_xml: str, name: str = "sriovctl-validate", qemu_args: Sequence[str] = ()) -> str:
    """A minimal complete domain holding one device: for virt-xml-validate and for defining test domains.
    (<features><acpi/></features>: libvirt 9.0 otherwise passes -no-acpi, which QEMU 10 rejects.)
    ``qemu_args`` go to QEMU's command line through libvirt's qemu namespace (e.g. NATIVE_PCIE_HOTPLUG)."""
    dev = "\n".join("    " + line for line in device_xml.strip().splitlines())
    ns, extra = "", ""
    if qemu_args:
        ns = " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"
        from xml.sax.saxutils import quoteattr  # here: it imports urllib.request (13 ms), which a scrape never needs

        extra = "  <qemu:commandline>\n" + "".join(f"    <qemu:arg value={quoteattr(v)}/>\n" for v in qemu_args) + \
            "  </qemu:commandline>\n"
    devices = f"  <devices>\n{dev}\n  </devices>\n" if dev.strip() else "  <devices/>\n"
    return (f"<domain type='qemu'{ns}>\n  <name>{name}</name>\n  <memory unit='MiB'>128</memory>\n  <vcpu>1</vcpu>\n"
            f"  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n  </os>\n  <features>\n    <acpi/>\n  </features>\n"
            f"{devices}{extra}</domain>\n")
