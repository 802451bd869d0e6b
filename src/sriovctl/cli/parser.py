"""The command line: verbs, their options (the VF attributes' from attrs.VF_ATTRS) and the argument types."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from sriovctl import __version__
from sriovctl.cli import exporter, persistcmds, poolcmds, reads, statecmds, vm, writes
from sriovctl.cli.context import Ctx, _Parser
from sriovctl.untrusted import shown


def _onoff(v: str) -> bool:
    if v in ("on", "1", "true", "yes"):
        return True
    if v in ("off", "0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{v!r}: expected on or off")


def _nonneg_int(v: str) -> int:
    """A number of ASCII digits (decimal, or 0x hex): int() alone takes other scripts' digits, '_' and spaces."""
    import re

    if re.fullmatch(r"[0-9]{1,10}", v, re.ASCII):
        return int(v)
    if re.fullmatch(r"0[xX][0-9a-fA-F]{1,8}", v, re.ASCII):
        return int(v, 16)
    raise argparse.ArgumentTypeError(f"{shown(v)}: not a non-negative number")


MAX_WAIT = 86_400.0  # a day: any longer is a typo, and a lock held that long is a stuck host


def _seconds(v: str) -> float:
    """A --wait: ASCII digits with an optional fraction, finite, 0..a day. float() alone takes nan (a wait that
    never ends, with the lock held), inf, -1, 1_0 and other scripts' digits."""
    import re

    if not re.fullmatch(r"[0-9]{1,6}(\.[0-9]{1,6})?", v, re.ASCII) or float(v) > MAX_WAIT:
        raise argparse.ArgumentTypeError(f"{shown(v)}: not a number of seconds (0 to {MAX_WAIT:g}, digits and '.')")
    return float(v)


def _qemu_id(v: str) -> str:
    """A QEMU id (virt/qemu.py QEMU_ID): no ',' or '=' that would add options of its own."""
    from sriovctl.ops.virt import is_qemu_id

    if not is_qemu_id(v):
        raise argparse.ArgumentTypeError(f"{shown(v)}: not a QEMU id (a letter, then letters, digits, - . _)")
    return v


def build_parser() -> argparse.ArgumentParser:
    from sriovctl.attrs import VF_ATTRS

    p = _Parser(prog="sriovctl", description="SR-IOV control plane: see, check and configure PFs and VFs.")
    p.add_argument("--version", action="version", version=f"sriovctl {__version__}")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--root", metavar="PATH", help="read a snapshot (directory or .tar.gz) instead of the live host")
    g.add_argument("--sim", metavar="NAME", help="use a simulated host (see `sriovctl sim list`)")
    p.add_argument("--json", action="store_true", help="print JSON (schemas: sriovctl/schemas/)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    def verb(name: str, fn: Callable[[Ctx], int], help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    verb("status", reads.cmd_status, "PFs with VF counts and assignable counts, then VFs (the default verb)")
    sp = verb("list", reads.cmd_list, "lspci-style lines for PFs (and VFs)")
    sp.add_argument("--vfs", action="store_true", help="also list VFs")
    sp.add_argument("--all", action="store_true", help="every PCI device")
    sp = verb("show", reads.cmd_show, "everything known about one device, with its decoded capabilities")
    sp.add_argument("device", help="0000:0b:10.0, 0b:10.0, netdev, pci_0000_0b_10_0 or PF#N")
    verb("tree", reads.cmd_tree, "root complex → ports → switches → PFs → VFs, with IOMMU groups and ACS")

    nd = sub.add_parser("nodedev", help="libvirt node-device names and XML")
    nds = nd.add_subparsers(dest="nodedev_verb", metavar="VERB", parser_class=_Parser, required=True)
    x: argparse.ArgumentParser = nds.add_parser("list", help="node-device names (pci_DDDD_BB_DD_F)")
    x.set_defaults(fn=reads.cmd_nodedev_list)
    x = nds.add_parser("dumpxml", help="node-device XML as libvirt prints it")
    x.add_argument("name")
    x.set_defaults(fn=reads.cmd_nodedev_dumpxml)

    pc = sub.add_parser("pci", help="PCI tools")
    pcs = pc.add_subparsers(dest="pci_verb", metavar="VERB", parser_class=_Parser, required=True)
    x = pcs.add_parser("decode", help="decode a config-space dump (lspci -x/-xxx/-xxxx text or a binary config file)")
    x.add_argument("file")
    x.set_defaults(fn=reads.cmd_pci_decode)

    sp = verb("snapshot", reads.cmd_snapshot, "capture what sriovctl reads into OUT.tar.gz (for --root elsewhere)")
    sp.add_argument("out")

    sp = verb("doctor", reads.cmd_doctor, "can this host do SR-IOV safely, and which VFs can really go to separate VMs?")
    sp.add_argument("device", nargs="?", help="limit device findings to one PF or VF")
    sp.add_argument("-v", "--verbose", action="store_true", help="show evidence for every finding, not only problems")

    vfp = sub.add_parser("vf", help="create, configure and bind VFs")
    vfs = vfp.add_subparsers(dest="vf_verb", metavar="VERB", parser_class=_Parser, required=True)

    def writer(name: str, fn: Callable[[Ctx], int], help_: str, wait: float = 10.0,
               wait_help: str = "deadline for another sriovctl's change of this PF to end (its lock)",
               ) -> argparse.ArgumentParser:
        x: argparse.ArgumentParser = vfs.add_parser(name, help=help_, description=help_)
        x.set_defaults(fn=fn)
        x.add_argument("--dry-run", action="store_true", help="print the plan and the writes it would make, "
                                                              "change nothing")
        x.add_argument("--force", action="store_true", help="override the safety interlocks (in use, default route, "
                                                            "not assignable)")
        x.add_argument("--wait", type=_seconds, default=wait, metavar="SECONDS", help=wait_help)
        return x

    x = writer("enable", writes.cmd_vf_enable, "enable N VFs on a PF (sriov_numvfs), waiting until they have settled", 30.0,
               "deadline for the VFs to settle (and for another sriovctl's change of this PF to end)")
    x.add_argument("pf")
    x.add_argument("count", type=_nonneg_int)
    x.add_argument("--reset", action="store_true", help="change a non-zero count: write 0 first (refused if in use)")
    x.add_argument("--no-autoprobe", action="store_true", help="leave the new VFs unbound (sriov_drivers_autoprobe 0)")
    x.add_argument("--module-param", metavar="NAME", help="legacy: reload the PF's driver with NAME=COUNT (igb "
                                                           "max_vfs) and write /etc/modprobe.d/DRIVER.conf")
    x = writer("disable", writes.cmd_vf_disable, "remove all VFs of a PF (refused while any is in use)")
    x.add_argument("pf")
    x = writer("set", writes.cmd_vf_set, "set VF attributes through netlink: PF#N, or PF#0-3,5 for all but --mac")
    x.add_argument("devices", nargs="+")
    for attr in VF_ATTRS:  # one table: attrs.py
        types: dict[str, Callable[[str], Any]] = {"mac": str, "int": _nonneg_int, "bool": _onoff, "choice": str}
        kind = types[attr.kind.value]
        x.add_argument(attr.flag, dest=attr.key, type=kind, metavar=attr.metavar,
                       choices=list(attr.choices) or None, help=attr.help + (f" ({attr.nmstate})" if attr.nmstate else ""))
    x.add_argument("--macs-from", metavar="MAC", help="a MAC for each VF named: MAC, MAC+1, ... in the order named "
                                                     "(the last three octets count up)")
    x = writer("bind", writes.cmd_vf_bind, "bind a device to vfio-pci, its host driver (`host`) or another driver", 10.0,
               "deadline for the driver to bind (and for another sriovctl's change of this PF to end)")
    x.add_argument("device")
    x.add_argument("driver", help="vfio-pci, host, or a driver name")
    x = writer("unbind", writes.cmd_vf_unbind, "unbind a device from its driver")
    x.add_argument("device")

    pfp = sub.add_parser("pf", help="PF-wide settings")
    pfs = pfp.add_subparsers(dest="pf_verb", metavar="VERB", parser_class=_Parser, required=True)
    x = pfs.add_parser("eswitch", help="set the PF's eswitch mode through devlink (legacy, switchdev)",
                       description="set the PF's eswitch mode through devlink (legacy, switchdev)")
    x.set_defaults(fn=writes.cmd_pf_eswitch)
    x.add_argument("pf")
    x.add_argument("mode", choices=["legacy", "switchdev"])
    x.add_argument("--dry-run", action="store_true", help="print the plan and the writes it would make, change nothing")
    x.add_argument("--force", action="store_true", help="override the safety interlocks (VFs in use)")
    x.add_argument("--wait", type=_seconds, default=10.0, metavar="SECONDS",
                   help="deadline for another sriovctl's change of this PF to end (its lock)")

    vp = sub.add_parser("virt", help="libvirt XML for VFs")
    vps = vp.add_subparsers(dest="virt_verb", metavar="VERB", parser_class=_Parser, required=True)
    x = vps.add_parser("xml", help="<interface type='hostdev'> (or <hostdev> with --hostdev) for a VF")
    x.set_defaults(fn=vm.cmd_virt_xml)
    x.add_argument("device")
    x.add_argument("--mac", help="default: a stable generated 52:54:00 MAC no other VF on the host has")
    x.add_argument("--vlan", type=_nonneg_int)
    x.add_argument("--profile", metavar="PROFILEID", help="802.1Qbh port profile (Cisco enic only)")
    x.add_argument("--hostdev", action="store_true", help="<hostdev mode='subsystem' type='pci'> instead")
    x.add_argument("--vfio-driver", action="store_true", help="add <driver name='vfio'/>")
    x.add_argument("--rom-bar", choices=["on", "off"])
    x.add_argument("--alias", help="user alias, ua-…")
    x.add_argument("--guest-address", metavar="DDDD:BB:DD.F", help="the device's address inside the guest")
    x.add_argument("--force", action="store_true", help="write it even if libvirt or the IOMMU would refuse")
    for name, fn, help_ in (("attach", vm.cmd_virt_attach, "give a VF to a libvirt domain as <interface type='hostdev'>"),
                            ("detach", vm.cmd_virt_detach, "take a VF back from a libvirt domain (and back to its host driver)")):
        x = vps.add_parser(name, help=help_, description=help_)
        x.set_defaults(fn=fn)
        x.add_argument("domain")
        x.add_argument("device", nargs="?" if name == "attach" else None,
                       help="the VF (attach: or --pool POOL)" if name == "attach" else "the VF")
        x.add_argument("--live", action="store_true", help="the running domain")
        x.add_argument("--config", action="store_true",
                       help="its persistent definition (with --live: both; neither: libvirt's current state)")
        x.add_argument("--connect", default="qemu:///system", metavar="URI")
        x.add_argument("--force", action="store_true")
        x.add_argument("--dry-run", action="store_true", help="print the libvirt operation and the writes, change nothing")
        x.add_argument("--wait", type=_seconds, default=10.0, metavar="SECONDS",
                       help="deadline for the VF to be back on its host driver, libvirt's own unplug wait included"
                       if name == "detach" else "deadline for another sriovctl's change of this PF to end")
        if name == "attach":
            x.add_argument("--pool", metavar="POOL", help="a free VF of this pool, allocated to the domain first "
                                                          "(`virt detach` releases it)")
            x.add_argument("--mac", help="default: a stable generated 52:54:00 MAC no other VF on the host has")
            x.add_argument("--vlan", type=_nonneg_int)
            x.add_argument("--hostdev", action="store_true",
                           help="a plain <hostdev> (no MAC, VLAN; for VFs the guest configures itself)")
    x = vps.add_parser("list", help="which libvirt domain uses which VF")
    x.set_defaults(fn=vm.cmd_virt_list)
    x.add_argument("--connect", default="qemu:///system", metavar="URI")
    x.add_argument("--all", action="store_true", help="every PCI hostdev, not only VFs")
    x = vps.add_parser("network-xml", help="a libvirt hostdev network handing out this PF's VFs")
    x.set_defaults(fn=vm.cmd_virt_network_xml)
    x.add_argument("pf")
    x.add_argument("--name", required=True)
    x.add_argument("--vfs", action="store_true", help="list the VFs explicitly instead of <pf dev=…/>")

    qp = sub.add_parser("qemu", help="VFs for QEMU directly (vfio-pci, QMP)")
    qps = qp.add_subparsers(dest="qemu_verb", metavar="VERB", parser_class=_Parser, required=True)
    x = qps.add_parser("args", help="-device vfio-pci,host=… arguments")
    x.set_defaults(fn=vm.cmd_qemu_args)
    x.add_argument("devices", nargs="+")
    x.add_argument("--bus", type=_qemu_id)
    x.add_argument("--pci-assign", action="store_true", help=argparse.SUPPRESS)
    x.add_argument("--force", action="store_true")
    for name, fn in (("hotplug", vm.cmd_qemu_hotplug), ("unplug", vm.cmd_qemu_unplug)):
        x = qps.add_parser(name, help=f"{name} a VF through QMP")
        x.set_defaults(fn=fn)
        x.add_argument("device")
        x.add_argument("--qmp", required=True, metavar="SOCKET")
        x.add_argument("--force", action="store_true")
        if name == "hotplug":
            x.add_argument("--bus", metavar="PORT", type=_qemu_id,
                           help="a free pcie-root-port's id (default: the first free one)")
        else:
            x.add_argument("--wait", type=_seconds, default=30.0, metavar="SECONDS",
                           help="deadline for the guest to release it (DEVICE_DELETED)")
            x.add_argument("--keep-vfio", action="store_true", help="leave it on vfio-pci (default: its host driver)")
        x.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")

    stp = sub.add_parser("state", help="the desired state: the host in the state file's schema, state files checked")
    sts = stp.add_subparsers(dest="state_verb", metavar="VERB", parser_class=_Parser, required=True)
    x = sts.add_parser("show", help="the current host as a state file (every key of every VF)")
    x.set_defaults(fn=statecmds.cmd_state_show)
    x.add_argument("pfs", nargs="*", metavar="PF", help="only these PFs (default: every SR-IOV PF)")
    x = sts.add_parser("validate", help="read and check a state file (schema and values; nothing on the host)")
    x.set_defaults(fn=statecmds.cmd_state_validate)
    x.add_argument("file")
    x = sts.add_parser("import", help="the SR-IOV part of an nmstate file, systemd-networkd .network/.link files or "
                                      "a device plugin config.json, as a state file")
    x.set_defaults(fn=statecmds.cmd_state_import)
    x.add_argument("files", nargs="+", metavar="FILE")
    x = sts.add_parser("export", help="the state for the tools that hand VFs out: the device plugin's config.json, "
                                      "Multus NetworkAttachmentDefinitions, an NFD feature file, nova/neutron lines")
    x.set_defaults(fn=statecmds.cmd_state_export)
    x.add_argument("kind", choices=("device-plugin", "network-attachment", "nfd", "nova"))
    x.add_argument("file", nargs="?", help="the state (default: the host's stored state, else the host as it is)")
    x.add_argument("--output", metavar="FILE", help="write FILE (beside it, then renamed) instead of stdout")
    x.add_argument("--configmap", metavar="NODE", help="device-plugin: the ConfigMap a cluster applies, keyed by NODE")
    x.add_argument("--part", choices=("compute", "api", "neutron"), default="compute",
                   help="nova: the compute node's [pci] device_spec, the API's [pci] alias, or neutron's "
                        "[sriov_nic] physical_device_mappings")
    x.add_argument("--namespace", default="default", help="network-attachment: the namespace of the definitions")
    x = sts.add_parser("plan", help="the changes `state apply` would make, in order, and their impact")
    x.set_defaults(fn=statecmds.cmd_state_plan)
    x.add_argument("file")
    x.add_argument("pfs", nargs="*", metavar="PF", help="only these PFs' entries")
    x = sts.add_parser("apply", help="bring the host to the state: checkpoint, apply, verify, roll back on failure")
    x.set_defaults(fn=statecmds.cmd_state_apply)
    x.add_argument("file")
    x.add_argument("pfs", nargs="*", metavar="PF", help="only these PFs' entries (what the udev rule runs)")
    x.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    x.add_argument("--force", action="store_true", help="destroy or take VFs that are in use")
    x.add_argument("--wait", type=_seconds, default=60.0, metavar="SECONDS",
                   help="deadline for the PFs' locks, for VFs to settle and drivers to bind")
    x = sts.add_parser("status", help="does the host match the state (default /etc/sriovctl/state.yaml), and "
                                      "how did the last apply end")
    x.set_defaults(fn=statecmds.cmd_state_status)
    x.add_argument("file", nargs="?")

    pp = sub.add_parser("persist", help="keep the state across reboots and PF resets: boot unit, udev rule, modprobe.d")
    pps = pp.add_subparsers(dest="persist_verb", metavar="VERB", parser_class=_Parser, required=True)
    for name, fn, help_ in (("install", persistcmds.cmd_persist_install,
                             "store FILE as /etc/sriovctl/state.yaml and install what applies it at boot and when "
                             "a PF reappears"),
                            ("uninstall", persistcmds.cmd_persist_uninstall, "remove exactly what install wrote"),
                            ("status", persistcmds.cmd_persist_status, "what is installed, and whether it is as "
                                                                       "installed")):
        x = pps.add_parser(name, help=help_, description=help_)
        x.set_defaults(fn=fn)
        if name == "install":
            x.add_argument("file")
            x.add_argument("--exporter", action="store_true",
                           help="also a service and timer writing the exporter's metrics every 30 s for "
                                "node_exporter's textfile collector")
            x.add_argument("--textfile-dir", metavar="DIR", help="with --exporter: node_exporter's "
                                                                 "--collector.textfile.directory (default "
                                                                 "/var/lib/prometheus/node-exporter)")
        x.add_argument("--destdir", metavar="DIR", help="write into this image tree (FILE checked against the "
                                                        "schema only)")
        if name != "uninstall":
            x.add_argument("--exec", metavar="PATH", help="the sriovctl command the unit and rule run "
                                                          "(default: this one's absolute path)")
        if name != "status":
            x.add_argument("--dry-run", action="store_true", help="print what would be written or removed")

    sp = verb("exporter", exporter.cmd_exporter, "Prometheus metrics of the VFs (counters, owners, state, doctor): an "
              "HTTP endpoint, or a file for node_exporter's textfile collector")
    sp.add_argument("--listen", metavar="ADDR:PORT",
                    help=f"serve /metrics here (default {exporter.DEFAULT_LISTEN}: this host only; "
                         f"0.0.0.0:{exporter.DEFAULT_PORT} listens on every address)")
    sp.add_argument("--textfile", metavar="DIR", help="write DIR/sriovctl.prom instead (node_exporter's "
                                                      "--collector.textfile.directory; DIR must exist)")
    sp.add_argument("--once", action="store_true", help="with --textfile: write once and exit (a systemd timer)")
    sp.add_argument("--interval", type=_seconds, default=30.0, metavar="SECONDS",
                    help="with --textfile and no --once: write every SECONDS (default 30)")
    sp.add_argument("--doctor-interval", type=_seconds, default=3600.0, metavar="SECONDS",
                    help="run doctor for sriovctl_doctor_findings at most this often (default 3600)")

    pl = sub.add_parser("pool", help="hand VFs out from the stored state's pools and take them back clean")
    pls = pl.add_subparsers(dest="pool_verb", metavar="VERB", parser_class=_Parser, required=True)
    x = pls.add_parser("allocate", help="a free, assignable VF of POOL for an owner, recorded atomically")
    x.set_defaults(fn=poolcmds.cmd_pool_allocate)
    x.add_argument("pool")
    x.add_argument("--owner", required=True, metavar="NAME", help="who gets it (a libvirt domain's name, …)")
    x.add_argument("--owner-kind", choices=("libvirt", "qemu", "name"), default="name",
                   help="libvirt: libvirt sets MAC/VLAN and binds it; qemu: with --owner-pid; name: anything else")
    x.add_argument("--owner-pid", type=_nonneg_int, metavar="PID", help="a QEMU owner's pid")
    g = x.add_mutually_exclusive_group()
    g.add_argument("--numa", type=_nonneg_int, metavar="N", help="a VF on this NUMA node")
    g.add_argument("--near", metavar="DEVICE", help="a VF on this device's NUMA node")
    x.add_argument("--policy", choices=("required", "preferred", "legacy"), default="preferred",
                   help="nova's NUMA words: required (only that node), preferred (it first), legacy (it, or no "
                        "NUMA information)")
    x.add_argument("--mac", metavar="MAC", help="set for a non-libvirt owner (read back)")
    x.add_argument("--vlan", type=_nonneg_int, metavar="VLAN", help="set for a non-libvirt owner (read back)")
    x.add_argument("--wait", type=_seconds, default=10.0, metavar="SECONDS", help="deadline for each PF's lock")
    x.add_argument("--dry-run", action="store_true", help="say which VF would be handed out; record and set nothing")
    x = pls.add_parser("release", help="give a VF back: reset to the pool's defaults, checked, rebound, freed")
    x.set_defaults(fn=poolcmds.cmd_pool_release)
    x.add_argument("device", nargs="?", help="the VF (address or PF#N)")
    x.add_argument("--owner", metavar="NAME", help="every VF this owner holds")
    x.add_argument("--force", action="store_true", help="release even while something still holds it")
    x.add_argument("--dry-run", action="store_true", help="say what would be released; change nothing")
    x.add_argument("--wait", type=_seconds, default=10.0, metavar="SECONDS", help="deadline for each PF's lock")
    x = pls.add_parser("create", help="add a pool of these VFs to the stored state (as `persist install` stores it)")
    x.set_defaults(fn=poolcmds.cmd_pool_create)
    x.add_argument("name")
    x.add_argument("vfs", nargs="+", metavar="PF#RANGE", help="the VFs: PF#0-15, or addresses")
    x.add_argument("--driver", metavar="DRIVER", help="the pool's driver (vfio-pci, host, none or a name)")
    x.add_argument("--dry-run", action="store_true", help="print what would be written, change nothing")
    x = pls.add_parser("delete", help="remove a pool from the stored state (its VFs keep their settings)")
    x.set_defaults(fn=poolcmds.cmd_pool_delete)
    x.add_argument("name")
    x.add_argument("--force", action="store_true", help="even while VFs are allocated from it")
    x.add_argument("--dry-run", action="store_true", help="print what would be written, change nothing")
    x = pls.add_parser("list", help="every allocation")
    x.set_defaults(fn=poolcmds.cmd_pool_list)
    x = pls.add_parser("show", help="free, pending and allocated VFs per pool and NUMA node")
    x.set_defaults(fn=poolcmds.cmd_pool_show)
    x = pls.add_parser("reconcile", help="the records against the host: leaks, unrecorded users, duplicate and "
                                         "diverged MACs (exit 9 when something was found)")
    x.set_defaults(fn=poolcmds.cmd_pool_reconcile)
    x.add_argument("--apply", action="store_true", help="free the leaked entries (their VFs reset first)")
    x.add_argument("--wait", type=_seconds, default=10.0, metavar="SECONDS", help="deadline for each PF's lock")

    sm = sub.add_parser("sim", help="simulated hosts")
    sms = sm.add_subparsers(dest="sim_verb", metavar="VERB", parser_class=_Parser, required=True)
    x = sms.add_parser("list", help="built-in and created simulated hosts")
    x.set_defaults(fn=reads.cmd_sim_list)
    x = sms.add_parser("reset", help="rebuild a simulated host from its spec")
    x.add_argument("name")
    x.set_defaults(fn=reads.cmd_sim_reset)
    x = sms.add_parser("create", help="create a simulated host from a spec")
    x.add_argument("name")
    x.add_argument("--from", dest="spec", required=True, metavar="SPEC.yaml")
    x.set_defaults(fn=reads.cmd_sim_create)
    x = sms.add_parser("traffic", help="count traffic on a simulated VF (its device counters, and its netdev's "
                                       "when it is on a host driver)")
    x.add_argument("name")
    x.add_argument("device", help="the VF: address or PF#N")
    for counter in ("rx-packets", "tx-packets", "rx-bytes", "tx-bytes", "broadcast", "multicast", "rx-dropped",
                    "tx-dropped"):
        x.add_argument(f"--{counter}", type=_nonneg_int, default=0, metavar="N")
    x.set_defaults(fn=reads.cmd_sim_traffic)
    return p
