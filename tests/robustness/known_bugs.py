"""Failures this suite found in other areas and that were still open at its last run.

Each entry marks exactly one case ``xfail(strict=True)``: the suite stays green while the bug is
visible, and the day the bug is fixed the case passes, strict xfail fails, and the entry must go.
Keys are pytest ids (``test_function[param-id]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

_IRI_IN_PATH = (
    "catalogue/store/records.py OxigraphStore._objects: a record id with a space or NUL becomes an "
    "invalid IRI and pyoxigraph raises ValueError -> 500; catalogue/api.py should refuse ids outside "
    "a safe character set with 404/400 before touching the store"
)
_HUGE_PAGE = (
    "catalogue/api.py read_catalog: page has no upper bound, (page-1)*page_size overflows SQLite "
    "INTEGER in catalogue/index.py SearchIndex.changes -> OverflowError -> 500; bound page (le=...)"
)
_DEEP_JSON_DATA = (
    "connector/dataplane/routes.py _json_body catches JSONDecodeError/UnicodeDecodeError only; "
    "json.loads of 10,000 nested levels raises RecursionError -> 500; catch RecursionError and "
    "check depth like connector/dsp_http/_body.py"
)
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
KNOWN_BUGS: dict[str, str] = {
    "test_a_deeply_nested_sparql_query_is_refused_and_the_node_survives": (
        "catalogue/store/sparql.py SparqlRunner.run hands any query under MAX_SPARQL_QUERY_CHARS to "
        "pyoxigraph, whose parser recurses per nested group in native code: 10,000 nested '{' "
        "overflow the worker thread's stack and the node process dies with SIGSEGV (unauthenticated "
        "denial of service). Refuse queries nested past a limit (count bracket depth before parsing, "
        "e.g. MAX_SPARQL_NESTING = 64) with 400 naming 'query'"
    ),
}
for _route in (
    "DELETE /catalogue/datasets/{record_id}",
    "GET /catalogue/datasets/{name}",
    "GET /catalogue/datasets/{record_id}/versions",
    "GET /catalogue/datasets/{record_id}/proof",
):
    for _value in ("nul", "sql-with-spaces"):
        KNOWN_BUGS[f"test_hostile_path_values_are_a_clean_4xx[{_route}-{_value}]"] = _IRI_IN_PATH
KNOWN_BUGS["test_bad_query_parameters_are_refused_naming_the_parameter[GET /catalogue/catalog-page-huge]"] = (
    _HUGE_PAGE
)
KNOWN_BUGS["test_bad_catalog_paging_is_refused_naming_the_parameter[page-huge]"] = _HUGE_PAGE
for _route in (
    "POST /data/{transfer_id}/query",
    "POST /data/{transfer_id}/obligations/{obligation_id}/fulfil",
):
    for _case in ("deep-array", "deep-object"):
        KNOWN_BUGS[f"test_malformed_bodies_are_a_clean_4xx[{_route}-{_case}]"] = _DEEP_JSON_DATA

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
    mark: Callable[[T], T] = pytest.mark.xfail(strict=True, reason=reason)
    return mark
