"""The CLI's context for one run: the parsed arguments, where output goes, the host once opened."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from sriovctl.errors import UsageError
from sriovctl.untrusted import shown

if TYPE_CHECKING:
    from sriovctl.model import Inventory
    from sriovctl.ops.session import Host, Session


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Options are spelled in full: an abbreviation (`--s X` for --sim) slipped past the "given twice" check
        # of global options and silently chose the host; a later option could also make an old abbreviation
        # mean something else.
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("sriovctl").strip()
        raise UsageError(f"{where}: {message}" if where else message, hint=f"see `{self.prog} --help`")


@dataclass
class Ctx:
    args: argparse.Namespace
    out: Any = field(default_factory=lambda: sys.stdout)
    host: Host | None = None
    err: Any = field(default_factory=lambda: sys.stderr)  # warnings and notes

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    def open_host(self) -> Host:
        if self.host is None:
            from sriovctl.ops.session import open_host

            for opt, value in (("--sim", self.args.sim), ("--root", self.args.root)):
                if value is not None and not value.strip():
                    # An unset variable ("--sim $HOST") must never fall through to the live host.
                    raise UsageError(f"{opt}: empty value {shown(value)}",
                                     hint=f"name a {'simulated host' if opt == '--sim' else 'snapshot'}, "
                                          "or leave the option out for the live host")

            self.host = open_host(self.args.sim, self.args.root)
        return self.host

    def session(self, stats: bool = False) -> Session:
        from sriovctl.ops.session import Session

        host = self.open_host()
        host.dry_run = bool(getattr(self.args, "dry_run", False))
        return Session(host, stats=stats)

    def inventory(self, stats: bool = False) -> Inventory:
        return self.session(stats).inv

    def emit_json(self, doc: Mapping[str, Any]) -> None:
        # Indented for a person at a terminal; compact (and written by the fast C encoder) for programs.
        tty = hasattr(self.out, "isatty") and self.out.isatty()
        self.out.write(json.dumps(doc, indent=2 if tty else None) + "\n")

