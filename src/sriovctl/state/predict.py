"""The host a state should leave behind, predicted from the host as it is (`state show`'s document of the PFs a
state touches) and the state — what `state plan --json` reports as ``after`` beside ``before``, so that a front
end can show a diff without applying (Ansible's `--check --diff`). tests/unit/test_predict.py holds every
prediction to what `state show` prints after a real apply on the simulated hosts.

Where the kernel chooses, the prediction says so rather than guess: a VF asked to go back to its own driver
(``driver: host``) whose driver is not known yet is predicted as ``host`` (any driver that is not a VM's stub
satisfies it, drivers.is_vm_safe)."""

from __future__ import annotations

import copy
from typing import Any

from sriovctl.attrs import ValueKind
from sriovctl.drivers import is_vm_safe
from sriovctl.state.desired import PfState
from sriovctl.state.keys import VF_DRIVER, VF_ID, VF_KEYS

HOST_DRIVER = "host"


def _shown(key: str, value: object) -> object:
    """A value as `state show` prints it (MACs in lower case, nmstate's 802.1q)."""
    attr = VF_KEYS[key]
    if attr.kind is ValueKind.MAC or (attr.kind is ValueKind.CHOICE and attr.key == "vlan_proto"):
        return str(value).lower()
    return value


def _fresh_vf(i: int, driver: str | None) -> dict[str, Any]:
    vf: dict[str, Any] = {VF_ID: i, **{k: _shown(k, a.default) for k, a in VF_KEYS.items()}}
    if driver is not None:
        vf[VF_DRIVER] = driver
    return vf


def predict_pf(current: dict[str, Any], entry: PfState, kept: set[int] | frozenset[int] = frozenset()
               ) -> dict[str, Any]:
    """``current`` (one PF of `state show`'s document) as ``entry`` would leave it; ``kept``: VFs in use whose
    attributes are their user's (resource-name), left as they are."""
    after = copy.deepcopy(current)
    on_pci = "drivers-autoprobe" in current or any(VF_DRIVER in v for v in current.get("vfs", []))
    autoprobe = entry.drivers_autoprobe if entry.drivers_autoprobe is not None else current.get("drivers-autoprobe",
                                                                                               True)
    if entry.drivers_autoprobe is not None and "drivers-autoprobe" in after:
        after["drivers-autoprobe"] = entry.drivers_autoprobe
    now = int(current.get("total-vfs") or 0)
    count = entry.total_vfs if entry.total_vfs is not None and not entry.externally_managed else now
    if count != now:  # every VF made again: a new VF's values, bound by autoprobe or left unbound
        after["total-vfs"] = count
        new_driver = (HOST_DRIVER if autoprobe else "none") if on_pci else None
        after["vfs"] = [_fresh_vf(i, new_driver) for i in range(count)]
    vfs = {v[VF_ID]: v for v in after["vfs"]}
    if entry.vfs is not None:
        asked = [(i, {k: a.default for k, a in VF_KEYS.items()}, None) for i in range(count)] if not entry.vfs else \
            [(i, {k: v for k, a in VF_KEYS.items() if (v := vs.attrs.get(a.key)) is not None}, vs.driver)
             for vs in entry.vfs for i in vs.ids]
        for i, values, driver in asked:
            vf = vfs.get(i)
            if vf is None:
                continue
            if i in kept:
                values = {}
            vf.update({k: _shown(k, v) for k, v in values.items()})
            if "vlan-id" in values and "qos" not in values:
                vf["qos"] = 0  # a VLAN is sent whole: without a QoS it is 0 (attrs.VfRequest fill)
            if "vlan-id" in values and "vlan-proto" not in values:
                vf["vlan-proto"] = _shown("vlan-proto", VF_KEYS["vlan-proto"].default)
            if driver is not None and VF_DRIVER in vf:
                vf[VF_DRIVER] = _driver(vf[VF_DRIVER], driver)
    return after


def _driver(now: str, want: str) -> str:
    if want != HOST_DRIVER:
        return want
    return now if now not in ("none", HOST_DRIVER) and not is_vm_safe(now) else HOST_DRIVER


def satisfies(predicted: str, shown: str) -> bool:
    """Whether a driver `state show` prints is the one predicted (``host``: any driver but a VM's stub)."""
    if predicted == HOST_DRIVER:
        return shown != "none" and not is_vm_safe(shown)
    return predicted == shown
