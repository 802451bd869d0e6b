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
from sriovctl.host.sim import SimHost
from sriovctl.host.spec import HostSpec, parse_spec


def sim_dir() -> Path:
    env = os.environ.get("SRIOVCTL_SIM_DIR")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "sriovctl" / "sim"


def builtin_names() -> list[str]:
    cat = resources.files("sriovctl.host") / "catalog"
    return sorted(p.name.removesuffix(".yaml") for p in cat.iterdir() if p.name.endswith(".yaml"))


def builtin_text(name: str) -> str:
    return (resources.files("sriovctl.host") / "catalog" / f"{name}.yaml").read_text(encoding="utf-8")


def load_spec_text(text: str, source: str) -> HostSpec:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise DataError(f"{source}: not valid YAML: {str(e).splitlines()[0]}") from None
    return parse_spec(data, source)


def _check_name(name: str) -> str:
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise UsageError(f"simulated host {name!r}: not a valid name", hint="letters, digits, - and _")
    return name


def build_sim(name: str, text: str, source: str) -> Path:
    from sriovctl.host.simbuild import build

    spec = load_spec_text(text, source)
    if spec.name != name:
        spec = HostSpec(**{**spec.__dict__, "name": name})
    root = sim_dir() / name
    tmp = sim_dir() / f".{name}.building"
    build(spec, str(tmp), text)
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    return root


def open_sim(name: str) -> SimHost:
    """The simulated host ``name``, built from the catalog on first use; its state persists."""
    _check_name(name)
    root = sim_dir() / name
    if not (root / "sim.json").exists():
        if name not in builtin_names():
            raise NoInputError(f"simulated host {name!r}: no such host",
                               hint=f"built-in: {', '.join(builtin_names())}; or `sriovctl sim create`")
        build_sim(name, builtin_text(name), f"catalog/{name}.yaml")
    return SimHost(root=str(root), label=f"simulated host {name}")


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
        raise NoInputError(f"simulated host {name!r}: no such host")
    return build_sim(name, spec_file.read_text(encoding="utf-8"), str(spec_file))


def create_sim(name: str, spec_path: Path) -> Path:
    _check_name(name)
    try:
        text = spec_path.read_text(encoding="utf-8")
    except OSError as e:
        raise NoInputError(f"{spec_path}: {e.strerror}") from None
    return build_sim(name, text, str(spec_path))
