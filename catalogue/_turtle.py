"""A faster Turtle reader for records: Oxigraph's parser, rdflib's graph, rdflib's answers.

rdflib's Turtle parser is pure Python and was the largest single cost of bulk ingest (~2.5-5 ms
for a typical record). Oxigraph parses the same record in well under 0.1 ms; turning its
statements into an rdflib graph costs about half of what rdflib's parser does, and the rest of
the pipeline (validation, quality, signature) keeps working on rdflib graphs.

The result must be the graph :func:`vocab.rdfio.parse_rdf` would give, so this path only takes
documents where the two parsers are known to agree and hands everything else to ``parse_rdf``
(returning None), which then also gives exactly the errors it always gave:

* anything Oxigraph refuses (syntax errors, IRIs it finds invalid, bad UTF-8) — rdflib decides;
* language tags with capitals (Oxigraph lower-cases them, rdflib keeps them as written);
* an explicit ``^^xsd:string`` (Oxigraph folds it into a plain literal, rdflib keeps it);
* many brackets or parentheses (rdflib refuses deep nesting; that refusal must stay);
* terms of RDF 1.2 (triple terms), which rdflib does not read;
* documents over the size limit (``parse_rdf`` refuses them with its own error).

Every statement passes :class:`vocab.rdfio.StatementLimits` as it is read, exactly as in
``parse_rdf``: the limits stop a huge document at its first statement over, on either path.
"""

from __future__ import annotations

import re
from typing import Final

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from vocab.errors import TooManyStatementsError
from vocab.rdfio import DEFAULT_MAX_STATEMENTS, StatementLimits

# rdflib refuses documents nested deeper than Python's recursion allows; far below that, any
# document with this many brackets goes to rdflib so the depth refusal is unchanged.
MAX_FAST_BRACKETS: Final = 64
_UPPER_CASE_LANGUAGE: Final = re.compile(rb"[\"']@[A-Za-z0-9-]*[A-Z]")
_EXPLICIT_STRING: Final = re.compile(rb"\^\^\s*(?:<[^>]*string>|[A-Za-z0-9_.\-]*:string\b)")
_XSD_STRING: Final = "http://www.w3.org/2001/XMLSchema#string"


class _NotPlainRdf(Exception):
    """A term rdflib has no counterpart for (RDF 1.2 triple terms)."""


def _needs_rdflib(data: bytes, max_bytes: int) -> bool:
    return (
        len(data) > max_bytes
        or data.count(b"[") + data.count(b"(") > MAX_FAST_BRACKETS
        or _UPPER_CASE_LANGUAGE.search(data) is not None
        or _EXPLICIT_STRING.search(data) is not None
    )


def parse_turtle_fast(
    data: bytes | str, base: str, max_bytes: int, max_statements: int = DEFAULT_MAX_STATEMENTS
) -> Graph | None:
    """The graph of a Turtle document, or None when ``vocab.rdfio.parse_rdf`` must read it."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if _needs_rdflib(raw, max_bytes):
        return None
    blank: dict[str, BNode] = {}
    iris: dict[str, URIRef] = {}

    def term(value: object) -> Node:
        if isinstance(value, ox.NamedNode):
            text = value.value
            found = iris.get(text)
            if found is None:
                found = iris[text] = URIRef(text)
            return found
        if isinstance(value, ox.BlankNode):
            node = blank.get(value.value)
            if node is None:
                node = blank[value.value] = BNode()
            return node
        if isinstance(value, ox.Literal):
            if getattr(value, "direction", None):
                raise _NotPlainRdf("literal with a base direction")
            if value.language:
                return Literal(value.value, lang=value.language)
            datatype = value.datatype.value
            if datatype == _XSD_STRING:
                return Literal(value.value)
            return Literal(value.value, datatype=URIRef(datatype))
        raise _NotPlainRdf(type(value).__name__)

    # The document graph is only searched for the record and walked to extract it (into a graph
    # of its own), so the context-free store does: it adds statements in half the time.
    graph = Graph(store="SimpleMemory", bind_namespaces="none")
    limits = StatementLimits(max_statements)
    try:
        # Counted before any rdflib term is made (those cost ~30 us each, the parse ~1 us).
        quads = []
        for quad in ox.parse(raw, ox.RdfFormat.TURTLE, base_iri=base):
            quads.append(quad)
            if len(quads) > max_statements:
                raise TooManyStatementsError(max_statements)
        for quad in quads:
            triple = (term(quad.subject), term(quad.predicate), term(quad.object))
            limits.check(triple)
            graph.add(triple)
    except (SyntaxError, ValueError, OSError, _NotPlainRdf):
        return None
    return graph
