"""The package's structure: imports point down the data path only, and modules stay small.

Layers, bottom first (STYLE.md): the configuration and the registries; io, segment, learn and
streams; the evaluation of adaptation (metrics); the run loop (runtime); what sits on the run
loop (the Prometheus export, the in-memory test helpers); the benchmarks; the CLI. Every import,
at the top of a module or inside a function, goes to the same layer or a lower one.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "streammeta"

#: module prefix -> layer (the longest prefix wins); higher layers may import lower ones
LAYERS = {
    "streammeta": 0,
    "streammeta.errors": 0,
    "streammeta.registry": 0,
    "streammeta.config": 0,
    "streammeta.logs": 0,
    "streammeta.io": 1,
    "streammeta.segment": 1,
    "streammeta.learn": 1,
    "streammeta.streams": 1,
    "streammeta.metrics": 2,
    "streammeta.runtime": 3,
    "streammeta.metrics.export": 4,
    "streammeta.testing": 4,
    "streammeta.bench": 5,
    "streammeta.cli": 6,
}
#: the longest a module may be, and the modules allowed past it, with the reason
MAX_LINES = 300
LONGER: dict[str, str] = {}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str | None = None) -> set[str]:
    """Every streammeta module ``path`` (module ``module``) imports, at any depth of its code."""
    module = module or _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            names = [name, *(f"{name}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] == "streammeta" and _exists(n))
    return found


def _exists(module: str) -> bool:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _layer(module: str) -> tuple[str, int]:
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return prefix, LAYERS[prefix]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    assert MODULES
    for path in MODULES:
        _layer(_module(path))  # raises (max of nothing) if none


def test_imports_point_down() -> None:
    upward = []
    for path in MODULES:
        module = _module(path)
        _, layer = _layer(module)
        for target in sorted(_imports(path)):
            prefix, target_layer = _layer(target)
            if target_layer > layer:
                upward.append(
                    f"{module} (layer {layer}) imports {target} ({prefix}, {target_layer})"
                )
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_packages_form_no_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in MODULES:
        here, _ = _layer(_module(path))
        graph[here].update(p for p, _ in map(_layer, _imports(path)) if p != here)
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        pytest.fail(f"packages import each other: {' -> '.join(exc.args[1])}")


def test_modules_stay_small() -> None:
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in MODULES
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    unexplained = {k: v for k, v in long.items() if k not in LONGER}
    assert not unexplained, f"modules over {MAX_LINES} lines: {unexplained}"
    assert set(LONGER) <= set(long), "LONGER lists modules that are no longer long"


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    """A lazy import against the layers is caught like one at the top of a module."""
    path = tmp_path / "late.py"
    path.write_text("def f():\n    from streammeta.bench import demo\n    from . import base\n")
    found = _imports(path, "streammeta.io.late")
    assert found == {
        "streammeta.bench",
        "streammeta.bench.demo",
        "streammeta.io",
        "streammeta.io.base",
    }
    assert _layer("streammeta.bench.demo")[1] > _layer("streammeta.io.late")[1]
