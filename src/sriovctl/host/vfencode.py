"""RTM_SETLINK requests carrying VF changes, encoded with struct (include/uapi/linux/if_link.h), the mirror of
host/vfinfo.py's decoder.

pyroute2 builds every attribute as a Python object first: at 1,024 VFs that was 3.0 of 6.2 s of a `vf set`
under the profiler in the lab (netdevsim, TCG), the largest single cost. The structs are fixed, so we pack them
directly; tests/unit/test_netlink_codec.py holds the bytes equal to pyroute2's for every attribute kind (the
encoding the lab proved first).
"""

from __future__ import annotations

import struct

from sriovctl.host.netlink import LINK_STATE_CODES, LinkState, VfChange, kernel_order
from sriovctl.host.vfinfo import (
    ETH_P_8021AD,
    IFLA_VF_INFO,
    IFLA_VF_LINK_STATE,
    IFLA_VF_MAC,
    IFLA_VF_RATE,
    IFLA_VF_RSS_QUERY_EN,
    IFLA_VF_SPOOFCHK,
    IFLA_VF_TRUST,
    IFLA_VF_VLAN,
    IFLA_VF_VLAN_INFO,
    IFLA_VF_VLAN_LIST,
    IFLA_VFINFO_LIST,
)

RTM_GETLINK, RTM_SETLINK = 18, 19  # linux/rtnetlink.h
IFLA_EXT_MASK = 29
_FLAGS = {"spoofchk": IFLA_VF_SPOOFCHK, "trust": IFLA_VF_TRUST, "rss_query_en": IFLA_VF_RSS_QUERY_EN}


def _nla(kind: int, payload: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


def _mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def vf_attr(c: VfChange) -> bytes:
    """One change as the kernel's do_setvfinfo() reads it: struct ifla_vf_* (each starts with __u32 vf)."""
    if c.attr == "mac":
        return _nla(IFLA_VF_MAC, struct.pack("=I32s", c.vf, _mac(str(c.value))))  # struct ifla_vf_mac
    if c.attr == "vlan":
        vlan, qos, proto = c.vlan_spec()
        if proto == "802.1ad":  # struct ifla_vf_vlan_info: vf, vlan, qos, __be16 vlan_proto, padded to 16
            info = struct.pack("=III", c.vf, vlan, qos) + struct.pack("!H", ETH_P_8021AD) + b"\0\0"
            return _nla(IFLA_VF_VLAN_LIST, _nla(IFLA_VF_VLAN_INFO, info))
        return _nla(IFLA_VF_VLAN, struct.pack("=III", c.vf, vlan, qos))
    if c.attr == "rate":
        lo, hi = c.rate_spec()
        return _nla(IFLA_VF_RATE, struct.pack("=III", c.vf, lo, hi))
    if c.attr == "link_state":
        return _nla(IFLA_VF_LINK_STATE, struct.pack("=II", c.vf, LINK_STATE_CODES[LinkState(str(c.value))]))
    return _nla(_FLAGS[c.attr], struct.pack("=II", c.vf, int(bool(c.value))))


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
