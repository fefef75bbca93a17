"""The package direction of docs/architecture.md, checked on every import statement."""

from __future__ import annotations

import ast
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


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & OUR_PACKAGES


@pytest.mark.parametrize("package", sorted(ALLOWED_IMPORTS))
def test_packages_import_only_in_the_agreed_direction(package: str) -> None:
    wrong: list[str] = []
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        for imported in sorted(_imported_top_levels(path) - ALLOWED_IMPORTS[package] - {package}):
            wrong.append(f"{path.relative_to(REPO_ROOT)} imports {imported}")
    assert not wrong, "imports against the package direction:\n" + "\n".join(wrong)


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
