"""The package's module-level imports form no cycle (static reading of every module; imports
inside functions and under TYPE_CHECKING are deliberate late imports and do not count)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def module_imports(src: Path) -> dict[str, set[str]]:
    """{module: the package's modules it imports at module level} for every module under `src`."""
    modules = {".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): p for p in src.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            for n in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
                if isinstance(n, ast.Import):
                    found |= {a.name for a in n.names}
                elif isinstance(n, ast.ImportFrom):
                    base = ".".join([*package.split(".")[: len(package.split(".")) - n.level + 1], *([n.module] if n.module else [])]) \
                        if n.level else n.module
                    submodules = {f"{base}.{a.name}" for a in n.names} & modules.keys()  # `from pkg import submodule`
                    found |= submodules | ({base} if len(submodules) < len(n.names) else set())
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycle_of(graph: dict[str, set[str]]) -> list[str]:
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as err:
        return err.args[1]
    return []


def test_eqexp_has_no_import_cycle():
    graph = module_imports(SRC)
    assert len(graph) > 100 and {"eqexp.analyses", "eqexp.tracking"} <= graph["eqexp.runner"]  # the graph was read
    assert cycle_of(graph) == []


@pytest.mark.parametrize("late", [False, True])
def test_a_cycle_is_found_and_a_late_import_is_not_one(tmp_path, late):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import g\n\ndef f():\n    return g()\n")
    body = "def g():\n    from pkg.a import f\n    return f\n" if late else "from pkg import a\n\ndef g():\n    return a\n"
    (package / "b.py").write_text(body)
    assert bool(cycle_of(module_imports(tmp_path))) is not late
