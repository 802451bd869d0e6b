"""The simulated kernel: a /sys-shaped tree on disk with the kernel's reactions to writes (sriov_numvfs,
bind/unbind, driver_override, drivers_probe) and a netlink VF view. Layers, no cycle:
spec → tree → configs → kernel (reactions) → build (spec → tree) → host (SimHost, SimNetlink) → catalog."""
