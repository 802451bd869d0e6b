"""sriovctl: the SR-IOV control plane of a Linux virtualization host."""

__version__ = "0.1.0"
