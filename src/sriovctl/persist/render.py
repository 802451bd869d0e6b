"""The files that make a host keep its state across reboots and PF resets, rendered from the state: a systemd
oneshot that applies it at boot, a udev rule that re-applies one PF's part when that PF (re)appears, and
modprobe.d options for `create: module-param` PFs. Pure functions: text in, text out."""

from __future__ import annotations

from sriovctl.drivers import vf_count_param
from sriovctl.state.desired import DesiredState

STATE_PATH = "etc/sriovctl/state.yaml"
UNIT_NAME = "sriovctl.service"
UNIT_PATH = f"etc/systemd/system/{UNIT_NAME}"
WANTS_TARGET = "multi-user.target"
WANTS_LINK = f"etc/systemd/system/{WANTS_TARGET}.wants/{UNIT_NAME}"
RULE_PATH = "etc/udev/rules.d/70-sriovctl.rules"
MODPROBE_PATH = "etc/modprobe.d/sriovctl.conf"
MANIFEST_PATH = "etc/sriovctl/persist.json"

# `persist install --exporter`: metrics for node_exporter's textfile collector, written by a oneshot on a timer
EXPORTER_SERVICE = "sriovctl-exporter.service"
EXPORTER_TIMER = "sriovctl-exporter.timer"
EXPORTER_SERVICE_PATH = f"etc/systemd/system/{EXPORTER_SERVICE}"
EXPORTER_TIMER_PATH = f"etc/systemd/system/{EXPORTER_TIMER}"
EXPORTER_WANTS_LINK = f"etc/systemd/system/timers.target.wants/{EXPORTER_TIMER}"
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"  # Debian's prometheus-node-exporter reads this one
EXPORTER_INTERVAL = 30  # seconds: node_exporter is scraped every 15-60 s; a scrape of 2 x 256 VFs takes ~50 ms

HEADER = "# Installed by `sriovctl persist install`; `sriovctl persist uninstall` removes it. Do not edit:\n" \
         "# change /etc/sriovctl/state.yaml with `sriovctl persist install FILE`.\n"

# Units that configure or use the VFs: each starts after the state is applied (NetworkManager and networkd
# would otherwise race for the VFs' netdevs; libvirt must find the VFs bound to vfio-pci before guests start)
BEFORE = ("network.target", "NetworkManager.service", "systemd-networkd.service", "libvirtd.service",
          "virtqemud.service", "libvirt-guests.service")


def unit_escape_path(path: str) -> str:
    """systemd-escape --path: '/' → '-', other bytes outside [A-Za-z0-9:_.] (and a leading '.') → \\xNN."""
    path = path.strip("/")
    out = []
    for i, ch in enumerate(path):
        if ch == "/":
            out.append("-")
        elif (ch.isascii() and (ch.isalnum() or ch in ":_.")) and not (i == 0 and ch == "."):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode())
    return "".join(out)


def device_units(state: DesiredState) -> list[str]:
    """The device units of PFs named by netdev (udev tags network interfaces for systemd): the unit waits for
    them. PFs named by PCI address or IDs have no device unit; the udev rule covers a late one."""
    from sriovctl.host.sysfs import netdev_device_unit_path

    return [unit_escape_path(netdev_device_unit_path(p.selector.name)) + ".device"
            for p in state.pfs if p.selector.name is not None]


def render_unit(exe: str, state: DesiredState) -> str:
    devices = device_units(state)
    lines = [
        HEADER.rstrip("\n"),
        "[Unit]",
        "Description=SR-IOV desired state (sriovctl state apply)",
        "Documentation=file:///etc/sriovctl/state.yaml",
        # early boot: no basic.target dependency, so networkd (itself DefaultDependencies=no) can be ordered after us
        "DefaultDependencies=no",
        "ConditionPathExists=/" + STATE_PATH,
        "Wants=network-pre.target",
        # PF drivers are loaded and coldplug events triggered (not the deprecated systemd-udev-settle)
        "After=local-fs.target systemd-modules-load.service systemd-udev-trigger.service network-pre.target",
    ]
    if devices:
        lines += ["Wants=" + " ".join(devices), "After=" + " ".join(devices)]
    lines += [
        "Before=" + " ".join(BEFORE),
        "Conflicts=shutdown.target",
        "Before=shutdown.target",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        f"ExecStart={exe} state apply /{STATE_PATH}",
        # VFs settle in seconds per hundred; a hung driver must not hold the boot forever
        "TimeoutStartSec=900",
        "",
        "[Install]",
        f"WantedBy={WANTS_TARGET}",
        "",
    ]
    return "\n".join(lines)


def render_rule(exe: str) -> str:
    """Every SR-IOV PF's network interface, when it appears: `state apply` with the PF's PCI address applies only
    that PF's entries (a PF the state does not name: nothing happens). $id is the PCI device SUBSYSTEMS matched
    (the PF: its netdev may be renamed after this rule matched). A VF's netdev (its device has no
    sriov_totalvfs) does not match; a switchdev representor (phys_port_name pfNvfM) is skipped by a positive
    match — udev fails any ATTR match, `!=` included, on an attribute it cannot read, and igb's
    phys_port_name answers EOPNOTSUPP (seen in the lab: a `!=` test kept the rule from ever firing for igb).
    RUN, not SYSTEMD_WANTS: it must work where systemd is not PID 1; the PF's lock keeps it from interleaving
    with the boot unit."""
    return (HEADER
            + 'ACTION!="add", GOTO="sriovctl_end"\n'
            + 'SUBSYSTEM!="net", GOTO="sriovctl_end"\n'
            + 'ATTR{phys_port_name}=="pf*vf*", GOTO="sriovctl_end"\n'
            + f'SUBSYSTEMS=="pci", TEST=="device/sriov_totalvfs", RUN+="{exe} state apply /{STATE_PATH} $id"\n'
            + 'LABEL="sriovctl_end"\n')


def render_exporter_service(exe: str, textfile_dir: str) -> str:
    """One `exporter --once` run. Not ordered after the boot unit on purpose: metrics during a long apply are
    what an operator wants to see (the scrape takes no PF lock)."""
    return "\n".join([
        HEADER.rstrip("\n"),
        "[Unit]",
        "Description=SR-IOV metrics for node_exporter's textfile collector (sriovctl exporter --once)",
        f"ConditionPathIsDirectory={textfile_dir}",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart={exe} exporter --textfile {textfile_dir} --once",
        "Nice=10",
        "IOSchedulingClass=idle",
        f"TimeoutStartSec={EXPORTER_INTERVAL * 4}",
        "",
    ])


def render_exporter_timer() -> str:
    return "\n".join([
        HEADER.rstrip("\n"),
        "[Unit]",
        f"Description=SR-IOV metrics every {EXPORTER_INTERVAL} s ({EXPORTER_SERVICE})",
        "",
        "[Timer]",
        "OnBootSec=15s",
        f"OnUnitActiveSec={EXPORTER_INTERVAL}s",
        "AccuracySec=1s",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])


def modprobe_line(module: str, param: str, count: int) -> str:
    return f"options {module} {param}={count}"


VF_ENABLE_HEADER = "# Written by `sriovctl vf enable --module-param` (VFs at module load; sriov_numvfs is preferred).\n" \
                   "# One line per module; `sriovctl persist install` replaces this file with the state's.\n"


def render_modprobe(state: DesiredState, drivers: dict[int, str]) -> str | None:
    """``options MODULE PARAM=N`` for `create: module-param` PFs (``drivers``: entry index → its PF's driver,
    as found on the host; without a host, none is known and nothing is written)."""
    opts: dict[str, str] = {}
    for i, p in enumerate(state.pfs):
        drv = drivers.get(i)
        if p.create == "module-param" and p.total_vfs is not None and drv is not None and (param := vf_count_param(drv)):
            opts[drv] = modprobe_line(drv, param, p.total_vfs)
    if not opts:
        return None
    return HEADER + "".join(f"{line}\n" for _, line in sorted(opts.items()))


def modprobe_with(current: str | None, module: str, param: str, count: int) -> str:
    """sriovctl's modprobe.d file (MODPROBE_PATH) with ``module``'s line set: the one file sriovctl keeps
    module options in, whoever writes it (`vf enable --module-param`, `persist install`); the other modules'
    lines are kept."""
    lines = {}
    for line in (current or "").splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "options":
            lines[words[1]] = line
    lines[module] = modprobe_line(module, param, count)
    return VF_ENABLE_HEADER + "".join(f"{line}\n" for _, line in sorted(lines.items()))
