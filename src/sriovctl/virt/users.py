"""Running libvirt domains as users of PCI devices, for the interlocks (inuse.UsageScan takes this as a source):
through libvirt's API (read-only) when libvirt-python is installed and libvirtd answers, else from the live
domain XML under /run/libvirt/qemu/. Unreadable or unparseable sources make every device "maybe in use"."""

from __future__ import annotations

import contextlib
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

from sriovctl.host.base import Host
from sriovctl.inuse import Unknown
from sriovctl.model import Use, UseKind
from sriovctl.pci.address import PciAddress
from sriovctl.untrusted import shown
from sriovctl.virt.xml import pci_source_strict


def _pci_sources(root: ET.Element, where: str, unknown: list[Unknown] | None) -> list[PciAddress]:
    """The PCI functions a domain holds. An address libvirt accepts and sriovctl cannot read (or out of
    range) makes every device "maybe in use" (fail closed): ignoring it let a count change destroy the VF."""
    out = []
    for el in root.iter():
        try:
            a = pci_source_strict(el)
        except ValueError:
            if unknown is not None:
                unknown.append(Unknown(where, "has a hostdev PCI address sriovctl cannot read"))
            continue
        if a is not None:
            out.append(a)
    return out


LIVE_XML_LIMIT = 4 << 20  # a domain's live XML; libvirt's own are tens of KB


LIVE_DIR = "run/libvirt/qemu"  # the running domains' live XML (libvirtd's status files)
DEFINED_DIR = "etc/libvirt/qemu"  # the persistent definitions


def libvirt_file_users(host: Host, unknown: list[Unknown] | None = None, folder: str = LIVE_DIR
                       ) -> dict[PciAddress, list[Use]]:
    """PCI addresses referenced by running libvirt domains, from their live XML under /run/libvirt/qemu (or by
    defined ones, ``folder`` DEFINED_DIR). A file that cannot be read or parsed (too large, cut short, an entity
    bomb) is added to ``unknown``."""
    out: dict[PciAddress, list[Use]] = {}
    for name in host.listdir(folder):
        if not name.endswith(".xml"):
            continue
        raw = host.read_bytes(f"{folder}/{name}", LIVE_XML_LIMIT + 1)
        where = f"libvirt {'live ' if folder == LIVE_DIR else ''}XML /{folder}/{shown(name)[1:-1]}"
        if raw is None:
            if host.exists(f"{folder}/{name}") and unknown is not None:
                unknown.append(Unknown(where, "cannot be read"))
            continue
        if len(raw) > LIVE_XML_LIMIT:
            if unknown is not None:
                unknown.append(Unknown(where, f"is larger than {LIVE_XML_LIMIT} bytes"))
            continue
        try:
            root = ET.fromstring(raw)
        except ET.ParseError as e:
            if unknown is not None:
                unknown.append(Unknown(where, f"does not parse ({shown(str(e), 60)[1:-1]})"))
            continue
        dom = root.find(".//domain")
        dom = dom if dom is not None else root
        dname = dom.findtext("name") or name.removesuffix(".xml")
        for addr in _pci_sources(dom, where, unknown):
            out.setdefault(addr, []).append(Use(UseKind.LIBVIRT, dname, f"libvirt domain {dname}"))
    return out


@contextlib.contextmanager
def _read_only(uri: str) -> Iterator[tuple[Any, Any] | None]:
    """(the libvirt module, a read-only connection to ``uri``), closed afterwards; None when libvirt-python is
    missing or nobody answers (each caller then falls back to the files, or goes without)."""
    try:
        import libvirt
    except ImportError:
        yield None
        return
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # libvirt prints its errors to stderr otherwise
    try:
        conn = libvirt.openReadOnly(uri)
    except libvirt.libvirtError:
        yield None
        return
    try:
        yield libvirt, conn
    finally:
        conn.close()


def libvirt_api_users(uri: str, unknown: list[Unknown] | None = None) -> dict[PciAddress, list[Use]] | None:
    """PCI addresses referenced by active domains, asked through a read-only libvirt connection; None when
    libvirt-python is missing or nobody answers at ``uri`` (the caller falls back to the files)."""
    with _read_only(uri) as ro:
        return None if ro is None else _active_users(*ro, unknown)


def _active_users(libvirt: Any, conn: Any, unknown: list[Unknown] | None) -> dict[PciAddress, list[Use]] | None:
    from sriovctl.virt.libvirt_api import state_name

    out: dict[PciAddress, list[Use]] = {}
    try:
        for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            try:
                state = state_name(dom)
                root = ET.fromstring(dom.XMLDesc(0))
            except libvirt.libvirtError as e:
                if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # it stopped while we looked
                if unknown is not None:
                    unknown.append(Unknown(f"libvirt domain {shown(dom.name())}", f"cannot be read ({e})"))
                continue
            except ET.ParseError as e:
                if unknown is not None:
                    unknown.append(Unknown(f"libvirt domain {shown(dom.name())}'s XML", f"does not parse ({e})"))
                continue
            for addr in _pci_sources(root, f"libvirt domain {shown(dom.name())}", unknown):
                out.setdefault(addr, []).append(Use(UseKind.LIBVIRT, dom.name(), f"libvirt domain {dom.name()} ({state})"))
    except libvirt.libvirtError:
        return None
    return out


def _uri(host: Host) -> str | None:
    uri = os.environ.get("SRIOVCTL_LIBVIRT_URI")
    if uri is None and host.root == "/" and any(
            os.path.exists(f"/run/libvirt/{s}") for s in ("libvirt-sock-ro", "virtqemud-sock-ro")):
        uri = "qemu:///system"
    return uri


def _api_domains(uri: str, unknown: list[Unknown]) -> dict[PciAddress, tuple[str, str]] | None:
    with _read_only(uri) as ro:
        return None if ro is None else _all_domains(*ro, unknown)


def _all_domains(libvirt: Any, conn: Any, unknown: list[Unknown]) -> dict[PciAddress, tuple[str, str]] | None:
    from sriovctl.virt.libvirt_api import state_name

    out: dict[PciAddress, tuple[str, str]] = {}
    try:
        for dom in conn.listAllDomains(0):
            try:
                name, state, active = str(dom.name()), state_name(dom), bool(dom.isActive())
                xmls = ([dom.XMLDesc(0)] if active else []) + \
                    ([dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)] if dom.isPersistent() else [])
                for xml in xmls:
                    for addr in _pci_sources(ET.fromstring(xml), f"libvirt domain {shown(name)}", unknown):
                        if addr not in out or (active and out[addr][1] == "shut off"):
                            out[addr] = (name, state)
            except libvirt.libvirtError as e:
                if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:  # else: it went while we looked
                    unknown.append(Unknown(f"libvirt domain {shown(str(dom.name()))}", f"cannot be read ({e})"))
            except ET.ParseError as e:
                unknown.append(Unknown(f"libvirt domain {shown(str(dom.name()))}'s XML", f"does not parse ({e})"))
    except libvirt.libvirtError:
        return None
    return out


def domain_owners(host: Host, unknown: list[Unknown]) -> dict[PciAddress, tuple[str, str]]:
    """Every VF a libvirt domain holds, running or only defined: address → (domain name, its state in virsh's
    words). Through libvirt's API where libvirt_users would ask it, else the live XML files (running) and the
    persistent definitions under /etc/libvirt/qemu ("shut off" unless running too)."""
    uri = _uri(host)
    api_unknown: list[Unknown] = []
    found = _api_domains(uri, api_unknown) if uri else None
    if found is not None:
        unknown.extend(api_unknown)
        return found
    out = {a: (uses[0].id, "shut off") for a, uses in libvirt_file_users(host, unknown, DEFINED_DIR).items()}
    out.update({a: (uses[0].id, "running") for a, uses in libvirt_file_users(host, unknown).items()})
    return out


def libvirt_users(host: Host, unknown: list[Unknown] | None = None) -> dict[PciAddress, list[Use]]:
    """Through libvirt's API on a live host (or wherever $SRIOVCTL_LIBVIRT_URI points), else from files."""
    uri = _uri(host)
    api_unknown: list[Unknown] = []
    found = libvirt_api_users(uri, api_unknown) if uri else None
    if found is not None:
        if unknown is not None:
            unknown.extend(api_unknown)
        return found
    return libvirt_file_users(host, unknown)


def domain_names(host: Host) -> tuple[set[str], set[str], bool]:
    """(running domains, defined (persistent) domains, whether libvirt's API answered): through the API where
    libvirt_users would ask it, else from the live XML files and the persistent definitions' file names."""
    uri = _uri(host)
    with _read_only(uri) if uri else contextlib.nullcontext() as ro:
        if ro is not None:
            libvirt, conn = ro
            try:
                doms = conn.listAllDomains(0)
                return ({str(d.name()) for d in doms if d.isActive()},
                        {str(d.name()) for d in doms if d.isPersistent()}, True)
            except libvirt.libvirtError:
                pass  # fall back to the files
    running = {dom for uses in libvirt_file_users(host).values() for dom in (u.id for u in uses)}
    running |= {n.removesuffix(".xml") for n in host.listdir(LIVE_DIR) if n.endswith(".xml")}
    defined = {n.removesuffix(".xml") for n in host.listdir(DEFINED_DIR) if n.endswith(".xml")}
    return running, defined, False


def domain_uuid(host: Host, name: str) -> str | None:
    """A domain's UUID through libvirt's API (read-only), where libvirt_users would ask it; None otherwise."""
    uri = _uri(host)
    with _read_only(uri) if uri else contextlib.nullcontext() as ro:
        if ro is None:
            return None
        libvirt, conn = ro
        try:
            return str(conn.lookupByName(name).UUIDString())
        except libvirt.libvirtError:
            return None  # recorded without one
