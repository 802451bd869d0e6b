"""Where simulated hosts live between invocations, and the catalog of built-in ones.

``$SRIOVCTL_SIM_DIR`` (default ``$XDG_STATE_HOME/sriovctl/sim``, i.e. ``~/.local/state/sriovctl/sim``)
holds one directory per simulated host: its /sys-shaped tree, ``spec.yaml`` and ``sim.json``.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

from sriovctl.errors import DataError, NoInputError, UsageError
from sriovctl.host.sim.host import SimHost
from sriovctl.host.sim.spec import HOST_NAME, HostSpec, parse_spec
from sriovctl.leftovers import owner_gone
from sriovctl.untrusted import YAML_MAX_BYTES, load_yaml, read_regular, shown


def sim_dir() -> Path:
    env = os.environ.get("SRIOVCTL_SIM_DIR")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "sriovctl" / "sim"


def builtin_names() -> list[str]:
    cat = resources.files("sriovctl.host.sim") / "catalog_specs"
    return sorted(p.name.removesuffix(".yaml") for p in cat.iterdir() if p.name.endswith(".yaml"))


def builtin_text(name: str) -> str:
    return (resources.files("sriovctl.host.sim") / "catalog_specs" / f"{name}.yaml").read_text(encoding="utf-8")


def load_spec_text(text: str, source: str) -> HostSpec:
    return parse_spec(load_yaml(text, source), source)


def _check_name(name: str) -> str:
    if not HOST_NAME.fullmatch(name):
        raise UsageError(f"simulated host {shown(name)}: not a valid name", hint="letters, digits, - and _ (at most 64)")
    return name


def _remove_stale_builds(base: Path) -> None:
    """Build directories of runs that were killed (``.NAME.building.PID`` whose PID is gone)."""
    for p in base.glob(".*.building.*"):
        if owner_gone(p.name.rsplit(".", 1)[-1]):
            shutil.rmtree(p, ignore_errors=True)


def build_sim(name: str, text: str, source: str) -> Path:
    """Build the host in a private directory, then swap it in under the simulated kernel's lock."""
    from sriovctl.host.sim.build import build
    from sriovctl.host.sim.tree import SimTree

    spec = load_spec_text(text, source)
    if spec.name != name:
        spec = HostSpec(**{**spec.__dict__, "name": name})
    base = sim_dir()
    base.mkdir(parents=True, exist_ok=True, mode=0o755)
    _remove_stale_builds(base)
    root = base / name
    tmp = base / f".{name}.building.{os.getpid()}"
    try:
        build(spec, str(tmp), text)
        with SimTree(str(root)).locked():
            if root.exists():
                old = base / f".{name}.old.{os.getpid()}"
                root.rename(old)
                tmp.rename(root)
                shutil.rmtree(old)
            else:
                tmp.rename(root)
    except ValueError as e:  # a spec that passed validation but cannot be laid out (a bug, or a limit we missed)
        raise DataError(f"{source}: cannot build the simulated host: {e}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def open_sim(name: str) -> SimHost:
    """The simulated host ``name``, built from the catalog on first use; its state persists. An sriov_numvfs
    change that a killed process left half made is completed here, before anything reads the tree."""
    from sriovctl.host.sim.tree import SimTree

    _check_name(name)
    root = sim_dir() / name
    if not (root / "sim.json").exists():
        if name not in builtin_names():
            raise NoInputError(f"simulated host {shown(name)}: no such host",
                               hint=f"built-in: {', '.join(builtin_names())}; or `sriovctl sim create`")
        with SimTree(str(root)).locked():  # several processes opening it first: one builds, the others wait
            if not (root / "sim.json").exists():
                build_sim(name, builtin_text(name), f"catalog/{name}.yaml")
    host = SimHost(root=str(root), label=f"simulated host {name}")
    with host.tree.locked():
        pass
    return host


def list_sims() -> list[tuple[str, str, bool]]:
    """(name, origin, built) for built-in and created hosts."""
    out: dict[str, tuple[str, str, bool]] = {}
    for n in builtin_names():
        out[n] = (n, "built-in", (sim_dir() / n / "sim.json").exists())
    if sim_dir().is_dir():
        for p in sorted(sim_dir().iterdir()):
            if p.name.startswith(".") or not (p / "sim.json").exists():
                continue
            if p.name not in out:
                out[p.name] = (p.name, "created", True)
    return sorted(out.values())


def reset_sim(name: str) -> Path:
    _check_name(name)
    root = sim_dir() / name
    if name in builtin_names():
        return build_sim(name, builtin_text(name), f"catalog/{name}.yaml")
    spec_file = root / "spec.yaml"
    if not spec_file.exists():
        raise NoInputError(f"simulated host {shown(name)}: no such host")
    return build_sim(name, _spec_text(str(spec_file)), str(spec_file))


def _spec_text(path: str) -> str:
    raw = read_regular(path, YAML_MAX_BYTES, f"spec {shown(path)}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"spec {shown(path)}: not UTF-8 text (byte {e.start}): a binary file?",
                        hint="a spec is a YAML file (see docs/SIMULATED-HOSTS.md)") from None


def create_sim(name: str, spec_path: Path) -> Path:
    _check_name(name)
    return build_sim(name, _spec_text(str(spec_path)), str(spec_path))
