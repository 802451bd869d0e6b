#!/usr/bin/env bash
# Install what the exporter's tests run for real: Debian's prometheus (with promtool) and
# prometheus-node-exporter. Idempotent; the packages' services are not started (the tests start their own,
# on 127.0.0.1 with temporary configs). Uses the machine's configured Debian sources only.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=""
for tool in prometheus promtool prometheus-node-exporter; do
    command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    # no service may start from a package script here (no systemd; and the tests want none running)
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod +x /usr/sbin/policy-rc.d
    fi
    as_root apt-get install -y -q --no-install-recommends prometheus prometheus-node-exporter \
        || { as_root apt-get update -q || true; as_root apt-get install -y -q --no-install-recommends prometheus prometheus-node-exporter; }
fi
for tool in prometheus promtool prometheus-node-exporter; do
    command -v "$tool" >/dev/null || { echo "monitoring/install: $tool missing after install" >&2; exit 69; }
done
echo "monitoring installed: $(prometheus --version 2>&1 | head -1); $(prometheus-node-exporter --version 2>&1 | head -1)"
