"""Whatever JSON arrives, JSON-LD processing answers with a result or a VocabError, never a crash."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vocab import jsonld, rdfio
from vocab.errors import VocabError

KEYS = st.sampled_from(
    ["@id", "@type", "@value", "@language", "@list", "@set", "@graph", "@context", "@reverse", "@index",
     "@vocab", "@base", "@container", "@nest", "@included", "@json", "@direction", "@protected",
     "http://example.org/p", "title", "offer", "permission", "action", "_:b", "x:y", ""]
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        ["", "urn:a", "http://example.org/", "_:b0", "@id", "use", "en", "x:y", jsonld.DSP_CONTEXT]
    ),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=25,
)


def _answers_or_refuses(call: Any) -> None:
    with contextlib.suppress(VocabError):
        call()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_any_json_is_expanded_or_refused_with_a_vocab_error(document: Any) -> None:
    _answers_or_refuses(lambda: jsonld.expand(document, base="https://example.org/"))
    _answers_or_refuses(lambda: jsonld.to_graph(document, base="https://example.org/"))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_parsed_or_refused_with_a_vocab_error(text: str) -> None:
    for media_type in ("text/turtle", "application/ld+json", "application/n-triples", "application/rdf+xml"):
        _answers_or_refuses(lambda m=media_type: rdfio.parse_rdf(text, m, base="https://example.org/"))
