"""Errors, each saying who must act, and the exit code the CLI maps it to.

Exit codes follow sysexits(3); docs/EXIT-CODES.md is the table for the whole CLI.
Every message starts with the object it is about; ``hint`` says what to do next.
"""

from __future__ import annotations

import os


class SriovctlError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code: int = os.EX_SOFTWARE

    def __init__(self, message: str, hint: str | None = None, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # What the user can do, as a key a front end words in its own terms (the CLI: cli/remedies.py names its
        # options; the library never does). ``hint`` is the front-end-neutral wording.
        self.remedy = remedy


class UsageError(SriovctlError, ValueError):
    """The command line is wrong (unknown option, malformed device name). The user must fix it."""

    exit_code = os.EX_USAGE


class FieldError(UsageError):
    """A value given for a named field is wrong. The message names the field in the library's words (``label``);
    a front end may name it as its own option (the CLI: ``--alias``) through ``field``."""

    def __init__(self, field: str, label: str, value: object, problem: str, subject: str | None = None,
                 hint: str | None = None, remedy: str | None = None) -> None:
        self.field, self.label, self.value, self.problem, self.subject = field, label, value, problem, subject
        super().__init__(self.named(label), hint, remedy)

    def named(self, name: str) -> str:
        head = f"{self.subject}: " if self.subject else ""
        return f"{head}{name} {self.value}: {self.problem}" if self.value is not None else f"{head}{name} {self.problem}"


class DataError(SriovctlError, ValueError):
    """Input data is malformed (a dump, a spec, a snapshot file). The user must fix the data."""

    exit_code = os.EX_DATAERR


class NoInputError(SriovctlError, FileNotFoundError):
    """A named input (file, device, snapshot) does not exist. The user must name an existing one."""

    exit_code = os.EX_NOINPUT


class UnavailableError(SriovctlError):
    """A service or capability the host lacks (no SR-IOV, no IOMMU, no libvirt). The operator must act."""

    exit_code = os.EX_UNAVAILABLE


class ReadOnlyError(SriovctlError, PermissionError):
    """A write was attempted on a read-only host (a snapshot). The user must target a live or simulated host."""

    exit_code = os.EX_NOPERM


class HostPermissionError(SriovctlError, PermissionError):
    """The OS refused access (not root). The user must run with privileges."""

    exit_code = os.EX_NOPERM


class HostIOError(SriovctlError, OSError):
    """Reading or writing the host failed unexpectedly. The operator should look at the system."""

    exit_code = os.EX_IOERR


class InterlockError(SriovctlError, PermissionError):
    """A safety interlock refused the change (a VF in use, the default-route interface, a device that is
    not assignable). The user must free the device first, or insist with --force. ``holders`` are the typed
    uses (model.Use: kind and id) that caused the refusal, for front ends that act on them."""

    exit_code = os.EX_NOPERM

    def __init__(self, message: str, hint: str | None = None, remedy: str | None = None,
                 holders: tuple[object, ...] = ()) -> None:
        super().__init__(message, hint, remedy)
        self.holders = holders


class TemporaryError(SriovctlError):
    """The host did not get there in time (VFs still probing) or is busy. Try again."""

    exit_code = os.EX_TEMPFAIL


EX_PARTIAL = 3  # some changes applied, others refused by the driver: see docs/EXIT-CODES.md
EX_DOCTOR_WARN = 4  # doctor found warnings (no failures)
EX_DOCTOR_FAIL = 5  # doctor found failures
EX_VERIFY = 6  # changes made, but the host reads back differently
EX_ROLLED_BACK = 7  # state apply failed midway; the host was restored to its checkpoint
EX_ROLLBACK_FAILED = 8  # state apply failed midway and the restore failed too: the host is in between
EX_DRIFTED = 9  # state status: the host does not match the state (or the last apply failed)
EX_REFUSED = 76  # libvirt or QEMU refused the operation (sysexits EX_PROTOCOL: the remote side said no)


class VerificationError(SriovctlError):
    """The kernel accepted a change but reading the host back shows something else (a driver that silently
    ignores an attribute, another writer in between). The operator should look at the device."""

    exit_code = EX_VERIFY


class RefusedError(SriovctlError):
    """libvirt or QEMU refused the operation (the request reached them; they said no). The operator must act."""

    exit_code = EX_REFUSED


class PartialError(SriovctlError):
    """Some of the requested changes were applied and others refused (per VF and attribute in ``details``)."""

    exit_code = EX_PARTIAL

    def __init__(self, message: str, details: list[str], hint: str | None = None, remedy: str | None = None,
                 outcome: object | None = None) -> None:
        super().__init__(message, hint, remedy)
        self.details = details
        self.outcome = outcome  # the operation's Outcome (ops/plan.py): what was applied and refused


class RolledBackError(SriovctlError):
    """`state apply` failed after changing the host, and the host was put back as it was (``outcome``: what was
    applied, what failed, what was restored)."""

    exit_code = EX_ROLLED_BACK

    def __init__(self, message: str, hint: str | None = None, outcome: object | None = None,
                 restored: bool = True) -> None:
        super().__init__(message, hint)
        self.outcome = outcome
        self.details: list[str] = list(getattr(outcome, "messages", []))
        if not restored:
            self.exit_code = EX_ROLLBACK_FAILED


class BugError(SriovctlError):
    """An internal inconsistency: a bug in sriovctl. Report it."""

    exit_code = os.EX_SOFTWARE
