"""Leftovers of killed runs: temporary files and directories carry the PID of the process that made them
(``sriovctl-root-PID-…``, ``.NAME.building.PID``, ``.sim.json.PID.tmp``); whoever comes next removes those
whose process is gone. A PID that was reused keeps its leftover until that process ends too."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def owner_gone(pid_text: str) -> bool:
    """True when ``pid_text`` is a PID (ASCII digits) of no running process other than us."""
    return pid_text.isascii() and pid_text.isdigit() and int(pid_text) != os.getpid() and not pid_alive(int(pid_text))
