"""Imports only point down: the layer table of ``focalcli``, checked on the source with ``ast``.

Every ``import`` and ``from ... import`` in every module counts, at module level and inside functions (a lazy import
is still a dependency), relative or absolute. A *unit* is a subpackage (``focalcli.io``) or a top-level module
(``focalcli.predict``). A unit may import units of its own tier or of lower tiers, never of a higher one, and the
graph of units must have no cycle (so same-tier imports cannot loop). In an *isolated* tier no unit imports another.

Tiers, top to bottom (the same table is in the ``focalcli`` package docstring)::

    6  __main__                                      ``python -m focalcli``: calls the CLI
    5  cli, bench                   (isolated)       commands and benchmarks: may import anything, nothing imports them
    4  predict, train, evaluation, align,            tasks: one per command family
       synthesize, info
    3  models, focus, data, synth, weights, learned  networks, the classical method, dataset sources, the renderer,
                                                     weight files, the model-or-classic dispatcher
    2  optics, io                                    pure physics; files, images, stack folders, atomic writes
    1  checks, config, runtime                       input checks, strict config builder, devices and seeds
    0  errors, focalcli (the package root)           the error tree; ``__version__`` and the lazy public names

Why these places: ``synth/`` is the renderer library, which ``data``'s on-the-fly synthetic sources call (one
implementation for ``focal synth`` and training, DESIGN.md), so it sits beside ``data``; the ``focal synth`` task
is ``synthesize``. ``weights`` reads and writes model files and ``learned`` picks and runs a model or the classical
method for ``predict``, the CLI and benchmarks: both are model plumbing, under the tasks. ``checks``, ``config`` and
``runtime`` import only ``errors`` and serve every layer above. The package root holds ``__version__`` (imported by
``weights`` and ``predict``) and resolves its public names lazily (PEP 562), so its own imports are type-checking
only; the checker verifies that and then gives the root no outgoing edges.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE = "focalcli"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

# (tier name, units, isolated); index = height
TIERS: list[tuple[str, frozenset[str], bool]] = [
    ("base", frozenset({"errors", PACKAGE}), False),
    ("utilities", frozenset({"checks", "config", "runtime"}), False),
    ("physics and files", frozenset({"optics", "io"}), False),
    ("components", frozenset({"models", "focus", "data", "synth", "weights", "learned"}), False),
    ("tasks", frozenset({"predict", "train", "evaluation", "align", "synthesize", "info"}), False),
    ("entry points", frozenset({"cli", "bench"}), True),
    ("python -m", frozenset({"__main__"}), True),
]


# --- the checker (pure functions over a graph, unit-tested below on a fake one) -----------------------------------


def tier_of(tiers: list[tuple[str, frozenset[str], bool]]) -> dict[str, int]:
    """Unit -> tier index; a unit in two tiers is a table error."""
    out: dict[str, int] = {}
    for i, (_name, units, _isolated) in enumerate(tiers):
        for u in units:
            assert u not in out, f"{u} is in two tiers"
            out[u] = i
    return out


def layer_violations(edges: Mapping[str, Iterable[str]], tiers: list[tuple[str, frozenset[str], bool]]) -> list[str]:
    """Imports that go up a tier, into an isolated tier, or from/to a unit missing from the table."""
    level = tier_of(tiers)
    bad = []
    for src in sorted(edges):
        for dst in sorted(set(edges[src])):
            if src == dst:
                continue
            if src not in level or dst not in level:
                missing = src if src not in level else dst
                bad.append(f"{src} -> {dst}: {missing} is in no tier; add it to the table")
            elif level[dst] > level[src]:
                up = f"from tier {tiers[level[src]][0]!r} to {tiers[level[dst]][0]!r}"
                bad.append(f"{src} -> {dst}: imports up, {up}")
            elif level[dst] == level[src] and tiers[level[src]][2]:
                bad.append(f"{src} -> {dst}: units of tier {tiers[level[src]][0]!r} do not import each other")
    return bad


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle of the directed graph as [a, b, ..., a], or None (self-loops ignored)."""
    graph = {k: sorted(set(v) - {k}) for k, v in edges.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


# --- reading the package ------------------------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported focalcli module, line, under ``if TYPE_CHECKING``) for every import statement anywhere in a module.

    ``from pkg import x`` counts as an import of ``pkg.x`` when that is a module, else of ``pkg``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if _is_type_checking(node):
            typing_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
        for t in targets:
            if t == PACKAGE or t.startswith(PACKAGE + "."):
                found.append((t, node.lineno, id(node) in typing_only))
    return found


def unit_of(module: str) -> str:
    """``focalcli.io.stack`` -> ``io``; ``focalcli`` -> ``focalcli``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def package_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], str], dict[str, set[str]]]:
    """(unit graph, one example import per unit edge as 'module:line', module graph)."""
    modules = _modules()
    units: dict[str, set[str]] = {unit_of(m): set() for m in modules}
    where: dict[tuple[str, str], str] = {}
    module_edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, line, typing_only in imports_of(name, path, modules):
            if name == PACKAGE:
                assert typing_only, f"{PACKAGE}/__init__.py:{line} imports {target} at run time; keep the root lazy"
                continue
            module_edges[name].add(target)
            a, b = unit_of(name), unit_of(target)
            if a != b:
                units[a].add(b)
                where.setdefault((a, b), f"{path.relative_to(ROOT.parent)}:{line}")
    return units, where, module_edges


# --- tests of the checker itself -------------------------------------------------------------------------------------

_FAKE_TIERS = [
    ("low", frozenset({"errors"}), False),
    ("mid", frozenset({"io", "optics"}), False),
    ("top", frozenset({"cli", "bench"}), True),
]


def test_checker_accepts_a_downward_graph():
    edges = {"cli": {"io", "errors"}, "bench": {"optics"}, "optics": {"io"}, "io": {"errors"}, "errors": set()}
    assert layer_violations(edges, _FAKE_TIERS) == []
    assert find_cycle(edges) is None


@pytest.mark.parametrize(
    ("edges", "fragment"),
    [
        ({"io": {"cli"}}, "io -> cli: imports up"),
        ({"errors": {"optics"}}, "errors -> optics: imports up"),
        ({"cli": {"bench"}}, "cli -> bench: units of tier 'top' do not import each other"),
        ({"io": {"ghost"}}, "ghost is in no tier"),
    ],
)
def test_checker_reports_each_kind_of_violation(edges, fragment):
    bad = layer_violations(edges, _FAKE_TIERS)
    assert len(bad) == 1 and fragment in bad[0], bad


def test_checker_finds_a_same_tier_cycle():
    edges = {"io": {"optics", "errors"}, "optics": {"io"}, "errors": set()}
    assert layer_violations(edges, _FAKE_TIERS) == []  # same tier: allowed by the table ...
    cycle = find_cycle(edges)  # ... but not in a loop
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"io", "optics"}


def test_reader_sees_lazy_relative_and_from_imports(tmp_path, monkeypatch):
    pkg = tmp_path / PACKAGE
    (pkg / "io").mkdir(parents=True)
    for f in ("__init__.py", "errors.py", "io/__init__.py", "io/stack.py"):
        (pkg / f).write_text("")
    (pkg / "io" / "depth.py").write_text(
        "from . import stack\nfrom ..errors import InputError\n"
        "def f():\n    import focalcli.cli.app\n    from focalcli import errors\n"
    )
    monkeypatch.setattr(f"{__name__}.ROOT", pkg)
    modules = _modules() | {"focalcli.cli.app": pkg / "x.py"}
    got = {t for t, _line, _tc in imports_of("focalcli.io.depth", pkg / "io" / "depth.py", modules)}
    assert got == {"focalcli.io.stack", "focalcli.errors", "focalcli.cli.app"}


# --- the real package ----------------------------------------------------------------------------------------------


def test_every_import_points_down_the_layer_table():
    units, where, _ = package_graph()
    bad = layer_violations(units, TIERS)
    assert not bad, "\n".join(f"{b}  ({where.get(tuple(b.split(':')[0].split(' -> ')), '?')})" for b in bad)


def test_no_import_cycle_between_units():
    units, where, _ = package_graph()
    cycle = find_cycle(units)
    assert cycle is None, " -> ".join(cycle) + "  first edge at " + where[(cycle[0], cycle[1])]


def test_no_import_cycle_between_modules():
    """Also module by module (a lazy import inside a function still makes a loop a reader has to untangle)."""
    _, _, modules = package_graph()
    cycle = find_cycle(modules)
    assert cycle is None, " -> ".join(cycle)


def test_the_table_names_every_unit():
    units, _, _ = package_graph()
    assert set(units) <= set(tier_of(TIERS)), sorted(set(units) - set(tier_of(TIERS)))
