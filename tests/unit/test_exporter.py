"""`sriovctl exporter` (issue 21) on simulated hosts: the exact names on the raw text, golden files, where each VF's
counters come from (IFLA_VF_STATS for a driver that counts, the VF netdev for igb, none for a VF on vfio-pci),
owners (libvirt running and defined, QEMU, processes) with hostile names escaped, a PF that disappears between
scrapes, a scrape while another process holds the PF lock, the HTTP endpoint and the textfile mode."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import cli, domain_xml, free_port, hold_vfio, start_exporter, validate, vf_address
from sriovctl.host.sim.catalog import open_sim, reset_sim
from sriovctl.host.sim.traffic import advance
from sriovctl.metrics import families as F
from sriovctl.metrics.expo import escape_label
from sriovctl.ops.metrics import Exporter

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "metrics"
SRIOVCTL = [sys.executable, "-m", "sriovctl"]


def _series(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """name → [(labels, value)], read by the Prometheus client library's parser (a second reader of the format).
    That parser names a counter's samples NAME_total whatever the text says (the renaming the exporter avoids by
    rendering the text itself): the raw names are held by test_golden_output_and_exact_names."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            name = s.name.removesuffix("_total") if s.name.startswith("sriov_vf_") else s.name
            out.setdefault(name, []).append((dict(s.labels), s.value))
    return out


def _one(series: dict[str, list[tuple[dict[str, str], float]]], name: str, **want: str) -> float:
    hits = [v for labels, v in series.get(name, []) if all(labels.get(k) == x for k, x in want.items())]
    assert len(hits) == 1, (name, want, hits)
    return hits[0]


def _traffic(host_name: str) -> None:
    """The same steps for the golden files: a few VFs counted, in both directions, with drops and multicast."""
    host = open_sim(host_name)
    pf = "enp11s0f0" if host_name == "igb-82576" else "ens2f0"
    for n, k in ((0, 1), (1, 2), (3, 7)):
        advance(host.tree, vf_address(host_name, pf, n), {
            "rx_packets": 10 * k, "rx_bytes": 15_000 * k, "tx_packets": 3 * k, "tx_bytes": 1_800 * k,
            "multicast": k, "broadcast": 2 * k, "rx_dropped": k - 1})


def _stable(text: str) -> str:
    """The two values that change from run to run (the scrape's time, the doctor's) as X."""
    return re.sub(r"^(sriovctl_scrape_duration_seconds|sriovctl_doctor_last_run_timestamp_seconds) .*$", r"\1 X",
                  text, flags=re.M)


@pytest.mark.parametrize("name", ["igb-82576", "e810-2x256"])
def test_golden_output_and_exact_names(name: str) -> None:
    reset_sim(name)
    _traffic(name)
    text = Exporter(open_sim(name)).scrape().text()
    golden = GOLDEN / f"{name}.prom"
    if os.environ.get("SRIOVCTL_WRITE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(_stable(text))
    assert _stable(text) == golden.read_text()
    # the SR-IOV metrics exporter's names exactly, no `_total` appended to them; its four labels in its order
    names = {m.group(1) for m in re.finditer(r"^([a-z_]+)[{ ]", text, re.M)}
    counted = {c.family.name for c in F.VF_COUNTERS if name != "igb-82576" or c.netdev is not None}
    assert counted <= names and ("sriov_vf_rx_broadcast" in names) == (name != "igb-82576")
    assert not [n for n in names if n.startswith("sriov_vf_") and n.endswith("_total")]
    assert re.search(r'^sriov_vf_rx_bytes\{pf="[^"]+",vf="\d+",pciAddr="0000:[0-9a-f:.]+",numa_node="\d*"\} \d+$',
                     text, re.M)
    for fam in F.FAMILIES:  # every family in the text is the table's, with its HELP and TYPE
        if fam.name in names:
            assert f"# TYPE {fam.name} {fam.type}\n" in text and f"# HELP {fam.name} " in text
    assert names <= set(F.BY_NAME)


def test_stats_sources_follow_the_driver() -> None:
    """igb reports IFLA_VF_STATS as zeros (no ndo_get_vf_stats): its VFs are counted from their igbvf netdevs, and a
    VF on vfio-pci has no series at all (not zeros). ice counts in the device, whatever the VF is bound to."""
    reset_sim("igb-82576")
    _traffic("igb-82576")
    assert cli("--sim", "igb-82576", "vf", "bind", "enp11s0f0#3", "vfio-pci").code == 0
    s = _series(Exporter(open_sim("igb-82576")).scrape().text())
    assert _one(s, "sriov_vf_rx_bytes", pf="enp11s0f0", vf="0") == 15_000
    assert _one(s, "sriov_vf_tx_packets", pf="enp11s0f0", vf="1") == 6
    assert _one(s, "sriov_vf_rx_multicast", pf="enp11s0f0", vf="1") == 2
    assert not [x for x in s["sriov_vf_rx_bytes"] if x[0]["pf"] == "enp11s0f0" and x[0]["vf"] == "3"]
    assert not [x for x in s.get("sriov_vf_rx_broadcast", []) if x[0]["pf"] == "enp11s0f0"]  # a netdev has no such file
    assert _one(s, "sriovctl_vf_info", pf="enp11s0f0", vf="0", stats_source="netdev", owner_kind="host") == 1
    assert _one(s, "sriovctl_vf_info", pf="enp11s0f0", vf="3", stats_source="none", driver="vfio-pci") == 1

    reset_sim("e810-2x256")
    _traffic("e810-2x256")
    assert cli("--sim", "e810-2x256", "vf", "bind", "ens2f0#3", "vfio-pci").code == 0
    s = _series(Exporter(open_sim("e810-2x256")).scrape().text())
    assert _one(s, "sriov_vf_rx_bytes", pf="ens2f0", vf="3") == 105_000  # the device kept counting
    assert _one(s, "sriov_vf_rx_broadcast", pf="ens2f0", vf="3") == 14
    assert _one(s, "sriovctl_vf_info", pf="ens2f0", vf="3", stats_source="netlink") == 1
    assert len(s["sriov_vf_rx_bytes"]) == 512


def test_a_netdev_counts_from_its_creation_the_device_as_long_as_the_vf_lives() -> None:
    reset_sim("e810-2x256")
    host = open_sim("e810-2x256")
    vf = vf_address("e810-2x256", "ens2f0", 5)
    advance(host.tree, vf, {"rx_bytes": 1000})
    nd = os.listdir(f"{host.root}/sys/bus/pci/devices/{vf}/net")[0]
    assert Path(f"{host.root}/sys/class/net/{nd}/statistics/rx_bytes").read_text() == "1000\n"
    assert cli("--sim", "e810-2x256", "vf", "bind", "ens2f0#5", "vfio-pci").code == 0
    assert cli("--sim", "e810-2x256", "vf", "bind", "ens2f0#5", "host").code == 0
    nd = os.listdir(f"{host.root}/sys/bus/pci/devices/{vf}/net")[0]
    assert Path(f"{host.root}/sys/class/net/{nd}/statistics/rx_bytes").read_text() == "0\n"
    assert advance(host.tree, vf, {"rx_bytes": 1})["rx_bytes"] == 1001
    r = cli("sim", "traffic", "e810-2x256", "ens2f0#5", "--rx-bytes", "-1")
    assert r.code == 64 and r.err.count("\n") == 1


HOSTILE = 'vm "evil" \\ with\na newline'


def test_owners_running_defined_qemu_process_and_hostile_names_escaped() -> None:
    reset_sim("igb-82576")
    host = open_sim("igb-82576")
    root = Path(host.root)
    vfs = [vf_address("igb-82576", "enp11s0f0", n) for n in range(5)]
    for n in (0, 1, 2, 3):
        assert cli("--sim", "igb-82576", "vf", "bind", f"enp11s0f0#{n}", "vfio-pci").code == 0
    (root / "run/libvirt/qemu").mkdir(parents=True)
    (root / "run/libvirt/qemu/evil.xml").write_text(domain_xml(HOSTILE, vfs[0]))
    (root / "etc/libvirt/qemu").mkdir(parents=True)
    (root / "etc/libvirt/qemu/stopped.xml").write_text(domain_xml("stopped-vm", vfs[1])
                                                       .removeprefix("<domstatus>").removesuffix("</domstatus>"))
    group = os.path.basename(os.readlink(root / f"sys/bus/pci/devices/{vfs[2]}/iommu_group"))
    hold_vfio(group, pid=4242, comm="qemu-system-x86", argv=("/usr/bin/qemu-system-x86_64", "-name", "guest=vm9,x=y"))
    group = os.path.basename(os.readlink(root / f"sys/bus/pci/devices/{vfs[3]}/iommu_group"))
    hold_vfio(group, pid=4343, comm="dpdk-testpmd")
    text = Exporter(host).scrape().text()
    assert 'owner="vm \\"evil\\" \\\\ with\\na newline"' in text  # the format's three escapes, nothing else
    s = _series(text)
    assert _one(s, "sriovctl_vf_info", vf="0", pf="enp11s0f0", owner_kind="libvirt") == 1
    assert [lb["owner"] for lb, _ in s["sriovctl_vf_info"] if lb["pciAddr"] == str(vfs[0])] == [HOSTILE]
    assert _one(s, "sriovctl_vf_info", vf="1", pf="enp11s0f0", owner_kind="libvirt", owner="stopped-vm") == 1
    assert _one(s, "sriovctl_vf_info", vf="2", pf="enp11s0f0", owner_kind="qemu", owner="vm9") == 1
    assert _one(s, "sriovctl_vf_info", vf="3", pf="enp11s0f0", owner_kind="process", owner="dpdk-testpmd[4343]") == 1
    assert _one(s, "sriovctl_vf_info", vf="4", pf="enp11s0f0", owner_kind="host") == 1
    assert _one(s, "sriovctl_scrape_errors_total", source="owners") == 0
    # a live XML file that does not parse: counted, the other owners kept
    (root / "run/libvirt/qemu/broken.xml").write_text("<domstatus><domain>")
    exp = Exporter(host)
    s = _series(exp.scrape().text())
    assert _one(s, "sriovctl_scrape_errors_total", source="owners") == 1
    assert _one(s, "sriovctl_vf_info", vf="2", pf="enp11s0f0", owner_kind="qemu", owner="vm9") == 1


def test_label_escaping_is_bounded_and_total() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert escape_label("x\x00y") == "x\ufffdy"
    assert escape_label("\udcff") == "?"  # a lone surrogate (os.fsdecode of a bad byte) is replaced, not written
    assert len(escape_label("a" * 100_000)) == 1024


def test_a_pf_that_disappears_between_scrapes() -> None:
    """The exporter reports what it can, counts the error, never dies."""
    reset_sim("e810-2x256")
    host = open_sim("e810-2x256")
    exp = Exporter(host)
    first = exp.scrape()
    assert first.up and not first.errors
    # its PF driver unbound: the VFs go with it (sriov disable in the driver's remove)
    host.write("sys/bus/pci/drivers/ice/unbind", "0000:17:00.1")
    s = _series(exp.scrape().text())
    assert {lb["pf"] for lb, _ in s["sriov_vf_rx_bytes"]} == {"ens2f0"}
    assert _one(s, "sriovctl_pf_vfs", pciAddr="0000:17:00.1") == 0
    # the PF's netdev gone while its VFs are still listed (a PF reset in progress): no netlink view
    os.unlink(f"{host.root}/sys/class/net/ens2f0")
    scrape = exp.scrape()
    s = _series(scrape.text())
    assert [src for src, _ in scrape.errors] == ["netlink"] and "ens2f0" in scrape.errors[0][1]
    assert _one(s, "sriovctl_scrape_errors_total", source="netlink") == 1
    assert _one(s, "sriovctl_up") == 1 and len(s["sriovctl_vf_info"]) == 256
    # its iavf VFs are counted from their netdevs meanwhile (a counter reset for Prometheus, which rate() takes)
    assert {lb["stats_source"] for lb, _ in s["sriovctl_vf_info"]} == {"netdev"}
    # no PCI devices readable at all: up 0, the error counted, and the next scrape still runs
    os.rename(f"{host.root}/sys/bus/pci/devices", f"{host.root}/sys/bus/pci/devices.gone")
    try:
        scrape = exp.scrape()
    finally:
        os.rename(f"{host.root}/sys/bus/pci/devices.gone", f"{host.root}/sys/bus/pci/devices")
    s = _series(scrape.text())
    assert not scrape.up and [src for src, _ in scrape.errors] == ["inventory"]
    assert _one(s, "sriovctl_up") == 0 and _one(s, "sriovctl_scrape_errors_total", source="inventory") == 1
    assert _one(s, "sriovctl_scrape_errors_total", source="netlink") == 1 and "sriovctl_vf_info" not in s
    assert exp.scrape().up


def test_a_scrape_does_not_wait_for_a_pf_lock() -> None:
    """`state apply` holds the PF's lock for seconds at 256 VFs: a scrape reads without it."""
    reset_sim("e810-2x256")
    code = ("import sys, time\nfrom sriovctl.host.sim.catalog import open_sim\nh = open_sim('e810-2x256')\n"
            "with h.pf_lock('0000:17:00.0', 5.0):\n    print('held', flush=True)\n    time.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        r = cli("--sim", "e810-2x256", "vf", "set", "ens2f0#0", "--vlan", "9", "--wait", "0")
        assert r.code == 75, r.err  # a writer does wait for it (and gives up at its deadline)
        t0 = time.monotonic()
        scrape = Exporter(open_sim("e810-2x256")).scrape()
        took = time.monotonic() - t0
        assert scrape.up and not scrape.errors and holder.poll() is None  # the lock was held throughout
        print(f"scrape under a held PF lock: {took * 1000:.0f} ms")
    finally:
        holder.kill()
        holder.wait()


def test_state_and_doctor_series() -> None:
    reset_sim("igb-82576")
    host = open_sim("igb-82576")
    exp = Exporter(host, doctor_interval=3600)
    s = _series(exp.scrape().text())
    assert _one(s, "sriovctl_state_present") == 0 and "sriovctl_state_converged" not in s
    at = _one(s, "sriovctl_doctor_last_run_timestamp_seconds")
    assert sum(v for _, v in s["sriovctl_doctor_findings"]) > 0
    state = Path(host.root) / "want.yaml"
    state.write_text("pfs:\n  - name: enp11s0f0\n    vfs:\n      - id: 0-1\n        vlan-id: 30\n")
    assert cli("--sim", "igb-82576", "persist", "install", str(state), "--exec", "/usr/bin/sriovctl").code == 0
    s = _series(exp.scrape().text())
    assert _one(s, "sriovctl_state_present") == 1 and _one(s, "sriovctl_state_converged") == 0
    assert _one(s, "sriovctl_state_pending_changes") == 2
    assert _one(s, "sriovctl_doctor_last_run_timestamp_seconds") == at  # cached for the interval
    assert cli("--sim", "igb-82576", "state", "apply", str(state)).code == 0
    s = _series(exp.scrape().text())
    assert _one(s, "sriovctl_state_converged") == 1 and _one(s, "sriovctl_state_pending_changes") == 0
    assert _one(s, "sriovctl_state_last_apply_success", result="Succeeded") == 1
    assert abs(_one(s, "sriovctl_state_last_apply_timestamp_seconds") - time.time()) < 600
    assert cli("--sim", "igb-82576", "vf", "set", "enp11s0f0#1", "--vlan", "31").code == 0
    s = _series(exp.scrape().text())
    assert _one(s, "sriovctl_state_converged") == 0 and _one(s, "sriovctl_state_pending_changes") == 1
    exp.doctor_interval = 0
    time.sleep(0.01)
    assert _one(_series(exp.scrape().text()), "sriovctl_doctor_last_run_timestamp_seconds") > at


def test_textfile_mode(tmp_path: Path) -> None:
    reset_sim("igb-82576")
    out = tmp_path / "textfile"
    r = cli("--sim", "igb-82576", "exporter", "--textfile", str(out), "--once")
    assert r.code == 66 and r.err.count("\n") == 1 and "not a directory" in r.err
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep\n")
    (out / "sriovctl.prom").symlink_to(elsewhere)  # replaced by the rename, never written through
    r = cli("--sim", "igb-82576", "--json", "exporter", "--textfile", str(out), "--once")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    validate(doc, "exporter")
    assert doc["output"] == str(out / "sriovctl.prom") and doc["up"] and doc["errors"] == []
    assert elsewhere.read_text() == "keep\n" and not (out / "sriovctl.prom").is_symlink()
    assert (out / "sriovctl.prom").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in out.iterdir()) == [".sriovctl-doctor.json", "sriovctl.prom"]  # no leftover
    text = (out / "sriovctl.prom").read_text()
    assert doc["series"] == sum(1 for x in text.splitlines() if not x.startswith("#"))
    at = re.search(r"^sriovctl_doctor_last_run_timestamp_seconds (.*)$", text, re.M)
    assert at is not None
    assert cli("--sim", "igb-82576", "exporter", "--textfile", str(out), "--once").code == 0
    again = (out / "sriovctl.prom").read_text()
    assert f"sriovctl_doctor_last_run_timestamp_seconds {at.group(1)}\n" in again  # the cache beside it
    (out / ".sriovctl-doctor.json").write_text('{"time": "x", "findings": {"evil": 1}}')
    assert cli("--sim", "igb-82576", "exporter", "--textfile", str(out), "--once").code == 0
    assert 'severity="evil"' not in (out / "sriovctl.prom").read_text()
    # a link planted at the cache: never read through (its target is well-formed and says 99 failures), replaced
    planted = tmp_path / "planted.json"
    planted.write_text(json.dumps({"time": time.time(), "findings": {"fail": 99}}))
    (out / ".sriovctl-doctor.json").unlink()
    (out / ".sriovctl-doctor.json").symlink_to(planted)
    assert cli("--sim", "igb-82576", "exporter", "--textfile", str(out), "--once").code == 0
    assert 'sriovctl_doctor_findings{severity="fail"} 0' in (out / "sriovctl.prom").read_text()
    assert not (out / ".sriovctl-doctor.json").is_symlink() and "99" in planted.read_text()


@pytest.mark.parametrize("argv", [
    ["exporter", "--once"],
    ["exporter", "--listen", "127.0.0.1:9839", "--textfile", "/tmp"],
    ["--json", "exporter"],
    ["exporter", "--listen", "localhost:9839"],
    ["exporter", "--listen", "127.0.0.1"],
    ["exporter", "--listen", "::1:9839"],
    ["exporter", "--listen", "127.0.0.1:0"],
    ["exporter", "--listen", "127.0.0.1:65536"],
    ["exporter", "--listen", "127.0.0.1:\u0669\u0660"],
    ["exporter", "--listen", "[::1]:x"],
    ["exporter", "--interval", "nan", "--textfile", "/tmp"],
    ["exporter", "--interval", "0", "--textfile", "/tmp"],
    ["exporter", "--doctor-interval", "-1"],
])
def test_bad_arguments_are_one_line_usage_errors(argv: list[str]) -> None:
    r = cli("--sim", "igb-82576", *argv)
    assert r.code == 64 and r.err.count("\n") == 1 and "Traceback" not in r.err, (r.code, r.err)


def test_http_endpoint(tmp_path: Path) -> None:
    reset_sim("e810-2x256")
    port = free_port()
    p = start_exporter("e810-2x256", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=120) as resp:
            assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            s = _series(resp.read().decode())
        assert len(s["sriov_vf_rx_bytes"]) == 512 and _one(s, "sriovctl_up") == 1
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=120)
        assert e.value.code == 404
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=120) as resp:
            assert b'href="/metrics"' in resp.read()
        # a second exporter on the same port: one line, 69, nothing else
        r = subprocess.run([*SRIOVCTL, "--sim", "e810-2x256", "exporter", "--listen", f"127.0.0.1:{port}"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 69 and r.stderr.count("\n") == 1 and "cannot listen" in r.stderr, r.stderr
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=120) == 0


def test_persist_install_exporter_units(tmp_path: Path) -> None:
    state = str(Path(__file__).resolve().parents[1] / "fixtures" / "state-igb.yaml")
    base = ("persist", "install", state, "--destdir", str(tmp_path), "--exec", "/usr/bin/sriovctl")
    r = cli(*base, "--exporter", "--textfile-dir", "/srv/textfile/")
    assert r.code == 0, r.err
    unit = tmp_path / "etc/systemd/system/sriovctl-exporter.service"
    assert "ExecStart=/usr/bin/sriovctl exporter --textfile /srv/textfile --once\n" in unit.read_text()
    assert "ConditionPathIsDirectory=/srv/textfile\n" in unit.read_text()
    timer = (tmp_path / "etc/systemd/system/sriovctl-exporter.timer").read_text()
    assert "OnUnitActiveSec=30s\n" in timer and "WantedBy=timers.target\n" in timer
    assert os.readlink(tmp_path / "etc/systemd/system/timers.target.wants/sriovctl-exporter.timer") == \
        "../sriovctl-exporter.timer"
    r = cli("persist", "status", "--destdir", str(tmp_path), "--exec", "/usr/bin/sriovctl")
    assert r.code == 0 and r.out.count(": installed\n") == 7, r.out
    # the exporter's directory is read back from the manifest: a hostile value there is not rendered into a unit
    man = tmp_path / "etc/sriovctl/persist.json"
    doc = json.loads(man.read_text())
    man.write_text(json.dumps({**doc, "exporter": "/x y;rm -rf /"}))
    r = cli("persist", "status", "--destdir", str(tmp_path), "--exec", "/usr/bin/sriovctl")
    assert r.code == 0 and "rm -rf" not in r.out
    for bad in (("--textfile-dir", "relative"), ("--textfile-dir", "/a/../etc"), ("--textfile-dir", "/a%n")):
        r = cli(*base, "--exporter", *bad)
        assert r.code == 64 and r.err.count("\n") == 1
    r = cli(*base, "--textfile-dir", "/srv")
    assert r.code == 64 and "only with --exporter" in r.err
    r = cli("persist", "uninstall", "--destdir", str(tmp_path))
    assert r.code == 0 and not list((tmp_path / "etc/systemd/system").rglob("*exporter*"))


def test_textfile_loop_until_sigterm(tmp_path: Path) -> None:
    reset_sim("igb-82576")
    p = subprocess.Popen([*SRIOVCTL, "--sim", "igb-82576", "exporter", "--textfile", str(tmp_path), "--interval", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        prom = tmp_path / "sriovctl.prom"
        end = time.monotonic() + 300  # a write takes ~0.2 s idle; generous for a loaded machine
        while time.monotonic() < end and not prom.exists():
            assert p.poll() is None, p.stderr.read() if p.stderr else ""
            time.sleep(0.1)
        first = prom.stat().st_mtime_ns
        advance(open_sim("igb-82576").tree, vf_address("igb-82576", "enp11s0f0", 0), {"rx_bytes": 4242})
        while time.monotonic() < end and 'vf="0",pciAddr="0000:0b:10.0",numa_node="0"} 4242' not in prom.read_text():
            time.sleep(0.1)
        assert 'vf="0",pciAddr="0000:0b:10.0",numa_node="0"} 4242' in prom.read_text()  # written again, new count
        assert prom.stat().st_mtime_ns != first
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=120) == 0
