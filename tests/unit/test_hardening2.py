"""Issue 18, the second hardening pass over the desired-state, import and persistence surface: one test (or a
few) per class of fault the adversarial run found. Paths: tests/unit/test_hostile_paths.py. Random
mutations: tests/unit/test_mutations.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import cli, tree_hash
from sriovctl.host.sim.catalog import open_sim
from sriovctl.state.desired import load
from sriovctl.state.keys import MAX_VF_ENTRIES

IGB = "igb-82576"
S = ("--sim", IGB)
PF0 = "0000:0b:00.0"
BENCH_SPEC = Path(__file__).parents[2] / "bench" / "spec-16x256.yaml"


def _file(tmp: Path, doc: Any, name: str = "s.yaml") -> str:
    f = tmp / name
    f.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(f)


def _shown(pf: str = "enp11s0f0") -> Any:
    r = cli(*S, "--json", "state", "show", pf)
    assert r.code == 0, r.err
    return r.json()["state"]


# ---------------------------------------------------------------- journals trusted only for their own PF

def _journal(key: str, checkpoint: dict[str, Any]) -> None:
    host = open_sim(IGB)
    jd = Path(host.ledger_dir()) / "state-journal"
    jd.mkdir(parents=True, exist_ok=True)
    boot = host.read_text("proc/sys/kernel/random/boot_id")
    (jd / f"{key}.json").write_text(json.dumps({"pid": 999999, "boot_id": boot, "key": key, "checkpoint": checkpoint}))


FAILING = {"pfs": [{"name": "enp11s0f0", "vfs": [{"id": 0, "vlan-id": 6}, {"id": 1, "max-tx-rate": 9}]}]}  # igb: EINVAL


def test_a_journal_naming_another_pf_is_not_a_rollback_target(tmp_path: Path) -> None:
    """The checkpoint under 0b:00.0's key names 0b:00.1, whose lock this run does not hold: dropped, and the
    failing apply rolls back to what it found itself — the other PF is not touched."""
    other_before = _shown("enp11s0f1")
    _journal(PF0, {"pci-address": "0000:0b:00.1", "total-vfs": 2, "vfs": []})
    pf0_before = _shown()
    r = cli(*S, "state", "apply", _file(tmp_path, FAILING))
    assert r.code == 7 and "interrupted apply" not in r.out, r.out + r.err
    assert _shown("enp11s0f1") == other_before and _shown() == pf0_before
    assert cli(*S, "--json", "state", "status").json()["pending_journals"] == []


def test_a_journal_of_another_key_is_dropped(tmp_path: Path) -> None:
    host = open_sim(IGB)
    _journal(PF0, {"name": "enp11s0f0", "total-vfs": 1})
    path = Path(host.ledger_dir()) / "state-journal" / f"{PF0}.json"
    doc = json.loads(path.read_text())
    doc["key"] = "0000:0b:00.1"  # copied from another PF's journal
    path.write_text(json.dumps(doc))
    before = _shown()
    r = cli(*S, "state", "apply", _file(tmp_path, FAILING))
    assert r.code == 7 and _shown() == before, r.out + r.err


def test_a_malformed_checkpoint_ends_as_a_failed_restore_not_65(tmp_path: Path) -> None:
    _journal(PF0, {"name": "enp11s0f0", "total-vfs": "seven"})
    r = cli(*S, "--json", "state", "apply", _file(tmp_path, FAILING))
    assert r.code == 8, r.out
    doc = r.json()
    assert doc["state_apply"]["restored"] is False and doc["state_apply"]["result"] == "Failed"
    st = cli(*S, "--json", "state", "status").json()
    assert st["pending_journals"] == [] and st["record"]["result"] == "Failed"


# ---------------------------------------------------------------- rollback whatever the host holds

def test_rollback_from_shared_macs_an_unknown_mac_and_a_count_change(tmp_path: Path) -> None:
    """Two VFs share a MAC (`vf set --force`), a third has a MAC the state does not know; the state shrinks
    the PF to 4 VFs and then fails (igb refuses the rate): the checkpoint — the host as it was — is restored."""
    assert cli(*S, "vf", "set", "enp11s0f0#0", "--mac", "02:00:00:00:00:aa").code == 0
    r = cli(*S, "vf", "set", "enp11s0f0#1", "--mac", "02:00:00:00:00:aa")
    assert r.code == 77 and "already the MAC of" in r.err, r.err
    r = cli(*S, "vf", "set", "enp11s0f0#1", "--mac", "02:00:00:00:00:aa", "--force")
    assert r.code == 0 and "two VFs now share it" in r.out + r.err, r.out + r.err
    assert cli(*S, "vf", "set", "enp11s0f0#2", "--mac", "02:00:00:00:00:bb").code == 0
    before = _shown()
    assert before["pfs"][0]["total-vfs"] == 7
    # the host as it is reads back as a valid state that asks for nothing
    shown = _file(tmp_path, cli(*S, "state", "show").out, "shown.yaml")
    assert cli("state", "validate", shown).code == 0
    r = cli(*S, "state", "plan", shown)
    assert r.code == 0 and r.out.strip().endswith("no changes"), r.out
    want = {"pfs": [{"name": "enp11s0f0", "total-vfs": 4,
                     "vfs": [{"id": 0, "mac-address": "02:00:00:00:00:cc"}, {"id": 1, "max-tx-rate": 9}]}]}
    r = cli(*S, "--json", "state", "apply", _file(tmp_path, want))
    assert r.code == 7, r.out
    assert r.json()["state_apply"]["restored"] is True
    assert _shown() == before
    assert cli(*S, "--json", "state", "status").json()["pending_journals"] == []


def test_plan_refuses_making_a_shared_mac(tmp_path: Path) -> None:
    want = {"pfs": [{"name": "enp11s0f0", "vfs": [{"id": 0, "mac-address": "02:00:00:00:00:dd"},
                                                  {"id": 1, "mac-address": "02:00:00:00:00:DD"}]}]}
    r = cli(*S, "state", "plan", _file(tmp_path, want))
    assert r.code == 65 and "pfs[0].vfs[0].mac-address: the same MAC as pfs[0].vfs[1].mac-address" in r.err, r.err


# ---------------------------------------------------------------- in use: addresses as libvirt reads them

@pytest.mark.parametrize(("bus", "why"), [("013", "libvirt domain vm1"), ("0x0zz", "maybe in use"),
                                          ("11", "libvirt domain vm1"), (" +0x0b", "libvirt domain vm1")])
def test_a_libvirt_address_libvirt_accepts_counts_as_in_use(bus: str, why: str) -> None:
    """`bus='013'` is bus 11 (0x0b) for libvirt (strtoul base 0): the VF at 0b:10.0 is vm1's. An address
    sriovctl cannot read makes every device maybe in use. Either way the VFs are not destroyed."""
    root = Path(open_sim(IGB).root)
    d = root / "run/libvirt/qemu"
    d.mkdir(parents=True, exist_ok=True)
    (d / "vm1.xml").write_text(
        "<domstatus><domain type='kvm'><name>vm1</name><devices><hostdev mode='subsystem' type='pci' managed='yes'>"
        f"<source><address domain='0x0000' bus='{bus}' slot='0x10' function='0x0'/></source></hostdev></devices>"
        "</domain></domstatus>")
    before = tree_hash(str(root))
    r = cli(*S, "vf", "disable", "enp11s0f0")
    assert r.code == 77 and why in r.err, r.err
    assert tree_hash(str(root)) == before


def test_libvirt_uint_is_strtoul_base_0() -> None:
    from sriovctl.virt.xml import libvirt_uint

    assert [libvirt_uint(x) for x in ("013", "0x0b", "11", "0", "00", " 7", "+0X1f")] == [11, 11, 11, 0, 0, 7, 31]
    for bad in ("", "0x", "08", "-1", "1 ", "0b1", "１", "99999999999999"):
        with pytest.raises(ValueError):
            libvirt_uint(bad)


# ---------------------------------------------------------------- silent misreading

def test_yaml_12_scalars() -> None:
    st = load("pfs:\n- pci-address: 0000:0b:00.0\n  vfs:\n  - id: 0\n    vlan-id: 0100\n"
              "    mac-address: 02:00:00:00:01:10\n  - id: 1\n    spoof-check: true\n", "s.yaml")
    v0, v1 = st.pfs[0].vfs or ()
    assert st.pfs[0].selector.pci_address == PF0
    assert v0.attrs == {"vlan": 100, "mac": "02:00:00:00:01:10"}  # YAML 1.1: VLAN 64 and a base-60 integer
    assert v1.attrs == {"spoofchk": True}
    for text, message in (("pfs:\n- name: a\n  vfs:\n  - {id: 0, trust: yes}\n", "got 'yes'"),
                          ("pfs:\n- name: a\n  total-vfs: 2001-12-14\n", "must be 0..65535, got '2001-12-14'")):
        with pytest.raises(Exception, match=message):
            load(text, "s.yaml")


@pytest.mark.parametrize(("name", "text", "message"), [
    ("s.yaml", "pfs:\n- name: enp11s0f0\n  total-vfs: 2\n  total-vfs: 7\n",
     "s.yaml: pfs[0].total-vfs: a key given twice (lines 3 and 4)"),
    ("s.json", '{"pfs": [{"name": "enp11s0f0", "vfs": [{"id": 0, "vlan-id": 1, "vlan-id": 2}]}]}',
     "s.json: pfs[0].vfs[0].vlan-id: a key given twice"),
    ("nm.yaml", "interfaces:\n- name: enp11s0f0\n  ethernet:\n    sr-iov:\n      total-vfs: 1\n      total-vfs: 7\n",
     "nm.yaml: interfaces[0].ethernet.sr-iov.total-vfs: a key given twice"),
    ("c.json", '{"resourceList": [{"selectors": {"pfNames": ["enp11s0f0#0"], "pfNames": ["enp11s0f1#0"]}}]}',
     "c.json: resourceList[0].selectors.pfNames: a key given twice"),
    ("c.json", '{"resourceList": [{"selectors": {"pfNames": "ens1f0"}}]}',
     "c.json: resourceList[0].selectors.pfNames: must be a list of strings"),
    ("c.json", '{"resourceList": [{"selectors": {"pfNames": ["ens1f0#0-3"], "drivers": "vfio-pci"}}]}',
     "c.json: resourceList[0].selectors.drivers: must be a list of strings"),
    ("a.network", "[Match]\nName=enp11s0f0\nPath=pci-0000:0b:00.0\n[SR-IOV]\nVirtualFunction=0\n",
     "a.network: [Match] (line 3) Path: sriovctl selects a PF by its name only"),
    ("a.network", "[Match]\nMACAddress=00:11:22:33:44:55\nName=enp11s0f0\n[SR-IOV]\nVirtualFunction=0\n",
     "a.network: [Match] (line 2) MACAddress: sriovctl selects a PF by its name only"),
    ("a.network", "[Match]\nName=enp11s0f0\nName=enp11s0f1\n[SR-IOV]\nVirtualFunction=0\n",
     "a.network: [Match]: needs exactly one interface name"),
    ("a.network", "[Match]\nName=enp11s0f0\n[SR-IOV]\nVirtualFunction=0\n# hidden\x0cVLANId=9\n",
     "a.network: line 5: control character \\x0c"),
    ("a.network", "[Match]\nName=enp11s0f0\n[SR-IOV]\nVirtualFunction=0\n# hidden\u2028VLANId=9\n",
     "a.network: line 5: control character \\u2028"),
    ("a.network", "[Match]\nName=enp11s0f0\n[SR-IOV]\nVirtualFunction=0\nVLANId=" + "9" * 5000 + "\n",
     "a.network: [SR-IOV] (line 5) VLANId: must be a number of at most 10 digits"),
    ("nm.yaml", "interfaces:\n- name: enp11s0f0\n  ethernet:\n    sr-iov:\n      total-vfs: " + "9" * 5000 + "\n",
     "nm.yaml: interfaces[0].ethernet.sr-iov.total-vfs: a number of 5000 characters"),
])
def test_imports_read_their_sources_grammar(name: str, text: str, message: str, tmp_path: Path) -> None:
    f = tmp_path / name
    f.write_text(text)
    r = cli("state", "import", str(f))
    assert r.code == 65 and message in r.err and r.err.count("\n") == 1 and r.out == "", r.err
    assert len(r.err) < 600


def test_networkd_name_list_rule_and_line_rules(tmp_path: Path) -> None:
    """Name= is a list: an empty assignment clears it (systemd's rule); \\r\\n ends lines; a continuation joins."""
    text = ("[Match]\r\nName=enp11s0f1\r\nName=\r\nName=enp11s0f0\r\n[SR-IOV]\r\nVirtualFunction=0\r\n"
            "VLANId=\\\n  7\r\nVLANId=8\r\n")
    r = cli("--json", "state", "import", _file(tmp_path, text, "a.network"))
    assert r.code == 0, r.err
    assert r.json()["state"]["pfs"] == [{"name": "enp11s0f0", "vfs": [{"id": 0, "vlan-id": 8}]}]


def test_device_plugin_with_several_drivers_keeps_its_vfs(tmp_path: Path) -> None:
    doc = {"resourceList": [{"selectors": {"pfNames": ["enp11s0f0#0-3"], "drivers": ["iavf", "vfio-pci"]}}]}
    r = cli("--json", "state", "import", _file(tmp_path, doc, "c.json"))
    assert r.code == 0 and r.json()["state"]["pfs"] == [{"name": "enp11s0f0", "vfs": [{"id": "0-3"}]}], r.out


# ---------------------------------------------------------------- acting on the wrong thing

@pytest.mark.parametrize("name", ["0000:0b:10.0", "enp11s0f0#1", "0000:00:1f.2"])
def test_pf_filters_must_name_pfs(name: str, tmp_path: Path) -> None:
    f = _file(tmp_path, {"pfs": [{"name": "enp11s0f0", "total-vfs": 3}]})
    root = open_sim(IGB).root
    before = tree_hash(root)
    for verb in ("plan", "apply"):
        r = cli(*S, "state", verb, f, name)
        assert r.code == 64 and "no changes" not in r.out, (verb, r.out, r.err)
    assert tree_hash(root) == before


@pytest.mark.parametrize("argv", [["--s", "no-iommu", "--sim", IGB, "status"], ["--si=no-iommu", "status"],
                                  ["--sim", IGB, "--js", "status"], ["--sim", IGB, "vf", "set", "enp11s0f0#0",
                                                                     "--vla", "3"]])
def test_abbreviated_options_are_refused(argv: list[str]) -> None:
    r = cli(*argv)
    assert r.code == 64, r.out + r.err


@pytest.mark.parametrize("wait", ["nan", "inf", "-1", "1_0", "\u0663", "1e3", "86401", " 1"])
def test_wait_is_a_finite_ascii_number(wait: str) -> None:
    r = cli(*S, "vf", "set", "enp11s0f0#0", "--vlan", "3", "--wait", wait)
    assert r.code == 64 and "not a number of seconds" in r.err, r.err


def test_macs_from_follows_the_order_written() -> None:
    r = cli(*S, "vf", "set", "enp11s0f0#3-5,0", "--macs-from", "02:00:00:00:01:00")
    assert r.code == 0, r.err
    vfs = {v["id"]: v["mac-address"] for v in _shown()["pfs"][0]["vfs"]}
    assert [vfs[i] for i in (3, 4, 5, 0)] == [f"02:00:00:00:01:0{n}" for n in range(4)]


@pytest.mark.parametrize("verb", [["vf", "set", "enp11s0f0#5", "--vlan", "3"], ["vf", "bind", "enp11s0f0#5", "vfio-pci"],
                                  ["vf", "unbind", "enp11s0f0#5"]])
def test_vfs_that_change_while_waiting_for_the_lock(verb: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Another sriovctl shrinks the PF between this one's resolve and its lock: 75, not a crash (70)."""
    from sriovctl.ops.session import Session

    real_locked, real_all = Session.locked, Session.locked_all

    done: list[int] = []

    def shrink() -> None:
        if not done:
            done.append(1)
            r = cli(*S, "vf", "enable", "enp11s0f0", "2", "--reset")
            assert r.code == 0, r.err

    def locked(self: Session, *a: Any) -> Any:
        shrink()
        return real_locked(self, *a)

    def locked_all(self: Session, *a: Any) -> Any:
        shrink()
        return real_all(self, *a)

    monkeypatch.setattr(Session, "locked", locked)
    monkeypatch.setattr(Session, "locked_all", locked_all)
    r = cli(*S, *verb)
    assert (r.code == 75 and "while this waited" in r.err) or (r.code == 66 and "no VF 5" in r.err), r.err


# ---------------------------------------------------------------- internal errors → 65

BIG = "9" * 5000


@pytest.mark.parametrize(("name", "text"), [
    ("s.yaml", f"pfs:\n- name: enp11s0f0\n  total-vfs: {BIG}\n"),
    ("s.json", f'{{"pfs": [{{"name": "enp11s0f0", "total-vfs": {BIG}}}]}}'),
    ("s.yaml", f"pfs:\n- name: enp11s0f0\n  total-vfs: 0x{BIG}\n"),
    ("s.yaml", f"pfs:\n- name: enp11s0f0\n  total-vfs: 1.{BIG}\n"),
    ("s.yaml", "pfs:\n- name: enp11s0f0\n  total-vfs: 2\x00\n"),
    ("s.yaml", "pfs:\n- name: enp11s0f0\n\x1b[2J  total-vfs: 2\n"),
])
def test_bad_documents_are_65_with_the_file_and_line(name: str, text: str, tmp_path: Path) -> None:
    f = _file(tmp_path, text, name)
    for argv in (["state", "validate", f], [*S, "state", "plan", f], ["persist", "install", f, "--destdir",
                                                                       str(tmp_path), "--exec", "/bin/true"]):
        r = cli(*argv)
        assert r.code == 65 and r.err.startswith(f"sriovctl: {f}:") and len(r.err) < 400, (argv, r.err[:500])
    assert not (tmp_path / "etc").exists()


def test_utf16_and_non_utf8_are_65(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_bytes("pfs: []\n".encode("utf-16"))
    r = cli("state", "validate", str(f))
    assert r.code == 65 and "UTF-16" in r.err, r.err
    f.write_bytes(b"pfs:\n- name: \xff\n")
    r = cli("state", "validate", str(f))
    assert r.code == 65 and "line 2: not UTF-8" in r.err, r.err


def test_a_spec_with_a_huge_integer_is_65(tmp_path: Path) -> None:
    spec = (Path(open_sim(IGB).root) / "spec.yaml").read_text()
    f = _file(tmp_path, spec.replace("numvfs: 7", f"numvfs: {BIG}", 1), "spec.yaml")
    r = cli("sim", "create", "x", "--from", f)
    assert r.code == 65 and len(r.err) < 400, r.err[:500]


def test_a_huge_integer_is_never_echoed_whole() -> None:
    from sriovctl.untrusted import shown

    assert shown(10 ** 5000) == "an integer of about 5001 digits"


# ---------------------------------------------------------------- limits reachable as documented

def test_the_vf_entry_limit_is_reachable_in_json_and_yaml(tmp_path: Path) -> None:
    pfs = [{"name": f"eth{i}", "total-vfs": 1024, "vfs": [{"id": n} for n in range(1024)]}
           for i in range(MAX_VF_ENTRIES // 1024)]
    assert sum(len(p["vfs"]) for p in pfs) == MAX_VF_ENTRIES
    r = cli("state", "validate", _file(tmp_path, {"pfs": pfs}, "max.json"))
    assert r.code == 0, r.err
    r = cli("state", "validate", _file(tmp_path, yaml.safe_dump({"pfs": pfs}), "max.yaml"))
    assert r.code == 0, r.err
    pfs.append({"name": "ethx", "vfs": [{"id": 0}]})
    r = cli("state", "validate", _file(tmp_path, {"pfs": pfs}, "over.json"))
    assert r.code == 65 and f"more than {MAX_VF_ENTRIES} VF entries" in r.err, r.err


def test_a_16x256_host_is_shown_and_read_back(tmp_path: Path) -> None:
    assert cli("sim", "create", "b16", "--from", str(BENCH_SPEC)).code == 0
    r = cli("--sim", "b16", "state", "show")
    assert r.code == 0 and len(r.out) > 500_000, r.err
    f = _file(tmp_path, r.out, "b16.yaml")
    r = cli("state", "validate", f)
    assert r.code == 0 and "4096 VF entries" in r.out, r.err


# ---------------------------------------------------------------- smaller contract misses

def test_doctor_with_an_empty_name_is_64() -> None:
    r = cli(*S, "doctor", "")
    assert r.code == 64, r.out[:200] + r.err


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_under_json_ends_with_one_json_document(sig: int, code: int, tmp_path: Path) -> None:
    """Holding a PF's lock in another process makes `vf set --wait 60` wait; the signal ends it with one JSON
    error document and the documented code."""
    from test_engine import _HOLDER  # type: ignore[import-not-found]

    host = open_sim(IGB)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(Path(host.lock_dir()) / f"{PF0}.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        p = subprocess.Popen([sys.executable, "-m", "sriovctl", *S, "--json", "vf", "set", "enp11s0f0#0", "--vlan",
                              "3", "--wait", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ))
        time.sleep(1.5)  # started and waiting for the lock (a slow start only delays the signal's handler)
        deadline = time.monotonic() + 60
        while p.poll() is None and time.monotonic() < deadline:
            p.send_signal(sig)
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                continue
        out, err = p.communicate(timeout=30)
        assert p.returncode == code, (p.returncode, out, err)
        doc = json.loads(out)
        assert doc["error"]["exit_code"] == code and "terminated by SIG" in doc["error"]["message"]
    finally:
        holder.kill()
        holder.wait()


def test_state_status_reads_this_hosts_stored_state_without_following_links(tmp_path: Path) -> None:
    """`--sim X state status` (no FILE) reads the state `persist install --sim X` stored under the simulated
    root — not the machine's /etc — and as sriovctl's own file: a link planted there is refused, not shown."""
    f = _file(tmp_path, {"pfs": [{"name": "enp11s0f0", "total-vfs": 7}]})
    assert cli(*S, "persist", "install", f, "--exec", "/bin/true").code == 0
    stored = Path(open_sim(IGB).root) / "etc/sriovctl/state.yaml"
    r = cli(*S, "--json", "state", "status")
    assert r.code == 0 and r.json()["source"] == str(stored), r.out
    secret = tmp_path / "secret"
    secret.write_text("root:SECRET-LINE\n")
    stored.unlink()
    stored.symlink_to(secret)
    r = cli(*S, "state", "status")
    assert r.code == 74 and "symbolic link" in r.err and "SECRET" not in r.out + r.err, r.err


@pytest.mark.parametrize(("name", "verb"), [("s.yaml", "validate"), ("a.network", "import"), ("nm.yaml", "import")])
def test_a_file_that_is_not_a_document_is_not_shown(name: str, verb: str, tmp_path: Path) -> None:
    """A path that leads to another kind of file (a link to /etc/shadow named as a state or .network file): the
    error says what is wrong and where, never what the file holds."""
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$SECRET-HASH:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    link = tmp_path / name
    link.symlink_to(secret)
    r = cli("state", verb, str(link))
    assert r.code == 65 and "SECRET" not in r.out + r.err and "$6$" not in r.err, r.err


def test_state_apply_on_a_snapshot_is_refused_before_anything(tmp_path: Path) -> None:
    """Issue 19's wart: `--root SNAPSHOT state apply` ran up to the first netlink write, "rolled back" and exited
    7; a snapshot is read-only, refused (77) like every other write. `state plan` still reads it."""
    snap = tmp_path / "igb.tar.gz"
    assert cli(*S, "snapshot", str(snap)).code == 0
    f = _file(tmp_path, {"pfs": [{"name": "enp11s0f0", "vfs": [{"id": 0, "vlan-id": 9}]}]})
    r = cli("--root", str(snap), "state", "apply", f)
    assert r.code == 77 and "read-only" in r.err, r.out + r.err
    r = cli("--root", str(snap), "state", "plan", f)
    assert r.code == 0 and "vlan" in r.out, r.out + r.err
