"""sriovctl's command line: parse, call one operation, render; errors as one line (or one JSON document) with
their documented exit code. Global options go anywhere on the line.

Imports beyond argparse are made inside the verbs, so that ``sriovctl --version`` starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sriovctl.cli.context import Ctx
from sriovctl.cli.parser import build_parser
from sriovctl.cli.reads import cmd_status
from sriovctl.cli.writes import writes_json
from sriovctl.errors import PartialError, RolledBackError, SriovctlError, UsageError
from sriovctl.untrusted import sanitize_line, shown

__all__ = ["Ctx", "build_parser", "hoist_globals", "main", "run"]


def _error_json(ctx: Ctx | None, out: Any, code: int, message: str, hint: str | None,
                details: list[str] | None = None, outcome: Any = None) -> None:
    """Under --json the output is one JSON document, errors included (schemas/error.json); a partially applied
    change also carries what was done (the vf-action fields, with the plan and the outcome)."""
    from sriovctl.cli.documents import SCHEMA_VERSION

    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION,
                           "error": {"exit_code": code, "message": message, "hint": hint}}
    host = ctx.host if ctx is not None else None
    if host is not None and details is not None:
        doc.update(host=host.label, dry_run=host.dry_run, messages=details, writes=writes_json(host))
        if outcome is not None and hasattr(outcome, "rolled_back"):  # state apply (StateOutcome)
            doc.update(state_apply=outcome.to_json())
        elif outcome is not None:
            doc.update(plan=outcome.plan.to_json(), outcome=outcome.to_json())
    out.write(json.dumps(doc) + "\n")


def run(argv: Sequence[str] | None = None, out: Any = None, err: Any = None) -> tuple[int, Ctx | None]:
    """Run the CLI in-process. Returns (exit code, context) — the context holds the host and its write log."""
    err = err or sys.stderr
    out = out or sys.stdout
    raw = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in raw
    ctx: Ctx | None = None
    args: argparse.Namespace | None = None

    def fail(code: int, message: str, hint: str | None, details: list[str] | None = None, outcome: Any = None) -> None:
        message = sanitize_line(message)
        hint = sanitize_line(hint) if hint else None
        if ctx.json if ctx is not None else "--json" in raw:
            _error_json(ctx, out, code, message, hint, details, outcome)
        elif details:
            out.write("".join(sanitize_line(line) + "\n" for line in details))
        err.write(f"sriovctl: {message}" + (f" (hint: {hint})" if hint else "") + "\n")

    def words(e: SriovctlError, args: argparse.Namespace | None) -> tuple[str, str | None]:
        from sriovctl.cli.remedies import words as cli_words  # only when something went wrong: --version stays fast

        return cli_words(e, args)

    try:
        args = build_parser().parse_args(hoist_globals(raw))
        ctx = Ctx(args, out, err=err)
        fn: Callable[[Ctx], int] = getattr(args, "fn", cmd_status)
        return fn(ctx), ctx
    except (PartialError, RolledBackError) as e:
        fail(e.exit_code, *words(e, args), e.details, e.outcome)
        return e.exit_code, ctx
    except SriovctlError as e:
        if debug:
            import traceback

            traceback.print_exc(file=err)
        fail(e.exit_code, *words(e, args))
        return e.exit_code, ctx
    except Terminated as e:  # SIGTERM/SIGHUP (main): one line, or one JSON document, like any other error
        fail(e.exit_code, f"terminated by {e.name}", "a change in progress is completed or rolled back by the next "
             "run (state apply keeps a journal)")
        return e.exit_code, ctx
    except SystemExit as e:  # --help, --version
        return int(e.code or 0), ctx
    except KeyboardInterrupt:
        fail(130, "interrupted", None)
        return 130, ctx
    except BrokenPipeError:
        return 0, ctx
    except (MemoryError, RecursionError) as e:  # input that slipped past a limit: say so, not "internal error"
        fail(os.EX_DATAERR, f"input too large or too deeply nested ({type(e).__name__})",
             "see docs/SECURITY.md for the limits")
        return os.EX_DATAERR, ctx
    except Exception as e:  # a bug: say so in one line, traceback with --debug
        if debug:
            import traceback

            traceback.print_exc(file=err)
        fail(os.EX_SOFTWARE, f"internal error: {type(e).__name__}: {e}", "run with --debug for the traceback")
        return os.EX_SOFTWARE, ctx


GLOBAL_FLAGS = ("--json", "--debug")  # global options without a value
GLOBAL_OPTIONS = ("--sim", "--root")  # global options with one


def hoist_globals(argv: list[str]) -> list[str]:
    """Global options are accepted anywhere on the line (people type `sriovctl pci decode F --json`, `sriovctl vf
    enable PF 4 --sim lab`): they are moved before the verb, so no verb's parser sees them and none of its
    defaults can overwrite them. Everything after `--` is left alone; a value option given twice with two
    different values is refused."""
    if "--" in argv:
        cut = argv.index("--")
        head, tail = argv[:cut], argv[cut:]
    else:
        head, tail = argv, []
    flags: list[str] = []
    values: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(head):
        a = head[i]
        name, eq, value = a.partition("=")
        if a in GLOBAL_FLAGS:
            if a not in flags:
                flags.append(a)
        elif name in GLOBAL_OPTIONS and (eq or i + 1 < len(head)):
            if not eq:
                i += 1
                value = head[i]
            if name in values and values[name] != value:
                raise UsageError(f"{name} given twice: {shown(values[name])} and {shown(value)}", hint="name one host")
            values[name] = value
        else:
            rest.append(a)
        i += 1
    return flags + [x for k, v in values.items() for x in (k, v)] + rest + tail


class Terminated(SystemExit):
    """SIGTERM or SIGHUP: the run ends like Ctrl-C ends it (cleanup — locks released, extracted snapshots removed
    — still runs, and a SystemExit passes every `except Exception` on the way, so no rollback is half-started);
    exit 128 + the signal's number (143, 129: docs/EXIT-CODES.md)."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(128 + signum)
        self.exit_code = 128 + signum
        self.name = signal.Signals(signum).name


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise Terminated(signum)


def main(argv: Sequence[str] | None = None) -> int:
    import gc
    import signal

    # One command, then exit: a whole-host read makes ~200,000 objects that all live until then, and the default
    # generation-0 collection every 700 allocations walks them again and again (8 % of a 4,129-device
    # `--json status`, bench/inventory.py). Rarer collections still bound what a cycle could hold.
    gc.set_threshold(100_000, 50, 100)

    os.umask(os.umask(0o022) | 0o022)  # we run as root: what we create is never group- or world-writable
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    code, _ = run(argv)
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
