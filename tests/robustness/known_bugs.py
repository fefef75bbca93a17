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

_NOT_A_URL_CATALOG = (
    "connector/management/router.py CatalogRequestIn.counterparty_address is any string: a non-HTTP "
    "address is tried and answered 502 (a 5xx for bad input), and a malformed one ('http://[::1', port "
    "99999) raises ValueError in _did_for_address (urlsplit().port) -> 500; validate it as an http(s) "
    "URL in the model and answer 400 naming counterparty_address"
)
_NOT_A_URL_NEGOTIATION = (
    "connector/management/router.py NegotiationIn.counterparty_address is any string: "
    "ConnectorService.start_negotiation stores a negotiation (201) that can only fail in the "
    "background; validate it as an http(s) URL in the model and answer 400 naming counterparty_address"
)
KNOWN_BUGS: dict[str, str] = {}
for _path in ("/catalog/request", "/negotiations"):
    for _name in ("file-url", "no-scheme", "scheme-only", "gopher", "broken-ipv6", "port-out-of-range"):
        KNOWN_BUGS[f"test_counterparty_addresses_that_are_not_http_urls_are_refused[{_path}-{_name}]"] = (
            _NOT_A_URL_CATALOG if _path == "/catalog/request" else _NOT_A_URL_NEGOTIATION
        )


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
