"""Every operation of every app, attacked with the same hostile inputs over real HTTP.

The operations come from the apps' OpenAPI documents (``routes.all_operations``), so a new
route is attacked as soon as it exists. Each case asserts the project's rule for bad input: a
4xx, never a 5xx; a problem body (a DSP error message on ``/dsp``) with no internals; and, for
writes, state exactly as it was before the request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.robustness.hostile import (
    HUGE_BODY_BYTES,
    MALFORMED_JSON,
    Rejection,
    Reply,
    assert_no_leak,
    assert_rejected,
    http,
    huge_json_string_body,
    stream_request,
)
from tests.robustness.known_bugs import case
from tests.robustness.routes import CATALOGUE, Operation, all_operations, operations
from tests.robustness.targets import Targets
from tests.robustness.worlds import CatalogueWorld, ConnectorWorld


@pytest.fixture(scope="module")
def targets(catalogue: CatalogueWorld, connectors: ConnectorWorld) -> Iterator[Targets]:
    """Every request of this module is refused, so both worlds end as they began, as clients see them."""
    before = catalogue.http_snapshot(), connectors.http_snapshot()
    yield Targets(catalogue, connectors)
    assert (catalogue.http_snapshot(), connectors.http_snapshot()) == before, "the sweep changed state"


def _ids(op: Operation) -> str:
    return op.id


def _unchanged(targets: Targets, op: Operation, attempt: Callable[[], Reply]) -> Reply:
    """Run ``attempt``; when it was a refused write, the app's state must be exactly as before."""
    if not op.changes_state:
        return attempt()
    before = targets.snapshot(op)
    reply = attempt()
    if 400 <= reply.status < 500:
        after = targets.snapshot(op)
        assert after == before, f"{op.id}: a refused request changed state ({reply.describe()})"
    return reply


def _rejection(op: Operation, **options: object) -> Rejection:
    return Rejection(dsp=op.is_dsp, **options)  # type: ignore[arg-type]


def test_every_app_publishes_its_operations() -> None:
    """The sweep covers what the apps say they serve (and the apps say something)."""
    ops = all_operations()
    apps = {op.app for op in ops}
    assert apps == {CATALOGUE, "connector"}
    paths = {op.path for op in ops}
    for expected in (
        "/catalogue/datasets",
        "/catalogue/search",
        "/management/assets",
        "/dsp/catalog/request",
        "/data/{transfer_id}/query",
    ):
        assert expected in paths, f"{expected} is missing from the OpenAPI documents"


# ---- unknown and hostile path ids ----------------------------------------------------------------
@pytest.mark.parametrize("op", operations(path_params=True), ids=_ids)
def test_unknown_ids_are_a_clean_4xx(targets: Targets, op: Operation) -> None:
    content = b"{}" if op.reads_body else None
    content_type = targets.json_type(op) if op.reads_body else None
    reply = _unchanged(
        targets,
        op,
        lambda: targets.send(op, ids=targets.unknown_ids(op), content=content, content_type=content_type),
    )
    assert_rejected(reply, _rejection(op), f"{op.id} with unknown ids")


HOSTILE_PATH_VALUES = {
    "long": "a" * 8_000,
    "traversal": "../../../../etc/passwd",
    "nul": "x\x00y",
    "sql-with-spaces": "' OR '1'='1'; DROP TABLE assets; --",
    "unicode": "☃-💥-\u202e",
    "percent-escapes": "%25%00%2e%2e",
}


def _hostile_path_cases() -> Iterator[object]:
    for op in operations(path_params=True):
        for name, value in HOSTILE_PATH_VALUES.items():
            yield case("test_hostile_path_values_are_a_clean_4xx", op, value, id=f"{op.id}-{name}")


@pytest.mark.parametrize(("op", "value"), list(_hostile_path_cases()))
def test_hostile_path_values_are_a_clean_4xx(targets: Targets, op: Operation, value: str) -> None:
    ids = dict.fromkeys(op.path_params, value)
    if "command" in ids:
        ids["command"] = "terminate"
    content = b"{}" if op.reads_body else None
    content_type = targets.json_type(op) if op.reads_body else None
    reply = _unchanged(
        targets, op, lambda: targets.send(op, ids=ids, content=content, content_type=content_type)
    )
    # A value that changes the route (an encoded "/") may end in routing's 404 problem, not in the route.
    assert_rejected(
        reply, Rejection(dsp=None if op.is_dsp else False), f"{op.id} with path value {value[:40]!r}"
    )


# ---- credentials ---------------------------------------------------------------------------------
# Tried on every operation that needs a credential.
BAD_CREDENTIALS: dict[str, dict[str, str]] = {
    "absent": {},
    "wrong-bearer": {"Authorization": "Bearer not-a-valid-token"},
    "unsigned-jwt": {"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."},
}
# Tried on the first operation of each kind of credential (one code path per kind).
ODD_CREDENTIALS: dict[str, dict[str, str]] = {
    "basic-scheme": {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="},
    "bare-scheme": {"Authorization": "Bearer"},
    "huge-token": {"Authorization": "Bearer " + "x" * 8_000},
    "dpop-without-proof": {"Authorization": "DPoP eyJhbGciOiJFZERTQSJ9.e30.c2ln"},
}


def _credential_cases() -> Iterator[object]:
    kinds_seen: set[str] = set()
    for op in operations(auth=True):
        cases = dict(BAD_CREDENTIALS)
        if op.auth not in kinds_seen:
            kinds_seen.add(op.auth)
            cases.update(ODD_CREDENTIALS)
        for name, headers in cases.items():
            yield pytest.param(op, headers, id=f"{op.id}-{name}")


@pytest.mark.parametrize(("op", "headers"), list(_credential_cases()))
def test_bad_credentials_are_refused_with_401(
    targets: Targets, op: Operation, headers: dict[str, str]
) -> None:
    content = targets.plausible_body(op) if op.reads_body else None
    content_type = targets.json_type(op) if op.reads_body else None
    reply = _unchanged(
        targets,
        op,
        lambda: targets.send(
            op, content=content, content_type=content_type, headers=headers, authenticated=False
        ),
    )
    assert_rejected(reply, _rejection(op, statuses={401, 403}), f"{op.id} with {headers or 'no credential'}")


# ---- malformed bodies ----------------------------------------------------------------------------
def _body_cases() -> Iterator[object]:
    for op in operations(body=True):
        for name, content in MALFORMED_JSON:
            yield case("test_malformed_bodies_are_a_clean_4xx", op, content, None, id=f"{op.id}-{name}")
        yield pytest.param(op, b'<?xml version="1.0"?><a/>', "application/xml", id=f"{op.id}-xml-body")
        yield pytest.param(op, b'{"id": "x"}', "text/plain", id=f"{op.id}-text-plain")
        yield pytest.param(op, b"\x89PNG\r\n\x1a\n\x00\x00", "image/png", id=f"{op.id}-binary")


@pytest.mark.parametrize(("op", "content", "content_type"), list(_body_cases()))
def test_malformed_bodies_are_a_clean_4xx(
    targets: Targets, op: Operation, content: bytes, content_type: str | None
) -> None:
    media_type = content_type or targets.json_type(op)
    reply = _unchanged(targets, op, lambda: targets.send(op, content=content, content_type=media_type))
    assert_rejected(reply, _rejection(op), f"{op.id} with body {content[:40]!r} as {media_type}")


# ---- huge bodies ---------------------------------------------------------------------------------
def _huge_cases() -> Iterator[object]:
    for op in operations(body=True):
        for framing in ("content-length", "chunked"):
            yield case(
                "test_bodies_over_ten_megabytes_are_refused_with_413", op, framing, id=f"{op.id}-{framing}"
            )


@pytest.mark.parametrize(("op", "framing"), list(_huge_cases()))
def test_bodies_over_ten_megabytes_are_refused_with_413(
    targets: Targets, op: Operation, framing: str
) -> None:
    url = targets.url(op)
    headers = {**targets.auth(op, op.method, url), "Content-Type": targets.json_type(op)}
    parts, total = huge_json_string_body("id", HUGE_BODY_BYTES)

    def attempt() -> Reply:
        return stream_request(url, op.method, headers, parts, total if framing == "content-length" else None)

    reply = _unchanged(targets, op, attempt)
    what = f"{op.id} with a {HUGE_BODY_BYTES}-byte body ({framing})"
    body = assert_rejected(reply, _rejection(op), what)
    if reply.status != 413:
        # Another 4xx is fine only if the server answered before taking the whole body in.
        assert reply.sent_bytes < total, f"{what}: read the whole body, then answered {reply.describe()}"
    assert body


# ---- query parameters ----------------------------------------------------------------------------
BAD_INTEGERS = {"negative": "-1", "zero": "0", "huge": "9" * 30, "not-a-number": "abc", "fraction": "1.5"}


def _query_cases() -> Iterator[object]:
    for op in operations(query=True):
        for name, kind in op.query_params:
            if kind in ("integer", "integer>=0"):
                for label, value in BAD_INTEGERS.items():
                    if kind == "integer>=0" and label == "zero":
                        continue
                    yield case(
                        "test_bad_query_parameters_are_refused_naming_the_parameter",
                        op,
                        name,
                        value,
                        True,
                        id=f"{op.id}-{name}-{label}",
                    )
            else:
                yield pytest.param(op, name, "q" * 20_000, False, id=f"{op.id}-{name}-very-long")
                yield pytest.param(op, name, "\x00\x01", False, id=f"{op.id}-{name}-control-chars")


@pytest.mark.parametrize(("op", "name", "value", "must_refuse"), list(_query_cases()))
def test_bad_query_parameters_are_refused_naming_the_parameter(
    targets: Targets, op: Operation, name: str, value: str, must_refuse: bool
) -> None:
    from urllib.parse import urlencode

    reply = targets.send(op, query=urlencode({name: value}))
    what = f"{op.id}?{name}={value[:30]}"
    if must_refuse:
        assert_rejected(reply, _rejection(op, fields={name}), what)
    else:
        assert_no_leak(reply, what)
        if reply.status >= 400:
            assert_rejected(reply, _rejection(op), what)


@pytest.mark.parametrize("op", operations(body=False), ids=_ids)
def test_unexpected_query_parameters_never_break_a_route(targets: Targets, op: Operation) -> None:
    query = "page=-1&page_size=100000000&sort=%27%3BDROP&limit=-5&offset=1e99&x=" + "y" * 2_000
    reply = _unchanged(targets, op, lambda: targets.send(op, query=query))
    assert_no_leak(reply, f"{op.id}?{query[:60]}")
    if reply.status >= 400:
        assert_rejected(reply, _rejection(op), f"{op.id} with junk query parameters")


def _paths() -> list[tuple[str, frozenset[str], bool]]:
    methods: dict[str, set[str]] = {}
    dsp: dict[str, bool] = {}
    for op in all_operations():
        methods.setdefault(op.path, set()).add(op.method)
        dsp[op.path] = op.is_dsp
    return [(path, frozenset(found), dsp[path]) for path, found in methods.items()]


@pytest.mark.parametrize(("path", "methods", "is_dsp"), _paths(), ids=[p for p, _, _ in _paths()])
def test_a_method_a_route_does_not_serve_is_a_clean_405(
    targets: Targets, path: str, methods: frozenset[str], is_dsp: bool
) -> None:
    op = next(op for op in all_operations() if op.path == path)
    wrong = next(m for m in ("PATCH", "PUT", "DELETE", "POST", "GET") if m not in methods)
    url = targets.url(op, targets.unknown_ids(op))
    reply = Reply.of(http().request(wrong, url, headers=targets.auth(op, wrong, url), content=b"{}"))
    assert_rejected(reply, Rejection(dsp=None if is_dsp else False, statuses={404, 405}), f"{wrong} {path}")
