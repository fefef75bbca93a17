"""Failures this suite found in other areas and that were still open at its last run.

Each entry marks exactly one case ``xfail(strict=True)``: the suite stays green while the bug is
visible, and the day the bug is fixed the case passes, strict xfail fails, and the entry must go.
Keys are pytest ids (``test_function[param-id]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest

T = TypeVar("T")

KNOWN_BUGS: dict[str, str] = {}


def case(test: str, *values: Any, id: str) -> Any:
    """``pytest.param`` carrying the strict xfail of a known bug, if this case has one."""
    reason = KNOWN_BUGS.get(f"{test}[{id}]")
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(*values, id=id, marks=marks)


def known(test: str) -> Callable[[T], T]:
    """The strict xfail of a known bug for a test without parameters (or nothing, once fixed)."""
    reason = KNOWN_BUGS.get(test)
    if reason is None:
        return lambda function: function
    mark = pytest.mark.xfail(strict=True, reason=reason)

    def marked(function: T) -> T:
        return cast(T, mark(function))

    return marked
