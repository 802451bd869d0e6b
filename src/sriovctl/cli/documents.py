"""Every --json document as a type: the CLI builds them (mypy checks each field), and cli/schemagen.py writes
the JSON Schemas in sriovctl/schemas/ from these same types. Changes are additive only (schema_version 1)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypedDict

# ---- field annotations the schema generator reads


class Pattern(str):
    """The value matches this regular expression."""


class Doc(str):
    """A description for the schema."""


class Min(int):
    """The smallest value."""


class Max(int):
    """The largest value."""


ADDRESS = Pattern(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
HEX2, HEX3, HEX4, HEX6, HEX16 = (Pattern(f"^[0-9a-f]{{{n}}}$") for n in (2, 3, 4, 6, 16))
Address = Annotated[str, ADDRESS]
Hex2 = Annotated[str, HEX2]
Hex3 = Annotated[str, HEX3]
Hex4 = Annotated[str, HEX4]
Hex6 = Annotated[str, HEX6]
SchemaVersion = Literal[1]
SCHEMA_VERSION: SchemaVersion = 1  # every document's first field; changes are additive only
Role = Literal["pf", "vf", "device"]
Json = Annotated[Any, Doc("any JSON value: its meaning depends on the change's kind")]


# ---- the PCI device and its config space


class AcsFlagsDoc(TypedDict):
    source_validation: bool
    translation_blocking: bool
    p2p_request_redirect: bool
    p2p_completion_redirect: bool
    upstream_forwarding: bool
    p2p_egress_control: bool
    direct_translated_p2p: bool


class VfBarDoc(TypedDict):
    index: int
    address: Annotated[str, HEX16]
    is_64bit: bool
    prefetchable: bool


class SriovCapDoc(TypedDict):
    offset: Hex3
    initial_vfs: int
    total_vfs: int
    num_vfs: int
    function_dependency_link: int
    vf_offset: int
    vf_stride: int
    vf_device_id: Hex4
    supported_page_sizes: int
    system_page_size: int
    vf_bars: list[VfBarDoc]
    migration_capable: bool
    ari_capable_hierarchy_preserved: bool
    vf_10bit_tag_requester_supported: bool
    migration_interrupt_message_number: int
    vf_enable: bool
    migration_enable: bool
    migration_interrupt_enable: bool
    vf_mse: bool
    ari_capable_hierarchy: bool
    vf_10bit_tag_requester_enable: bool
    migration_status: bool
    migration_state_offset: int
    migration_state_bir: int


class CapabilityDoc(TypedDict):
    offset: Hex2
    id: Hex2
    name: str


class ExtCapabilityDoc(TypedDict):
    offset: Hex3
    id: Hex4
    version: int | None
    name: str


class PcieDoc(TypedDict):
    offset: Hex2
    version: int
    port_type: str


class AcsDoc(TypedDict):
    offset: Hex3
    capability: AcsFlagsDoc
    control: AcsFlagsDoc
    egress_control_vector_size: int


class AriDoc(TypedDict):
    offset: Hex3
    mfvc_function_groups: bool
    acs_function_groups: bool
    next_function: int
    mfvc_enable: bool
    acs_enable: bool
    function_group: int


ConfigDoc = TypedDict("ConfigDoc", {
    "size": int,
    "coverage": Literal["header", "legacy", "extended"],
    "vendor_id": Hex4 | None,
    "device_id": Hex4 | None,
    "command": Hex4 | None,
    "status": Hex4 | None,
    "revision": Hex2 | None,
    "class": Hex6 | None,
    "header_type": int,
    "multifunction": bool,
    "subsystem_vendor_id": Hex4 | None,
    "subsystem_id": Hex4 | None,
    "primary_bus": int | None,
    "secondary_bus": int | None,
    "subordinate_bus": int | None,
    "capabilities": list[CapabilityDoc],
    "extended_capabilities": list[ExtCapabilityDoc],
    "pcie": PcieDoc | None,
    "sriov": SriovCapDoc | None,
    "acs": AcsDoc | None,
    "ari": AriDoc | None,
    "problems": list[str],
})


class IommuGroupDoc(TypedDict):
    number: int
    members: list[Address]


class NetDevDoc(TypedDict):
    name: str
    mac: str | None
    operstate: str | None
    mtu: int | None
    ifindex: int | None


class VfNetlinkDoc(TypedDict):
    """One VF as its PF reports it over netlink (keys: attrs.VF_ATTRS, plus the traffic counters)."""

    mac: str | None
    vlan: int | None
    qos: int | None
    vlan_proto: Literal["802.1Q", "802.1ad"] | None
    spoofchk: bool | None
    trust: bool | None
    link_state: Literal["auto", "enable", "disable"] | None
    min_tx_rate: int | None
    max_tx_rate: int | None
    rss_query_en: bool | None
    stats: dict[str, int] | None


DeviceDoc = TypedDict("DeviceDoc", {
    "address": Address,
    "role": Role,
    "vendor_id": Hex4,
    "device_id": Hex4,
    "subsystem_vendor_id": Hex4 | None,
    "subsystem_id": Hex4 | None,
    "class": Hex6,
    "revision": Hex2,
    "vendor_name": str,
    "device_name": str,
    "class_name": str,
    "driver": str | None,
    "module": str | None,
    "driver_override": str | None,
    "numa_node": int | None,
    "iommu_group": IommuGroupDoc | None,
    "parent": Address | None,
    "nodedev": Annotated[str, Pattern(r"^pci_[0-9a-f]{4}_[0-9a-f]{2}_[0-9a-f]{2}_[0-7]$")],
    "netdevs": list[NetDevDoc],
    "assignable": bool,
    "assignable_reason": str | None,
})


class SriovDoc(TypedDict):
    state: Literal["enabled", "disabled", "no-driver-support", "unknown"]
    totalvfs: int | None
    numvfs: int | None
    offset: int | None
    stride: int | None
    vf_device: Hex4 | None
    drivers_autoprobe: bool | None
    capability: SriovCapDoc | None


class RepresentorDoc(TypedDict):
    """A VF's representor netdev (switchdev mode): phys_port_name pfNvfM."""

    name: str
    pf_number: int
    vf: int
    switch_id: str | None
    ifindex: int | None


class PfDoc(DeviceDoc):
    sriov: SriovDoc
    vfs: list[Address]
    assignable_vfs: int
    representors: NotRequired[list[RepresentorDoc]]  # present when the PF has any (switchdev mode)


class VfDoc(DeviceDoc):
    pf: Address
    vf_index: int
    netlink: VfNetlinkDoc | None
    representor: NotRequired[str | None]  # present when its PF has representors


class NetVfDoc(TypedDict):
    """A VF of a PF not on PCI: an entry of its PF's netlink VF list, nothing more."""

    role: Literal["net-vf"]
    pf: str
    vf_index: int
    netlink: VfNetlinkDoc
    representor: str | None


class NetPfDoc(TypedDict):
    """A PF not on PCI (netdevsim), named by its netdev."""

    role: Literal["net-pf"]
    name: str
    bus: str
    device: str
    devlink: str
    driver: str | None
    netdev: NetDevDoc
    numvfs: int | None
    num_vf: int | None
    port_name: str | None
    switch_id: str | None
    vfs: list[NetVfDoc]
    representors: list[RepresentorDoc]


class NodeDoc(TypedDict):
    address: Address
    role: Literal["pf", "vf", "bridge", "device"]
    name: str
    driver: str | None
    iommu_group: int | None
    port_type: str | None
    acs: str | None
    children: list[NodeDoc]
    vfs: NotRequired[list[NodeDoc]]
    vf_index: NotRequired[int]
    assignable: NotRequired[bool]
    representor: NotRequired[str]  # a VF's representor netdev (its PF in switchdev mode)


# ---- changes


class ChangeDoc(TypedDict):
    kind: Literal["vf-count", "drivers-autoprobe", "vf-attr", "driver", "module-load", "module-reload", "config-file",
                  "libvirt-attach", "libvirt-detach", "qmp-device-add", "qmp-device-del", "eswitch-mode"]
    target: Annotated[str, Doc("what changes: a PCI address, PF#N, a module, a file, a domain, a QMP socket")]
    before: Json
    after: Json
    why: str
    attr: NotRequired[Annotated[str, Doc("vf-attr: the kernel request (mac, vlan, rate, spoofchk, link_state, "
                                         "rss_query_en, trust)")]]


class RefusedDoc(ChangeDoc):
    reason: str


class NoticeDoc(TypedDict):
    kind: Literal["forced", "deprecated", "side-effect", "shared-pool", "run-time"]
    text: str


class PlanDoc(TypedDict):
    operation: str
    changes: list[ChangeDoc]
    notices: list[NoticeDoc]


class OutcomeDoc(TypedDict):
    applied: list[ChangeDoc]
    refused: list[RefusedDoc]
    verified: Annotated[bool | None, Doc("the host read back as planned (null: nothing read back)")]


class WriteDoc(TypedDict):
    path: Annotated[str, Doc("a file as its absolute path on the host; netlink:…, exec, libvirt:URI, qmp:SOCKET otherwise")]
    value: str
    dry_run: bool


# ---- the documents, one per verb


class StatusDocument(TypedDict):
    schema_version: SchemaVersion
    host: str
    iommu_groups_present: bool
    config_readable: bool
    notes: list[str]
    pfs: list[PfDoc]
    vfs: list[VfDoc]
    net_pfs: NotRequired[list[NetPfDoc]]  # present when the host has PFs not on PCI


class ListEntryDoc(TypedDict):
    address: Address
    short: str
    role: Role
    line: str


class ListDocument(TypedDict):
    schema_version: SchemaVersion
    host: str
    devices: list[ListEntryDoc]


class ShowDocument(TypedDict):
    schema_version: SchemaVersion
    host: str
    device: PfDoc | VfDoc | DeviceDoc | NetPfDoc | NetVfDoc
    config: ConfigDoc | None


class RootBusDoc(TypedDict):
    name: str
    children: list[NodeDoc]


class TreeDocument(TypedDict):
    schema_version: SchemaVersion
    host: str
    root_buses: list[RootBusDoc]
    net_pfs: NotRequired[list[NetPfDoc]]  # present when the host has PFs not on PCI


class NodedevListDocument(TypedDict):
    schema_version: SchemaVersion
    nodedevs: list[Annotated[str, Pattern("^pci_")]]


class NodedevXmlDocument(TypedDict):
    schema_version: SchemaVersion
    name: str
    xml: str


class DecodedDoc(TypedDict):
    address: Address | None
    title: str
    config: ConfigDoc | None


class PciDecodeDocument(TypedDict):
    schema_version: SchemaVersion
    file: str
    devices: list[DecodedDoc]


class SnapshotDocument(TypedDict):
    schema_version: SchemaVersion
    file: str
    format: int
    sriovctl: str
    source: str
    files: int
    captured_at: str


class SimHostDoc(TypedDict):
    name: str
    origin: Literal["built-in", "created"]
    built: bool


class SimListDocument(TypedDict):
    schema_version: SchemaVersion
    dir: str
    hosts: list[SimHostDoc]


class SimResetDocument(TypedDict):
    schema_version: SchemaVersion
    name: str
    dir: str


class EvidenceDoc(TypedDict):
    source: str
    value: str


class FindingDoc(TypedDict):
    id: Annotated[str, Pattern(r"^[a-z_]+(\.[a-z_]+)+$")]
    severity: Literal["ok", "info", "warn", "fail"]
    area: Literal["platform", "device", "isolation"]
    subject: str
    message: str
    hint: str | None
    evidence: list[EvidenceDoc]


class CapacityDoc(TypedDict):
    pf: Address
    netdev: str | None
    vfs: int
    assignable: int
    groups: int


class DoctorDocument(TypedDict):
    schema_version: SchemaVersion
    host: str
    worst: Literal["ok", "info", "warn", "fail"]
    findings: list[FindingDoc]
    capacity: list[CapacityDoc]


class VfActionDocument(TypedDict):
    """vf enable|disable|set|bind|unbind, virt attach --dry-run, virt detach, qemu hotplug|unplug: the plan, and
    (when applied) the outcome; `messages` and `writes` in words and as the write log."""

    schema_version: SchemaVersion
    host: str
    dry_run: bool
    messages: list[str]
    writes: list[WriteDoc]
    netlink_requests: NotRequired[Annotated[int, Doc("vf set: RTM_SETLINK + RTM_GETLINK requests made")]]
    xml: NotRequired[Annotated[str, Doc("virt attach --dry-run: the device XML libvirt would be given")]]
    plan: PlanDoc
    outcome: Annotated[OutcomeDoc | None, Doc("null in a dry run")]


class VirtAttachDocument(TypedDict):
    schema_version: SchemaVersion
    domain: str
    device: Address
    xml: str
    plan: PlanDoc
    outcome: OutcomeDoc


class VirtXmlDocument(TypedDict):
    schema_version: SchemaVersion
    device: str
    xml: str


class DomainUseDoc(TypedDict):
    domain: str
    running: Annotated[bool, Doc("active: QEMU runs, paused or not")]
    state: Annotated[str, Doc("the domain's state in virsh's words: running, paused, shut off, ...")]
    address: Address
    kind: Literal["interface", "hostdev"]
    mac: str | None


class VirtListDocument(TypedDict):
    schema_version: SchemaVersion
    uses: list[DomainUseDoc]


class QemuArgsDocument(TypedDict):
    schema_version: SchemaVersion
    argv: list[str]
    not_on_vfio: list[Address]


class ErrorDoc(TypedDict):
    exit_code: Annotated[int, Min(1), Max(255)]
    message: str
    hint: str | None


class ErrorDocument(TypedDict):
    """The document printed when a command fails (any verb); a partially applied change (exit 3) also carries
    the vf-action fields."""

    schema_version: SchemaVersion
    error: ErrorDoc
    host: NotRequired[str]
    dry_run: NotRequired[bool]
    messages: NotRequired[list[str]]
    writes: NotRequired[list[WriteDoc]]
    plan: NotRequired[PlanDoc]
    outcome: NotRequired[OutcomeDoc]
    state_apply: NotRequired[Annotated[StateOutcomeDoc, Doc("state apply that failed and rolled back (exit 7/8): "
                                                               "what it planned, applied and restored")]]


# schema file → (its title, the document type)
# ---- the desired state (issue 13): the state file's schema as `state show --json` prints it

StateVfDoc = TypedDict("StateVfDoc", {
    "id": int,
    "mac-address": str | None,
    "vlan-id": int | None,
    "qos": int | None,
    "vlan-proto": Literal["802.1q", "802.1ad"] | None,
    "min-tx-rate": int | None,
    "max-tx-rate": int | None,
    "spoof-check": bool | None,
    "link-state": Literal["auto", "enable", "disable"] | None,
    "trust": bool | None,
    "driver": NotRequired[str],  # absent for the VFs of a PF not on PCI (nothing to bind)
    "resource-name": NotRequired[str],  # a state's, not a fact of the host: `state show` never prints it
    "pool": NotRequired[str],  # likewise
})

StatePfDoc = TypedDict("StatePfDoc", {
    "name": NotRequired[str],
    "pci-address": NotRequired[Address],
    "total-vfs": int,
    "create": Literal["sysfs", "module-param"],
    "drivers-autoprobe": NotRequired[bool],
    "vfs": list[StateVfDoc],
})


class StateDoc(TypedDict):
    pfs: list[StatePfDoc]


class StateShowDocument(TypedDict):
    schema_version: SchemaVersion
    host: str
    state: StateDoc


class StateImportDocument(TypedDict):
    schema_version: SchemaVersion
    source: list[str]
    kind: Literal["nmstate", "networkd", "device-plugin"]
    state: Annotated[dict[str, Json], Doc("the state file's document (docs/state.schema.json)")]


class StateExportDocument(TypedDict):
    schema_version: SchemaVersion
    source: Annotated[str, Doc("the state exported: a file, the host's stored state, or the host as it is")]
    kind: Literal["device-plugin", "network-attachment", "nfd", "nova"]
    output: Annotated[str | None, Doc("the file written (null: the text is here only)")]
    text: Annotated[str, Doc("what was written, in the target tool's own format")]


class ScrapeErrorDoc(TypedDict):
    source: Literal["inventory", "netlink", "netdev", "owners", "pools", "state", "doctor"]
    message: str


class ExporterDocument(TypedDict):
    schema_version: SchemaVersion
    output: Annotated[str, Doc("the textfile written (DIR/sriovctl.prom)")]
    series: Annotated[int, Min(0), Doc("samples written")]
    up: Annotated[bool, Doc("the host's PCI devices could be read")]
    errors: Annotated[list[ScrapeErrorDoc], Doc("parts of the scrape that failed (each counted in "
                                                "sriovctl_scrape_errors_total)")]
    duration_seconds: Annotated[float, Min(0)]


class SimTrafficDocument(TypedDict):
    schema_version: SchemaVersion
    device: Annotated[str, Doc("the VF's PCI address")]
    counters: Annotated[dict[str, int], Doc("the device's IFLA_VF_STATS counters after the step")]


class PoolOwnerDoc(TypedDict):
    kind: Literal["libvirt", "qemu", "name"]
    name: str
    uuid: NotRequired[str]
    pid: NotRequired[int]
    start: NotRequired[int]


class PoolAllocationDoc(TypedDict):
    address: Annotated[str, Doc("the VF's PCI address")]
    pf: Annotated[str, Doc("its PF's lock key (PCI address)")]
    vf: Annotated[int, Min(0)]
    pool: str
    owner: PoolOwnerDoc
    state: Literal["pending", "allocated", "releasing"]


class PoolDocument(TypedDict):
    schema_version: SchemaVersion
    verb: Literal["allocate", "release", "list"]
    allocation: NotRequired[Annotated[PoolAllocationDoc, Doc("allocate: the VF handed out")]]
    allocations: Annotated[list[PoolAllocationDoc], Doc("allocate: the one made; release: those freed; list: all")]
    notes: list[str]


class PoolCountsDoc(TypedDict):
    free: Annotated[int, Min(0)]
    pending: Annotated[int, Min(0)]
    allocated: Annotated[int, Min(0)]
    releasing: Annotated[int, Min(0)]
    unavailable: Annotated[int, Min(0), Doc("not assignable, in use outside the pool, or missing")]


class PoolShowDocument(TypedDict):
    schema_version: SchemaVersion
    pools: Annotated[dict[str, dict[str, PoolCountsDoc]], Doc("pool → NUMA node (\"-\": none) → counts")]


class PoolFindingDoc(TypedDict):
    kind: Literal["leaked", "unrecorded", "duplicate-mac", "mac-diverged"]
    address: str
    message: str
    fixable: bool


class PoolReconcileDocument(TypedDict):
    schema_version: SchemaVersion
    findings: list[PoolFindingDoc]
    fixed: Annotated[list[str], Doc("VFs whose leaked entries --apply freed (reset to the pool's defaults first)")]


class StateValidateDocument(TypedDict):
    schema_version: SchemaVersion
    source: str
    pfs: int
    vf_entries: int
    vfs: int


class ImpactDoc(TypedDict):
    kind: Literal["destroys-vfs", "stop-vm", "takes-vf", "module-reload", "not-assignable"]
    target: str
    who: Annotated[list[str], Doc("its users: libvirt domains, QEMU and DPDK processes, netdevs with addresses")]
    why: str


class StatePlanDoc(PlanDoc):
    converged: Annotated[bool, Doc("nothing to change (the text output is exactly `no changes`)")]
    impact: list[ImpactDoc]
    pfs: list[str]


class StatePlanDocument(StatePlanDoc):
    schema_version: SchemaVersion
    host: str
    source: str
    before: Annotated[StateDoc, Doc("the PFs the state touches, as `state show` prints them now")]
    after: Annotated[StateDoc, Doc("the same PFs as the plan predicts them after apply (a VF going back to its own "
                                   "driver, not known yet: driver host)")]


class StateOutcomeDoc(TypedDict):
    plan: StatePlanDoc
    applied: list[ChangeDoc]
    result: Literal["Succeeded", "Failed"]
    error: str | None
    rolled_back: bool
    restored: Annotated[bool | None, Doc("the rollback reached the checkpoint (null: no rollback)")]
    recovered: Annotated[list[str], Doc("PFs whose interrupted run's journal was found (rolled forward)")]
    netlink_requests: int
    writes: Annotated[int, Doc("writes to the host (sysfs, netlink, commands): 0 when converged")]


class StateApplyDocument(StateOutcomeDoc):
    schema_version: SchemaVersion
    host: str
    source: str
    dry_run: bool
    messages: list[str]
    writes_log: NotRequired[list[WriteDoc]]


class StateRecordDoc(TypedDict):
    hash: Annotated[str, Doc("SHA-256 of the state file applied")]
    source: str
    result: Literal["Succeeded", "Failed"]
    error: str | None
    pfs: list[str]
    time: float
    boot_id: str | None


class StateStatusDocument(TypedDict):
    schema_version: SchemaVersion
    host: str
    source: str | None
    record: StateRecordDoc | None
    pending_journals: Annotated[list[str], Doc("PFs with an interrupted apply's journal (the next apply rolls forward)")]
    in_sync: Annotated[bool | None, Doc("converged, the state last applied, and that apply succeeded")]
    drifted: Annotated[bool | None, Doc("the host differs from the state (null: no state)")]
    changes: list[ChangeDoc]
    same_as_applied: NotRequired[bool]
    pools_not_in_state: Annotated[list[str], Doc("pools allocation records name that the state does not have")]


class PersistDocument(TypedDict):
    schema_version: SchemaVersion
    root: str
    dry_run: bool
    written: list[str]
    unchanged: list[str]
    removed: list[str]
    kept: Annotated[list[str], Doc("uninstall: files changed since they were installed, left in place")]
    warnings: list[str]
    files: Annotated[dict[str, Literal["installed", "changed", "stale", "missing", "absent"]],
                     Doc("persist status: each installed file")]


DOCUMENTS: dict[str, tuple[str, type]] = {
    "status": ("sriovctl status --json", StatusDocument),
    "list": ("sriovctl list --json", ListDocument),
    "show": ("sriovctl show DEVICE --json", ShowDocument),
    "tree": ("sriovctl tree --json", TreeDocument),
    "nodedev-list": ("sriovctl nodedev list --json", NodedevListDocument),
    "nodedev-dumpxml": ("sriovctl nodedev dumpxml NAME --json", NodedevXmlDocument),
    "pci-decode": ("sriovctl pci decode FILE --json", PciDecodeDocument),
    "snapshot": ("sriovctl snapshot OUT --json", SnapshotDocument),
    "sim-list": ("sriovctl sim list --json", SimListDocument),
    "sim-reset": ("sriovctl sim reset|create --json", SimResetDocument),
    "doctor": ("sriovctl doctor --json", DoctorDocument),
    "vf-action": ("sriovctl vf enable|disable|set|bind|unbind, virt attach --dry-run, virt detach, "
                  "qemu hotplug|unplug --json",
                  VfActionDocument),
    "virt-attach": ("sriovctl virt attach --json", VirtAttachDocument),
    "virt-xml": ("sriovctl virt xml|network-xml --json", VirtXmlDocument),
    "virt-list": ("sriovctl virt list --json", VirtListDocument),
    "qemu-args": ("sriovctl qemu args --json", QemuArgsDocument),
    "state-show": ("sriovctl state show --json", StateShowDocument),
    "state-validate": ("sriovctl state validate FILE --json", StateValidateDocument),
    "state-import": ("sriovctl state import FILE… --json", StateImportDocument),
    "state-export": ("sriovctl state export KIND [FILE] --json", StateExportDocument),
    "state-plan": ("sriovctl state plan FILE --json", StatePlanDocument),
    "state-apply": ("sriovctl state apply FILE --json", StateApplyDocument),
    "state-status": ("sriovctl state status [FILE] --json", StateStatusDocument),
    "persist": ("sriovctl persist install|uninstall|status --json", PersistDocument),
    "exporter": ("sriovctl exporter --textfile DIR --once --json", ExporterDocument),
    "pool": ("sriovctl pool allocate|release|list --json", PoolDocument),
    "pool-show": ("sriovctl pool show --json", PoolShowDocument),
    "pool-reconcile": ("sriovctl pool reconcile --json", PoolReconcileDocument),
    "sim-traffic": ("sriovctl sim traffic NAME VF --json", SimTrafficDocument),
    "error": ("sriovctl --json: the document printed when a command fails (any verb)", ErrorDocument),
}
