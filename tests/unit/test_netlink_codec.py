"""The rtnetlink reader and writer without a kernel: messages encoded and decoded by pyroute2, including a
synthesized reply for 256 VFs (no kernel here can produce that many)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from sriovctl.host.netlink import LINK_STATE_NAMES, NetlinkError, VfChange
from sriovctl.host.netlink_real import parse_vfinfo_list, vfinfo_attrs
from sriovctl.host.vfinfo import decode_vfinfo
from sriovctl.model import VfNetlink


def _reply(n: int) -> ifinfmsg:
    infos = []
    for i in range(n):
        infos.append(("IFLA_VF_INFO", {"attrs": [
            ("IFLA_VF_MAC", {"vf": i, "mac": f"52:54:00:aa:{i >> 8:02x}:{i & 0xFF:02x}"}),
            ("IFLA_VF_VLAN", {"vf": i, "vlan": i % 4096, "qos": i % 8}),
            ("IFLA_VF_RATE", {"vf": i, "min_tx_rate": 0, "max_tx_rate": 10 * i}),
            ("IFLA_VF_SPOOFCHK", {"vf": i, "spoofchk": i % 2}),
            ("IFLA_VF_LINK_STATE", {"vf": i, "link_state": i % 3}),
            ("IFLA_VF_TRUST", {"vf": i, "trust": 0xFFFFFFFF if i == 7 else 1}),
            ("IFLA_VF_RSS_QUERY_EN", {"vf": i, "rss_query_en": 0xFFFFFFFF}),
        ]}))
    msg = ifinfmsg()
    msg["index"] = 7
    msg["attrs"] = [("IFLA_IFNAME", "ens2f0"), ("IFLA_NUM_VF", n), ("IFLA_VFINFO_LIST", {"attrs": infos})]
    msg.encode()
    wire = msg.data[: msg["header"]["length"]]
    out = ifinfmsg(wire)
    out.decode()
    return out


def pyroute2_decoding(reply: Any) -> list[VfNetlink]:
    """The reference: pyroute2's own decoding of the VF list (what sriovctl used before host/vfinfo.py)."""
    vflist = reply.get_attr("IFLA_VFINFO_LIST")
    if vflist is None:
        return []
    out: list[VfNetlink] = []
    for info in vflist.get_attrs("IFLA_VF_INFO"):
        mac = info.get_attr("IFLA_VF_MAC")
        vlan = info.get_attr("IFLA_VF_VLAN")
        rate = info.get_attr("IFLA_VF_RATE")
        spoof = info.get_attr("IFLA_VF_SPOOFCHK")
        link = info.get_attr("IFLA_VF_LINK_STATE")
        trust = info.get_attr("IFLA_VF_TRUST")
        rss = info.get_attr("IFLA_VF_RSS_QUERY_EN")
        proto = "802.1Q"
        vlist = info.get_attr("IFLA_VF_VLAN_LIST")
        if vlist is not None:
            for ivvi in vlist.get_attrs("IFLA_VF_VLAN_INFO"):
                if ivvi.get("proto") == 0x88A8:
                    proto = "802.1ad"
        stats_nla = info.get_attr("IFLA_VF_STATS")
        stats = None
        if stats_nla is not None:
            stats = {k.removeprefix("IFLA_VF_STATS_").lower(): int(v) for k, v in stats_nla["attrs"]
                     if k != "IFLA_VF_STATS_PAD"}
        vf = (mac or vlan or spoof or {}).get("vf", len(out))
        u32max = 0xFFFFFFFF  # the kernel reports -1 for "not supported" in some fields
        out.append(VfNetlink(
            vf=int(vf), mac=mac["mac"] if mac else None,
            vlan=vlan["vlan"] if vlan else None, qos=vlan["qos"] if vlan else None,
            vlan_proto=proto if vlan else None,
            spoofchk=None if not spoof or spoof["spoofchk"] == u32max else bool(spoof["spoofchk"]),
            trust=None if not trust or trust["trust"] == u32max else bool(trust["trust"]),
            link_state=LINK_STATE_NAMES[link["link_state"]].value if link and link["link_state"] in LINK_STATE_NAMES else None,
            min_tx_rate=rate["min_tx_rate"] if rate else None, max_tx_rate=rate["max_tx_rate"] if rate else None,
            rss_query_en=None if not rss or rss["rss_query_en"] == u32max else bool(rss["rss_query_en"]),
            stats=stats,
        ))
    return out


def _rich_reply() -> ifinfmsg:
    infos = [("IFLA_VF_INFO", {"attrs": [
        ("IFLA_VF_MAC", {"vf": i, "mac": f"52:54:00:00:00:{i:02x}"}),
        ("IFLA_VF_VLAN", {"vf": i, "vlan": 5 + i, "qos": i}),
        ("IFLA_VF_RATE", {"vf": i, "min_tx_rate": i, "max_tx_rate": 100 * i}),
        ("IFLA_VF_SPOOFCHK", {"vf": i, "spoofchk": 1}),
        ("IFLA_VF_LINK_STATE", {"vf": i, "link_state": 2}),
        ("IFLA_VF_RSS_QUERY_EN", {"vf": i, "rss_query_en": 0}),
        ("IFLA_VF_TRUST", {"vf": i, "trust": 0}),
        ("IFLA_VF_VLAN_LIST", {"attrs": [("IFLA_VF_VLAN_INFO", {"vf": i, "vlan": 5 + i, "qos": i,
                                                                 "proto": 0x88A8 if i == 1 else 0x8100})]}),
        ("IFLA_VF_STATS", {"attrs": [("IFLA_VF_STATS_RX_PACKETS", 10 + i), ("IFLA_VF_STATS_TX_BYTES", 1 << 40)]}),
    ]}) for i in range(3)]
    msg = ifinfmsg()
    msg["index"] = 7
    msg["attrs"] = [("IFLA_ADDRESS", "00:1b:21:3a:4c:10"), ("IFLA_VFINFO_LIST", {"attrs": infos})]
    msg.encode()
    out = ifinfmsg(msg.data[: msg["header"]["length"]])
    out.decode()
    return out


def test_our_decoding_equals_pyroute2s() -> None:
    for reply in (_reply(256), _rich_reply()):
        assert parse_vfinfo_list(reply) == pyroute2_decoding(reply)
    rich = parse_vfinfo_list(_rich_reply())
    assert [v.vlan_proto for v in rich] == ["802.1Q", "802.1ad", "802.1Q"]
    assert rich[2].stats == {"rx_packets": 12, "tx_bytes": 1 << 40} and rich[1].link_state == "disable"


def test_a_malformed_reply_is_an_error_not_a_crash() -> None:
    wire = bytes(_rich_reply().data)
    for cut in (20, 40, 77, len(wire) - 3):
        broken = bytearray(wire[:cut])
        broken[0:4] = len(wire).to_bytes(4, "little")  # the header still claims the whole message
        with contextlib.suppress(NetlinkError):  # cut at an attribute: fewer VFs; inside one: an error
            decode_vfinfo(broken)
    bad = bytearray(wire)
    bad[32:34] = (2).to_bytes(2, "little")  # an attribute length below its own header
    with pytest.raises(NetlinkError):
        decode_vfinfo(bad)
    assert LINK_STATE_NAMES


def test_a_256_vf_reply_decodes_completely() -> None:
    reply = _reply(256)
    assert len(reply.data) > 256 * 100  # tens of KiB in one message: the socket buffer is raised for it
    vfs = parse_vfinfo_list(reply)
    assert [v.vf for v in vfs] == list(range(256))
    v = vfs[200]
    assert (v.mac, v.vlan, v.qos, v.max_tx_rate, v.spoofchk, v.link_state, v.trust) == \
        ("52:54:00:aa:00:c8", 200, 0, 2000, False, "disable", True)
    assert vfs[7].trust is None  # the kernel's -1: the driver does not report it
    assert all(x.rss_query_en is None for x in vfs)


def test_one_setlink_carries_every_vf_in_kernel_order() -> None:
    from sriovctl.host.netlink_real import _pad_vlan_info

    _pad_vlan_info()
    changes = [VfChange(3, "trust", True), VfChange(3, "mac", "52:54:00:00:00:03"), VfChange(0, "vlan", (42, 3, "802.1Q")),
               VfChange(1, "vlan", (7, 0, "802.1ad")), VfChange(0, "rate", (0, 100)), VfChange(2, "link_state", "disable")]
    msg = ifinfmsg()
    msg["index"] = 7
    msg["attrs"] = [("IFLA_VFINFO_LIST", {"attrs": vfinfo_attrs(changes)})]
    msg.encode()
    back = ifinfmsg(msg.data[: msg["header"]["length"]])
    back.decode()
    infos = back.get_attr("IFLA_VFINFO_LIST").get_attrs("IFLA_VF_INFO")
    assert len(infos) == 4
    assert [a[0] for a in infos[0]["attrs"]] == ["IFLA_VF_VLAN", "IFLA_VF_RATE"]
    ivvi = infos[1].get_attr("IFLA_VF_VLAN_LIST").get_attrs("IFLA_VF_VLAN_INFO")[0]
    assert ivvi["proto"] == 0x88A8 and ivvi["vlan"] == 7
    raw = msg.data[: msg["header"]["length"]]
    at = raw.find(bytes.fromhex("01000000" "07000000" "00000000" "88a8"))  # vf 1, vlan 7, qos 0, proto 802.1ad
    assert at > 4
    nla_len = int.from_bytes(raw[at - 4:at - 2], "little")  # the IFLA_VF_VLAN_INFO header just before
    assert nla_len == 4 + 16  # struct ifla_vf_vlan_info is 16 bytes: the kernel refuses less with EINVAL
    assert infos[2].get_attr("IFLA_VF_LINK_STATE")["link_state"] == 2
    assert [a[0] for a in infos[3]["attrs"]] == ["IFLA_VF_MAC", "IFLA_VF_TRUST"]
    assert infos[3].get_attr("IFLA_VF_MAC")["mac"] == "52:54:00:00:00:03"
