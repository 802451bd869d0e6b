"""Shared test helpers: run the CLI in-process, hash a tree, validate JSON against the shipped schemas."""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sriovctl.cli.main import Ctx, run


@dataclass
class Result:
    code: int
    out: str
    err: str
    ctx: Ctx | None

    def json(self) -> Any:
        return json.loads(self.out)


def cli(*args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code, ctx = run(list(args), out=out, err=err)
    return Result(code, out.getvalue(), err.getvalue(), ctx)


def tree_hash(root: str) -> str:
    """Hash of every file's path, content and every link's target under root — the simulated host, not
    sriovctl's own bookkeeping beside it (``state/``: PF lock files and the write log)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        if "state" in dirnames and os.path.exists(os.path.join(dirpath, "sim.json")):
            dirnames.remove("state")
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            p = os.path.join(dirpath, name)
            h.update(os.path.relpath(p, root).encode())
            if os.path.islink(p):
                h.update(b"->" + os.readlink(p).encode())
            else:
                with open(p, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def schema(name: str) -> dict[str, Any]:
    return json.loads((resources.files("sriovctl") / "schemas" / f"{name}.json").read_text())


def validate(doc: Any, name: str) -> None:
    """Strictly: every object in the schemas is closed, $refs resolve to the shipped defs.json."""
    import jsonschema
    from referencing import Registry, Resource

    defs = schema("defs")
    registry = Registry().with_resource("sriovctl/defs.json", Resource.from_contents(defs))
    jsonschema.Draft202012Validator(schema(name), registry=registry).validate(doc)


def hold_vfio(group: str, pid: int = 4242, comm: str = "dpdk-testpmd", argv: tuple[str, ...] = (),
              sim: str = "igb-82576") -> None:
    """A process in the simulated host's /proc with /dev/vfio/GROUP open (argv defaults to its comm)."""
    from pathlib import Path

    from sriovctl.host.sim.catalog import open_sim

    root = Path(open_sim(sim).root)
    fd = root / f"proc/{pid}/fd"
    fd.mkdir(parents=True)
    (root / f"proc/{pid}/comm").write_text(comm + "\n")
    (root / f"proc/{pid}/cmdline").write_bytes(b"\0".join(a.encode() for a in argv or (comm,)) + b"\0")
    os.symlink(f"/dev/vfio/{group}", fd / "17")
