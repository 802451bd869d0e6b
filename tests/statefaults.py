"""Invalid state files with one fault each, and where the fault is (its path as the error must name it).

Faults in every field a state file has: each PF key (with each selector kind), each VF key, VF ids, unknown
keys, wrong types. A seeded generator, so a failure names a reproducible case (``faults(n, seed)``)."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

BAD_PF: dict[str, list[object]] = {
    "name": ["a/b", "", "x" * 16, 5, "eth 0", "..", "a\nb", ["eth0"]],
    "pci-address": ["0000:zz:00.0", 7, "00:00.0.0", "0000:00:20.0", ""],
    "vendor": [-1, 0x10000, "x", 1.5, "0xzz"],
    "device": [-1, 0x10000, "y", True],
    "index": [-1, 256, "a", 2.5],
    "total-vfs": [-1, 65536, "8", 1.5, True, [8]],
    "create": ["echo", 1, "sysfs; reboot", True],
    "drivers-autoprobe": ["yes", 1, "true"],
    "externally-managed": ["no", 0, "false"],
    "vfs": ["x", 5, {"id": 0}, True],
}
BAD_VF: dict[str, list[object]] = {
    "id": [-1, "x", "3-1", 1.5, True, 8, "0-9", "1,,2", [1]],
    "mac-address": ["zz", "01:00:00:00:00:00", 5, True, "02:00:00:00:00", "ff:ff:ff:ff:ff:ff"],
    "vlan-id": [-1, 4096, "10", 1.5, True],
    "qos": [8, -1, "x", 2.0],
    "vlan-proto": ["802.1x", 5, True],
    "spoof-check": ["on", 1, "NoneType"],
    "trust": ["off", 0, "yes"],
    "min-tx-rate": [-5, "fast", 2 ** 32],
    "max-tx-rate": [-1, "x", 2 ** 32, 1.0],
    "link-state": ["up", 3, True],
    "driver": ["a b", "../../etc", 7, "x" * 65, "vfio pci", ""],
}
UNKNOWN = ["total-vf", "mac", "vlan", "VLAN-ID", "spoofchk", "numvfs"]


def base() -> dict[str, Any]:
    """A valid state on the simulated igb-82576: two PFs (by name, by IDs and index; a pci-address fault replaces
    the second's selector), VFs by id and range, every key used somewhere."""
    return {"pfs": [
        {"name": "enp11s0f0", "total-vfs": 7, "create": "sysfs", "drivers-autoprobe": True, "vfs": [
            {"id": 0, "mac-address": "02:00:00:00:00:01", "vlan-id": 10, "qos": 1, "vlan-proto": "802.1q"},
            {"id": "1-3", "spoof-check": False, "trust": True, "link-state": "auto"},
            {"id": 4, "min-tx-rate": 0, "max-tx-rate": 100, "driver": "vfio-pci"}]},
        {"vendor": "0x8086", "device": "0x10c9", "index": 1, "externally-managed": True, "vfs": [
            {"id": "0-1", "vlan-id": 5}, {"id": 2, "driver": "host"}]},
    ]}


def faults(n: int, seed: int = 13) -> Iterator[tuple[dict[str, Any], str, object]]:
    """n (document, path of the fault, bad value)."""
    rng = random.Random(seed)
    pf_keys, vf_keys = sorted(BAD_PF), sorted(BAD_VF)
    for _ in range(n):
        doc = copy.deepcopy(base())
        kind = rng.random()
        if kind < 0.35:  # a PF key
            key = rng.choice(pf_keys)
            bad = rng.choice(BAD_PF[key])
            i = {"name": 0, "pci-address": 1, "vendor": 1, "device": 1, "index": 1}.get(key, rng.randrange(2))
            pf = doc["pfs"][i]
            if key == "pci-address":
                for k in ("vendor", "device", "index"):
                    pf.pop(k)
            if key in ("total-vfs", "create") and pf.get("externally-managed"):
                pf.pop("externally-managed")
            pf[key] = bad
            yield doc, f"pfs[{i}].{key}", bad
        elif kind < 0.92:  # a VF key
            key = rng.choice(vf_keys)
            bad = rng.choice(BAD_VF[key])
            i = rng.randrange(2)
            vfs = doc["pfs"][i]["vfs"]
            j = rng.randrange(len(vfs))
            vf = vfs[j]
            if key in ("qos", "vlan-proto") and "vlan-id" not in vf:
                vf["vlan-id"] = 1
            if key == "mac-address" and isinstance(vf["id"], str):
                vf["id"] = 5 if i == 0 else 6  # one VF (a MAC for a range is a fault of its own), a free id
            if key == "id" and bad in (8, "0-9") and i != 0:
                bad = {8: 70000, "0-9": "0-70000"}[bad]  # type: ignore[index]  # only PF 0 has total-vfs (7)
            vf[key] = bad
            yield doc, f"pfs[{i}].vfs[{j}].{key}", bad
        else:  # an unknown key, in a PF or a VF
            key = rng.choice(UNKNOWN)
            i = rng.randrange(2)
            if rng.random() < 0.5:
                doc["pfs"][i][key] = 1
                yield doc, f"pfs[{i}].{key}", key
            else:
                doc["pfs"][i]["vfs"][0][key] = 1
                yield doc, f"pfs[{i}].vfs[0].{key}", key
