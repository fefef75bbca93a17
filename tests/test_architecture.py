"""The shape of docs/architecture.md, checked on every import statement.

Three rules: packages import only in the agreed direction; no import cycles between modules (at
import time, and - apart from the few listed below - not through imports deferred into
functions either), nor between the subpackages of a library package; and a private module or
name (``_x``) is imported only from inside the package that holds it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# package -> the packages of ours it may import
ALLOWED_IMPORTS: dict[str, set[str]] = {
    "vocab": set(),
    "policies": {"vocab"},
    "connector": {"policies", "vocab"},
    "catalogue": {"connector", "policies", "vocab"},
}
OUR_PACKAGES = {*ALLOWED_IMPORTS, "sluis"}

# Cycles closed only by an import inside a function, known and owned elsewhere; each is a
# seam to cut (a new one fails the test). Keys are the sorted modules of the cycle.
KNOWN_DEFERRED_CYCLES: set[tuple[str, ...]] = set()


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the module imported (a package's __init__ when a name comes from it)
    names: tuple[str, ...]  # the names taken from it (empty for ``import x``)
    deferred: bool  # inside a function: runs when called, not at import time


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in sorted(OUR_PACKAGES):
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _known(name: str) -> str | None:
    modules = _modules()
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _walk(nodes: list[ast.stmt], deferred: bool) -> Iterator[tuple[ast.stmt, bool]]:
    for node in nodes:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue  # typing only: never executed
        yield node, deferred
        inner = deferred or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for field in ("body", "orelse", "finalbody", "handlers"):
            children = getattr(node, field, None)
            if isinstance(children, list):
                yield from _walk([c for c in children if isinstance(c, ast.stmt | ast.excepthandler)], inner)


@cache
def _imports(module: str) -> tuple[Import, ...]:
    path = _modules()[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node, deferred in _walk(tree.body, False):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name)
                if target:
                    found.append(Import(module, target, (), deferred))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in _modules():
                    found.append(Import(module, submodule, (), deferred))
                elif (target := _known(source)) is not None:
                    found.append(Import(module, target, (alias.name,), deferred))
    return tuple(item for item in found if item.target != module)


def _cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Strongly connected components with more than one node (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(tuple(sorted(component)))
    return found


def _graph(*, deferred: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in _modules()}
    for module in _modules():
        for item in _imports(module):
            if deferred or not item.deferred:
                graph[module].add(item.target)
    return graph


@pytest.mark.parametrize("package", sorted(ALLOWED_IMPORTS))
def test_packages_import_only_in_the_agreed_direction(package: str) -> None:
    wrong: list[str] = []
    for module in sorted(m for m in _modules() if m.split(".")[0] == package):
        for item in _imports(module):
            imported = item.target.split(".")[0]
            if imported != package and imported not in ALLOWED_IMPORTS[package]:
                wrong.append(f"{module} imports {item.target}")
    assert not wrong, "imports against the package direction:\n" + "\n".join(wrong)


def test_no_module_import_cycles() -> None:
    cycles = _cycles(_graph(deferred=False))
    assert not cycles, "modules importing each other at import time:\n" + "\n".join(map(str, cycles))


def test_no_new_cycles_through_deferred_imports() -> None:
    cycles = set(_cycles(_graph(deferred=True)))
    new = sorted(cycles - KNOWN_DEFERRED_CYCLES)
    assert not new, "cycles closed by an import inside a function:\n" + "\n".join(map(str, new))
    gone = sorted(KNOWN_DEFERRED_CYCLES - cycles)
    assert not gone, f"cut, so remove from KNOWN_DEFERRED_CYCLES: {gone}"


def test_no_cycles_between_subpackages_of_a_library_package() -> None:
    def unit(module: str) -> str:
        return ".".join(module.split(".")[:2])

    graph: dict[str, set[str]] = {}
    for module, targets in _graph(deferred=True).items():
        if module.split(".")[0] not in ALLOWED_IMPORTS:
            continue  # sluis is the composition root: its CLI and commands know each other
        graph.setdefault(unit(module), set()).update(unit(t) for t in targets if unit(t) != unit(module))
    cycles = [cycle for cycle in _cycles(graph) if cycle not in KNOWN_DEFERRED_CYCLES]
    assert not cycles, "subpackages depending on each other:\n" + "\n".join(map(str, cycles))


def _private_owner(item: Import) -> str | None:
    """The package a private module or name belongs to, when ``item`` imports one."""
    parts = item.target.split(".")
    for position, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:position])
    if any(name.startswith("_") and not name.startswith("__") for name in item.names):
        path = _modules()[item.target]
        return item.target if path.name == "__init__.py" else item.target.rpartition(".")[0]
    return None


def test_private_modules_and_names_stay_inside_their_package() -> None:
    wrong: list[str] = []
    for module in sorted(_modules()):
        for item in _imports(module):
            owner = _private_owner(item)
            if owner is not None and module != owner and not module.startswith(owner + "."):
                shown = f"{item.target}.{','.join(item.names)}" if item.names else item.target
                wrong.append(f"{module} imports {shown}, private to {owner}")
    assert not wrong, "private modules or names imported from outside their package:\n" + "\n".join(wrong)


def test_the_checks_see_what_they_check() -> None:
    # the rules above would pass vacuously on a parser that found nothing
    assert len(_modules()) > 100
    assert Import("connector.app", "connector.http", ("StrictJsonBodies",), False) in _imports(
        "connector.app"
    )
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b", "c")]
    sample = Import("sluis.x", "connector.identity._time", (), False)
    assert _private_owner(sample) == "connector.identity"


def test_no_source_file_names_a_machine_path() -> None:
    # The folder around this checkout and the home folder are this machine's, not the project's.
    markers = {f"{REPO_ROOT.parent}/", f"{Path.home()}/"}
    offenders = []
    for path in REPO_ROOT.rglob("*.py"):
        if ".venv" in path.parts or path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8")
        if any(marker in text for marker in markers):
            offenders.append(str(path.relative_to(REPO_ROOT)))
    assert not offenders, offenders
