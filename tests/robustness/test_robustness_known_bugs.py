"""Every recorded known bug names a case that exists, so none can silently stop marking anything."""

from __future__ import annotations

import pytest

from tests.robustness.known_bugs import KNOWN_BUGS


def test_every_known_bug_names_a_collected_case(request: pytest.FixtureRequest) -> None:
    collected = {item.name for item in request.session.items}
    modules = {item.module.__name__ for item in request.session.items if hasattr(item, "module")}
    whole_folder = {"tests.robustness.test_robustness_sweep", "tests.robustness.test_robustness_catalogue"}
    if not whole_folder <= modules:
        pytest.skip("only meaningful when the whole robustness folder is collected")
    unknown = sorted(set(KNOWN_BUGS) - collected)
    assert not unknown, f"known bugs naming no collected case: {unknown}"
