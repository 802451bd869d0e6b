"""Test set-up. Lab tests (marker ``lab``) run for real inside a QEMU guest, one pytest process per
topology boot; on the host each lab test is a proxy that reports its in-guest outcome."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import labkit

FIXTURES = Path(__file__).parent / "fixtures"
IN_GUEST = os.environ.get("SRIOVCTL_LAB_GUEST")
REQUIRE_LAB = os.environ.get("SRIOVCTL_REQUIRE_LAB") == "1"


def fast_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A directory for simulated hosts: on tmpfs (/dev/shm) when there is one — building the 512-VF host takes
    1.4 s there and 7.8 s on this machine's disk — else under pytest's tmp_path. Removed at session end."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        base = _SHM_BASE.get("dir")
        if base is None:
            import tempfile

            for old in shm.glob("sriovctl-tests-*-*"):  # a killed run's hosts (its sessionfinish never ran)
                if (pid := old.name.split("-")[2]).isdigit() and not Path(f"/proc/{pid}").exists():
                    shutil.rmtree(old, ignore_errors=True)
            base = _SHM_BASE["dir"] = Path(tempfile.mkdtemp(prefix=f"sriovctl-tests-{os.getpid()}-", dir=shm))
        d = base / f"{name}{len(list(base.iterdir()))}"
        d.mkdir()
        return d
    return tmp_path_factory.mktemp(name)


_SHM_BASE: dict[str, Path] = {}


def pytest_unconfigure(config: pytest.Config) -> None:
    if "dir" in _SHM_BASE:
        shutil.rmtree(_SHM_BASE.pop("dir"), ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_sim_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every unit test gets its own simulated-host directory and the small pci.ids fixture."""
    if IN_GUEST:
        return
    monkeypatch.setenv("SRIOVCTL_SIM_DIR", str(fast_dir(tmp_path_factory, "sim")))
    monkeypatch.setenv("SRIOVCTL_PCI_IDS", str(FIXTURES / "pci.ids"))
    from sriovctl.pci.ids import system_ids

    system_ids.cache_clear()


def topology_of(item: pytest.Item) -> str | None:
    m = item.get_closest_marker("lab")
    if m is None:
        return None
    return str(m.args[0]) if m.args else "default"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_GUEST:
        select = os.environ.get("SRIOVCTL_LAB_SELECT")
        if select:  # the host's selection for this boot
            wanted = set(Path(select).read_text().split("\n")) - {""}
            keep = [i for i in items if i.nodeid in wanted]
            config.hook.pytest_deselected(items=[i for i in items if i.nodeid not in wanted])
            items[:] = keep
        for item in items:
            if topology_of(item) not in (None, IN_GUEST):
                item.add_marker(pytest.mark.skip(reason=f"lab test for topology {topology_of(item)}"))
        return
    why = labkit.missing()
    config.stash[_LAB_MISSING] = why
    if why and not REQUIRE_LAB:
        for item in items:
            if topology_of(item):
                item.add_marker(pytest.mark.skip(reason=f"lab not available: {why}"))
        return
    config.stash[_LAB_ITEMS] = defaultdict(list)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """The lab tests to run per topology: known only after -k/-m deselection."""
    if IN_GUEST or _LAB_ITEMS not in session.config.stash:
        return
    for item in session.items:
        t = topology_of(item)
        if t:
            session.config.stash[_LAB_ITEMS][t].append(item.nodeid)


_LAB_ITEMS = pytest.StashKey[dict[str, list[str]]]()
_LAB_RUNS = pytest.StashKey[dict[str, Any]]()
_LAB_MISSING = pytest.StashKey[str | None]()
_LAB_TIMES: dict[str, float] = {}


def _guest_run(config: pytest.Config, topo: str) -> Any:
    runs = config.stash.setdefault(_LAB_RUNS, {})
    if topo not in runs:
        nodeids = config.stash[_LAB_ITEMS][topo]
        t0 = time.monotonic()
        runs[topo] = labkit.run_guest_pytest(topo, nodeids)
        _LAB_TIMES[topo] = time.monotonic() - t0
    return runs[topo]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    topo = topology_of(pyfuncitem)
    if topo is None or IN_GUEST:
        return None
    why = pyfuncitem.config.stash.get(_LAB_MISSING, None)
    if why:  # only reached with SRIOVCTL_REQUIRE_LAB=1 (CI): a lab that cannot run is a failure
        pytest.fail(f"lab required (SRIOVCTL_REQUIRE_LAB=1) but not available: {why}", pytrace=False)
    run = _guest_run(pyfuncitem.config, topo)
    res = run.results.get(pyfuncitem.nodeid)
    if res is None:
        pytest.fail(f"lab {topo}: test did not run in the guest (rc {run.returncode}, {run.seconds:.0f} s)\n"
                    f"--- guest log tail ---\n{run.log[-4000:]}\n--- kernel log tail ---\n{run.dmesg_tail[-3000:]}",
                    pytrace=False)
    if res["outcome"] == "passed":
        return True
    if res["outcome"] == "skipped":
        pytest.skip(f"in guest: {res.get('longrepr', '')}")
    pytest.fail(f"lab {topo} (in guest):\n{res.get('longrepr', '')}\n--- kernel log tail ---\n"
                f"{run.dmesg_tail[-3000:]}", pytrace=False)
    return None


# ---- inside the guest: record every test's outcome for the host ----
_GUEST_RESULTS: dict[str, dict[str, str]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not IN_GUEST:
        return
    cur = _GUEST_RESULTS.get(report.nodeid)
    if report.when == "call" or report.outcome != "passed":
        if cur and cur["outcome"] == "failed":
            return
        _GUEST_RESULTS[report.nodeid] = {
            "outcome": report.outcome, "when": report.when,
            "longrepr": str(report.longrepr)[-6000:] if report.longrepr else "",
            "seconds": f"{report.duration:.3f}"}
        _write_report()  # after every test: a later test that hangs the guest loses no earlier result, and the
        # host side reads the report's growth as progress (labkit: the deadline follows progress)


def _write_report() -> None:
    target = os.environ.get("SRIOVCTL_LAB_REPORT")
    if IN_GUEST and target:
        tmp = Path(f"{target}.tmp")
        tmp.write_text(json.dumps(_GUEST_RESULTS, indent=1))
        tmp.replace(target)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _write_report()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    runs = config.stash.get(_LAB_RUNS, {})
    if not runs:
        return
    terminalreporter.section("real-kernel lab")
    total = 0.0
    for topo, run in sorted(runs.items()):
        declared = len(config.stash[_LAB_ITEMS][topo])
        passed = sum(1 for r in run.results.values() if r["outcome"] == "passed")
        total += run.seconds
        terminalreporter.write_line(f"lab {topo}: {passed} passed of {declared} declared, "
                                    f"{len(run.results)} ran in the guest, boot+run {run.seconds:.1f} s")
    terminalreporter.write_line(f"lab total wall time: {total:.1f} s")
