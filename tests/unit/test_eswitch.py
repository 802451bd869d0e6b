"""pf eswitch against a devlink that answers as drivers do (the lab proves netdevsim and igb; mlx5 and ice
answers are taken from their 6.1 sources: ice_eswitch_mode_set refuses with VFs, EOPNOTSUPP + extack)."""

from __future__ import annotations

import errno

import pytest

from helpers import hold_vfio
from sriovctl.errors import InterlockError, UnavailableError, VerificationError
from sriovctl.host.netlink import NetlinkError
from sriovctl.host.sim.catalog import open_sim
from sriovctl.ops.binding import BindOptions, apply_binding, plan_bind
from sriovctl.ops.eswitch import apply_eswitch, plan_eswitch
from sriovctl.ops.plan import ChangeKind, Plan
from sriovctl.ops.session import Session


class Devlink:
    def __init__(self, mode: str = "legacy", refuse: NetlinkError | None = None, sticks: bool = True) -> None:
        self.mode, self.refuse, self.sticks, self.calls = mode, refuse, sticks, []

    def eswitch_mode(self, bus: str, device: str) -> str:
        self.calls.append(("get", f"{bus}/{device}"))
        if self.refuse is not None and self.refuse.errno == errno.ENODEV:
            raise self.refuse
        return self.mode

    def set_eswitch_mode(self, bus: str, device: str, mode: str) -> None:
        self.calls.append(("set", mode))
        if self.refuse is not None:
            raise self.refuse
        if self.sticks:
            self.mode = mode


def session(dl: Devlink) -> Session:
    s = Session(open_sim("igb-82576"))
    s.host.devlink = lambda: dl  # type: ignore[method-assign]
    return s


def test_plan_apply_and_read_back() -> None:
    dl = Devlink()
    s = session(dl)
    pf = s.find("enp11s0f0")
    plan = plan_eswitch(s.host, s.inv, pf, "switchdev", force=False)
    (c,) = plan.changes
    assert (c.kind, c.target, c.before, c.after) == (ChangeKind.ESWITCH_MODE, "pci/0000:0b:00.0", "legacy", "switchdev")
    out = apply_eswitch(s.host, pf, plan)
    assert out.verified and dl.mode == "switchdev" and ("set", "switchdev") in dl.calls
    again = plan_eswitch(s.host, s.inv, pf, "switchdev", force=False)
    assert again.empty and again.notes == ["0000:0b:00.0 (enp11s0f0): eswitch already switchdev, nothing to do"]


def test_a_dry_run_sets_nothing() -> None:
    dl = Devlink()
    s = session(dl)
    s.host.dry_run = True
    pf = s.find("enp11s0f0")
    out = apply_eswitch(s.host, pf, plan_eswitch(s.host, s.inv, pf, "switchdev", force=False))
    assert dl.mode == "legacy" and ("set", "switchdev") not in dl.calls
    assert out.messages == ["would set pci/0000:0b:00.0 eswitch mode switchdev (now legacy)"]


def test_no_devlink_instance_is_named_with_the_driver() -> None:
    s = session(Devlink(refuse=NetlinkError(errno.ENODEV, "")))
    with pytest.raises(UnavailableError, match=r"no devlink instance pci/0000:0b:00.0: its driver igb does not"):
        plan_eswitch(s.host, s.inv, s.find("enp11s0f0"), "switchdev", force=False)


def test_the_drivers_refusal_comes_with_its_words_and_what_it_wants() -> None:
    msg = "Changing eswitch mode is allowed only if there is no VFs created"
    s = session(Devlink(refuse=NetlinkError(errno.EOPNOTSUPP, msg)))
    pf = s.find("enp11s0f0")
    pf = type(pf)(**{**{f: getattr(pf, f) for f in pf.__dataclass_fields__}, "driver": "ice"})
    plan = plan_eswitch(s.host, s.inv, pf, "switchdev", force=False)
    with pytest.raises(UnavailableError) as e:
        apply_eswitch(s.host, pf, plan)
    assert e.value.message == ("0000:0b:00.0 (enp11s0f0): pci/0000:0b:00.0: eswitch mode switchdev: "
                               f"the driver refused: {msg} (EOPNOTSUPP)")
    assert "ice changes mode only while the PF has no VFs" in str(e.value.hint)


def test_a_mode_that_does_not_stick_is_a_verification_error() -> None:
    s = session(Devlink(sticks=False))
    pf = s.find("enp11s0f0")
    with pytest.raises(VerificationError, match="accepted but reads back legacy"):
        apply_eswitch(s.host, pf, plan_eswitch(s.host, s.inv, pf, "switchdev", force=False))


def test_vfs_given_to_a_vm_hold_the_mode_unless_forced() -> None:
    s = session(Devlink())
    vf = s.find("enp11s0f0#1")
    s.host.dry_run = False
    plan = Plan("vf-bind", s.host.label)
    plan_bind(s.host, s.inv, vf, "vfio-pci", BindOptions(), plan)
    apply_binding(s.host, s.inv, plan, BindOptions())
    hold_vfio(str(vf.iommu_group))
    s = session(Devlink())
    with pytest.raises(InterlockError) as e:
        plan_eswitch(s.host, s.inv, s.find("enp11s0f0"), "switchdev", force=False)
    assert e.value.holders[0].id == "4242"
    plan = plan_eswitch(s.host, s.inv, s.find("enp11s0f0"), "switchdev", force=True)
    assert plan.changes and plan.notices  # forced: said so
