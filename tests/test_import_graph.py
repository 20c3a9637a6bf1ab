"""The package's imports form no cycle, counting those inside functions (a late import still
ties two modules together: it only hides the tie until the function runs); imports under
TYPE_CHECKING never run and do not count."""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _imports(tree: ast.AST):
    """Every import statement of a module, at any depth, but those under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in _imports(ast.Module(body=[child], type_ignores=[])))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def module_imports(src: Path) -> dict[str, set[str]]:
    """{module: the package's modules it imports anywhere} for every module under `src`."""
    modules = {".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): p for p in src.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for n in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(n, ast.Import):
                found |= {a.name for a in n.names}
            else:
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
    assert "eqexp.runner" in graph["eqexp.sweep.job"]  # imports inside functions are read
    assert cycle_of(graph) == []


def test_the_sweep_package_pulls_in_only_what_a_sweep_directory_says():
    assert module_imports(SRC)["eqexp.sweep"] == {"eqexp.sweep.records"}
    code = "import sys, eqexp.sweep; print(sorted(m for m in sys.modules if m.startswith('eqexp.sweep')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['eqexp.sweep', 'eqexp.sweep.records']"


def test_a_cycle_through_a_late_import_is_found_and_one_under_type_checking_is_not(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import g\n\ndef f():\n    return g()\n")
    (package / "b.py").write_text("def g():\n    from pkg.a import f\n    return f\n")
    assert cycle_of(module_imports(tmp_path))
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n\ndef g():\n    return 1\n")
    assert not cycle_of(module_imports(tmp_path))
