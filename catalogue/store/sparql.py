"""Read-only SPARQL 1.1 over the store, with a time limit, a result cap and no network.

Updates are refused before anything runs; ``SERVICE`` (federated query) is refused too, because
Oxigraph would fetch the remote endpoint and the node never goes online on a user's behalf.
Oxigraph cannot interrupt a running query, so a query past its time limit is abandoned (its
worker thread finishes in the background) and a small semaphore bounds how many can run at once.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import Any

import pyoxigraph as ox

SPARQL_RESULTS_JSON = "application/sparql-results+json"
N_TRIPLES = "application/n-triples"
_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"

_UPDATE_KEYWORDS = frozenset(
    {"INSERT", "DELETE", "LOAD", "CLEAR", "CREATE", "DROP", "COPY", "MOVE", "ADD", "WITH"}
)
_STRINGS = re.compile(r'("""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\')')
_IRIS = re.compile(r"<[^<>\"{}|^`\\\s]*>")
_COMMENTS = re.compile(r"#[^\n]*")
_PROLOGUE = re.compile(r"^\s*(?:(?:PREFIX\s+[^\s:]*:\s*|BASE\s+)\s*)", re.IGNORECASE)
_SERVICE = re.compile(r"\bSERVICE\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]+")
# Oxigraph's parser recurses once per nested group in native code: thousands of nested brackets
# overflow the thread's stack and kill the process. Real queries nest a handful of levels.
MAX_SPARQL_NESTING = 64


class QueryRefused(Exception):
    """A query we will not run (update, SERVICE, syntax error, too long, too busy)."""

    def __init__(self, status: int, field: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.field = field
        self.reason = reason


class QueryTimeout(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"the query ran longer than the limit of {seconds:g} s and was stopped")
        self.seconds = seconds


@dataclass(frozen=True)
class QueryResult:
    media_type: str
    body: bytes
    truncated: bool
    count: int


def _skeleton(query: str) -> str:
    """The query without strings, IRIs and comments: what keyword checks may look at."""
    without_strings = _STRINGS.sub('""', query)
    without_iris = _IRIS.sub("<>", without_strings)
    return _COMMENTS.sub(" ", without_iris)


def check_read_only(query: str, max_chars: int) -> None:
    if not query.strip():
        raise QueryRefused(400, "query", "the query is empty")
    if len(query) > max_chars:
        raise QueryRefused(413, "query", f"the query is longer than {max_chars} characters")
    skeleton = _skeleton(query)
    depth = deepest = 0
    for char in skeleton:
        if char in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "})]":
            depth -= 1
    if deepest > MAX_SPARQL_NESTING:
        raise QueryRefused(400, "query", f"the query nests groups deeper than {MAX_SPARQL_NESTING} levels")
    rest = skeleton
    while True:
        stripped = _PROLOGUE.sub("", rest, count=1)
        if stripped == rest:
            break
        rest = re.sub(r"^\s*<>\s*", "", stripped, count=1)
    first = _WORD.match(rest.strip())
    if first is not None and first.group(0).upper() in _UPDATE_KEYWORDS:
        raise QueryRefused(403, "query", "SPARQL updates are refused: this endpoint is read-only")
    if _SERVICE.search(skeleton):
        raise QueryRefused(
            400, "query", "SERVICE (federated query) is not allowed: the node does not query other endpoints"
        )


def _term_json(term: Any) -> dict[str, str]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        result = {"type": "literal", "value": term.value}
        if term.language:
            result["xml:lang"] = term.language
        elif term.datatype.value != _XSD_STRING:
            result["datatype"] = term.datatype.value
        return result
    return {"type": "literal", "value": str(term)}


class SparqlRunner:
    """Runs read-only queries through ``execute`` (the store's query function) within limits."""

    def __init__(
        self,
        execute: Callable[[str], Any],
        *,
        timeout_seconds: float,
        max_results: int,
        concurrency: int,
        max_query_chars: int,
    ) -> None:
        self._execute = execute
        self.timeout_seconds = timeout_seconds
        self.max_results = max_results
        self._max_query_chars = max_query_chars
        self._slots = threading.BoundedSemaphore(concurrency)

    def run(self, query: str) -> QueryResult:
        check_read_only(query, self._max_query_chars)
        if not self._slots.acquire(blocking=False):
            raise QueryRefused(429, "query", "too many SPARQL queries are running; retry shortly")
        outcome: dict[str, Any] = {}
        deadline = monotonic() + self.timeout_seconds
        abandoned = threading.Event()

        def work() -> None:
            try:
                outcome["result"] = self._evaluate(query, deadline, abandoned)
            except _Expired:
                outcome["error"] = _Expired()
            except BaseException as error:  # handed to the caller's thread, without the frames
                # that still hold Oxigraph iterators (those must be dropped on this thread)
                outcome["error"] = error.with_traceback(None)
            finally:
                self._slots.release()

        worker = threading.Thread(target=work, name="sparql-query", daemon=True)
        worker.start()
        worker.join(self.timeout_seconds)
        if worker.is_alive():
            abandoned.set()
            raise QueryTimeout(self.timeout_seconds)
        error = outcome.get("error")
        if isinstance(error, _Expired):
            raise QueryTimeout(self.timeout_seconds)
        if isinstance(error, SyntaxError):
            raise QueryRefused(400, "query", f"SPARQL syntax error: {error}")
        if error is not None:
            raise error
        result: QueryResult = outcome["result"]
        return result

    def _evaluate(self, query: str, deadline: float, abandoned: threading.Event) -> QueryResult:
        # Oxigraph's result iterators must be dropped on the thread that made them.
        results = self._execute(query)
        try:
            return self._serialise(results, deadline, abandoned)
        finally:
            del results

    def _serialise(self, results: Any, deadline: float, abandoned: threading.Event) -> QueryResult:

        def check() -> None:
            if abandoned.is_set() or monotonic() > deadline:
                raise _Expired

        if isinstance(results, ox.QueryBoolean):
            body = json.dumps({"head": {}, "boolean": bool(results)}).encode()
            return QueryResult(SPARQL_RESULTS_JSON, body, False, 1)
        if isinstance(results, ox.QuerySolutions):
            names = [variable.value for variable in results.variables]
            bindings: list[dict[str, dict[str, str]]] = []
            truncated = False
            for solution in results:
                check()
                if len(bindings) >= self.max_results:
                    truncated = True
                    break
                row: dict[str, dict[str, str]] = {}
                for name in names:
                    value = solution[name]
                    if value is not None:
                        row[name] = _term_json(value)
                bindings.append(row)
            solution = None
            body = json.dumps({"head": {"vars": names}, "results": {"bindings": bindings}}).encode()
            return QueryResult(SPARQL_RESULTS_JSON, body, truncated, len(bindings))
        lines: list[str] = []
        truncated = False
        for triple in results:
            check()
            if len(lines) >= self.max_results:
                truncated = True
                break
            lines.append(f"{triple} .")
        return QueryResult(N_TRIPLES, ("\n".join(lines) + "\n").encode(), truncated, len(lines))


class _Expired(Exception):
    """Raised inside the worker when the deadline passed between two results."""
