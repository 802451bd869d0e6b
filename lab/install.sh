#!/usr/bin/env bash
# Install the real-kernel lab: QEMU >= 8 (bookworm-backports), Debian's kernel, pciutils,
# libvirt (Debian 12's 9.0) and virtme-ng in the project's venv. Idempotent.
# The backports suite is derived from the machine's own Debian source entry: no host name is written here.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${SRIOVCTL_VENV:-$here/.venv}
export DEBIAN_FRONTEND=noninteractive
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=0
missing=""
need() { need_apt=1; missing="$missing $1"; }
qemu_ok() {
    command -v qemu-system-x86_64 >/dev/null || return 1
    local v; v=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -1)
    [ "${v:-0}" -ge 8 ]
}
qemu_ok || need qemu
ls "${SRIOVCTL_BOOT_DIR:-/boot}"/vmlinuz-* >/dev/null 2>&1 || need kernel
for tool in lspci virsh libvirtd busybox xmllint pkg-config gcc; do
    command -v "$tool" >/dev/null || need "$tool"
done
# libvirt's daemon and pkg-config without its development files (a common virtualization host): pip cannot
# build libvirt-python ("Package libvirt was not found in the pkg-config search path") — probe the files too
if command -v pkg-config >/dev/null; then
    pkg-config --exists libvirt 2>/dev/null || need libvirt.pc
fi
if [ "${1:-}" = "--probe" ]; then  # what would be installed, and why (tests/unit/test_lab_install_probe.py)
    echo "apt=$need_apt missing:${missing:- none}"
    exit 0
fi

if [ "$need_apt" = 1 ]; then
    bp=/etc/apt/sources.list.d/sriovctl-backports.sources
    if [ ! -f "$bp" ]; then
        src=/etc/apt/sources.list.d/debian.sources
        # The stanza whose Suites line lists plain "bookworm", with that line replaced.
        awk -v RS= -v ORS='\n\n' '/\nSuites:[^\n]*(^|[ \t])bookworm([ \t]|$)/ || /\nSuites:[ \t]*bookworm([ \t\n]|$)/' "$src" \
            | sed -e 's/^Suites:.*/Suites: bookworm-backports/' | awk 'NF || p {print} {p=NF}' > /tmp/sriovctl-bp.$$
        grep -q '^Suites: bookworm-backports' /tmp/sriovctl-bp.$$ || { echo "lab/install: no bookworm stanza in $src" >&2; exit 69; }
        as_root install -m 0644 /tmp/sriovctl-bp.$$ "$bp"; rm -f /tmp/sriovctl-bp.$$
    fi
    # Services cannot start here (no systemd): keep package scripts quiet.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod +x /usr/sbin/policy-rc.d
    fi
    as_root apt-get update -q || true   # third-party entries may be unreachable; Debian's must work
    as_root apt-get install -y -q -t bookworm-backports --no-install-recommends qemu-system-x86 ipxe-qemu qemu-system-data seabios
    as_root apt-get install -y -q --no-install-recommends linux-image-amd64 pciutils iproute2 kmod \
        libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-daemon busybox-static libxml2-utils libvirt-dev pkg-config gcc || true
    # The libvirt packages' post-install may fail without systemd: finish configuring what can be.
    as_root dpkg --configure -a || true
fi
qemu_ok || { echo "lab/install: QEMU >= 8 not installed" >&2; exit 69; }
ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo "lab/install: no kernel in /boot" >&2; exit 69; }
for tool in lspci busybox virsh libvirtd virt-xml-validate xmllint pkg-config gcc; do
    command -v "$tool" >/dev/null || { echo "lab/install: $tool missing after install" >&2; exit 69; }
done
pkg-config --exists libvirt || { echo "lab/install: libvirt-dev missing after install (pkg-config libvirt)" >&2; exit 69; }

if ! "$venv/bin/python" -c "import libvirt" 2>/dev/null; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q libvirt-python
fi
if [ ! -x "$venv/bin/vng" ]; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'virtme-ng==1.42' || "$venv/bin/pip" install -q virtme-ng
fi
# netdevsim (the kernel's test NIC: SR-IOV VFs with ndo_set_vf_*, devlink, switchdev) for the 64-1024-VF lab.
# Debian builds its kernel without it: build it for the lab kernel (the newest in /boot, the one the lab boots,
# not the machine's running one) from Debian's linux-source package of the same version and that kernel's
# headers, once; the module is cached per kernel version.
kv=$(ls /boot/vmlinuz-* | sed 's|/boot/vmlinuz-||' | sort -V | tail -1)
nds_dir=/var/cache/sriovctl-lab/$kv
if [ ! -f "$nds_dir/netdevsim.ko" ]; then
    image_version=$(dpkg-query -W -f '${Version}' "linux-image-$kv" 2>/dev/null || true)
    [ -n "$image_version" ] || { echo "lab/install: no package owns the lab kernel $kv" >&2; exit 69; }
    series=$(echo "$kv" | cut -d. -f1,2)
    if [ ! -d "/usr/src/linux-headers-$kv" ] || [ ! -f "/usr/src/linux-source-$series.tar.xz" ]; then
        as_root apt-get install -y -q --no-install-recommends "linux-headers-$kv" \
            "linux-source-$series=$image_version" make gcc xz-utils
    fi
    build=$(mktemp -d)
    tar -xf "/usr/src/linux-source-$series.tar.xz" -C "$build" --strip-components=1 \
        "linux-source-$series/drivers/net/netdevsim"
    make -s -C "/usr/src/linux-headers-$kv" M="$build/drivers/net/netdevsim" CONFIG_NETDEVSIM=m modules \
        2>&1 | grep -v "Skipping BTF generation" || true
    [ -f "$build/drivers/net/netdevsim/netdevsim.ko" ] || { echo "lab/install: netdevsim did not build" >&2; exit 69; }
    as_root install -d "$nds_dir"
    as_root install -m 0644 "$build/drivers/net/netdevsim/netdevsim.ko" "$nds_dir/netdevsim.ko"
    rm -rf "$build"
fi
echo "lab installed: $(qemu-system-x86_64 --version | head -1); kernel $(ls /boot/vmlinuz-* | head -1); $("$venv/bin/vng" --version 2>&1 | head -1); netdevsim $nds_dir/netdevsim.ko"
