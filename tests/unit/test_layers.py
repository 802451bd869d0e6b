"""The layering, read from the code's syntax trees (every import counts, those inside functions too):
- cli/ calls the operations layer: it imports only ops/, model, errors, the attribute table, the untrusted-text
  helpers and its own modules;
- no sysfs path or sysfs attribute name is spelled outside host/sysfs.py and the simulator (host/sim/);
- no import cycle; model.py imports nothing from host/; inuse.py nothing from virt/;
- packages (and the top-level modules, each a unit of its own) stand in layers: a unit imports only units of
  its own layer or below, and no cycle runs between units — state/ is data below the engine in ops/, persist/
  depends on state data, never on ops/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sriovctl
from sriovctl.host import sysfs

SRC = Path(sriovctl.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(SRC.rglob("*.py")):
        parts = list(p.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The sriovctl modules ``name`` imports (``from sriovctl.x import y`` counts y when y is a module)."""
    tree = ast.parse(MODULES[name].read_text())
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("sriovctl")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("sriovctl"):
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if sub in MODULES else base)
    return {m for m in out if m in MODULES and m != name}


GRAPH = {m: _imports(m) for m in MODULES}

CLI_MAY_IMPORT = ("sriovctl.ops", "sriovctl.model", "sriovctl.errors", "sriovctl.attrs", "sriovctl.untrusted",
                  "sriovctl.cli")


def test_the_cli_imports_only_the_operations_layer_and_the_model() -> None:
    cli = [m for m in MODULES if m.startswith("sriovctl.cli")]
    assert len(cli) >= 4
    bad = {m: sorted(i for i in GRAPH[m] if i != "sriovctl" and not i.startswith(CLI_MAY_IMPORT)) for m in cli}
    assert not {m: b for m, b in bad.items() if b}


def test_model_imports_nothing_from_host_and_inuse_nothing_from_virt() -> None:
    assert not [i for i in GRAPH["sriovctl.model"] if i.startswith("sriovctl.host")]
    assert not [i for i in GRAPH["sriovctl.inuse"] if i.startswith("sriovctl.virt")]


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append([*stack[stack.index(n):], n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return cycles


def test_no_import_cycle() -> None:
    assert not find_cycles(GRAPH)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def _sysfs_literals(path: Path) -> list[str]:
    """String constants (f-string parts too, docstrings not) that are sysfs paths or attribute names."""
    tree = ast.parse(path.read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in docstrings:
            continue
        s = node.value
        last = s.rstrip("/").rsplit("/", 1)[-1]
        elsewhere = s.lstrip("/").startswith(("boot/", "etc/", "proc/", "dev/", "run/", "usr/", "var/"))
        if s.startswith(("sys/", "/sys/")) or s in sysfs.UNMISTAKABLE or s.startswith(sysfs.VIRTFN_PREFIX) or \
                ("/" in s and last in sysfs.ATTRIBUTE_NAMES and not elsewhere):
            found.append(f"{path.name}:{node.lineno}: {s!r}")
    return found


def test_no_sysfs_path_outside_the_sysfs_module_and_the_simulator() -> None:
    allowed = (SRC / "host" / "sysfs.py", SRC / "host" / "sim")
    found = [hit for p in sorted(SRC.rglob("*.py")) if not any(p == a or a in p.parents for a in allowed)
             for hit in _sysfs_literals(p)]
    assert not found


@pytest.mark.parametrize("text", ['"sys/bus/pci/devices"', 'f"{dev}/sriov_numvfs"', '"sriov_totalvfs"',
                                  'f"/sys/class/net/{n}"', '"virtfn3"'])
def test_the_literal_finder_finds_sysfs_paths(text: str, tmp_path: Path) -> None:
    p = tmp_path / "probe.py"
    p.write_text(f'"""A docstring naming sys/bus/pci/devices is prose."""\nx = {text}\ny = "the driver"\n')
    assert len(_sysfs_literals(p)) == 1


def test_cli_line_counts_are_reported() -> None:
    """The CLI is parsing and rendering in small modules: main.py had 923 lines with the logic inside."""
    lines = {p.name: len(p.read_text().splitlines()) for p in sorted((SRC / "cli").glob("*.py"))}
    print(f"cli/ line counts: {lines}")
    # documents.py declares types only (one TypedDict per JSON object, the schemas' source): no logic to split
    assert lines["main.py"] <= 200 and max(n for name, n in lines.items() if name != "documents.py") <= 500
    assert lines["documents.py"] <= 800


# The layers, lowest first: a unit may import units of its own layer or a lower one (never a higher one)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "leftovers", "sriovctl"),
    ("safefs", "untrusted", "attrs", "drivers", "pci", "metrics"),
    ("model", "archive"),
    ("host",),
    ("host.sim", "netpfs", "inventory", "vfstats", "inuse", "nodedev", "doctor", "resolve", "snapshot", "virt"),
    ("state",),
    ("persist",),
    ("ops",),
    ("cli", "__main__"),
)
RANK = {u: i for i, layer in enumerate(LAYERS) for u in layer}


def unit_of(module: str) -> str:
    """host.sim for the simulator, the package for a module inside one, the module's own name at the top."""
    parts = module.split(".")[1:]
    if not parts:
        return "sriovctl"
    if parts[:2] == ["host", "sim"]:
        return "host.sim"
    return parts[0]


def unit_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m, deps in graph.items():
        out.setdefault(unit_of(m), set()).update(unit_of(d) for d in deps if unit_of(d) != unit_of(m))
    return out


UNITS = unit_graph(GRAPH)


def test_every_unit_has_a_layer() -> None:
    assert not sorted(set(UNITS) - set(RANK))


def test_no_unit_imports_a_higher_layer() -> None:
    up = {u: sorted(d for d in deps if RANK[d] > RANK[u]) for u, deps in UNITS.items()}
    assert not {u: d for u, d in up.items() if d}


def test_no_cycle_between_packages() -> None:
    assert not find_cycles(UNITS)


def test_the_package_check_sees_an_upward_import() -> None:
    """state/ reaching into ops/ (as state/apply.py once did) is one the checks above refuse."""
    graph = {**GRAPH, "sriovctl.state.desired": GRAPH["sriovctl.state.desired"] | {"sriovctl.ops.plan"}}
    units = unit_graph(graph)
    assert "ops" in units["state"] and RANK["ops"] > RANK["state"]
    assert find_cycles(units)  # ops imports state: the knot ops <-> state is back


def test_the_state_package_is_data() -> None:
    """The desired-state engine (planner, apply, journal) lives in ops/desired; state/ holds no Host."""
    assert not [m for m in MODULES if m.startswith("sriovctl.state.") and
                any(d.startswith(("sriovctl.host", "sriovctl.ops")) for d in GRAPH[m])]
