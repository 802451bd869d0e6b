# -*- coding: utf-8 -*-
# Copyright: sriovctl developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The options every module shares: which sriovctl, and which host it works on (module_utils HOST_OPTIONS)."""

    DOCUMENTATION = r"""
options:
  bin:
    description:
      - The sriovctl command on the target (a name looked up on C(PATH), or a path).
    type: str
    default: sriovctl
  sim:
    description:
      - Work on this simulated host instead of the live one (rehearsals and tests).
    type: str
  sim_dir:
    description:
      - Where the simulated hosts live (C(SRIOVCTL_SIM_DIR)).
    type: path
  root:
    description:
      - A snapshot of a host (a directory or a C(.tar.gz) from C(sriovctl snapshot)) instead of the live one.
    type: path
"""
