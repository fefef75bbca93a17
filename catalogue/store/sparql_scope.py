"""Public SPARQL reads the catalogue's public graphs only: the query is rewritten so that it must.

The store holds more than the published records: the version history (old and retracted
versions as text), each harvest source's own copy of a dataset (``urn:sluis:source-copies``),
the catalogue records, the write journal (``urn:sluis:batches``) and - in a SPARQL server such as
Virtuoso - the server's own graphs (``virtrdf#``, ontologies it ships). A server's default graph
is the union of all of them, and Oxigraph's union default graph too. What the public endpoint
may read is the record graphs, ``urn:sluis:record:{id}``, one per current record
(:data:`PUBLIC_GRAPH_PREFIX`).

Listing those graphs as the query's dataset (``FROM``, or Oxigraph's ``default_graph``) does not
scale: both engines then look a pattern up once per listed graph, and a catalogue has a million.
So the query itself is rewritten, on its parsed algebra, and the engine runs the result:

* every triple pattern (and property path) outside a ``GRAPH`` clause becomes
  ``GRAPH ?g { pattern } FILTER(STRSTARTS(STR(?g), "urn:sluis:record:"))`` with a fresh ``?g``
  per pattern - exactly the union default graph, restricted to public graphs (a join may still
  span records, as it did);
* a ``GRAPH`` clause gets the same filter on its graph term;
* ``EXISTS`` / ``NOT EXISTS`` and sub-queries are rewritten the same way;
* ``DESCRIBE`` becomes a ``CONSTRUCT`` of the described resources' statements in public graphs;
* ``FROM`` / ``FROM NAMED`` are refused (they would choose the dataset).

The text is written from the algebra by :func:`scoped_query`; an operator or expression it does
not know is refused (400), never passed through unscoped. The helper variables are named
``?__sluis…`` and never projected. Blank nodes of a pattern become such variables too (SPARQL
gives them the same meaning inside one pattern).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from typing import Any, Final

from rdflib import BNode, Literal, URIRef, Variable
from rdflib.paths import AlternativePath, InvPath, MulPath, NegatedPath, Path, SequencePath
from rdflib.plugins.sparql.algebra import translateGroupGraphPattern, translateQuery
from rdflib.plugins.sparql.parser import parseQuery
from rdflib.plugins.sparql.parserutils import CompValue

from catalogue.store.sparql_check import QueryRefused

PUBLIC_GRAPH_PREFIX: Final = "urn:sluis:record:"
"""The graphs public SPARQL reads: one per current record (:func:`records.record_graph`)."""
_HELPER: Final = "__sluis"
_MODIFIERS: Final = ("Slice", "Distinct", "Reduced", "Project", "OrderBy")
_AGGREGATES: Final = {
    "Aggregate_Count": "COUNT",
    "Aggregate_Sum": "SUM",
    "Aggregate_Min": "MIN",
    "Aggregate_Max": "MAX",
    "Aggregate_Avg": "AVG",
    "Aggregate_Sample": "SAMPLE",
    "Aggregate_GroupConcat": "GROUP_CONCAT",
}
_BUILTIN_NAMES: Final = {"Builtin_EXISTS": "EXISTS", "Builtin_NOTEXISTS": "NOT EXISTS"}
_VARNAME: Final = re.compile(r"[A-Za-z0-9_\u00B7\u00C0-\uFFFF]+")


def _opt(node: Any, key: str) -> Any:
    """``node[key]``, or None when absent (``CompValue.get`` answers the key's own name then)."""
    return node[key] if isinstance(node, CompValue) and key in node else None


def _refuse(what: str) -> QueryRefused:
    return QueryRefused(400, "query", f"{what} is not supported by this endpoint's public SPARQL")


class _Writer:
    """Writes one query's algebra back as SPARQL, scoping every pattern to public graphs."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._blank: dict[str, str] = {}
        self._made: set[str] = set()

    def _fresh(self, kind: str) -> str:
        name = f"{_HELPER}_{kind}{next(self._counter)}"
        self._made.add(name)
        return f"?{name}"

    # ---- terms ------------------------------------------------------------------------------
    def term(self, value: Any, *, blank_as_variable: bool = True) -> str:
        if isinstance(value, Variable):
            if not _VARNAME.fullmatch(str(value)):
                raise _refuse(f"the variable name {str(value)[:40]!r}")
            if str(value).startswith(_HELPER) and str(value) not in self._made:
                raise QueryRefused(400, "query", f"variable names starting with {_HELPER} are reserved")
            return f"?{value}"
        if isinstance(value, URIRef):
            text = str(value)
            if any(char in text for char in '<>"{}|^`\\ \n\r\t'):
                raise QueryRefused(400, "query", f"the IRI <{text[:80]}> has characters an IRI cannot")
            return f"<{text}>"
        if isinstance(value, Literal):
            return value.n3()
        if isinstance(value, BNode):
            if not blank_as_variable:
                return f"_:b{abs(hash(str(value))) % 10**12}"
            if str(value) not in self._blank:
                self._blank[str(value)] = self._fresh("b")
            return self._blank[str(value)]
        if isinstance(value, Path):
            return self.path(value)
        if isinstance(value, CompValue):
            return self.expression(value)
        raise _refuse(f"the term {type(value).__name__}")

    def path(self, path: Any) -> str:
        if isinstance(path, URIRef):
            return self.term(path)
        if isinstance(path, SequencePath):
            return "(" + "/".join(self.path(part) for part in path.args) + ")"
        if isinstance(path, AlternativePath):
            return "(" + "|".join(self.path(part) for part in path.args) + ")"
        if isinstance(path, MulPath):
            return f"({self.path(path.path)}){path.mod}"
        if isinstance(path, InvPath):
            return f"^({self.path(path.arg)})"
        if isinstance(path, NegatedPath):
            return "!(" + "|".join(self.path(part) for part in path.args) + ")"
        raise _refuse(f"the property path {type(path).__name__}")

    # ---- expressions ------------------------------------------------------------------------
    def expression(self, node: Any) -> str:
        if not isinstance(node, CompValue):
            if isinstance(node, list | tuple):
                return ", ".join(self.expression(item) for item in node)
            return self.term(node)
        name = node.name
        if name == "RelationalExpression":
            other = _opt(node, "other")
            if node["op"] in ("IN", "NOT IN"):
                return f"({self.expression(node['expr'])} {node['op']} ({self.expression(other or [])}))"
            return f"({self.expression(node['expr'])} {node['op']} {self.expression(other)})"
        if name in ("ConditionalAndExpression", "ConditionalOrExpression"):
            joiner = " && " if name == "ConditionalAndExpression" else " || "
            parts = [node["expr"], *(_opt(node, "other") or [])]
            return "(" + joiner.join(self.expression(part) for part in parts) + ")"
        if name in ("AdditiveExpression", "MultiplicativeExpression"):
            text = self.expression(node["expr"])
            for op, other in zip(_opt(node, "op") or [], _opt(node, "other") or [], strict=True):
                text = f"({text} {op} {self.expression(other)})"
            return text
        if name in ("UnaryNot", "UnaryMinus", "UnaryPlus"):
            sign = {"UnaryNot": "!", "UnaryMinus": "-", "UnaryPlus": "+"}[name]
            return f"({sign}{self.expression(node['expr'])})"
        if name == "Function":
            distinct = "DISTINCT " if _opt(node, "distinct") else ""
            return f"{self.term(node['iri'])}({distinct}{self.expression(_opt(node, 'expr') or [])})"
        if name in _BUILTIN_NAMES:
            graph = node["graph"]
            if isinstance(graph, CompValue) and graph.name == "GroupGraphPatternSub":
                graph = translateGroupGraphPattern(graph)
            return f"{_BUILTIN_NAMES[name]} {self.group(graph, in_graph=False)}"
        if name.startswith("Builtin_"):
            function = name.removeprefix("Builtin_")
            if not re.fullmatch(r"[A-Za-z_]+", function):
                raise _refuse(f"the function {function[:40]}")
            args: list[str] = []
            for key, value in node.items():
                if key.startswith("_") or value is None:
                    continue
                if isinstance(value, list):
                    args.extend(self.expression(item) for item in value)
                else:
                    args.append(self.expression(value))
            return f"{function}({', '.join(args)})"
        raise _refuse(f"the expression {name}")

    # ---- graph patterns ---------------------------------------------------------------------
    def _public(self, graph: str) -> str:
        return f'FILTER(STRSTARTS(STR({graph}), "{PUBLIC_GRAPH_PREFIX}"))'

    def _triple(self, triple: Iterable[Any]) -> str:
        return " ".join(self.term(part) for part in triple) + " ."

    def _scoped(self, subject: Any, predicate: Any, value: Any) -> str:
        """One triple pattern read from public graphs. A sequence, inverse or alternative path
        is taken apart as SPARQL defines it (a join through a fresh variable, swapped ends, a
        union), so each step may lie in another record's graph as over the union graph; a
        repetition (``*``, ``+``, ``?``) or negated path is followed within one graph."""
        if isinstance(predicate, SequencePath):
            ends = [subject, *(Variable(self._fresh("v")[1:]) for _ in predicate.args[1:]), value]
            steps = [self._scoped(ends[n], step, ends[n + 1]) for n, step in enumerate(predicate.args)]
            return "{ " + " ".join(steps) + " }"
        if isinstance(predicate, InvPath):
            return self._scoped(value, predicate.arg, subject)
        if isinstance(predicate, AlternativePath):
            return "{ " + " UNION ".join(
                "{ " + self._scoped(subject, step, value) + " }" for step in predicate.args
            ) + " }"
        graph = self._fresh("g")
        return f"GRAPH {graph} {{ {self._triple((subject, predicate, value))} }} {self._public(graph)}"

    def group(self, node: Any, *, in_graph: bool) -> str:
        """``node`` as a group graph pattern ``{ … }``; ``in_graph``: inside a ``GRAPH`` clause
        (its graph is already checked, so triple patterns stay as they are)."""
        if not isinstance(node, CompValue):
            raise _refuse(f"the pattern {type(node).__name__}")
        name = node.name
        if name == "BGP":
            triples = _opt(node, "triples") or []
            if in_graph:
                return "{ " + " ".join(self._triple(triple) for triple in triples) + " }"
            return "{ " + " ".join(self._scoped(*triple) for triple in triples) + " }"
        if name in ("Join", "Union", "Minus"):
            left, right = self.group(node["p1"], in_graph=in_graph), self.group(node["p2"], in_graph=in_graph)
            joiner = {"Join": " ", "Union": " UNION ", "Minus": " MINUS "}[name]
            return f"{{ {left}{joiner}{right} }}"
        if name == "LeftJoin":
            right = self.group(node["p2"], in_graph=in_graph)
            expr = _opt(node, "expr")
            if isinstance(expr, CompValue) and expr.name != "TrueFilter":
                right = f"{{ {right} FILTER({self.expression(expr)}) }}"
            return f"{{ {self.group(node['p1'], in_graph=in_graph)} OPTIONAL {right} }}"
        if name == "Filter":
            return f"{{ {self.group(node['p'], in_graph=in_graph)} FILTER({self.expression(node['expr'])}) }}"
        if name == "Extend":
            inner = self.group(node["p"], in_graph=in_graph)
            return f"{{ {inner} BIND({self.expression(node['expr'])} AS {self.term(node['var'])}) }}"
        if name == "Graph":
            graph = self.term(node["term"])
            return f"{{ GRAPH {graph} {self.group(node['p'], in_graph=True)} {self._public(graph)} }}"
        if name == "ToMultiSet":
            return self.group(node["p"], in_graph=in_graph)
        if name == "values":
            return "{ " + self.values(_opt(node, "res") or []) + " }"
        if name == "AggregateJoin":
            return "{ " + self.aggregate(node, in_graph=in_graph) + " }"
        if name in _MODIFIERS:
            return "{ " + self.select(node, in_graph=in_graph) + " }"
        raise _refuse(f"the pattern {name}")

    def values(self, rows: list[dict[Any, Any]]) -> str:
        names: list[Any] = []
        for row in rows:
            names.extend(name for name in row if name not in names)
        if not names:
            return "VALUES () { " + " ".join("()" for _ in rows) + " }"
        header = " ".join(self.term(name) for name in names)
        body = " ".join(
            "(" + " ".join(self._cell(row, name) for name in names) + ")" for row in rows
        )
        return f"VALUES ({header}) {{ {body} }}"

    def _cell(self, row: dict[Any, Any], name: Any) -> str:
        return self.term(row[name]) if row.get(name) is not None else "UNDEF"

    def aggregate(self, node: CompValue, *, in_graph: bool) -> str:
        """An ``AggregateJoin`` as a sub-query projecting its aggregates."""
        group = node["p"]
        if not isinstance(group, CompValue) or group.name != "Group":
            raise _refuse("an aggregate without its group")
        projected = []
        for aggregate in _opt(node, "A") or []:
            function = _AGGREGATES.get(aggregate.name)
            if function is None:
                raise _refuse(f"the aggregate {aggregate.name}")
            distinct = "DISTINCT " if _opt(aggregate, "distinct") == "DISTINCT" else ""
            argument = _opt(aggregate, "vars")
            inner = "*" if argument == "*" else self.expression(argument)
            separator = _opt(aggregate, "separator")
            if function == "GROUP_CONCAT" and separator is not None:
                inner += f" ; SEPARATOR={Literal(str(separator)).n3()}"
            projected.append(f"({function}({distinct}{inner}) AS {self.term(aggregate['res'])})")
        by = _opt(group, "expr")
        grouping = ""
        if by:
            grouping = " GROUP BY " + " ".join(
                self.term(item) if isinstance(item, Variable) else f"({self.expression(item)})" for item in by
            )
        where = self.group(group["p"], in_graph=in_graph)
        return f"SELECT {' '.join(projected)} WHERE {where}{grouping}"

    def select(self, node: CompValue, *, in_graph: bool, variables: list[Any] | None = None) -> str:
        """Solution modifiers over a pattern, as ``SELECT … WHERE { … } ORDER BY … LIMIT …``."""
        limit = offset = None
        distinct = ""
        order: list[Any] = []
        projection = variables
        while isinstance(node, CompValue) and node.name in _MODIFIERS:
            if node.name == "Slice":
                offset, limit = _opt(node, "start"), _opt(node, "length")
            elif node.name in ("Distinct", "Reduced"):
                distinct = "DISTINCT " if node.name == "Distinct" else "REDUCED "
            elif node.name == "Project":
                projection = list(_opt(node, "PV") or [])
            elif node.name == "OrderBy":
                order = list(_opt(node, "expr") or [])
            node = node["p"]
        head = " ".join(self.term(variable) for variable in projection or []) or "*"
        text = f"SELECT {distinct}{head} WHERE {self.group(node, in_graph=in_graph)}"
        if order:
            text += " ORDER BY " + " ".join(self._order(condition) for condition in order)
        if limit is not None:
            text += f" LIMIT {int(limit)}"
        if offset:
            text += f" OFFSET {int(offset)}"
        return text

    def _order(self, condition: Any) -> str:
        if isinstance(condition, CompValue) and condition.name == "OrderCondition":
            direction = _opt(condition, "order") or "ASC"
            return f"{direction}({self.expression(condition['expr'])})"
        return f"({self.expression(condition)})"

    def modifiers(self, node: Any) -> tuple[Any, str]:
        """The pattern under ``node``'s modifiers, and the modifiers as text (CONSTRUCT, ASK)."""
        limit = offset = None
        order: list[Any] = []
        while isinstance(node, CompValue) and node.name in _MODIFIERS:
            if node.name == "Slice":
                offset, limit = _opt(node, "start"), _opt(node, "length")
            elif node.name == "OrderBy":
                order = list(_opt(node, "expr") or [])
            node = node["p"]
        text = ""
        if order:
            text += " ORDER BY " + " ".join(self._order(condition) for condition in order)
        if limit is not None:
            text += f" LIMIT {int(limit)}"
        if offset:
            text += f" OFFSET {int(offset)}"
        return node, text


def _describe(writer: _Writer, algebra: CompValue) -> str:
    """``DESCRIBE`` as the described resources' statements in public graphs."""
    resource, predicate, value = writer._fresh("r"), writer._fresh("p"), writer._fresh("o")
    graph = writer._fresh("g")
    pattern = _opt(algebra, "p")
    where = writer.group(pattern, in_graph=False) if isinstance(pattern, CompValue) else "{ }"
    branches = [
        f"{{ {where} BIND({writer.term(term)} AS {resource}) }}" for term in _opt(algebra, "PV") or []
    ]
    if not branches:
        raise _refuse("DESCRIBE without a resource")
    chosen = " UNION ".join(branches)
    return (
        f"CONSTRUCT {{ {resource} {predicate} {value} }} WHERE {{ "
        f"{{ SELECT DISTINCT {resource} WHERE {{ {chosen} }} }} "
        f"GRAPH {graph} {{ {resource} {predicate} {value} }} {writer._public(graph)} }}"
    )


def scoped_query(text: str) -> str:
    """``text`` (a query :func:`~catalogue.store.sparql_check.check_query` accepted) rewritten so
    it reads public graphs only; :class:`QueryRefused` for what cannot be rewritten."""
    try:
        parsed = parseQuery(text)
        star = isinstance(parsed[1], CompValue) and "projection" not in parsed[1]
        algebra = translateQuery(parsed).algebra
    except RecursionError:
        raise QueryRefused(400, "query", "the query nests too deeply to be parsed") from None
    except Exception:  # check_query parsed it already; anything else is refused, never run unscoped
        raise _refuse("this query") from None
    if _opt(algebra, "datasetClause"):
        raise QueryRefused(
            400, "query", "FROM and FROM NAMED are not allowed: public SPARQL reads the catalogue's records"
        )
    writer = _Writer()
    if star and algebra.name == "SelectQuery":
        _in_text_order(algebra, text)
    write: dict[str, Callable[[], str]] = {
        "SelectQuery": lambda: writer.select(algebra["p"], in_graph=False, variables=_opt(algebra, "PV")),
        "AskQuery": lambda: "ASK WHERE " + writer.group(writer.modifiers(algebra["p"])[0], in_graph=False),
        "ConstructQuery": lambda: _construct(writer, algebra),
        "DescribeQuery": lambda: _describe(writer, algebra),
    }
    form = write.get(algebra.name)
    if form is None:
        raise _refuse(f"the query form {algebra.name}")
    try:
        return form()
    except RecursionError:
        raise QueryRefused(400, "query", "the query nests too deeply to be rewritten") from None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise _refuse(f"a part of this query ({type(error).__name__})") from None


def _in_text_order(algebra: CompValue, text: str) -> None:
    """``SELECT *`` lists the variables in the order they first appear, as engines do (rdflib
    collects them in a set)."""

    def first(variable: Any) -> int:
        found = re.search(rf"[?$]{re.escape(str(variable))}(?![\w\u00B7])", text)
        return found.start() if found else len(text)

    ordered = sorted(_opt(algebra, "PV") or [], key=first)
    algebra["PV"] = ordered
    node = algebra["p"]
    while isinstance(node, CompValue) and node.name in _MODIFIERS:
        if node.name == "Project":
            node["PV"] = ordered
        node = node["p"]


def _construct(writer: _Writer, algebra: CompValue) -> str:
    pattern, modifiers = writer.modifiers(algebra["p"])
    template = " ".join(
        " ".join(writer.term(part, blank_as_variable=False) for part in triple) + " ."
        for triple in _opt(algebra, "template") or []
    )
    return f"CONSTRUCT {{ {template} }} WHERE {writer.group(pattern, in_graph=False)}{modifiers}"
