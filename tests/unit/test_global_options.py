"""Global options (--json, --debug, --sim, --root) work before and after the verb, for every verb and sub-verb the
parser has — a verb added later without an entry in ARGS fails here."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from helpers import cli
from sriovctl.cli.main import build_parser, hoist_globals
from sriovctl.errors import UsageError

LAB = Path(__file__).parent.parent / "fixtures" / "lab"

# verb path → its arguments (writing verbs as dry runs: the comparison must not depend on the order of runs)
ARGS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("status",): (),
    ("list",): ("--vfs",),
    ("show",): ("enp11s0f0#1",),
    ("tree",): (),
    ("nodedev", "list"): (),
    ("nodedev", "dumpxml"): ("pci_0000_0b_10_2",),
    ("pci", "decode"): (str(LAB / "igb-vf.lspci-xxxx"),),
    ("snapshot",): ("@TMP/snap.tar.gz",),
    ("doctor",): ("enp11s0f0",),
    ("vf", "enable"): ("enp11s0f0", "4", "--reset", "--dry-run"),
    ("vf", "disable"): ("enp11s0f1", "--dry-run"),
    ("vf", "set"): ("enp11s0f0#0-3", "--vlan", "7", "--dry-run"),
    ("vf", "bind"): ("enp11s0f0#2", "vfio-pci", "--dry-run"),
    ("vf", "unbind"): ("enp11s0f0#2", "--dry-run"),
    ("pf", "eswitch"): ("enp11s0f0", "switchdev", "--dry-run"),  # a simulated host has no devlink: exit 69
    ("virt", "xml"): ("enp11s0f0#1", "--vlan", "42"),
    ("virt", "attach"): ("vm1", "enp11s0f0#1", "--dry-run", "--connect", "test:///no-such"),
    ("virt", "detach"): ("vm1", "enp11s0f0#1", "--dry-run", "--connect", "test:///no-such"),
    ("virt", "list"): ("--connect", "test:///no-such"),
    ("virt", "network-xml"): ("enp11s0f0", "--name", "pool0"),
    ("qemu", "args"): ("enp11s0f0#0-1",),
    ("qemu", "hotplug"): ("enp11s0f0#0", "--qmp", "@TMP/none.sock", "--dry-run"),
    ("qemu", "unplug"): ("enp11s0f0#0", "--qmp", "@TMP/none.sock", "--dry-run"),
    ("state", "show"): ("enp11s0f0",),
    ("state", "validate"): (str(Path(__file__).parent.parent / "fixtures" / "state-igb.yaml"),),
    ("state", "export"): ("device-plugin",),
    ("state", "import"): (str(Path(__file__).parent.parent / "fixtures" / "state-igb.yaml"),),  # not nmstate: 65
    ("state", "plan"): (str(Path(__file__).parent.parent / "fixtures" / "state-igb.yaml"),),
    ("state", "apply"): (str(Path(__file__).parent.parent / "fixtures" / "state-igb.yaml"), "--dry-run"),
    ("state", "status"): (str(Path(__file__).parent.parent / "fixtures" / "state-igb.yaml"),),
    ("persist", "install"): (str(Path(__file__).parent.parent / "fixtures" / "state-igb.yaml"), "--destdir", "@TMP",
                             "--exec", "/usr/bin/sriovctl", "--dry-run"),
    ("persist", "uninstall"): ("--destdir", "@TMP", "--dry-run"),
    ("persist", "status"): ("--destdir", "@TMP", "--exec", "/usr/bin/sriovctl"),
    ("sim", "list"): (),
    ("sim", "reset"): ("igb-82576",),
    ("sim", "create"): ("made", "--from", "@TMP/spec.yaml"),
    ("sim", "traffic"): ("igb-82576", "enp11s0f0#1", "--rx-bytes", "0"),  # adds nothing: the same output each run
    ("exporter",): ("--textfile", "@TMP/no-such-dir", "--once"),
    ("pool", "allocate"): ("gold", "--owner", "x"),  # no pools on this host: 66
    ("pool", "release"): ("enp11s0f0#1",),  # not allocated: 66
    ("pool", "list"): (),
    ("pool", "create"): ("p1", "enp11s0f0#0-1", "--dry-run"),
    ("pool", "delete"): ("nosuch", "--dry-run"),  # 66
    ("pool", "show"): (),
    ("pool", "reconcile"): (),  # 66, the same each run (a scrape's time varies)
}


def _leaves(p: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [path]
    return [leaf for name, sp in subs[0].choices.items() for leaf in _leaves(sp, (*path, name))]


def test_every_verb_has_an_entry() -> None:
    leaves = set(_leaves(build_parser()))
    assert leaves == set(ARGS), f"missing: {leaves - set(ARGS)}, stale: {set(ARGS) - leaves}"


def _run(argv: list[str], tmp: Path) -> tuple[int, str]:
    import re

    r = cli(*[a.replace("@TMP", str(tmp)) for a in argv])
    out = re.sub(r'"captured_at": "[^"]*"', '"captured_at": "-"', r.out.replace(str(tmp), "@TMP"))  # the clock ticks
    return r.code, out


@pytest.mark.parametrize("verb", sorted(ARGS), ids=" ".join)
def test_global_options_before_and_after_the_verb(verb: tuple[str, ...], tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text((Path(__file__).parent.parent / "fixtures" / "specs" / "amd-iommu.yaml").read_text())
    args = [*verb, *ARGS[verb]]
    before = _run(["--json", "--sim", "igb-82576", *args], tmp_path)
    after = _run([*args, "--json", "--sim", "igb-82576"], tmp_path)
    mixed = _run(["--json", *args, "--sim=igb-82576"], tmp_path)
    assert before == after == mixed
    assert before[0] not in (64, 70), before  # none of them is a usage error or a bug
    debug_before = _run(["--debug", "--sim", "igb-82576", *args], tmp_path)
    debug_after = _run([*args, "--sim", "igb-82576", "--debug"], tmp_path)
    assert debug_before == debug_after


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("snap") / "host.tar.gz"
    assert cli("--sim", "igb-82576", "snapshot", str(out)).code == 0
    return out


@pytest.mark.parametrize("verb", sorted(v for v in ARGS if v[0] in ("status", "list", "show", "tree", "nodedev", "doctor",
                                                                      "vf")), ids=" ".join)
def test_root_before_and_after_the_verb(verb: tuple[str, ...], snapshot: Path, tmp_path: Path) -> None:
    args = [*verb, *ARGS[verb]]
    before = _run(["--root", str(snapshot), "--json", *args], tmp_path)
    after = _run([*args, "--json", "--root", str(snapshot)], tmp_path)
    assert before == after
    assert before[0] == 77 if verb[0] == "vf" else before[0] in (0, 4, 5)  # a snapshot is read-only, dry runs too


def test_a_verbs_options_are_not_taken_for_global_ones() -> None:
    assert hoist_globals(["vf", "set", "x", "--vlan", "3", "--json"]) == ["--json", "vf", "set", "x", "--vlan", "3"]
    assert hoist_globals(["show", "--sim", "a", "x"]) == ["--sim", "a", "show", "x"]
    assert hoist_globals(["pci", "decode", "--", "--json"]) == ["pci", "decode", "--", "--json"]
    with pytest.raises(UsageError, match="--sim given twice"):
        hoist_globals(["--sim", "a", "status", "--sim", "b"])
    assert cli("--sim", "igb-82576", "status", "--sim", "igb-82576").code == 0
