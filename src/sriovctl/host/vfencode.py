"""RTM_SETLINK requests carrying VF changes, encoded with struct from the request rows (attrs.VF_REQUESTS;
include/uapi/linux/if_link.h), the mirror of host/vfinfo.py's decoder.

pyroute2 builds every attribute as a Python object first: at 1,024 VFs that was 3.0 of 6.2 s of a `vf set`
under the profiler in the lab (netdevsim, TCG), the largest single cost. The structs are fixed, so we pack them
directly; tests/unit/test_netlink_codec.py holds the bytes equal to pyroute2's for every attribute kind (the
encoding the lab proved first).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from sriovctl import attrs
from sriovctl.attrs import ValueKind
from sriovctl.host.netlink import VfChange, kernel_order
from sriovctl.host.vfinfo import ETH_P_8021AD, IFLA_VF_INFO, IFLA_VF_VLAN_INFO, IFLA_VF_VLAN_LIST, IFLA_VFINFO_LIST

RTM_GETLINK, RTM_SETLINK = 18, 19  # linux/rtnetlink.h
IFLA_EXT_MASK = 29
QINQ_EXTRA = 8  # an 802.1ad VLAN travels in IFLA_VF_VLAN_LIST: two more headers, __be16 proto and padding


def _nla(kind: int, payload: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


def _wire(attr: attrs.VfAttr) -> Callable[[object], object]:
    """How a row's value travels in its request's struct — a MAC's octets (``__u8 mac[32]``, zero-padded), a flag
    0/1, a choice its index in the row's choices (the kernel's codes), a number as it is — made once per row: it
    runs for every value of every VF (6,000 at 1,024 VFs)."""
    if attr.kind is ValueKind.MAC:
        return lambda v: bytes.fromhex(str(v).replace(":", ""))
    if attr.kind is ValueKind.BOOL:
        return lambda v: 1 if v else 0
    if attr.kind is ValueKind.CHOICE:
        choices = attr.choices
        return lambda v: choices.index(str(v))
    return lambda v: v


def _compile(request: attrs.VfRequest) -> Callable[[int, tuple[object, ...]], bytes]:
    """The packer of one request row: its IFLA_VF_* header (fixed: the struct's size is) and its struct."""
    group = [a.key for a in attrs.REQUEST_ATTRS[request.name]]
    if list(request.keys) != group[:len(request.keys)]:
        raise ValueError(f"{request.name}: its struct members must lead its group {group}")
    packer = struct.Struct(request.layout)
    header = struct.pack("=HH", 4 + packer.size, request.nla)
    wires = tuple(_wire(attrs.BY_KEY[k]) for k in request.keys)
    pack = packer.pack
    if len(wires) == 1:
        (wire,) = wires
        return lambda vf, values: header + pack(vf, wire(values[0]))
    return lambda vf, values: header + pack(vf, *(w(v) for w, v in zip(wires, values, strict=False)))


_PACKERS: dict[attrs.VfRequest, Callable[[int, tuple[object, ...]], bytes]] = {}


def vf_attr(c: VfChange) -> bytes:
    """One change as the kernel's do_setvfinfo() reads it: its request row's struct ifla_vf_* (``__u32 vf``,
    then the values). The one exception the kernel makes: a VLAN whose protocol is not 802.1Q only travels in
    IFLA_VF_VLAN_LIST as struct ifla_vf_vlan_info (vf, vlan, qos, __be16 vlan_proto, padded to 16)."""
    request = attrs.REQUESTS[c.attr]
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    if _qinq(c):
        info = struct.pack("=III", c.vf, int(str(values[0])), int(str(values[1])))
        return _nla(IFLA_VF_VLAN_LIST, _nla(IFLA_VF_VLAN_INFO, info + struct.pack("!H", ETH_P_8021AD) + b"\0\0"))
    packer = _PACKERS.get(request)
    if packer is None:
        packer = _PACKERS[request] = _compile(request)
    return packer(c.vf, values)


def encoded_size(c: VfChange) -> int:
    """What ``c`` adds to an IFLA_VF_INFO entry, in bytes (without encoding it)."""
    return 4 + struct.calcsize(attrs.REQUESTS[c.attr].layout) + (QINQ_EXTRA if _qinq(c) else 0)


def _qinq(c: VfChange) -> bool:
    """A VLAN of protocol 802.1ad: the encoding the kernel takes only in IFLA_VF_VLAN_LIST."""
    return c.attr == "vlan" and isinstance(c.value, tuple) and str(c.value[2]).lower() == "802.1ad"


def setlink(seq: int, index: int, changes: list[VfChange], flags: int) -> bytes:
    """One RTM_SETLINK message for ``changes`` (one IFLA_VF_INFO per VF, in kernel order): the caller keeps
    the VF list under 64 KiB (netlink_real.batches)."""
    entries = []
    vf, current = None, b""
    for c in kernel_order(changes):
        if c.vf != vf and vf is not None:
            entries.append(_nla(IFLA_VF_INFO, current))
            current = b""
        vf = c.vf
        current += vf_attr(c)
    if vf is not None:
        entries.append(_nla(IFLA_VF_INFO, current))
    body = struct.pack("=BxHiII", 0, 0, index, 0, 0) + _nla(IFLA_VFINFO_LIST, b"".join(entries))
    return struct.pack("=IHHII", 16 + len(body), RTM_SETLINK, flags, seq, 0) + body


def getlink(seq: int, index: int, ext_mask: int, flags: int) -> bytes:
    """RTM_GETLINK for one link by ifindex with IFLA_EXT_MASK (which VF facts the reply carries)."""
    body = struct.pack("=BxHiII", 0, 0, index, 0, 0) + _nla(IFLA_EXT_MASK, struct.pack("=I", ext_mask))
    return struct.pack("=IHHII", 16 + len(body), RTM_GETLINK, flags, seq, 0) + body
