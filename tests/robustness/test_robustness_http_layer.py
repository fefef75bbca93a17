"""The shared HTTP layer's pure parts: Accept negotiation, bearer parsing, strict JSON."""

from __future__ import annotations

import pytest

from connector.http import (
    HTML,
    BodyError,
    bearer_token,
    check_json_content_type,
    choose_media_type,
    parse_json,
    prefers_html,
)

TURTLE, JSON_LD, RDF_XML = "text/turtle", "application/ld+json", "application/rdf+xml"
RDF = (TURTLE, JSON_LD, RDF_XML)
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "offered", "expected"),
    [
        (None, RDF, TURTLE),
        ("", RDF, TURTLE),
        ("*/*", RDF, TURTLE),
        (BROWSER, (*RDF, HTML), HTML),
        (BROWSER, RDF, TURTLE),  # */*;q=0.8 beats nothing; application/xml is no alias here
        ("application/json", RDF, JSON_LD),  # alias
        ("application/json, text/turtle", RDF, JSON_LD),  # the client's order breaks ties
        ("text/turtle;q=0.5, application/ld+json", RDF, JSON_LD),
        ("application/*", RDF, JSON_LD),
        ("*/*, text/turtle;q=0", RDF, JSON_LD),  # q=0 excludes even under a wildcard
        ("text/html;q=0, */*", (HTML, TURTLE), TURTLE),
        ("image/png", RDF, None),
        ("text/turtle;q=abc", RDF, None),
        ("garbage", RDF, TURTLE),
    ],
)
def test_accept_negotiation(accept: str | None, offered: tuple[str, ...], expected: str | None) -> None:
    assert choose_media_type(accept, offered, {"application/json": JSON_LD}) == expected


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
        ("bearer  abc==", "abc=="),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer a b", None),
        ("Bearer a\x00b", None),
        ("Bearer " + "a" * 70_000, None),
        (None, None),
    ],
)
def test_bearer_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "invalid-json"),
        (b'{"a": NaN}', "invalid-json"),
        (b'{"a": 1e400}', "invalid-json"),
        (b'{"a": 1, "a": 2}', "invalid-json"),
        (b'\xef\xbb\xbf{"a": 1}', "invalid-json"),
        (b'{"a": "\xc3"}', "invalid-json"),
        (b'{"a": "\\ud800"}', "invalid-unicode"),
        (b'{"\\udc00": 1}', "invalid-unicode"),
        (b'["\\u0000"]', "invalid-unicode"),
        (b"[" * 40 + b"]" * 40, "too-deep"),
        (b"[" * 100_000, "too-deep"),
    ],
)
def test_strict_json_refuses_what_has_no_single_reading(raw: bytes, code: str) -> None:
    with pytest.raises(BodyError) as refused:
        parse_json(raw, max_depth=32)
    assert refused.value.code == code
    assert refused.value.status == 400


def test_strict_json_keeps_what_json_means() -> None:
    assert parse_json(b'{"a": ["\\ud83d\\ude00", 1e300, -0.0, null, 12345678901234567890]}', max_depth=4) == {
        "a": ["\U0001f600", 1e300, -0.0, None, 12345678901234567890]
    }


@pytest.mark.parametrize("header", ["text/plain", "application/json; charset=latin-1", "application/xml", ""])
def test_content_types_that_are_not_json(header: str) -> None:
    with pytest.raises(BodyError):
        check_json_content_type(header)
    check_json_content_type("application/vnd.api+json; charset=UTF-8")
    check_json_content_type(None)


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (BROWSER, True),
        (None, False),
        ("*/*", False),
        ("application/json, text/html", False),
        ("text/html;q=0.5, application/json;q=0", True),
        ("application/json;q=0.5, text/html;q=0.5", False),
        ("text/html;q=0", False),
        ("application/xhtml+xml", True),
    ],
)
def test_a_browser_is_told_from_a_program(accept: str | None, html: bool) -> None:
    assert prefers_html(accept) is html
