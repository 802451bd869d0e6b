"""Random byte-level mutations of valid documents — state files (YAML and JSON), nmstate documents, systemd-
networkd .network files, device-plugin configs — run through the whole CLI in-process (issue 18). Each case must
exit 0 or 65; a 65 names the file (and where: a path or a line); nothing takes longer than a per-case deadline;
a refused state file leaves the simulated host as it was. Seeded: a failure names a reproducible case.
The suite runs 500 (tests/unit/test_mutations.py), bench/mutations.py 10,000."""

from __future__ import annotations

import contextlib
import json
import random
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from importdocs import NETWORK, NMSTATE, PLUGIN

from helpers import cli, tree_hash

SIM = "igb-82576"
CASE_SECONDS = 60  # a case takes ~50 ms; a hang (a FIFO, a catastrophic regular expression) never returns

STATE = """pfs:
- name: enp11s0f0
  total-vfs: 7
  drivers-autoprobe: true
  vfs:
  - id: 0
    mac-address: 02:00:00:00:10:01
    vlan-id: 100
    qos: 3
    vlan-proto: 802.1q
    spoof-check: false
    trust: true
  - id: "1-3"
    vlan-id: 0
    driver: host
- pci-address: "0000:0b:00.1"
  vfs:
  - {id: 4, mac-address: "02:00:00:00:10:02", spoof-check: true}
"""

# name, the file's name, its text, the verb it goes through
KINDS: dict[str, tuple[str, str, str]] = {
    "state-yaml": ("want.yaml", STATE, "apply"),
    "state-json": ("want.json", json.dumps(json.loads(json.dumps(__import__("yaml").safe_load(STATE))), indent=1),
                   "apply"),
    "nmstate": ("nm.yaml", NMSTATE, "import"),
    "networkd": ("a.network", NETWORK, "import"),
    "device-plugin": ("config.json", json.dumps(PLUGIN, indent=1), "import"),
}

# bytes a hostile editor likes: structure, controls, encodings, long numbers
SPICE = [b"\x00", b"\x0c", b"\x1b", b"\xff", b"\xfe\xff", b"\xe2\x80\xa8", b":", b"\n", b"#", b"-", b"{", b"[", b"&a",
         b"*a", b"!!", b"'", b'"', b"\\", b"=", b"9" * 40, b"9" * 5000, b"0x", b"0o17", b"0100", b".inf", b"~",
         b"<<: ", b"yes", b"\t", b"\r", b" " * 3, b"%YAML 1.1\n---\n", b"---\n", b"[SR-IOV]\n", b"[Match]\n",
         b"Path=x\n", b"Name=\n", b"\"vfs\": ", b"\"pfNames\": \"ens1f0\""]


_PRINTABLE = b"".join(bytes([c]) for c in range(0x20, 0x7F)) + b"\n"


def _byte(rng: random.Random) -> int:
    """Mostly printable ASCII (edits that reach past the decoder into the grammar and the values), else any."""
    return rng.choice(_PRINTABLE) if rng.random() < 0.8 else rng.randrange(256)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits (mostly one): a byte changed, bytes inserted (random or from SPICE), a range deleted or
    duplicated, two lines swapped, the end cut."""
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 4))):
        op = rng.randrange(7)
        at = rng.randrange(len(b) + 1) if b else 0
        if op == 0 and b:
            b[min(at, len(b) - 1)] = _byte(rng)
        elif op == 1:
            b[at:at] = rng.choice(SPICE)
        elif op == 2:
            b[at:at] = bytes(_byte(rng) for _ in range(rng.randint(1, 8)))
        elif op == 3 and b:
            del b[at:at + rng.randint(1, 16)]
        elif op == 4 and b:
            b[at:at] = b[at:at + rng.randint(1, 40)]
        elif op == 5:
            lines = bytes(b).split(b"\n")
            if len(lines) > 1:
                i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
                b = bytearray(b"\n".join(lines))
        elif op == 6 and b:
            del b[at:]
    return bytes(b)


@contextlib.contextmanager
def deadline(seconds: int, what: str) -> Iterator[None]:
    def hung(_sig: int, _frame: Any) -> None:
        raise TimeoutError(f"{what}: still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Verdict:
    case: str
    code: int
    ok: bool
    why: str = ""


def run_case(kind: str, seed: int, work: Path, sim_root: str) -> Verdict:
    """One mutated document of ``kind`` through its verb; the verdict says whether the contract held."""
    name, text, verb = KINDS[kind]
    rng = random.Random(f"{kind}-{seed}")
    data = mutate(text.encode(), rng)
    f = work / name
    f.write_bytes(data)
    case = f"{kind} seed {seed}"
    before = tree_hash(sim_root) if verb == "apply" else ""
    with deadline(CASE_SECONDS, case):
        r = cli("--sim", SIM, "state", "apply", str(f)) if verb == "apply" else cli("state", "import", str(f))
    lines = r.err.splitlines()
    if r.code not in (0, 65):
        return Verdict(case, r.code, False, f"exit {r.code}: {r.err.strip()[:300]}")
    if r.code == 65:
        if len(lines) != 1 or not lines[0].startswith(f"sriovctl: {f}: ") or "Traceback" in r.err:
            return Verdict(case, r.code, False, f"message does not name the file first: {r.err.strip()[:300]}")
        if verb == "apply" and tree_hash(sim_root) != before:
            return Verdict(case, r.code, False, "refused, but the host changed")
    return Verdict(case, r.code, True)


def run(kinds: list[str], per_kind: int, work: Path, first_seed: int = 0) -> list[Verdict]:
    from sriovctl.host.sim.catalog import open_sim

    out = []
    for kind in kinds:
        for seed in range(first_seed, first_seed + per_kind):
            if KINDS[kind][2] == "apply" and seed % 50 == 0:
                cli("sim", "reset", SIM)  # back to 7 VFs a port now and then: applies that succeeded changed it
            out.append(run_case(kind, seed, work, open_sim(SIM).root))
    return out
