"""An independent reader of a PF's VF list, for the lab tests' verdicts: one RTM_GETLINK on a raw
AF_NETLINK socket, parsed here from linux/rtnetlink.h and linux/if_link.h. It imports nothing from src/ and
not pyroute2, so a bug in sriovctl's netlink layer cannot hide itself from the test that checks it.

Past 64 KiB the IFLA_VFINFO_LIST nest's 16-bit length wraps (1,024 netdevsim VFs: a 201,840-byte reply); the
entries are all in the message. This reader takes exactly IFLA_NUM_VF IFLA_VF_INFO entries from the nest's
start, and checks that their end lies a multiple of 65,536 bytes past the wrapped length.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

RTM_GETLINK, RTM_NEWLINK, NLMSG_ERROR = 18, 16, 2
NLM_F_REQUEST = 1
IFLA_IFNAME, IFLA_NUM_VF, IFLA_VFINFO_LIST, IFLA_EXT_MASK = 3, 21, 22, 29
IFLA_VF_INFO = 1
IFLA_VF_MAC, IFLA_VF_VLAN, IFLA_VF_SPOOFCHK, IFLA_VF_TRUST, IFLA_VF_VLAN_LIST = 1, 2, 4, 9, 12
IFLA_VF_VLAN_INFO = 1
RTEXT_FILTER_VF, RTEXT_FILTER_SKIP_STATS = 1, 8
NLA_TYPE_MASK = 0x3FFF


@dataclass(frozen=True)
class RawVf:
    vf: int
    mac: str
    vlan: int
    qos: int
    proto: int  # 0x8100 / 0x88a8; 0 when the kernel sent no IFLA_VF_VLAN_LIST
    spoofchk: int
    trust: int


@dataclass(frozen=True)
class RawReply:
    size: int  # bytes of the RTM_NEWLINK message
    num_vf: int
    wrapped: bool  # the nest's own length was short by a multiple of 65,536
    vfs: dict[int, RawVf]
    offsets: dict[int, int]  # VF -> where its IFLA_VF_INFO starts, from the nest's start


def _attrs(buf: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(type, payload start, payload end) of the attributes in buf[start:end], as they claim."""
    out = []
    off = start
    while off + 4 <= end:
        length, kind = struct.unpack_from("=HH", buf, off)
        if length < 4:
            break
        out.append((kind & NLA_TYPE_MASK, off + 4, off + length))
        off += (length + 3) & ~3
    return out


def _vf(buf: bytes, start: int, end: int) -> RawVf:
    f: dict[int, tuple[int, int]] = {kind: (s, e) for kind, s, e in _attrs(buf, start, end)}
    s, _ = f[IFLA_VF_MAC]
    vf = struct.unpack_from("=I", buf, s)[0]
    mac = ":".join(f"{b:02x}" for b in buf[s + 4:s + 10])
    s, _ = f[IFLA_VF_VLAN]
    _, vlan, qos = struct.unpack_from("=III", buf, s)
    proto = 0
    if IFLA_VF_VLAN_LIST in f:
        for kind, vs, _ in _attrs(buf, *f[IFLA_VF_VLAN_LIST]):
            if kind == IFLA_VF_VLAN_INFO:
                proto = struct.unpack_from("!H", buf, vs + 12)[0]  # __be16 vlan_proto after vf, vlan, qos
    spoof = struct.unpack_from("=I", buf, f[IFLA_VF_SPOOFCHK][0] + 4)[0] if IFLA_VF_SPOOFCHK in f else -1
    trust = struct.unpack_from("=I", buf, f[IFLA_VF_TRUST][0] + 4)[0] if IFLA_VF_TRUST in f else -1
    return RawVf(vf, mac, vlan, qos, proto, spoof, trust)


def read_vfs(ifname: str) -> RawReply:
    """The PF's VF list as the kernel sends it (statistics skipped)."""
    name = ifname.encode() + b"\0"
    attr_name = struct.pack("=HH", 4 + len(name), IFLA_IFNAME) + name + b"\0" * (-len(name) % 4)
    attr_mask = struct.pack("=HHI", 8, IFLA_EXT_MASK, RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS)
    body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0) + attr_name + attr_mask
    msg = struct.pack("=IHHII", 16 + len(body), RTM_GETLINK, NLM_F_REQUEST, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sk:
        sk.bind((0, 0))
        sk.send(msg)
        size = struct.unpack_from("=I", sk.recv(16, socket.MSG_PEEK))[0]  # nlmsg_len is 32-bit: it never wraps
        buf = sk.recv(max(size, 65536))
    length, kind = struct.unpack_from("=IH", buf, 0)
    if kind == NLMSG_ERROR:
        raise OSError(-struct.unpack_from("=i", buf, 16)[0], f"RTM_GETLINK {ifname}")
    assert kind == RTM_NEWLINK and length == len(buf), (kind, length, len(buf))
    num_vf, vfs, offsets, wrapped = -1, {}, {}, False
    off = 32  # nlmsghdr + ifinfomsg
    while off + 4 <= length:
        alen, akind = struct.unpack_from("=HH", buf, off)
        akind &= NLA_TYPE_MASK
        if akind == IFLA_NUM_VF:
            num_vf = struct.unpack_from("=I", buf, off + 4)[0]
        if akind == IFLA_VFINFO_LIST:
            assert num_vf >= 0, "IFLA_VFINFO_LIST before IFLA_NUM_VF"
            pos = off + 4
            for _ in range(num_vf):
                elen, ekind = struct.unpack_from("=HH", buf, pos)
                assert ekind & NLA_TYPE_MASK == IFLA_VF_INFO and elen >= 4, (pos, ekind, elen)
                v = _vf(buf, pos + 4, pos + elen)
                vfs[v.vf] = v
                offsets[v.vf] = pos - off
                pos += (elen + 3) & ~3
            true_len = pos - off
            assert (true_len - alen) % 65536 == 0, (true_len, alen)
            wrapped = true_len != alen
            off = pos
            continue
        if alen < 4:
            break
        off += (alen + 3) & ~3
    return RawReply(length, num_vf, wrapped, vfs, offsets)
