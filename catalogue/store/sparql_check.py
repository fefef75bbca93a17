"""What a SPARQL query may ask, decided on its parsed algebra (never on its text).

The query is parsed by rdflib's SPARQL 1.1 parser and translated to SPARQL algebra; the checks
below walk that tree. Text heuristics (counting brackets, looking for ``SERVICE`` outside what a
regular expression takes for strings and comments) were bypassed before, because their idea of
where a string ends differed from the engine's. The parsed tree has no such ambiguity: a
``SERVICE`` is a ``ServiceGraphPattern`` node or it is not there.

Two parsers remain (rdflib's here, Oxigraph's in the engine), so the checks are the first line
only; the worker that runs the query (:mod:`catalogue.store._sparql_worker`) holds by itself:
it has no network, a memory limit and a hard kill on its time limit.

Limits, each with why:

* :data:`MAX_ALGEBRA_NODES` — operators, expressions and terms together: a long expression, a
  long ``VALUES`` block or a long chain of anything shows up here;
* :data:`MAX_ALGEBRA_DEPTH` — nesting (groups, sub-queries, nested expressions and paths);
  Oxigraph recurses per level in native code and a deep enough tree kills the process;
* :data:`MAX_CHAIN` — ``UNION``, ``OPTIONAL``, ``MINUS`` and ``BIND`` each at most this often:
  long chains of them crashed the engine;
* :data:`MAX_PATH_ELEMENTS` / :data:`MAX_PATH_ALTERNATIVES` — property paths are evaluated as
  automata whose cost grows with their size;
* no ``SERVICE``: the node never queries another endpoint on a caller's behalf;
* no cross product: two patterns joined without a shared variable multiply their results
  (memory grows with the square of the store); such a query is refused, naming the parts.

Two parsers read the query, so both must read the same text. They did not: a comment ended at a
carriage return for Oxigraph but ran on to the next line feed for rdflib, and rdflib read
``\\u`` followed by eight hex digits as one escape where the standard (and Oxigraph) reads four.
Whatever hid behind such a difference (a ``SERVICE``, a cross product) was checked by one parser
as absent and run by the other. :func:`canonical_text` therefore expands the escapes once, by the
standard's rule, and makes line ends line feeds; both parsers are given that text only, and a
text that would still expand (an escape spelling an escape) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from rdflib import BNode, Variable
from rdflib.paths import AlternativePath, InvPath, MulPath, NegatedPath, Path, SequencePath
from rdflib.plugins.sparql.algebra import translateQuery
from rdflib.plugins.sparql.parser import parseQuery, parseUpdate
from rdflib.plugins.sparql.parserutils import CompValue

MAX_ALGEBRA_NODES: Final = 1_500
"""Operators, expressions and terms of one query (a typical catalogue query has under 200)."""
MAX_ALGEBRA_DEPTH: Final = 64
"""Deepest nesting of the algebra tree (a typical query is 10-25 deep)."""
MAX_CHAIN: Final = 32
"""Most ``UNION`` / ``OPTIONAL`` / ``MINUS`` / ``BIND`` of each kind in one query."""
MAX_PATH_ELEMENTS: Final = 16
"""Most IRIs in one property path."""
MAX_PATH_ALTERNATIVES: Final = 8
"""Most alternatives (``a|b|…``) in one property path."""
MAX_VALUES_ROWS: Final = 500
"""Most rows of one inline ``VALUES`` block."""

# Algebra operator name -> the keyword a user wrote (for messages and the chain limits).
_CHAINED: Final = {"Union": "UNION", "LeftJoin": "OPTIONAL", "Minus": "MINUS", "Extend": "BIND"}
_JOINS: Final = ("Join", "LeftJoin")


class QueryRefused(Exception):
    """A query we will not run; ``status`` is the HTTP status, ``field`` the parameter at fault."""

    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class CheckedQuery:
    """A query that passed every check: its form and the size of its algebra."""

    form: str
    """``SELECT``, ``ASK``, ``CONSTRUCT`` or ``DESCRIBE``."""
    nodes: int
    depth: int
    text: str
    """The text that was checked (:func:`canonical_text`): the only text the engine may run."""


_FORMS: Final = {
    "SelectQuery": "SELECT",
    "AskQuery": "ASK",
    "ConstructQuery": "CONSTRUCT",
    "DescribeQuery": "DESCRIBE",
}


def _is_update(text: str) -> bool:
    try:
        parseUpdate(text)
    except Exception:  # any parse failure: it is not an update either
        return False
    return True


_ESCAPE: Final = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
_ANY_ESCAPE: Final = re.compile(r"\\[uU][0-9A-Fa-f]{4}")


def _expand(match: re.Match[str]) -> str:
    point = int(match.group(1) or match.group(2), 16)
    if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
        raise QueryRefused(400, "query", f"{match.group(0)} is not a Unicode character")
    return chr(point)


def canonical_text(text: str) -> str:
    """``text`` as every parser reads it the same way: escapes expanded, line ends ``\\n``.

    The SPARQL standard expands ``\\uXXXX`` and ``\\UXXXXXXXX`` before parsing; done here once,
    by its rule, no parser expands anything after (a text spelling an escape with escapes is
    refused). A carriage return ends a comment for one parser and not for the other, so it is
    made a line feed.
    """
    expanded = _ESCAPE.sub(_expand, text)
    if _ANY_ESCAPE.search(expanded):
        raise QueryRefused(400, "query", "an escape sequence that spells another escape sequence")
    return expanded.replace("\r\n", "\n").replace("\r", "\n")


def check_query(text: str) -> CheckedQuery:
    """Parse ``text`` and check its algebra against the limits; raise :class:`QueryRefused`.

    Run :attr:`CheckedQuery.text`, never ``text``: it is what was checked.
    """
    if not text.strip():
        raise QueryRefused(400, "query", "the query is empty")
    text = canonical_text(text)
    try:
        algebra = translateQuery(parseQuery(text)).algebra
    except RecursionError:
        raise QueryRefused(400, "query", "the query nests too deeply to be parsed") from None
    except Exception as error:  # rdflib's parser raises pyparsing and plain exceptions alike
        if _is_update(text):
            raise QueryRefused(
                403, "query", "SPARQL updates are refused: this endpoint is read-only (update)"
            ) from None
        raise QueryRefused(400, "query", f"SPARQL syntax error: {_short(error)}") from None
    form = _FORMS.get(algebra.name)
    if form is None:
        raise QueryRefused(400, "query", f"unsupported query form {algebra.name}")
    nodes, depth = _check_tree(algebra)
    return CheckedQuery(form, nodes, depth, text)


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _children(node: Any) -> Iterator[Any]:
    if isinstance(node, CompValue):
        for key, value in node.items():
            if key != "_vars":
                yield value
    elif isinstance(node, list | tuple | set | frozenset):
        yield from node
    elif isinstance(node, dict):
        yield from node.keys()
        yield from node.values()
    elif isinstance(node, SequencePath | AlternativePath | NegatedPath):
        yield from node.args
    elif isinstance(node, MulPath):
        yield node.path
    elif isinstance(node, InvPath):
        yield node.arg


def _check_tree(root: CompValue) -> tuple[int, int]:
    """Walk the algebra (iteratively: the tree may be deep) and apply every limit."""
    chains = dict.fromkeys(_CHAINED, 0)
    problems: list[QueryRefused] = []
    nodes = deepest = 0
    pending: list[tuple[Any, int]] = [(root, 1)]
    while pending:
        node, depth = pending.pop()
        nodes += 1
        deepest = max(deepest, depth)
        if nodes > MAX_ALGEBRA_NODES:
            raise QueryRefused(
                400, "query", f"the query is too large: more than {MAX_ALGEBRA_NODES} operators and terms"
            )
        if depth > MAX_ALGEBRA_DEPTH:
            raise QueryRefused(400, "query", f"the query nests deeper than {MAX_ALGEBRA_DEPTH} levels")
        if isinstance(node, CompValue):
            try:
                _check_operator(node, chains)
            except QueryRefused as problem:
                if node.name == "ServiceGraphPattern":
                    raise  # named first, whatever else the query does
                problems.append(problem)
        elif isinstance(node, Path):
            try:
                _check_path(node)
            except QueryRefused as problem:
                problems.append(problem)
            continue  # a path's parts were counted by _check_path
        pending.extend((child, depth + 1) for child in _children(node))
    if problems:
        raise problems[0]
    return nodes, deepest


def _check_operator(node: CompValue, chains: dict[str, int]) -> None:
    name = node.name
    if name == "ServiceGraphPattern":
        raise QueryRefused(
            400, "query", "SERVICE (federated query) is not allowed: the node does not query other endpoints"
        )
    if name in chains:
        chains[name] += 1
        if chains[name] > MAX_CHAIN:
            raise QueryRefused(
                400, "query", f"the query uses {_CHAINED[name]} more than {MAX_CHAIN} times"
            )
    if name == "BGP":
        _check_connected(node.get("triples") or [])
    elif name in _JOINS:
        left, right = _variables(node.get("p1")), _variables(node.get("p2"))
        if left and right and not left & right:
            raise QueryRefused(
                400,
                "query",
                "the query joins two patterns that share no variable (a cross product of "
                f"{_names(left)} with {_names(right)}); join them through a common variable",
            )
    elif name == "values":
        rows = node.get("res") or []
        if len(rows) > MAX_VALUES_ROWS:
            raise QueryRefused(400, "query", f"a VALUES block has more than {MAX_VALUES_ROWS} rows")


def _variables(node: Any) -> set[Any]:
    found = getattr(node, "_vars", None) if isinstance(node, CompValue) else None
    return {name for name in found or () if not str(name).startswith("__")}


def _names(variables: set[Any]) -> str:
    return ", ".join(sorted(f"?{name}" for name in variables)[:5])


def _is_variable(term: Any) -> bool:
    return isinstance(term, Variable | BNode)


def _check_connected(triples: list[Any]) -> None:
    """Triple patterns of one group must be connected through variables (or blank nodes)."""
    patterns = [
        {term for term in triple if _is_variable(term)}
        for triple in triples
        if any(_is_variable(term) for term in triple)
    ]
    if len(patterns) < 2:
        return
    groups: list[set[Any]] = []
    for variables in patterns:
        touching = [group for group in groups if group & variables]
        merged = set(variables).union(*touching)
        groups = [group for group in groups if not group & variables]
        groups.append(merged)
    if len(groups) > 1:
        named = [group - {term for term in group if isinstance(term, BNode)} for group in groups]
        parts = " and ".join(f"({_names(group) or 'blank nodes'})" for group in named[:3])
        raise QueryRefused(
            400,
            "query",
            f"the query's patterns form {len(groups)} unconnected parts {parts}: a cross product; "
            "join them through a common variable",
        )


def _check_path(path: Path) -> None:
    elements = alternatives = 0
    pending: list[tuple[Any, int]] = [(path, 1)]
    while pending:
        part, depth = pending.pop()
        if depth > MAX_PATH_ELEMENTS:
            raise QueryRefused(400, "query", f"a property path nests deeper than {MAX_PATH_ELEMENTS}")
        if isinstance(part, AlternativePath):
            alternatives += len(part.args) - 1
        if not isinstance(part, Path):
            elements += 1
        if elements > MAX_PATH_ELEMENTS:
            raise QueryRefused(
                400, "query", f"a property path has more than {MAX_PATH_ELEMENTS} elements (path)"
            )
        if alternatives > MAX_PATH_ALTERNATIVES:
            raise QueryRefused(
                400, "query", f"a property path has more than {MAX_PATH_ALTERNATIVES} alternatives (path)"
            )
        pending.extend((child, depth + 1) for child in _children(part))
