"""A test-only JSON-LD loader that serves the *official* context files from the conformance data.

It exists to compare our contexts with the published ones. It gets a fresh pyld context
resolver (and so a fresh cache) on every call, so nothing it resolves can leak into, or be taken
from, the cache of :mod:`vocab.jsonld`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pyld import jsonld as pyld
from pyld.context_resolver import ContextResolver
from rdflib import BNode, Graph, Literal, URIRef

from vocab import jsonld

Loader = Callable[..., dict[str, Any]]


def official_loader(files: Mapping[str, Path], fallback: Loader | None = None) -> Loader:
    """Serve ``files`` (published URL -> official file); other URLs go to ``fallback`` or fail."""

    def load(url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if url in files:
            return {
                "contextUrl": None,
                "documentUrl": url,
                "document": json.loads(files[url].read_text(encoding="utf-8")),
                "contentType": "application/ld+json",
            }
        if fallback is not None:
            remote = dict(fallback(url, options))
            remote.pop("tag", None)
            return remote
        raise LookupError(f"test loader has no file for {url}")

    return load


def options(loader: Loader, base: str) -> dict[str, Any]:
    return {"documentLoader": loader, "contextResolver": ContextResolver({}, loader), "base": base}


def graph_with(loader: Loader, doc: Any, base: str) -> Graph:
    """RDF of ``doc`` expanded with ``loader``'s contexts, built like :func:`vocab.jsonld.to_graph`."""
    dataset = pyld.to_rdf(doc, options(loader, base))
    graph = Graph()
    blanks: dict[str, BNode] = {}

    def term(node: Mapping[str, Any]) -> Any:
        if node["type"] == "IRI":
            return URIRef(node["value"])
        if node["type"] == "blank node":
            return blanks.setdefault(node["value"], BNode())
        if "language" in node:
            return Literal(node["value"], lang=node["language"])
        if node.get("datatype") in (None, "http://www.w3.org/2001/XMLSchema#string"):
            return Literal(node["value"])
        return Literal(node["value"], datatype=URIRef(node["datatype"]))

    for triples in dataset.values():
        for t in triples:
            graph.add((term(t["subject"]), term(t["predicate"]), term(t["object"])))
    return graph


def compact_with(loader: Loader, doc: Any, context: Any, base: str) -> dict[str, Any]:
    result: dict[str, Any] = pyld.compact(doc, context, options(loader, base))
    return result


def describe_difference(
    expected: Graph,
    actual: Graph,
    expected_label: str = "the official context",
    actual_label: str = "our context",
) -> str:
    """Triples only in one graph, in N-Triples, for a readable assertion message."""
    from rdflib.compare import graph_diff, to_isomorphic

    _both, only_expected, only_actual = graph_diff(to_isomorphic(expected), to_isomorphic(actual))
    lines = [f"only with {expected_label}:"]
    lines += [f"  {s.n3()} {p.n3()} {o.n3()}" for s, p, o in sorted(only_expected)]
    lines += [f"only with {actual_label}:"]
    lines += [f"  {s.n3()} {p.n3()} {o.n3()}" for s, p, o in sorted(only_actual)]
    return "\n".join(lines)


OUR_LOADER: Loader = jsonld.document_loader
