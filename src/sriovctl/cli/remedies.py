"""What the user can do, in the CLI's own words: the library's errors carry a remedy key and a neutral hint;
here each key becomes the hint that names our options and verbs (and, for a few, the option the message is
about). The library never names a CLI option."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from sriovctl.attrs import AttrValueError
from sriovctl.errors import FieldError, InterlockError, SriovctlError

# a library field → the option that gives it
OPTIONS = {"alias": "--alias", "vlan": "--vlan", "profile": "--profile", "name": "--name", "bus": "--bus",
           "module_param": "--module-param"}

# remedy key → (the neutral hint, the parsed command line) → the CLI's hint
HINTS: dict[str, Callable[[str, argparse.Namespace], str]] = {
    "reset": lambda h, a: "--reset disables the existing VFs first, if none is in use",
    "count": lambda h, a: f"{h}; `vf disable` sets 0",
    "pfs": lambda h, a: "`sriovctl status` lists the PFs",
    "force": lambda h, a: f"{h}, or use --force",
    "force-cut-off": lambda h, a: f"{h}, or --force",
    "force-assign": lambda h, a: "a VM cannot own it safely; fix the group (doctor) or use --force",
    "force-write": lambda h, a: "see `sriovctl doctor`; --force writes it anyway",
    "force-try": lambda h, a: "see `sriovctl doctor`; --force to try anyway",
    "attrs": lambda h, a: "e.g. --mac, --vlan, --spoofchk, --trust, --state, --max-rate",
    "ebusy": lambda h, a: "VFs are enabled or the device is bound: write 0 first (--reset), or unbind it first",
    "settle-wait": lambda h, a: "wait longer (--wait SECONDS) and check dmesg",
    "lock-wait": lambda h, a: "try again when it has finished, or wait longer (--wait SECONDS)",
    "name-driver": lambda h, a: f"{h} (e.g. `vf bind DEV igbvf`)",
    "virt-list": lambda h, a: "`sriovctl virt list` shows who uses what",
    "bind-host": lambda h, a: f"`sriovctl vf bind {getattr(a, 'device', 'DEV')} host` returns it once QEMU lets go",
    "config-only": lambda h, a: "use --config for a stopped domain, or start it",
    "no-hostdev": lambda h, a: "drop --hostdev for an <interface type='hostdev'>",
    "hostdev": lambda h, a: "use --hostdev for other PCI functions",
    "list-vfs": lambda h, a: "use --vfs",
    "drop-profile": lambda h, a: "drop --profile, or use --force to write it anyway",
    "read-only": lambda h, a: "a snapshot is for reading; use the live host or --sim",
}

# remedy key → how the CLI words the message (the option it is about, a parenthesis naming the way out)
MESSAGES: dict[str, Callable[[str], str]] = {
    "reset": lambda m: f"{m} (write 0 first, or use --reset)",
    "no-hostdev": lambda m: f"--hostdev: {m}",
}


def detach_first(e: InterlockError, a: argparse.Namespace) -> str:
    dom = getattr(e.holders[0], "id", "DOMAIN") if e.holders else "DOMAIN"
    return f"detach it from {dom} first (sriovctl virt detach {dom} {getattr(a, 'device', 'DEV')})"


def words(e: SriovctlError, args: argparse.Namespace | None) -> tuple[str, str | None]:
    """(message, hint) of a library error as the CLI says them."""
    message, hint = e.message, e.hint
    if isinstance(e, AttrValueError):
        message = e.named_by(lambda attr: attr.flag)
    elif isinstance(e, FieldError) and e.field in OPTIONS:
        message = e.named(OPTIONS[e.field])
    if e.remedy is None or args is None:
        return message, hint
    if e.remedy in MESSAGES:
        message = MESSAGES[e.remedy](message)
    if e.remedy == "detach-first" and isinstance(e, InterlockError):
        return message, detach_first(e, args)
    if e.remedy in HINTS:
        hint = HINTS[e.remedy](hint or "", args)
    return message, hint
