#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sriovctl developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: sriovctl_facts
short_description: SR-IOV facts of a host from sriovctl
version_added: "0.1.0"
description:
  - Gathers sriovctl's C(status) (PFs, VFs, drivers, IOMMU groups, assignability), C(doctor) (findings and
    per-PF capacity) and C(state status) (whether the host matches its stored desired state, and the last
    apply) as C(ansible_facts.sriov).
  - Doctor's warning and failure exits (4, 5) are findings, not a failed task; a host without a stored state
    reports C(state) with C(in_sync) null.
author:
  - sriovctl developers (@sriovctl)
options:
  gather:
    description:
      - Which facts to gather.
    type: list
    elements: str
    choices: [status, doctor, state]
    default: [status, doctor, state]
extends_documentation_fragment:
  - sriovctl.sriov.sriovctl
notes:
  - Always read-only; supports check mode.
"""

EXAMPLES = r"""
- name: SR-IOV facts
  sriovctl.sriov.sriovctl_facts:

- name: Fail the play where the host drifted from its state
  ansible.builtin.assert:
    that: ansible_facts.sriov.state.in_sync
"""

RETURN = r"""
ansible_facts:
  description: The facts.
  returned: always
  type: dict
  contains:
    sriov:
      description: C(status), C(doctor) and C(state), each sriovctl's C(--json) document.
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sriovctl.sriov.plugins.module_utils.sriovctl import (
    EX_DOCTOR,
    EX_DRIFTED,
    HOST_OPTIONS,
    Sriovctl,
    SriovctlError,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            gather=dict(type="list", elements="str", choices=["status", "doctor", "state"],
                        default=["status", "doctor", "state"]),
            **HOST_OPTIONS
        ),
        mutually_exclusive=[("sim", "root")],
        supports_check_mode=True,
    )
    tool = Sriovctl(module)
    facts = {}
    try:
        if "status" in module.params["gather"]:
            facts["status"] = tool.document(["status"])
        if "doctor" in module.params["gather"]:
            facts["doctor"] = tool.document(["doctor"], ok=(0,) + EX_DOCTOR)
        if "state" in module.params["gather"]:
            facts["state"] = tool.document(["state", "status"], ok=(0, EX_DRIFTED))
    except SriovctlError as e:
        module.fail_json(msg=e.msg, rc=e.rc)
    module.exit_json(changed=False, ansible_facts=dict(sriov=facts))


if __name__ == "__main__":
    main()
