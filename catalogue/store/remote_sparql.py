"""The node's public SPARQL endpoint when the records live in a SPARQL server.

Why a runner of its own: the embedded runner (:class:`catalogue.store.SparqlRunner`) evaluates on
snapshots of the Oxigraph store in worker processes; with a shared SPARQL server the server does
the evaluation. What stays the same is everything the node promises its callers: the query passes
the same checks on its parsed algebra first (:func:`catalogue.store.sparql_check.check_query`:
read-only, no ``SERVICE``, no cross products, size and depth limits), at most ``concurrency``
queries run at once (429 past that), each has the time limit, and results are capped in rows and
bytes and serialised by the same code as the embedded endpoint's.

Bounds on the server's answer: it is read as it streams and never past a byte budget (a few
times the result cap). Graph answers (N-Triples, one statement a line) are cut at the cap and
flagged as truncated; a SELECT answer larger than the budget is refused with 422 (JSON cannot be
cut). The time limit is enforced on this side; the server's own limit (Virtuoso's
``MaxQueryExecutionTime``) bounds the work left behind when the node gives up waiting.
"""

from __future__ import annotations

import json
import threading
from time import monotonic
from typing import Any

import httpx
import pyoxigraph as ox

from catalogue.store._sparql_worker import _Results
from catalogue.store.remote import N_TRIPLES, SPARQL_RESULTS_JSON
from catalogue.store.sparql import QueryResult, QueryTimeout
from catalogue.store.sparql_check import QueryRefused, check_query
from catalogue.store.sparql_scope import scoped_query

# The server's JSON is larger than ours (whitespace, "typed-literal"); it is read up to this many
# times the result byte cap.
_ANSWER_FACTOR = 4
_ANSWER_SLACK = 64 * 1024


class RemoteSparqlRunner:
    """Read-only SPARQL answered by a SPARQL 1.1 server, within the node's limits."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_seconds: float,
        max_results: int,
        max_result_bytes: int,
        concurrency: int,
        max_query_chars: int,
    ) -> None:
        self._endpoint = endpoint
        self.timeout_seconds = timeout_seconds
        self.max_results = max_results
        self.max_result_bytes = max_result_bytes
        self._max_query_chars = max_query_chars
        self._slots = threading.BoundedSemaphore(concurrency)
        self._client = httpx.Client(timeout=timeout_seconds, follow_redirects=False)

    def run(self, query: str) -> QueryResult:
        if not query.strip():
            raise QueryRefused(400, "query", "the query is empty")
        if len(query) > self._max_query_chars:
            raise QueryRefused(413, "query", f"the query is longer than {self._max_query_chars} characters")
        checked = check_query(query)
        query = checked.text  # the server runs what was checked, not what was sent
        # ... rewritten to read the catalogue's public graphs only: the server's default graph is
        # the union of every graph it holds, its own system graphs included (sparql_scope)
        query = scoped_query(query)
        if not self._slots.acquire(blocking=False):
            raise QueryRefused(429, "query", "too many SPARQL queries are running; retry shortly")
        try:
            if checked.form in ("CONSTRUCT", "DESCRIBE"):
                return self._graph(query)
            return self._solutions(query)
        except httpx.TimeoutException:
            raise QueryTimeout(self.timeout_seconds) from None
        except httpx.HTTPError as error:
            raise QueryRefused(503, "query", f"the SPARQL store cannot be reached: {error}") from None
        finally:
            self._slots.release()

    def _check_status(self, response: httpx.Response, first: bytes) -> None:
        if response.status_code >= 400:
            reason = first[:300].decode("utf-8", "replace").strip()
            status = 400 if response.status_code < 500 else 422
            raise QueryRefused(status, "query", f"the SPARQL store refused the query: {reason}")

    def _solutions(self, query: str) -> QueryResult:
        budget = self.max_result_bytes * _ANSWER_FACTOR + _ANSWER_SLACK
        deadline = monotonic() + self.timeout_seconds
        chunks: list[bytes] = []
        size = 0
        with self._client.stream(
            "POST", self._endpoint, data={"query": query}, headers={"Accept": SPARQL_RESULTS_JSON}
        ) as response:
            for chunk in response.iter_bytes():
                if monotonic() > deadline:
                    raise QueryTimeout(self.timeout_seconds)
                size += len(chunk)
                if size > budget:
                    raise QueryRefused(
                        422,
                        "query",
                        f"the answer is larger than {budget} bytes; narrow the query or add LIMIT",
                    )
                chunks.append(chunk)
            body = b"".join(chunks)
            self._check_status(response, body)
        try:
            answer: dict[str, Any] = json.loads(body)
            for row in answer.get("results", {}).get("bindings", []):
                for term in row.values():  # SPARQL 1.0 servers still say "typed-literal"
                    if isinstance(term, dict) and term.get("type") == "typed-literal":
                        term["type"] = "literal"
            results = ox.parse_query_results(json.dumps(answer).encode(), ox.QueryResultsFormat.JSON)
        except (ValueError, SyntaxError, AttributeError) as error:
            reason = f"the SPARQL store answered unreadable results: {error}"
            raise QueryRefused(422, "query", reason) from None
        header, serialised = _Results(self.max_results, self.max_result_bytes).serialise(results)
        return QueryResult(
            str(header["media_type"]), serialised, bool(header["truncated"]), int(header["count"])
        )

    def _graph(self, query: str) -> QueryResult:
        deadline = monotonic() + self.timeout_seconds
        lines: list[bytes] = []
        size = 0
        truncated = False
        with self._client.stream(
            "POST",
            self._endpoint,
            data={"query": query},
            headers={"Accept": f"{N_TRIPLES}, text/plain;q=0.9"},
        ) as response:
            if response.status_code >= 400:
                self._check_status(response, response.read()[:300])
            pending = b""
            for chunk in response.iter_bytes():
                if monotonic() > deadline:
                    raise QueryTimeout(self.timeout_seconds)
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    if not line.strip():
                        continue
                    if len(lines) >= self.max_results or size + len(line) + 1 > self.max_result_bytes:
                        truncated = True
                        break
                    lines.append(line)
                    size += len(line) + 1
                if truncated or len(pending) > self.max_result_bytes:
                    truncated = True
                    break
            if not truncated and pending.strip():
                lines.append(pending)
        # Re-read through Oxigraph: the node answers its own N-Triples, whatever the server wrote.
        try:
            triples = [
                ox.Triple(quad.subject, quad.predicate, quad.object)
                for quad in ox.parse(b"\n".join(lines), ox.RdfFormat.N_TRIPLES)
            ]
        except SyntaxError as error:
            reason = f"the SPARQL store answered unreadable N-Triples: {error}"
            raise QueryRefused(422, "query", reason) from None
        header, serialised = _Results(self.max_results, self.max_result_bytes).serialise(triples)
        cut = truncated or bool(header["truncated"])
        return QueryResult(N_TRIPLES, serialised, cut, int(header["count"]))

    def close(self) -> None:
        self._client.close()
