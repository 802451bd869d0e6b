"""Lab, topology `default`: VF lifecycle, VF attributes over netlink and driver binding on the real kernel."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import time

import pytest

from labguest import LAB_OUT, set_numvfs, sh, wait_for

pytestmark = pytest.mark.lab("default")


def cli(*args: str) -> tuple[int, str, str]:
    from sriovctl.cli.main import run

    out, err = io.StringIO(), io.StringIO()
    code, _ = run(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def ip_vfs(ifname: str) -> dict[int, str]:
    """The guest's own `ip -d link show` lines per VF."""
    out = sh("ip", "-d", "link", "show", "dev", ifname)
    return {int(m.group(1)): m.group(0) for m in re.finditer(r"vf (\d+)\s.*", out)}


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def pf_netdev(pf: str) -> str:
    return os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0]


def test_enable_reset_and_refusal(host, pfs) -> None:  # type: ignore[no-untyped-def]
    (pf,) = pfs
    set_numvfs(host, pf, 0)
    code, out, err = cli("vf", "enable", pf, "7")
    assert code == 0, err
    assert len([x for x in os.listdir(f"/sys/bus/pci/devices/{pf}") if x.startswith("virtfn")]) == 7
    code, out, err = cli("vf", "enable", pf, "3")
    assert code == 64 and "7 already enabled (write 0 first, or use --reset)" in err, err
    assert read(f"/sys/bus/pci/devices/{pf}/sriov_numvfs").strip() == "7"
    code, out, err = cli("vf", "enable", pf, "8")
    assert code == 64 and "sriov_totalvfs is 7" in err
    code, out, err = cli("vf", "enable", pf, "3", "--reset")
    assert code == 0, err
    assert read(f"/sys/bus/pci/devices/{pf}/sriov_numvfs").strip() == "3"
    code, out, err = cli("vf", "enable", pf, "7", "--reset", "--dry-run")
    assert code == 0 and "sriov_numvfs <- '0'" in out and "sriov_numvfs <- '7'" in out
    assert read(f"/sys/bus/pci/devices/{pf}/sriov_numvfs").strip() == "3"


def settle_names(pf: str) -> None:
    """After a driver reload the guest's udev renames ethN to the predictable name: wait until the names of
    the PF and its VFs have not changed for a second."""
    def names() -> list[str]:
        out = []
        for d in [pf] + [os.path.basename(os.readlink(f"/sys/bus/pci/devices/{pf}/{v}"))
                         for v in os.listdir(f"/sys/bus/pci/devices/{pf}") if v.startswith("virtfn")]:
            net = f"/sys/bus/pci/devices/{d}/net"
            out += os.listdir(net) if os.path.isdir(net) else []
        return sorted(out)
    last, since = names(), time.monotonic()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and time.monotonic() - since < 1.0:
        time.sleep(0.1)
        cur = names()
        if cur != last:
            last, since = cur, time.monotonic()


def link_up(ifname: str) -> None:
    """igb refuses VF rates while the PF has no link (EINVAL): bring it up and wait for carrier."""
    sh("ip", "link", "set", "dev", ifname, "up")
    wait_for(lambda: read(f"/sys/class/net/{ifname}/carrier").strip() == "1", f"{ifname} carrier")


def test_rate_needs_the_pf_link_up(host, pfs) -> None:  # type: ignore[no-untyped-def]
    (pf,) = pfs
    set_numvfs(host, pf, 7)
    ifname = pf_netdev(pf)
    sh("ip", "link", "set", "dev", ifname, "down")
    code, _, err = cli("vf", "set", f"{ifname}#5", "--max-rate", "100", "--trust", "on")
    assert code == 3 and "rate min 0 max 100 Mbit/s: refused by igb: EINVAL" in err, err
    assert "trust on" in ip_vfs(ifname)[5]


def test_set_attributes_verified_by_ip(host, pfs) -> None:  # type: ignore[no-untyped-def]
    (pf,) = pfs
    set_numvfs(host, pf, 7)
    ifname = pf_netdev(pf)
    link_up(ifname)
    code, out, err = cli("vf", "set", f"{ifname}#0", "--mac", "52:54:00:6d:90:02", "--vlan", "42", "--qos", "3",
                         "--spoofchk", "off", "--trust", "on", "--max-rate", "100")
    assert code == 0, err
    code, out, err = cli("vf", "set", f"{ifname}#1-3,5", "--vlan", "7", "--spoofchk", "off")
    assert code == 0, err
    lines = ip_vfs(ifname)
    assert "link/ether 52:54:00:6d:90:02" in lines[0] and "vlan 42, qos 3" in lines[0], lines[0]
    assert "spoof checking off" in lines[0] and "trust on" in lines[0]
    assert "max_tx_rate 100Mbps" in lines[0] or "tx rate 100 (Mbps)" in lines[0], lines[0]
    for i in (1, 2, 3, 5):
        assert "vlan 7" in lines[i] and "spoof checking off" in lines[i], lines[i]
    assert "vlan" not in lines[4] and "spoof checking on" in lines[4], lines[4]
    # sriovctl's own reader agrees
    code, out, _ = cli("--json", "show", f"{ifname}#0")
    nl = json.loads(out)["device"]["netlink"]
    assert (nl["mac"], nl["vlan"], nl["qos"], nl["spoofchk"], nl["trust"], nl["max_tx_rate"]) == \
        ("52:54:00:6d:90:02", 42, 3, False, True, 100)


def test_link_state_unsupported_on_igb_others_applied(host, pfs) -> None:  # type: ignore[no-untyped-def]
    (pf,) = pfs
    set_numvfs(host, pf, 7)
    ifname = pf_netdev(pf)
    code, _, err = cli("vf", "set", f"{ifname}#6", "--vlan", "99", "--state", "disable", "--trust", "on")
    assert code == 3, (code, err)
    assert "link state disable: refused by igb: EOPNOTSUPP" in err, err
    line = ip_vfs(ifname)[6]
    assert "vlan 99" in line and "trust on" in line, line  # applied although link state was refused


def test_invalid_values_change_nothing(host, pfs) -> None:  # type: ignore[no-untyped-def]
    (pf,) = pfs
    set_numvfs(host, pf, 7)
    ifname = pf_netdev(pf)
    before = sh("ip", "-d", "link", "show", "dev", ifname)
    for args, needle in ((["--vlan", "5000"], "must be 0..4095"), (["--qos", "3"], "need --vlan"),
                         (["--mac", "01:00:5e:00:00:01"], "multicast"), (["--min-rate", "9", "--max-rate", "5"], ">")):
        code, _, err = cli("vf", "set", f"{ifname}#2", *args)
        assert code == 64 and needle in err, err
    assert sh("ip", "-d", "link", "show", "dev", ifname) == before


def test_bind_vfio_and_back(host, pfs) -> None:  # type: ignore[no-untyped-def]
    from sriovctl.inventory import read_inventory
    from sriovctl.pci.address import PciAddress

    (pf,) = pfs
    set_numvfs(host, pf, 7)
    ifname = pf_netdev(pf)
    vf = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{pf}/virtfn1"))
    group = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{vf}/iommu_group"))
    code, out, err = cli("vf", "bind", f"{ifname}#1", "vfio-pci")
    assert code == 0, err
    assert os.path.basename(os.readlink(f"/sys/bus/pci/devices/{vf}/driver")) == "vfio-pci"
    assert os.path.exists(f"/dev/vfio/{group}") and f"/dev/vfio/{group}" in out
    code, out, err = cli("vf", "bind", f"{ifname}#1", "host")
    assert code == 0, err
    assert os.path.basename(os.readlink(f"/sys/bus/pci/devices/{vf}/driver")) == "igbvf"
    d = read_inventory(host).devices[PciAddress.parse(vf)]
    assert d.driver == "igbvf" and d.driver_override is None and len(d.netdevs) == 1


def open_files(pid: int) -> set[str]:
    """What PID holds open now. An fd listed can be closed before its readlink (CI run of stop 15: the
    interpreter starting up closed fd 3 between the two), so a vanished fd is skipped, not an error."""
    files = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            files.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            continue
    return files


def test_held_vfio_group_blocks_disable_until_force(host, pfs) -> None:  # type: ignore[no-untyped-def]
    (pf,) = pfs
    set_numvfs(host, pf, 7)
    ifname = pf_netdev(pf)
    vf = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{pf}/virtfn2"))
    group = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{vf}/iommu_group"))
    assert cli("vf", "bind", f"{ifname}#2", "vfio-pci")[0] == 0
    holder = subprocess.Popen(["python3", "-c", f"import time; f = open('/dev/vfio/{group}', 'rb'); time.sleep(120)"])
    try:
        wait_for(lambda: f"/dev/vfio/{group}" in open_files(holder.pid), "the holder to open the group")
        code, _, err = cli("vf", "disable", pf)
        assert code == 77 and f"process {holder.pid} (python3) holds /dev/vfio/{group} open" in err, err
        assert read(f"/sys/bus/pci/devices/{pf}/sriov_numvfs").strip() == "7"
        code, _, err = cli("vf", "enable", pf, "3", "--reset")
        assert code == 77, err
    finally:
        holder.kill()
        holder.wait()
    code, _, err = cli("vf", "disable", pf, "--force")
    assert code == 0, err
    assert read(f"/sys/bus/pci/devices/{pf}/sriov_numvfs").strip() == "0"


def test_legacy_max_vfs_path(host, pfs) -> None:  # type: ignore[no-untyped-def]
    (pf,) = pfs
    set_numvfs(host, pf, 0)
    code, out, err = cli("vf", "enable", pf, "2", "--module-param", "max_vfs")
    if code == 77:  # the PF was brought up by an earlier test and now carries the guest's default route
        assert "reloading igb: refused, in use" in err and "carries the default route" in err, err
        code, out, err = cli("vf", "enable", pf, "2", "--module-param", "max_vfs", "--force")
    assert code == 0, err
    assert "deprecated" in out
    # one modprobe.d file for sriovctl's module options, the one `persist install` writes (issue 19)
    assert read("/etc/modprobe.d/sriovctl.conf").splitlines()[-1] == "options igb max_vfs=2"
    assert not os.path.exists("/etc/modprobe.d/igb.conf")
    wait_for(lambda: os.path.isdir(f"/sys/bus/pci/devices/{pf}/net"), "PF netdev after reload")
    settle_names(pf)
    assert read(f"/sys/bus/pci/devices/{pf}/sriov_numvfs").strip() == "2"
    os.remove("/etc/modprobe.d/sriovctl.conf")
    sh("modprobe", "-r", "igb")
    sh("modprobe", "igb")
    wait_for(lambda: os.path.isdir(f"/sys/bus/pci/devices/{pf}/net"), "PF netdev")
    settle_names(pf)


def test_benchmark_mac_vlan_on_7_vfs(host, pfs) -> None:  # type: ignore[no-untyped-def]
    """sriovctl's library call (one RTM_SETLINK + one RTM_GETLINK) vs one `ip link set` process per VF,
    read-back included on both sides."""
    from sriovctl.inventory import read_inventory
    from sriovctl.ops import vfattrs as vf

    (pf,) = pfs
    set_numvfs(host, pf, 7)
    settle_names(pf)
    ifname = pf_netdev(pf)
    inv = read_inventory(host)
    p = next(x for x in inv.pfs)
    vfs = inv.vfs_of(p)

    def ours(vlan: int) -> tuple[float, int]:
        plan = [(d, vf.VfSettings(mac=f"52:54:00:00:01:{d.vf_index:02x}", vlan=vlan)) for d in vfs]
        t0 = time.perf_counter()
        res = vf.set_vfs(host, inv, plan)  # read-back and verification included
        t = time.perf_counter() - t0
        assert not res.refused and len(res.applied) == 14
        return t, res.extra["netlink_requests"]

    def ip_way(vlan: int) -> float:
        t0 = time.perf_counter()
        for d in vfs:
            p = subprocess.run(["ip", "link", "set", "dev", ifname, "vf", str(d.vf_index), "mac",
                                f"52:54:00:00:02:{d.vf_index:02x}", "vlan", str(vlan)], capture_output=True, text=True)
            assert p.returncode == 0, (ifname, d.vf_index, p.stderr)
        subprocess.run(["ip", "-d", "link", "show", "dev", ifname], check=True, capture_output=True)
        return time.perf_counter() - t0

    ours(1)  # warm up: imports, socket
    runs_ours = sorted(ours(10 + i)[0] for i in range(5))
    reqs = ours(20)[1]
    runs_ip = sorted(ip_way(30 + i) for i in range(5))
    med_ours, med_ip = runs_ours[2], runs_ip[2]
    result = {"sriovctl_s": med_ours, "ip_processes_s": med_ip, "ratio": med_ip / med_ours, "netlink_requests": reqs}
    (LAB_OUT / "bench-vf-set.json").write_text(json.dumps(result, indent=1))
    # where the library call's time goes, for docs/PERFORMANCE.md (the netlink requests vs our own Python)
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    ours(40)
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("cumtime").print_stats(25)
    (LAB_OUT / "bench-vf-set-profile.txt").write_text(text.getvalue())
    assert reqs == 2


def _kernel_view(pf: str) -> tuple[int, int, int, int]:
    """sriov_numvfs, virtfn links, VF directories whose physfn points back, VFs in `ip link` — read directly."""
    d = f"/sys/bus/pci/devices/{pf}"
    real = os.path.realpath(d)
    numvfs = int(read(f"{d}/sriov_numvfs"))
    virtfn = len([x for x in os.listdir(d) if x.startswith("virtfn")])
    parent = os.path.dirname(real)
    back = len([x for x in os.listdir(parent) if os.path.islink(f"{parent}/{x}/physfn")
                and os.path.realpath(f"{parent}/{x}/physfn") == real])
    return numvfs, virtfn, back, len(ip_vfs(pf_netdev(pf)))


_WRITER = """
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
print("ready", flush=True)
t0 = time.monotonic()
os.write(fd, b"7")
print(f"wrote {time.monotonic() - t0:.3f}", flush=True)
"""


def test_a_killed_writer_leaves_the_count_from_before_or_after(host, pfs) -> None:  # type: ignore[no-untyped-def]
    """What the simulator's crash behaviour copies (host/sim.py journaled): the kernel finishes an sriov_numvfs
    write whatever happens to the writer (sriov_numvfs_store holds the device lock through pci_enable_sriov;
    a SIGKILL is acted on when the write returns). The writer is killed at moments spread over its write."""
    import signal
    import sys

    (pf,) = pfs
    path = f"/sys/bus/pci/devices/{pf}/sriov_numvfs"
    transcript = []

    def start() -> subprocess.Popen[str]:
        p = subprocess.Popen([sys.executable, "-c", _WRITER, path], stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        return p

    set_numvfs(host, pf, 0)
    p = start()  # one write in full: how long the kernel takes (creating and probing 7 VFs under TCG)
    took = float(p.communicate(timeout=300)[0].split()[-1])
    transcript.append(f"uninterrupted write of 7: {took:.3f} s")
    seen = set()
    for frac in (0.1, 0.5, 0.9):
        set_numvfs(host, pf, 0)
        p = start()
        time.sleep(frac * took)
        t_kill = time.monotonic()
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate(timeout=300)
        died = time.monotonic() - t_kill
        # Let probing finish (a slow TCG guest: a generous deadline), then the count must be whole.
        wait_for(lambda: _kernel_view(pf)[0] in (0, 7) and len(set(_kernel_view(pf))) == 1,
                 f"{pf}: a whole VF count after the kill at {frac:.0%} of the write", timeout=120)
        view = _kernel_view(pf)
        seen.add(view[0])
        transcript.append(f"SIGKILL at {frac:.0%} of the write: exit {p.returncode}, the writer died {died:.3f} s "
                          f"after the signal{' (the write had returned)' if 'wrote' in out else ''}; numvfs, virtfn "
                          f"links, VF dirs whose physfn points back, ip link VFs = {view}")
        code, _, err = cli("status")
        assert code == 0, err
    set_numvfs(host, pf, 0)
    (LAB_OUT / "numvfs-kill.txt").write_text("".join(line + "\n" for line in transcript))
    print("\n".join(transcript))
    assert 7 in seen  # the kernel completed a write whose writer was killed midway


def test_eswitch_on_a_driver_without_devlink_is_a_clear_refusal(host, pfs) -> None:  # type: ignore[no-untyped-def]
    (pf,) = pfs
    code, out, err = cli("pf", "eswitch", pf, "switchdev")
    assert code == 69 and f"no devlink instance pci/{pf}: its driver igb does not register one" in err, out + err
    code, out, err = cli("pf", "eswitch", pf, "switchdev", "--dry-run")
    assert code == 69, out + err  # the dry run reads the mode too: it cannot plan what it cannot read
