"""Changes as data: a plan is an ordered list of typed changes (kind, target, before, after, why); applying it
gives an outcome (what was done, refused, verified). Front ends render both; `--dry-run` is "plan, and show
the writes applying it would make, without making them"."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JSON = Any  # a value that json.dumps writes as is (str, int, bool, None, lists and dicts of them)


class ChangeKind(StrEnum):
    VF_COUNT = "vf-count"  # target: PF address; before/after: sriov_numvfs
    AUTOPROBE = "drivers-autoprobe"  # target: PF address; before/after: sriov_drivers_autoprobe (bool)
    VF_ATTR = "vf-attr"  # target: PF#N (its netdev); attr: the kernel request group; after: the value sent
    DRIVER = "driver"  # target: device address; before/after: driver name, None = unbound
    MODULE_LOAD = "module-load"  # target: module; before: "absent", after: "loaded"
    MODULE_RELOAD = "module-reload"  # target: module; after: "PARAM=N"
    CONFIG_FILE = "config-file"  # target: /etc/…; before: content or None; after: content
    LIBVIRT_ATTACH = "libvirt-attach"  # target: domain; after: device address
    LIBVIRT_DETACH = "libvirt-detach"  # target: domain; before: device address
    QMP_DEVICE_ADD = "qmp-device-add"  # target: QMP socket; after: QEMU device id
    QMP_DEVICE_DEL = "qmp-device-del"  # target: QMP socket; before: QEMU device id
    ESWITCH_MODE = "eswitch-mode"  # target: devlink handle (pci/ADDRESS, netdevsim/netdevsim10); legacy/switchdev


class NoticeKind(StrEnum):
    FORCED = "forced"  # an interlock overridden by force=True
    DEPRECATED = "deprecated"  # a legacy way was asked for
    SIDE_EFFECT = "side-effect"  # the change reaches further than its target
    SHARED_POOL = "shared-pool"  # libvirt may hand the same VF to someone else
    RUN_TIME = "run-time"  # a VF handed out (resource-name) is in use: its attributes are its user's, left alone


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    text: str


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    target: str
    before: JSON
    after: JSON
    why: str
    attr: str | None = None  # VF_ATTR: the kernel request group (attrs.KERNEL_ORDER)
    vf: int | None = None  # VF_ATTR: the VF index on the PF

    def to_json(self) -> dict[str, JSON]:
        doc: dict[str, JSON] = {"kind": self.kind.value, "target": self.target, "before": self.before,
                                "after": self.after, "why": self.why}
        if self.attr is not None:
            doc["attr"] = self.attr
        return doc


@dataclass
class Plan:
    """What an operation will change, in order. ``notes`` say why something needs no change."""

    operation: str
    host: str
    changes: list[Change] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes

    def to_json(self) -> dict[str, JSON]:
        return {"operation": self.operation, "changes": [c.to_json() for c in self.changes],
                "notices": [{"kind": n.kind.value, "text": n.text} for n in self.notices]}


@dataclass
class Outcome:
    """What applying a plan did: applied and refused changes, whether the host read back as planned, and one line
    per result for people (neutral wording: front ends add their own hints)."""

    plan: Plan
    applied: list[Change] = field(default_factory=list)
    refused: list[tuple[Change, str]] = field(default_factory=list)
    verified: bool | None = None  # None: nothing to verify (dry run, or a change not read back)
    messages: list[str] = field(default_factory=list)
    extra: dict[str, JSON] = field(default_factory=dict)  # operation-specific facts (netlink_requests, xml)

    def to_json(self) -> dict[str, JSON]:
        return {"applied": [c.to_json() for c in self.applied],
                "refused": [{**c.to_json(), "reason": why} for c, why in self.refused],
                "verified": self.verified}


def merge(outcomes: list[Outcome]) -> Outcome:
    """Outcomes of one operation applied device by device, as one (the plans' changes and notices in order)."""
    if len(outcomes) == 1:
        return outcomes[0]
    first = outcomes[0].plan if outcomes else Plan("none", "")
    plan = Plan(first.operation, first.host, [c for o in outcomes for c in o.plan.changes],
                [n for o in outcomes for n in o.plan.notices], [m for o in outcomes for m in o.plan.notes])
    verified = [o.verified for o in outcomes if o.verified is not None]
    return Outcome(plan, [c for o in outcomes for c in o.applied], [r for o in outcomes for r in o.refused],
                   all(verified) if verified else None, [m for o in outcomes for m in o.messages],
                   {k: v for o in outcomes for k, v in o.extra.items()})
