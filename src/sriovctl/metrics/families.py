"""Every metric sriovctl exports, in one table: name, type, help and label names. The renderer refuses a sample
of a family not here or with other labels, the docs list this table, and the golden files hold it.

The eight ``sriov_vf_*`` families are the SR-IOV network metrics exporter's (k8snetworkplumbingwg, collectors/
sriovdev.go): same names (no ``_total``: the Prometheus client library appends it, so the text is rendered here),
same labels (``pf`` = the PF's netdev, ``vf`` = the index, ``pciAddr`` = the VF's address, ``numa_node`` = the
PF's node, "" when the kernel says -1), same type (counter) — so dashboards written for it work unchanged.
``promtool check metrics`` lints exactly those two inherited choices (counter without ``_total``, camelCase
``pciAddr`` — which our own families carry too, so that they join with those series on it) and nothing else
(tests/unit/test_prometheus.py)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MetricType(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VfCounter:
    """A per-VF traffic counter: its family, the IFLA_VF_STATS_* member that counts it (vfinfo.STATS_NAMES), and
    the file under the VF netdev's statistics/ that counts the same frames (None: the netdev has no such count,
    so a VF read from its netdev has no series of it)."""

    family: Family
    netlink: str
    netdev: str | None


VF_LABELS = ("pf", "vf", "pciAddr", "numa_node")


def _vf(name: str, netlink: str, netdev: str | None, what: str) -> VfCounter:
    return VfCounter(Family(f"sriov_vf_{name}", MetricType.COUNTER, what, VF_LABELS), netlink, netdev)


VF_COUNTERS = (
    _vf("rx_bytes", "rx_bytes", "rx_bytes", "Bytes received by the VF."),
    _vf("tx_bytes", "tx_bytes", "tx_bytes", "Bytes transmitted by the VF."),
    _vf("rx_packets", "rx_packets", "rx_packets", "Packets received by the VF."),
    _vf("tx_packets", "tx_packets", "tx_packets", "Packets transmitted by the VF."),
    _vf("rx_dropped", "rx_dropped", "rx_dropped", "Received packets the VF dropped."),
    _vf("tx_dropped", "tx_dropped", "tx_dropped", "Packets the VF dropped on transmit."),
    _vf("rx_broadcast", "broadcast", None, "Broadcast packets received by the VF."),
    _vf("rx_multicast", "multicast", "multicast", "Multicast packets received by the VF."),
)

VF_INFO = Family(
    "sriovctl_vf_info", MetricType.GAUGE,
    "A VF, who holds it and its PF-side settings (value 1). owner_kind: libvirt, qemu, process, pool (allocated, "
    "its holder not seen), host or none; "
    "stats_source: where its sriov_vf_* series come from (netlink, netdev or none).",
    ("pciAddr", "pf", "vf", "driver", "numa_node", "stats_source", "owner_kind", "owner", "mac", "vlan", "trust",
     "spoof_check", "link_state", "max_tx_rate"))
PF_LABELS = ("pf", "pciAddr", "numa_node", "driver")
PF_VFS = Family("sriovctl_pf_vfs", MetricType.GAUGE, "VFs the PF has enabled (sriov_numvfs).", PF_LABELS)
PF_TOTAL_VFS = Family("sriovctl_pf_total_vfs", MetricType.GAUGE, "VFs the PF can have (sriov_totalvfs).",
                      PF_LABELS)
PF_ASSIGNABLE = Family("sriovctl_pf_assignable_vfs", MetricType.GAUGE,
                       "The PF's VFs a VM can own safely (an IOMMU group of their own, or shared only with devices "
                       "that are safe to share it with).", PF_LABELS)
POOL_VFS = Family("sriovctl_pool_vfs", MetricType.GAUGE,
                  "A pool's VFs by state (free, pending, allocated, releasing, unavailable) and NUMA node.",
                  ("pool", "numa_node", "state"))
STATE_PRESENT = Family("sriovctl_state_present", MetricType.GAUGE,
                       "1 when the host has a stored desired state (/etc/sriovctl/state.yaml).", ())
STATE_CONVERGED = Family("sriovctl_state_converged", MetricType.GAUGE,
                         "1 when this scrape's inventory matches the stored desired state, 0 when it drifted.", ())
STATE_CHANGES = Family("sriovctl_state_pending_changes", MetricType.GAUGE,
                       "Changes `state apply` would make to bring the host to its stored state.", ())
APPLY_SUCCESS = Family("sriovctl_state_last_apply_success", MetricType.GAUGE,
                       "1 when the last `state apply` succeeded, 0 when it failed or was rolled back.", ("result",))
APPLY_TIME = Family("sriovctl_state_last_apply_timestamp_seconds", MetricType.GAUGE,
                    "When the last `state apply` ended (Unix time).", ())
DOCTOR_FINDINGS = Family("sriovctl_doctor_findings", MetricType.GAUGE,
                         "`sriovctl doctor` findings by severity, from its last run (cached: --doctor-interval).",
                         ("severity",))
DOCTOR_TIME = Family("sriovctl_doctor_last_run_timestamp_seconds", MetricType.GAUGE,
                     "When the doctor findings were computed (Unix time).", ())
UP = Family("sriovctl_up", MetricType.GAUGE, "1 when the scrape read the host's PCI devices, 0 when it could not.", ())
SCRAPE_ERRORS = Family("sriovctl_scrape_errors_total", MetricType.COUNTER,
                       "Parts of scrapes that failed since the exporter started, by source.", ("source",))
SCRAPE_DURATION = Family("sriovctl_scrape_duration_seconds", MetricType.GAUGE, "How long this scrape took.", ())

FAMILIES: tuple[Family, ...] = (*(c.family for c in VF_COUNTERS), VF_INFO, PF_VFS, PF_TOTAL_VFS, PF_ASSIGNABLE,
                                POOL_VFS, STATE_PRESENT, STATE_CONVERGED, STATE_CHANGES, APPLY_SUCCESS, APPLY_TIME,
                                DOCTOR_FINDINGS, DOCTOR_TIME, UP, SCRAPE_ERRORS, SCRAPE_DURATION)
BY_NAME = {f.name: f for f in FAMILIES}
# Where a scrape can fail, each counted on its own (sriovctl_scrape_errors_total{source})
ERROR_SOURCES = ("inventory", "netlink", "netdev", "owners", "pools", "state", "doctor")

__all__ = ["BY_NAME", "ERROR_SOURCES", "FAMILIES", "VF_COUNTERS", "Family", "MetricType", "VfCounter"]
