"""The Ansible collection (ansible/, issue 20) run by the real thing: `ansible-galaxy collection build` and
install, `ansible-doc`, `ansible-playbook` on a fleet of three hosts (local connection, each its own simulated
host) with `serial` and `max_fail_percentage`, and `ansible-test sanity` on the installed collection."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import tree_hash

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SRIOVCTL = str(BIN / "sriovctl")
HOSTS = ("host1", "host2", "host3")
STATE = {"pfs": [{"name": "enp11s0f0", "vfs": [
    {"id": 0, "mac-address": "52:54:00:00:00:10", "vlan-id": 42},
    {"id": "1-2", "vlan-id": 43, "driver": "vfio-pci"}]}]}
# ansible-test bootstraps pip in each of its virtual environments from ci-files.testing.ansible.com, which this
# machine cannot reach: a stand-in bootstrap script in its cache gives them the interpreter's own pip (ensurepip),
# and their requirements come from the machine's configured package index as usual.
GET_PIP = '''import ensurepip, subprocess, sys
ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel") and not a.startswith("pip==")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]) if [a for a in args if a[0] != "-"] else 0)
'''


def _run(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=1800)


@pytest.fixture(scope="module")
def ansible(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The collection built from ansible/ and installed into a private collections path."""
    work = tmp_path_factory.mktemp("ansible")
    env = dict(os.environ, HOME=str(work / "home"), ANSIBLE_COLLECTIONS_PATH=str(work / "collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_HOST_KEY_CHECKING="0",
               ANSIBLE_LOCAL_TEMP=str(work / "tmp"), ANSIBLE_RETRY_FILES_ENABLED="0", PATH=f"{BIN}:{os.environ['PATH']}")
    (work / "home").mkdir()
    built = _run([str(BIN / "ansible-galaxy"), "collection", "build", str(REPO / "ansible"), "--output-path",
                  str(work)], env)
    assert built.returncode == 0, built.stdout + built.stderr
    (tarball,) = work.glob("sriovctl-sriov-*.tar.gz")
    installed = _run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p",
                      str(work / "collections")], env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return {"work": work, "env": env, "path": work / "collections" / "ansible_collections" / "sriovctl" / "sriov"}


def test_ansible_doc_renders_both_modules(ansible: dict[str, Any]) -> None:
    r = _run([str(BIN / "ansible-doc"), "--json", "sriovctl.sriov.sriovctl_state", "sriovctl.sriov.sriovctl_facts"],
             ansible["env"])
    assert r.returncode == 0, r.stderr
    docs = json.loads(r.stdout)
    state = docs["sriovctl.sriov.sriovctl_state"]["doc"]
    assert {"desired", "state_file", "persist", "force", "wait", "bin", "sim", "sim_dir", "root"} <= set(state["options"])
    assert set(docs["sriovctl.sriov.sriovctl_facts"]["doc"]["options"]) >= {"gather", "bin", "sim", "sim_dir", "root"}
    text = _run([str(BIN / "ansible-doc"), "sriovctl.sriov.sriovctl_state"], ansible["env"])
    assert text.returncode == 0 and "check mode" in text.stdout.lower()


def _fleet(ansible: dict[str, Any], name: str) -> Path:
    """Three hosts, each its own simulated igb-82576 (SRIOVCTL_SIM_DIR per host), and the play."""
    d = ansible["work"] / name
    d.mkdir()
    lines = ["[fleet]"] + [f"{h} sim_dir={d / 'sims' / h}" for h in HOSTS]
    lines += ["", "[fleet:vars]", "ansible_connection=local", f"ansible_python_interpreter={sys.executable}"]
    (d / "inventory.ini").write_text("\n".join(lines) + "\n")
    for h in HOSTS:
        (d / "sims" / h).mkdir(parents=True)
        r = _run([SRIOVCTL, "sim", "reset", "igb-82576"], dict(ansible["env"], SRIOVCTL_SIM_DIR=str(d / "sims" / h)))
        assert r.returncode == 0, r.stderr
    play = [{"hosts": "fleet", "gather_facts": False, "serial": 1, "max_fail_percentage": 0, "tasks": [
        {"name": "SR-IOV state", "register": "applied", "sriovctl.sriov.sriovctl_state": {
            "sim": "igb-82576", "sim_dir": "{{ sim_dir }}", "bin": SRIOVCTL, "desired": "{{ desired }}",
            "persist": True}},
        {"name": "facts", "sriovctl.sriov.sriovctl_facts": {"sim": "igb-82576", "sim_dir": "{{ sim_dir }}",
                                                             "bin": SRIOVCTL, "gather": ["state"]}},
        {"name": "in sync", "ansible.builtin.assert": {"that": ["ansible_facts.sriov.state.in_sync"]}}]}]
    (d / "site.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    return d


def _play(ansible: dict[str, Any], d: Path, state: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
    (d / "vars.yml").write_text(yaml.safe_dump({"desired": state}))
    return _run([str(BIN / "ansible-playbook"), "-i", str(d / "inventory.ini"), str(d / "site.yml"), "-e",
                 f"@{d / 'vars.yml'}", *extra], ansible["env"])


def _recap(out: str) -> dict[str, dict[str, int]]:
    return {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in re.finditer(r"^(host\d)\s+:\s+(.*)$", out, re.M)}


def _sim(d: Path, host: str) -> str:
    return str(d / "sims" / host / "igb-82576")


def test_a_fleet_converges_once_and_then_reports_no_change(ansible: dict[str, Any]) -> None:
    d = _fleet(ansible, "fleet")
    first = _play(ansible, d, STATE)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    recap = _recap(first.stdout)
    assert set(recap) == set(HOSTS) and all(r["changed"] == 1 and r["failed"] == 0 for r in recap.values()), recap
    second = _play(ansible, d, STATE)
    assert second.returncode == 0, second.stdout[-3000:]
    assert all(r["changed"] == 0 and r["failed"] == 0 for r in _recap(second.stdout).values()), second.stdout
    for h in HOSTS:  # persist: true stored the same document: sriovctl itself says in sync
        env = dict(ansible["env"], SRIOVCTL_SIM_DIR=str(d / "sims" / h))
        st = _run([SRIOVCTL, "--sim", "igb-82576", "state", "status"], env)
        assert st.returncode == 0 and "in sync" in st.stdout, st.stdout + st.stderr
        shown = json.loads(_run([SRIOVCTL, "--sim", "igb-82576", "--json", "state", "show", "enp11s0f0"],
                                env).stdout)["state"]["pfs"][0]["vfs"]
        assert shown[0]["mac-address"] == "52:54:00:00:00:10" and shown[1]["driver"] == shown[2]["driver"] == "vfio-pci"

    changed = yaml.safe_load(yaml.safe_dump(STATE).replace("vlan-id: 43", "vlan-id: 44"))
    before = {h: tree_hash(_sim(d, h)) for h in HOSTS}
    check = _play(ansible, d, changed, "--check", "--diff")
    assert check.returncode == 0, check.stdout[-3000:]
    assert all(r["changed"] == 1 for r in _recap(check.stdout).values()), check.stdout
    assert check.stdout.count('-                        "vlan-id": 43,') == 6, check.stdout  # 2 VFs x 3 hosts
    assert check.stdout.count('+                        "vlan-id": 44,') == 6
    assert {h: tree_hash(_sim(d, h)) for h in HOSTS} == before  # check mode wrote nothing


def test_a_bad_state_on_one_host_stops_the_rollout(ansible: dict[str, Any]) -> None:
    """serial: 1 + max_fail_percentage: 0 — host2's own state (host_vars) is refused by sriovctl (exit 65, the
    path named): host2 fails with that message, host3 is never touched, host1 (already done) keeps its change."""
    d = _fleet(ansible, "stops")
    site = yaml.safe_load((d / "site.yml").read_text())
    site[0]["tasks"][0]["sriovctl.sriov.sriovctl_state"]["desired"] = "{{ host_desired | default(desired) }}"
    (d / "site.yml").write_text(yaml.safe_dump(site, sort_keys=False))
    (d / "host_vars").mkdir()
    bad = yaml.safe_load(yaml.safe_dump(STATE).replace("vlan-id: 42", "vlan-id: 5000"))
    (d / "host_vars" / "host2.yml").write_text(yaml.safe_dump({"host_desired": bad}))
    untouched = tree_hash(_sim(d, "host3"))
    r = _play(ansible, d, STATE)
    assert r.returncode != 0
    recap = _recap(r.stdout)
    assert recap["host1"]["changed"] == 1 and recap["host2"]["failed"] == 1 and "host3" not in recap, r.stdout
    assert "pfs[0].vfs[0].vlan-id: must be 0..4095, got 5000" in r.stdout, r.stdout[-3000:]
    assert tree_hash(_sim(d, "host3")) == untouched


def test_check_mode_on_a_snapshot_and_the_refusals_of_the_module(ansible: dict[str, Any]) -> None:
    """root= (a snapshot) plans in check mode and refuses to apply; a missing sriovctl is a clear failure."""
    d = ansible["work"] / "single"
    d.mkdir()
    snap = d / "snap.tar.gz"
    env = dict(ansible["env"], SRIOVCTL_SIM_DIR=str(d / "sims"))
    assert _run([SRIOVCTL, "--sim", "igb-82576", "snapshot", str(snap)], env).returncode == 0
    task = {"sriovctl.sriov.sriovctl_state": {"root": str(snap), "bin": SRIOVCTL, "desired": STATE}}
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]
    (d / "p.yml").write_text(yaml.safe_dump(play))
    inv = f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    (d / "inv.ini").write_text(inv)
    ok = _run([str(BIN / "ansible-playbook"), "-i", str(d / "inv.ini"), str(d / "p.yml"), "--check"], env)
    assert ok.returncode == 0 and "changed: [localhost]" in ok.stdout, ok.stdout[-2000:]
    refused = _run([str(BIN / "ansible-playbook"), "-i", str(d / "inv.ini"), str(d / "p.yml")], env)
    assert refused.returncode != 0 and "can only be planned against (check mode)" in refused.stdout, refused.stdout
    task["sriovctl.sriov.sriovctl_state"]["bin"] = str(d / "no-such-sriovctl")
    (d / "p.yml").write_text(yaml.safe_dump(play))
    missing = _run([str(BIN / "ansible-playbook"), "-i", str(d / "inv.ini"), str(d / "p.yml"), "--check"], env)
    assert missing.returncode != 0 and "sriovctl not found on the target" in missing.stdout, missing.stdout


def test_ansible_test_sanity_passes(ansible: dict[str, Any]) -> None:
    """`ansible-test sanity` on the installed collection (its own virtual environments; no containers here).
    The tests it skips for want of a tool (pwsh, shellcheck) are recorded in the output, not hidden."""
    cache = Path(ansible["env"]["HOME"]) / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    for version in ("24_2", "24_0", "25_0", "25_1"):
        (cache / f"get_pip_{version}.py").write_text(GET_PIP)
    r = _run([str(BIN / "ansible-test"), "sanity", "--python", f"{sys.version_info[0]}.{sys.version_info[1]}",
              "--color", "no"], ansible["env"], cwd=ansible["path"])
    ran = re.findall(r'Running sanity test "([\w-]+)"', r.stdout + r.stderr)
    skipped = re.findall(r'Skipping sanity test "([\w-]+)"', r.stdout + r.stderr)
    (REPO / "tests" / "output").mkdir(exist_ok=True)
    (REPO / "tests" / "output" / "ansible-test-sanity.txt").write_text(
        f"ran: {' '.join(ran)}\nskipped: {' '.join(skipped)}\nexit: {r.returncode}\n")
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert {"validate-modules", "ansible-doc", "pylint", "import", "compile", "yamllint", "pep8"} <= set(ran), ran
    shutil.rmtree(Path(ansible["env"]["HOME"]) / ".ansible" / "test", ignore_errors=True)


def test_facts_take_doctors_findings_as_facts(ansible: dict[str, Any]) -> None:
    """On a host without an IOMMU doctor exits 5 (a failure found): facts, not a failed task."""
    d = ansible["work"] / "facts"
    d.mkdir()
    env = dict(ansible["env"], SRIOVCTL_SIM_DIR=str(d / "sims"))
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"sriovctl.sriov.sriovctl_facts": {"sim": "no-iommu", "bin": SRIOVCTL}},
        {"ansible.builtin.copy": {"content": "{{ ansible_facts.sriov | to_json }}", "dest": str(d / "facts.json")}}]}]
    (d / "p.yml").write_text(yaml.safe_dump(play))
    (d / "inv.ini").write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    r = _run([str(BIN / "ansible-playbook"), "-i", str(d / "inv.ini"), str(d / "p.yml")], env)
    assert r.returncode == 0, r.stdout[-3000:]
    facts = json.loads((d / "facts.json").read_text())
    assert facts["doctor"]["worst"] == "fail" and facts["status"]["iommu_groups_present"] is False
    assert facts["state"]["in_sync"] is None and facts["state"]["source"] is None


def _one(ansible: dict[str, Any], name: str, task: dict[str, Any], *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One task on one simulated igb-82576 of its own; (the ansible-playbook run, the host's sim_dir)."""
    d = ansible["work"] / name
    (d / "sims").mkdir(parents=True)
    env = dict(ansible["env"], SRIOVCTL_SIM_DIR=str(d / "sims"))
    assert _run([SRIOVCTL, "sim", "reset", "igb-82576"], env).returncode == 0
    args = {"sim": "igb-82576", "sim_dir": str(d / "sims"), "bin": SRIOVCTL, **task}
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"sriovctl.sriov.sriovctl_state": args, "register": "r", "ignore_errors": True},
        {"ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(d / "result.json")}}]}]
    (d / "p.yml").write_text(yaml.safe_dump(play))
    (d / "inv.ini").write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    return _run([str(BIN / "ansible-playbook"), "-i", str(d / "inv.ini"), str(d / "p.yml"), *extra], env), d


def test_destroying_vfs_needs_force(ansible: dict[str, Any]) -> None:
    """7 → 4 VFs destroys three: the plan's destroys-vfs impact fails the task (nothing written); force: true
    lets it through."""
    fewer = {"desired": {"pfs": [{"name": "enp11s0f0", "total-vfs": 4}]}}
    _, d = _one(ansible, "destroys", fewer)
    result = json.loads((d / "result.json").read_text())
    assert result["failed"] and "force=true" in result["msg"] and result["plan"]["impact"][0]["kind"] == "destroys-vfs"
    assert result["writes"] == 0
    _, d = _one(ansible, "destroys-forced", {**fewer, "force": True})
    result = json.loads((d / "result.json").read_text())
    assert not result.get("failed") and result["changed"] and result["writes"] > 0, result


def test_a_rolled_back_apply_fails_with_what_was_restored(ansible: dict[str, Any]) -> None:
    """igb refuses a minimum rate (and rates without link): sriovctl rolls back (exit 7); the task fails with its
    one-line error, and `state_apply` says what was applied and that the checkpoint was restored."""
    _, d = _one(ansible, "rollback", {"desired": {"pfs": [{"name": "enp11s0f0", "vfs": [
        {"id": 0, "mac-address": "02:00:00:00:00:aa"}, {"id": 1, "min-tx-rate": 10, "max-tx-rate": 100}]}]}})
    result = json.loads((d / "result.json").read_text())
    assert result["failed"] and result["rc"] == 7 and "restored" in result["msg"], result
    assert result["state_apply"]["rolled_back"] is True and result["state_apply"]["restored"] is True
