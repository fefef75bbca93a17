"""SHACL property paths: compiled into functions over a :class:`View`, and written as text.

Paths are compiled once per shapes graph. The text form is the SPARQL property-path syntax
(a plain predicate is its IRI alone), and the reference (pyshacl) results are written with the
same function, so both validators' results compare as equal strings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from rdflib import BNode, Graph, URIRef
from rdflib.collection import Collection
from rdflib.namespace import RDF, SH
from rdflib.term import Node

from catalogue.ingest.terms import from_rdflib
from catalogue.validation._errors import UnsupportedShapesError
from catalogue.validation._view import View

PathFn = Callable[[View, str], list[str]]

# A path nested deeper than this is refused: real profiles nest two or three levels at most,
# and the limit keeps a hostile shapes graph from recursing without end.
MAX_PATH_DEPTH: Final = 16


def _is_list(graph: Graph, node: Node) -> bool:
    return node == RDF.nil or (node, RDF.first, None) in graph


def compile_path(graph: Graph, path: Node, depth: int = 0) -> PathFn:
    """The function giving a focus node's value nodes along ``path``, without duplicates."""
    if depth > MAX_PATH_DEPTH:
        raise UnsupportedShapesError(f"property path nested deeper than {MAX_PATH_DEPTH} levels")
    if isinstance(path, URIRef):
        predicate = from_rdflib(path)

        def along_predicate(view: View, focus: str) -> list[str]:
            return view.out(focus).get(predicate, [])

        return along_predicate
    if not isinstance(path, BNode):
        raise UnsupportedShapesError(f"sh:path {path!r} is neither an IRI nor a blank node")
    if _is_list(graph, path):
        steps = [compile_path(graph, p, depth + 1) for p in Collection(graph, path)]
        if not steps:
            raise UnsupportedShapesError("sh:path is an empty sequence")

        def along_sequence(view: View, focus: str) -> list[str]:
            current = [focus]
            for step in steps:
                nxt: dict[str, None] = {}
                for node in current:
                    nxt.update(dict.fromkeys(step(view, node)))
                current = list(nxt)
            return current

        return along_sequence
    inverse = graph.value(path, SH.inversePath)
    if inverse is not None:
        if isinstance(inverse, URIRef):
            inverse_predicate = from_rdflib(inverse)

            def along_inverse(view: View, focus: str) -> list[str]:
                return view.inn(focus).get(inverse_predicate, [])

            return along_inverse
        raise UnsupportedShapesError("sh:inversePath of a complex path is not supported")
    alternatives = graph.value(path, SH.alternativePath)
    if alternatives is not None:
        options = [compile_path(graph, p, depth + 1) for p in Collection(graph, alternatives)]

        def along_alternatives(view: View, focus: str) -> list[str]:
            found: dict[str, None] = {}
            for option in options:
                found.update(dict.fromkeys(option(view, focus)))
            return list(found)

        return along_alternatives
    for kind, include_self, repeat in (
        (SH.zeroOrMorePath, True, True),
        (SH.oneOrMorePath, False, True),
        (SH.zeroOrOnePath, True, False),
    ):
        inner_term = graph.value(path, kind)
        if inner_term is None:
            continue
        inner = compile_path(graph, inner_term, depth + 1)
        return _repeat(inner, include_self=include_self, repeat=repeat)
    raise UnsupportedShapesError(f"unrecognised property path {path!r}")


def _repeat(inner: PathFn, *, include_self: bool, repeat: bool) -> PathFn:
    def along_repeat(view: View, focus: str) -> list[str]:
        found: dict[str, None] = {focus: None} if include_self else {}
        frontier = [focus]
        while frontier:
            nxt: list[str] = []
            for node in frontier:
                for value in inner(view, node):
                    if value not in found:
                        found[value] = None
                        nxt.append(value)
            frontier = nxt if repeat else []
        return list(found)

    return along_repeat


def path_text(graph: Graph, path: Node | None) -> str | None:
    """A path as text: the IRI for a predicate path, ``^IRI`` for its inverse (as ``vocab.shacl``
    writes them), SPARQL property-path syntax for anything more complex."""
    if path is None:
        return None
    if isinstance(path, URIRef):
        return str(path)
    inverse = graph.value(path, SH.inversePath)
    if isinstance(inverse, URIRef):
        return f"^{inverse}"
    return _path_expr(graph, path, 0)


def _path_expr(graph: Graph, path: Node, depth: int) -> str:
    if depth > MAX_PATH_DEPTH:
        return "…"
    if isinstance(path, URIRef):
        return f"<{path}>"
    if _is_list(graph, path):
        return "(" + "/".join(_path_expr(graph, p, depth + 1) for p in Collection(graph, path)) + ")"
    inverse = graph.value(path, SH.inversePath)
    if inverse is not None:
        return "^" + _path_expr(graph, inverse, depth + 1)
    alternatives = graph.value(path, SH.alternativePath)
    if alternatives is not None:
        parts = (_path_expr(graph, p, depth + 1) for p in Collection(graph, alternatives))
        return "(" + "|".join(parts) + ")"
    for kind, suffix in ((SH.zeroOrMorePath, "*"), (SH.oneOrMorePath, "+"), (SH.zeroOrOnePath, "?")):
        inner = graph.value(path, kind)
        if inner is not None:
            return _path_expr(graph, inner, depth + 1) + suffix
    return str(path)
