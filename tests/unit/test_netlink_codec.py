"""The rtnetlink reader and writer without a kernel: messages encoded and decoded by pyroute2, including a
synthesized reply for 256 VFs (no kernel here can produce that many)."""

from __future__ import annotations

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from sriovctl.host.netlink import VfChange
from sriovctl.host.netlink_real import parse_vfinfo_list, vfinfo_attrs


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
