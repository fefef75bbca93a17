"""The HTTP layer every Sluis server shares (connector, data plane, catalogue, pages).

One place for what each API used to do its own way: RFC 9457 problem responses and the
exception mapping (:mod:`.problems`), reading a body within a byte limit (:mod:`.body`), strict
JSON with depth, Unicode and duplicate-key rules (:mod:`.jsonbody`), ``Authorization: Bearer``
parsing (:mod:`.bearer`), ``Accept`` negotiation that knows ``text/html``
(:mod:`.negotiation`), and liveness, readiness and Prometheus metrics (:mod:`.operations`).
It lives in ``connector`` so the catalogue, above it, may import it too.
"""

from connector.http.bearer import MAX_BEARER_CHARS, bearer_token
from connector.http.body import BodyError, read_body_bytes
from connector.http.jsonbody import (
    JSON_MEDIA_TYPES,
    check_json_content_type,
    json_depth,
    parse_json,
)
from connector.http.middleware import AuthenticateFirst, HeadAsGet, RefuseUnstorableUrls, StrictJsonBodies
from connector.http.negotiation import HTML, choose_media_type, parse_accept, prefers_html
from connector.http.operations import install_operations
from connector.http.problems import (
    PROBLEM_MEDIA_TYPE,
    FieldError,
    ProblemError,
    SafeJSONResponse,
    install_problem_handlers,
    problem_body,
    problem_response,
)

__all__ = [
    "HTML",
    "JSON_MEDIA_TYPES",
    "MAX_BEARER_CHARS",
    "PROBLEM_MEDIA_TYPE",
    "AuthenticateFirst",
    "BodyError",
    "FieldError",
    "HeadAsGet",
    "ProblemError",
    "RefuseUnstorableUrls",
    "SafeJSONResponse",
    "StrictJsonBodies",
    "bearer_token",
    "check_json_content_type",
    "choose_media_type",
    "install_operations",
    "install_problem_handlers",
    "json_depth",
    "parse_accept",
    "parse_json",
    "prefers_html",
    "problem_body",
    "problem_response",
    "read_body_bytes",
]
