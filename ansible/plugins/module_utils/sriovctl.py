# -*- coding: utf-8 -*-
# Copyright: sriovctl developers
# Apache License 2.0 (see LICENSE)
"""Running sriovctl on the target and reading its --json documents: the one way the modules reach the engine.

Why the CLI and not the library: a module runs under the target's Ansible Python, which need not be the
interpreter sriovctl is installed for (a venv, a distribution package); the CLI's documents are versioned
(``schema_version``) and described by JSON Schemas, and its exit codes are documented (docs/EXIT-CODES.md).
Commands are argument vectors (no shell); a failed command's one-line error and hint become the task's message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

# sriovctl's exit codes (docs/EXIT-CODES.md) that the modules tell apart
EX_DRIFTED = 9
EX_DOCTOR = (4, 5)  # doctor's findings: a warning, a failure — facts, not a failed task
EX_ROLLED_BACK = (7, 8)  # state apply rolled back (8: the rollback did not reach the checkpoint)

HOST_OPTIONS = dict(
    bin=dict(type="str", default="sriovctl"),
    sim=dict(type="str"),
    sim_dir=dict(type="path"),
    root=dict(type="path"),
)


class SriovctlError(Exception):
    def __init__(self, msg, rc=None, document=None):
        super(SriovctlError, self).__init__(msg)
        self.msg, self.rc, self.document = msg, rc, document


class Sriovctl(object):
    """One target's sriovctl: its path, and which host it works on (the live host, ``sim``, or ``root``)."""

    def __init__(self, module):
        self.module = module
        p = module.params
        if "/" in p["bin"]:
            path = p["bin"] if os.path.isfile(p["bin"]) and os.access(p["bin"], os.X_OK) else None
        else:
            path = module.get_bin_path(p["bin"], required=False)
        if not path:
            module.fail_json(msg="sriovctl not found on the target: %s (install it, or name it with bin=)" % p["bin"])
        self.bin = path
        self.host = []
        if p.get("sim") is not None:
            self.host = ["--sim", p["sim"]]
        elif p.get("root") is not None:
            self.host = ["--root", p["root"]]
        self.env = {"SRIOVCTL_SIM_DIR": p["sim_dir"]} if p.get("sim_dir") else {}
        self.commands = []

    def run(self, args, ok=(0,)):
        """(exit code, the command's one JSON document). Any exit code not in ``ok`` raises SriovctlError with
        sriovctl's own message and hint."""
        argv = [self.bin, "--json"] + self.host + list(args)
        self.commands.append(argv)
        rc, out, err = self.module.run_command(argv, environ_update=self.env, check_rc=False)
        doc = None
        if out.strip():
            try:
                doc = json.loads(out)
            except ValueError:
                raise SriovctlError("%s: not a JSON document on stdout (exit %d): %s" % (
                    " ".join(argv[:4]), rc, (err or out).strip()[:500]), rc)
        if rc in ok:
            return rc, doc
        error = (doc or {}).get("error") or {}
        msg = error.get("message") or (err.strip().splitlines() or ["exit %d" % rc])[-1]
        if error.get("hint"):
            msg = "%s (hint: %s)" % (msg, error["hint"])
        raise SriovctlError(msg, rc, doc)

    def document(self, args, ok=(0,)):
        """The command's JSON document (see run)."""
        return self.run(args, ok)[1]
