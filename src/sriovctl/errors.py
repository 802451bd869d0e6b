"""Errors, each saying who must act, and the exit code the CLI maps it to.

Exit codes follow sysexits(3); docs/EXIT-CODES.md is the table for the whole CLI.
Every message starts with the object it is about; ``hint`` says what to do next.
"""

from __future__ import annotations

import os


class SriovctlError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code: int = os.EX_SOFTWARE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(SriovctlError, ValueError):
    """The command line is wrong (unknown option, malformed device name). The user must fix it."""

    exit_code = os.EX_USAGE


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
    not assignable). The user must free the device first, or insist with --force."""

    exit_code = os.EX_NOPERM


class TemporaryError(SriovctlError):
    """The host did not get there in time (VFs still probing) or is busy. Try again."""

    exit_code = os.EX_TEMPFAIL


EX_PARTIAL = 3  # some changes applied, others refused by the driver: see docs/EXIT-CODES.md
EX_DOCTOR_WARN = 4  # doctor found warnings (no failures)
EX_DOCTOR_FAIL = 5  # doctor found failures


class PartialError(SriovctlError):
    """Some of the requested changes were applied and others refused (per VF and attribute in ``details``)."""

    exit_code = EX_PARTIAL

    def __init__(self, message: str, details: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.details = details


class BugError(SriovctlError):
    """An internal inconsistency: a bug in sriovctl. Report it."""

    exit_code = os.EX_SOFTWARE
