"""Persistence of the desired state: the boot unit, the udev rule and modprobe.d rendered from it
(render.py), installed and removed atomically with a manifest (install.py)."""
