"""qemu hotplug/unplug against a scripted QMP monitor on the simulated igb host: port choice, the VF's
driver before and after, dry runs, and a guest that never acknowledges. (A real QEMU does the same in the
lab: tests/lab/test_libvirt.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from helpers import cli, tree_hash, validate
from sriovctl.host.sim.catalog import open_sim, sim_dir

S = ("--sim", "igb-82576")
VF2 = "0000:0b:10.4"  # enp11s0f0#2


class Monitor:
    """query-pci / device_add / device_del / pull_event of a q35 guest with pcie-root-ports, as QEMU answers."""

    def __init__(self, ports: tuple[str, ...] = ("rp1", "rp2"), acknowledges: bool = True) -> None:
        self.ports: dict[str, list[dict[str, Any]]] = {p: [] for p in ports}
        self.acknowledges = acknowledges
        self.events: list[dict[str, Any]] = []
        self.commands: list[tuple[str, dict[str, Any]]] = []

    def cmd(self, name: str, **args: Any) -> Any:
        self.commands.append((name, args))
        if name == "query-pci":
            devices = [{"bus": 0, "slot": 1 + i, "qdev_id": p, "pci_bridge": {"bus": {"number": 0}, "devices": list(d)}}
                       for i, (p, d) in enumerate(self.ports.items())]
            return [{"bus": 0, "devices": [{"bus": 0, "slot": 0, "qdev_id": ""}, *devices]}]
        if name == "device_add":
            if args["bus"] not in self.ports:
                raise RuntimeError(f"Bus '{args['bus']}' not found")
            self.ports[args["bus"]].append({"bus": 1, "slot": 0, "qdev_id": args["id"]})
            return {}
        if name == "device_del":
            self.events.append({"event": "DEVICE_DELETED", "data": {"path": "/machine/peripheral/x/virtio-backend"}})
            if self.acknowledges:
                for devs in self.ports.values():
                    devs[:] = [d for d in devs if d["qdev_id"] != args["id"]]
                self.events.append({"event": "DEVICE_DELETED", "data": {"device": args["id"]}})
            return {}
        raise AssertionError(name)

    def pull_event(self, wait: float) -> dict[str, Any]:
        if not self.events:
            raise TimeoutError
        return self.events.pop(0)


@pytest.fixture
def monitor(monkeypatch: pytest.MonkeyPatch) -> Monitor:
    mon = Monitor()

    @contextmanager
    def connect(sock: str) -> Iterator[Monitor]:
        assert sock == "/run/vm.qmp"
        yield mon

    monkeypatch.setattr("sriovctl.virt.qemu.monitor", connect)
    return mon


def driver(addr: str) -> str | None:
    return open_sim("igb-82576").link_name(f"sys/bus/pci/devices/{addr}/driver")


def test_hotplug_binds_vfio_and_takes_the_first_free_port(monitor: Monitor) -> None:
    monitor.ports["rp1"].append({"qdev_id": "disk0"})
    r = cli(*S, "qemu", "hotplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp")
    assert r.code == 0, r.err
    assert r.out.splitlines()[-1] == f"{VF2}: plugged into rp2 as sriov-0b-10-4 (vfio-pci)"
    assert driver(VF2) == "vfio-pci"
    assert ("device_add", {"driver": "vfio-pci", "host": VF2, "id": "sriov-0b-10-4", "bus": "rp2"}) in monitor.commands
    r = cli(*S, "qemu", "hotplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp")
    assert r.code == 64 and "already plugged in as sriov-0b-10-4" in r.err
    r = cli(*S, "qemu", "hotplug", "enp11s0f0#3", "--qmp", "/run/vm.qmp")
    assert r.code == 69 and "no free pcie-root-port" in r.err and "-device pcie-root-port" in r.err
    assert driver("0000:0b:10.6") == "igbvf"  # refused before anything was bound


def test_failed_device_add_puts_the_vf_back(monitor: Monitor) -> None:
    r = cli(*S, "qemu", "hotplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp", "--bus", "rp9")
    # QEMU refused (exit 76, EX_PROTOCOL: the other side said no; it was 64, "your command line is wrong")
    assert r.code == 76 and "device_add of 0000:0b:10.4 failed: Bus 'rp9' not found" in r.err
    assert driver(VF2) == "igbvf"


def test_dry_runs_change_nothing(monitor: Monitor) -> None:
    open_sim("igb-82576")
    before = tree_hash(str(sim_dir()))
    r = cli(*S, "qemu", "hotplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp", "--dry-run")
    assert r.code == 0, r.err
    assert "qmp:/run/vm.qmp: device_add driver=vfio-pci host=0000:0b:10.4 id=sriov-0b-10-4 bus=rp1" in r.out
    assert "driver_override <- 'vfio-pci'" in r.out
    doc = cli(*S, "--json", "qemu", "hotplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp", "--dry-run").json()
    validate(doc, "vf-action")
    assert {"path": "qmp:/run/vm.qmp", "value": "device_add driver=vfio-pci host=0000:0b:10.4 id=sriov-0b-10-4 bus=rp1",
            "dry_run": True} in doc["writes"]
    assert tree_hash(str(sim_dir())) == before and not any(c[0] == "device_add" for c in monitor.commands)
    r = cli(*S, "qemu", "unplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp", "--dry-run")
    assert r.code == 66 and "no device sriov-0b-10-4 to unplug" in r.err


def test_unplug_waits_for_its_device_deleted_and_returns_the_vf(monitor: Monitor) -> None:
    assert cli(*S, "qemu", "hotplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp").code == 0
    r = cli(*S, "qemu", "unplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp", "--dry-run")
    assert r.code == 0 and "qmp:/run/vm.qmp: device_del id=sriov-0b-10-4" in r.out and driver(VF2) == "vfio-pci"
    r = cli(*S, "qemu", "unplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp")
    assert r.code == 0, r.err
    assert "unplugged (sriov-0b-10-4: DEVICE_DELETED after" in r.out and "bound to igbvf" in r.out
    assert driver(VF2) == "igbvf"  # the other DEVICE_DELETED (no device id) was not taken for ours
    assert cli(*S, "qemu", "hotplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp").code == 0
    r = cli(*S, "qemu", "unplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp", "--keep-vfio")
    assert r.code == 0 and "0000:0b:10.4: left on vfio-pci\n" in r.out and driver(VF2) == "vfio-pci"


def test_a_guest_that_never_acknowledges(monitor: Monitor) -> None:
    assert cli(*S, "qemu", "hotplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp").code == 0
    monitor.acknowledges = False
    r = cli(*S, "qemu", "unplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp", "--wait", "0.3")
    assert r.code == 75 and r.err.count("\n") == 1
    assert "sriov-0b-10-4 not deleted after 0.3 s: the guest has not released it" in r.err
    assert "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off" in r.err
    assert driver(VF2) == "vfio-pci"


def test_hotplug_refuses_a_vf_another_process_holds(monitor: Monitor) -> None:
    """Already on vfio-pci (no bind whose guard would look), but another QEMU has its group open: refused
    before device_add, naming that QEMU."""
    from helpers import hold_vfio

    assert cli(*S, "vf", "bind", "enp11s0f0#2", "vfio-pci").code == 0
    group = open_sim("igb-82576").link_name(f"sys/bus/pci/devices/{VF2}/iommu_group")
    assert group
    hold_vfio(group, pid=5150, comm="qemu-system-x86", argv=("qemu-system-x86_64", "-name", "web1"))
    r = cli(*S, "qemu", "hotplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp")
    assert r.code == 77 and r.err.count("\n") == 1, r.err
    assert f"{VF2}: refusing to plug it into QMP /run/vm.qmp: QEMU guest web1 (pid 5150) holds /dev/vfio/{group}" in r.err
    assert not any(c[0] == "device_add" for c in monitor.commands)
    r = cli(*S, "qemu", "hotplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp", "--force")
    assert r.code == 0 and "warning: --force" in r.out, (r.out, r.err)


def test_hotplug_decides_from_the_vf_as_it_is_under_the_lock(monitor: Monitor, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19: bind-or-guard was decided from the VF read before the lock. Here another sriovctl binds it to
    vfio-pci and a QEMU opens its group while this one waits: the guard (not a bind that sees nothing to do)
    runs, and refuses naming that QEMU."""
    from helpers import hold_vfio
    from sriovctl.ops.session import Session

    real = Session.locked
    done: list[int] = []

    def locked(self: Session, *a: Any) -> Any:
        if not done:
            done.append(1)
            assert cli(*S, "vf", "bind", "enp11s0f0#2", "vfio-pci").code == 0
            group = open_sim("igb-82576").link_name(f"sys/bus/pci/devices/{VF2}/iommu_group")
            assert group
            hold_vfio(group, pid=5151, comm="qemu-system-x86", argv=("qemu-system-x86_64", "-name", "db1"))
        return real(self, *a)

    monkeypatch.setattr(Session, "locked", locked)
    r = cli(*S, "qemu", "hotplug", "enp11s0f0#2", "--qmp", "/run/vm.qmp")
    assert r.code == 77 and "QEMU guest db1 (pid 5151)" in r.err, r.out + r.err
    assert not any(c[0] == "device_add" for c in monitor.commands)
