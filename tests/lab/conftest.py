"""Fixtures for tests that run inside the lab guest (as root, against the real /sys and netlink)."""

from labguest import host, pfs  # noqa: F401 - fixtures
