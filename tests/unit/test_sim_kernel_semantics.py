"""The simulated host's reactions to writes: what the lab's real kernel does (see tests/lab/test_fidelity.py)."""

from __future__ import annotations

import errno
import os

import pytest

from sriovctl.host.sim.catalog import open_sim
from sriovctl.inventory import read_inventory
from sriovctl.pci.address import PciAddress

PF = "sys/bus/pci/devices/0000:0b:00.0"


def _errno(fn) -> int | None:  # type: ignore[no-untyped-def]
    try:
        fn()
    except OSError as e:
        return e.errno
    return None


def test_numvfs_busy_range_and_disable() -> None:
    h = open_sim("igb-82576")
    assert _errno(lambda: h.write(f"{PF}/sriov_numvfs", "3")) == errno.EBUSY
    assert _errno(lambda: h.write(f"{PF}/sriov_numvfs", "8")) == errno.ERANGE
    assert _errno(lambda: h.write(f"{PF}/sriov_numvfs", "x")) == errno.EINVAL
    assert h.read_text(f"{PF}/sriov_numvfs") == "7"
    h.write(f"{PF}/sriov_numvfs", "0")
    assert h.read_text(f"{PF}/sriov_numvfs") == "0"
    assert not any(n.startswith("virtfn") for n in h.listdir(PF))
    assert not h.exists("sys/bus/pci/devices/0000:0b:10.0")
    assert not h.exists("sys/class/net/enp11s16")
    h.write(f"{PF}/sriov_numvfs", "3")
    inv = read_inventory(h)
    pf = inv.devices[PciAddress.parse("0b:00.0")]
    assert [str(v) for v in pf.vfs] == ["0000:0b:10.0", "0000:0b:10.2", "0000:0b:10.4"]
    assert pf.sriov and pf.sriov.capability and pf.sriov.capability.num_vfs == 3
    assert [w.path.rsplit("/", 1)[1] for w in h.writes] == ["sriov_numvfs"] * 5


def test_state_persists_between_invocations() -> None:
    open_sim("igb-82576").write(f"{PF}/sriov_numvfs", "0")
    assert open_sim("igb-82576").read_text(f"{PF}/sriov_numvfs") == "0"


def test_autoprobe_off_leaves_vfs_unbound_and_override_binds_vfio() -> None:
    h = open_sim("igb-82576")
    h.write(f"{PF}/sriov_numvfs", "0")
    h.write(f"{PF}/sriov_drivers_autoprobe", "0")
    h.write(f"{PF}/sriov_numvfs", "2")
    vf = "sys/bus/pci/devices/0000:0b:10.0"
    assert h.readlink(f"{vf}/driver") is None
    assert h.listdir(f"{vf}/net") == []
    h.write(f"{vf}/driver_override", "vfio-pci")
    h.write("sys/bus/pci/drivers_probe", "0000:0b:10.0")
    assert h.link_name(f"{vf}/driver") == "vfio-pci"
    grp = h.link_name(f"{vf}/iommu_group")
    assert h.exists(f"dev/vfio/{grp}")
    # the override does not match igbvf: ENODEV comes before any busy check (as the kernel's bind_store)
    assert _errno(lambda: h.write("sys/bus/pci/drivers/igbvf/bind", "0000:0b:10.0")) == errno.ENODEV
    h.write("sys/bus/pci/drivers/vfio-pci/unbind", "0000:0b:10.0")
    assert not h.exists(f"dev/vfio/{grp}")
    # autoprobe 0 and no override: the PCI core refuses to probe a VF at all (pci_device_can_probe)
    h.write(f"{vf}/driver_override", "\n")
    assert _errno(lambda: h.write("sys/bus/pci/drivers/igbvf/bind", "0000:0b:10.0")) == errno.ENODEV
    h.write("sys/bus/pci/drivers_probe", "0000:0b:10.0")
    assert h.readlink(f"{vf}/driver") is None
    h.write(f"{vf}/driver_override", "igbvf")
    h.write("sys/bus/pci/drivers/igbvf/bind", "0000:0b:10.0")
    assert h.link_name(f"{vf}/driver") == "igbvf"
    assert len(h.listdir(f"{vf}/net")) == 1
    assert _errno(lambda: h.write("sys/bus/pci/drivers/igbvf/bind", "0000:0b:10.0")) == errno.EBUSY
    assert _errno(lambda: h.write("sys/bus/pci/drivers/igbvf/unbind", "0000:0b:10.2")) == errno.ENODEV


def test_unbinding_the_pf_driver_removes_its_vfs() -> None:
    h = open_sim("igb-82576")
    h.write("sys/bus/pci/drivers/igb/unbind", "0000:0b:00.0")
    assert not h.exists("sys/bus/pci/devices/0000:0b:10.0")
    assert h.exists("sys/bus/pci/devices/0000:0b:10.1")  # the other port's VFs stay
    assert _errno(lambda: h.write(f"{PF}/sriov_numvfs", "2")) == errno.ENOENT  # no driver bound


def test_dry_run_and_read_only() -> None:
    from sriovctl.errors import ReadOnlyError
    from sriovctl.host.base import Host

    h = open_sim("igb-82576")
    h.dry_run = True
    h.write(f"{PF}/sriov_numvfs", "0")
    assert h.read_text(f"{PF}/sriov_numvfs") == "7" and h.writes[0].dry_run
    ro = Host(root=h.root, read_only=True, label="snap")
    with pytest.raises(ReadOnlyError, match="snap: read-only"):
        ro.write(f"{PF}/sriov_numvfs", "0")
    assert ro.writes == []


def test_host_paths_cannot_escape_the_root() -> None:
    from sriovctl.errors import BugError

    h = open_sim("igb-82576")
    for bad in ("/etc/passwd", "sys/../../etc/passwd", "sys/bus/pci/devices/../../../.."):
        with pytest.raises(BugError):
            h.read_text(bad)
    assert os.path.isdir(h.root)
