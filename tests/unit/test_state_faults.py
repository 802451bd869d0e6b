"""10,000 generated invalid state files (issue 13): each gives one clean line whose path is the injected
fault's, exit 65, and the simulated host is left unchanged. All 10,000 go through read_state_file (what every
front end calls: bytes → YAML → checks); one in 20 also through the whole CLI (`state apply`, `state plan`);
bench/state_apply.py --faults runs all of them through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from statefaults import base, faults

from helpers import cli, tree_hash
from sriovctl.host.sim.catalog import open_sim
from sriovctl.ops.state import read_state_file
from sriovctl.state.desired import StateError, parse

N = 10_000


def test_the_base_document_is_valid_on_the_simulated_host(tmp_path: Path) -> None:
    parse(base(), "base")
    f = tmp_path / "base.yaml"
    f.write_text(yaml.safe_dump(base()))
    r = cli("--sim", "igb-82576", "state", "plan", str(f))
    assert r.code == 0, r.err  # the faults below are the only thing wrong with each file


def test_10000_invalid_files_name_the_injected_fault_and_change_nothing(tmp_path: Path) -> None:
    root = open_sim("igb-82576").root
    before = tree_hash(root)
    f = tmp_path / "bad.yaml"
    seen_paths: set[str] = set()
    for n, (doc, path, bad) in enumerate(faults(N)):
        # JSON or YAML: both are state files (JSON is YAML); half each
        f.write_text(json.dumps(doc) if n % 2 else yaml.safe_dump(doc, allow_unicode=True))
        with pytest.raises(StateError) as e:
            read_state_file(str(f))
        assert e.value.path == path, (n, path, bad, e.value.message)
        assert e.value.exit_code == 65 and "\n" not in e.value.message + (e.value.hint or ""), (n, e.value.message)
        assert e.value.message.startswith(f"{f}: {path}: "), e.value.message
        seen_paths.add(path.split(".")[-1])
        if n % 20 == 0:
            verb = "apply" if n % 40 == 0 else "plan"
            r = cli("--sim", "igb-82576", "state", verb, str(f))
            assert r.code == 65 and r.out == "" and r.err.count("\n") == 1, (n, r.err)
            assert r.err.startswith(f"sriovctl: {f}: {path}: ") and "Traceback" not in r.err, (n, r.err)
    assert tree_hash(root) == before
    # every field of the file was hit
    assert {"name", "pci-address", "vendor", "device", "index", "total-vfs", "create", "drivers-autoprobe",
            "externally-managed", "vfs", "id", "mac-address", "vlan-id", "qos", "vlan-proto", "spoof-check", "trust",
            "min-tx-rate", "max-tx-rate", "link-state", "driver"} <= seen_paths, seen_paths
