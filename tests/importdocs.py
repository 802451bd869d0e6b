"""Valid inputs of `state import` (nmstate, systemd-networkd .network/.link, the device plugin's config),
shared by tests/unit/test_state_import.py and the mutation harness (tests/mutate.py)."""

NMSTATE = """
interfaces:
- name: enp11s0f0
  type: ethernet
  state: up
  ethernet:
    sr-iov:
      total-vfs: 4
      vfs:
      - id: 0
        mac-address: 02:11:22:33:44:55
        spoof-check: true
        trust: false
        vlan-id: 100
        qos: 5
        vlan-proto: 802.1q
      - id: 1
        max-tx-rate: 0
- name: lo
  type: loopback
"""

NETWORK = """# a comment
[Match]
Name=enp11s0f0

[Network]
DHCP=no

[SR-IOV]
VirtualFunction=0
VLANId=5
MACSpoofCheck=no
LinkState=yes

[SR-IOV]
VirtualFunction=1
MACAddress=02:00:00:00:00:02
Trust=true
QueryReceiveSideScaling=yes
"""

LINK = """[Match]
OriginalName=enp11s0f0

[Link]
SR-IOVVirtualFunctions=4
"""

PLUGIN = {"resourceList": [
    {"resourceName": "intel_sriov_dpdk", "selectors": {"pfNames": ["enp11s0f0#0-1"], "drivers": ["vfio-pci"]}},
    {"resourceName": "intel_sriov_netdevice", "selectors": [{"pfNames": ["enp11s0f1#2-3,5"], "drivers": ["igbvf"]}]}]}
