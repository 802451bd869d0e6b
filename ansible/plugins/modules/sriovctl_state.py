#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sriovctl developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: sriovctl_state
short_description: Make a host's SR-IOV match a desired state with sriovctl
version_added: "0.1.0"
description:
  - Plans and applies an sriovctl desired state (nmstate C(sr-iov) keys per PF and VF) on the target through
    sriovctl's own engine - VF counts, VF attributes, driver bindings - with its interlocks, per-PF locks,
    read-back verification and rollback.
  - Check mode runs the plan only; nothing is written. With C(--diff) the task shows the PFs the state touches
    as state documents, before and after (in check mode the after is sriovctl's prediction).
  - An impact of kind C(destroys-vfs) or C(stop-vm) fails the task unless O(force=true).
  - With O(root) (a snapshot) the state is only planned against (check mode only).
author:
  - sriovctl developers (@sriovctl)
options:
  desired:
    description:
      - The state as a mapping (the content of a state file, with its C(pfs) list).
      - Applied as given; with O(persist=true) the same document is stored, so C(sriovctl state status) reports
        the host in sync.
    type: dict
  state_file:
    description:
      - A state file already on the target.
    type: path
  persist:
    description:
      - Also store the state as C(/etc/sriovctl/state.yaml) and install what applies it at boot and when a PF
        reappears (C(sriovctl persist install)).
    type: bool
    default: false
  force:
    description:
      - Destroy or take VFs that are in use (C(sriovctl state apply --force)); also lets a plan with a
        C(destroys-vfs) or C(stop-vm) impact proceed.
    type: bool
    default: false
  wait:
    description:
      - Seconds to wait for the PFs' locks, for VFs to settle and for drivers to bind.
    type: int
extends_documentation_fragment:
  - sriovctl.sriov.sriovctl
notes:
  - Runs sriovctl's versioned C(--json) documents on the target; see docs/FLEET.md in the sriovctl repository.
  - Exit codes of sriovctl become failures with its one-line message and hint; a rolled-back apply reports what
    was restored.
"""

EXAMPLES = r"""
- name: Eight VFs on the first port, two of them for VMs
  sriovctl.sriov.sriovctl_state:
    desired:
      pfs:
        - name: enp11s0f0
          total-vfs: 8
          vfs:
            - {id: 0, mac-address: "52:54:00:6d:90:02", vlan-id: 42, driver: vfio-pci}
            - {id: 1, vlan-id: 43, trust: true, driver: vfio-pci}
    persist: true

- name: What would change (no writes)
  sriovctl.sriov.sriovctl_state:
    state_file: /etc/sriovctl/state.yaml
  check_mode: true
  diff: true
"""

RETURN = r"""
changed:
  description: Something was written to the host (in check mode, the host is not converged).
  returned: always
  type: bool
plan:
  description: sriovctl's plan - its ordered changes, whether the host is converged, and the impact.
  returned: always
  type: dict
  contains:
    changes:
      description: Each change with its kind, target, before, after and why.
      type: list
      elements: dict
    converged:
      description: Nothing to change.
      type: bool
    impact:
      description: What the changes do to users of the VFs (destroys-vfs, stop-vm, takes-vf, module-reload, not-assignable).
      type: list
      elements: dict
writes:
  description: Writes made to the host (sysfs, netlink, commands); 0 when converged or in check mode.
  returned: always
  type: int
netlink_requests:
  description: RTM_SETLINK and RTM_GETLINK requests made.
  returned: always
  type: int
persisted:
  description: Files C(sriovctl persist install) wrote (empty when they were in place already).
  returned: when persist is true
  type: list
  elements: str
state_apply:
  description: A failed apply's account (plan, applied, restored) when sriovctl rolled it back (exit 7 or 8).
  returned: on a rolled-back apply
  type: dict
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sriovctl.sriov.plugins.module_utils.sriovctl import (
    EX_ROLLED_BACK,
    HOST_OPTIONS,
    Sriovctl,
    SriovctlError,
)

BLOCKING_IMPACTS = ("destroys-vfs", "stop-vm")


def _state_file(module):
    """The state as a file on the target: the one named, or the desired mapping written as JSON (YAML 1.2's
    subset: sriovctl reads it as any state file, and its digest is the document's, not the file's)."""
    if module.params["state_file"]:
        return module.params["state_file"]
    path = os.path.join(module.tmpdir, "sriovctl-state.json")
    with open(path, "w") as f:
        json.dump(module.params["desired"], f, indent=1, sort_keys=True)
    return path


def main():
    module = AnsibleModule(
        argument_spec=dict(
            desired=dict(type="dict"),
            state_file=dict(type="path"),
            persist=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            wait=dict(type="int"),
            **HOST_OPTIONS
        ),
        mutually_exclusive=[("desired", "state_file"), ("sim", "root")],
        required_one_of=[("desired", "state_file")],
        supports_check_mode=True,
    )
    p = module.params
    if p["root"] and not module.check_mode:
        module.fail_json(msg="root=%s is a snapshot of a host: it can only be planned against (check mode)" % p["root"])
    tool = Sriovctl(module)
    result = dict(changed=False, writes=0, netlink_requests=0)
    try:
        path = _state_file(module)
        plan = tool.document(["state", "plan", path])
        result["plan"] = dict(changes=plan["changes"], converged=plan["converged"], impact=plan["impact"])
        if module._diff:
            result["diff"] = dict(before=dict(state=plan["before"]), after=dict(state=plan["after"]))
        blocking = [i for i in plan["impact"] if i["kind"] in BLOCKING_IMPACTS]
        if blocking and not p["force"]:
            module.fail_json(msg="%s: %s (force=true to go ahead)" % (blocking[0]["target"], blocking[0]["why"]),
                             **result)
        if module.check_mode:
            result["changed"] = not plan["converged"]
            module.exit_json(**result)
        args = ["state", "apply", path]
        if p["force"]:
            args.append("--force")
        if p["wait"] is not None:
            args += ["--wait", str(p["wait"])]
        applied = tool.document(args)
        result["writes"] = applied["writes"]
        result["netlink_requests"] = applied["netlink_requests"]
        result["changed"] = applied["writes"] > 0
        if module._diff and result["changed"]:
            names = [pf.get("name") or pf.get("pci-address") for pf in plan["before"]["pfs"]]
            shown = tool.document(["state", "show"] + names)
            result["diff"]["after"] = dict(state=shown["state"])
        if p["persist"]:
            stored = tool.document(["persist", "install", path])
            result["persisted"] = stored["written"]
            result["changed"] = result["changed"] or bool(stored["written"])
    except SriovctlError as e:
        if e.rc in EX_ROLLED_BACK and e.document and "state_apply" in e.document:
            result["state_apply"] = e.document["state_apply"]
        module.fail_json(msg=e.msg, rc=e.rc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
