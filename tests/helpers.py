"""Shared test helpers: run the CLI in-process, hash a tree, validate JSON against the shipped schemas."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sriovctl.cli.main import Ctx, run
from sriovctl.host.sim.catalog import open_sim
from sriovctl.pci.address import PciAddress

SRIOVCTL = [sys.executable, "-m", "sriovctl"]


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


def vf_address(host_name: str, pf: str, n: int) -> PciAddress:
    """The address of VF ``n`` of netdev ``pf`` on a simulated host."""
    host = open_sim(host_name)
    target = os.readlink(f"{host.root}/sys/class/net/{pf}/device/virtfn{n}")
    return PciAddress.parse(os.path.basename(target))


def domain_xml(name: str, addr: PciAddress) -> str:
    """libvirt's live status XML of a domain holding ``addr`` as an <interface type='hostdev'>."""
    from xml.sax.saxutils import escape

    return (f"<domstatus><domain type='kvm'><name>{escape(name)}</name><devices><interface type='hostdev' "
            f"managed='yes'><source><address type='pci' domain='0x{addr.domain:04x}' bus='0x{addr.bus:02x}' "
            f"slot='0x{addr.slot:02x}' function='0x{addr.function:x}'/></source></interface></devices></domain>"
            f"</domstatus>")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_exporter(sim: str, port: int, *extra: str) -> subprocess.Popen[str]:
    """`sriovctl exporter` as its own process, back when it says where it serves — or has exited (then the
    assertion shows why): no fixed deadline, its first line comes when it is ready however loaded the machine."""
    p = subprocess.Popen([*SRIOVCTL, "--sim", sim, "exporter", "--listen", f"127.0.0.1:{port}", *extra],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert p.stderr is not None
    line = p.stderr.readline()
    assert f"serving http://127.0.0.1:{port}/metrics" in line, line + (p.stderr.read() if p.poll() is not None else "")
    return p
