"""The process that runs SPARQL queries: no network, a memory limit, killed when it runs too long.

Started by :class:`catalogue.store.sparql.SparqlRunner` as ``python -m catalogue.store._sparql_worker``
and spoken to over its stdin/stdout in frames (4-byte big-endian length, then the bytes). It
answers one query at a time:

1. the query is parsed and its algebra checked (:func:`catalogue.store.sparql_check.check_query`),
   then rewritten to read the record graphs only (:func:`catalogue.store.sparql_scope.scoped_query`);
2. it runs on a read-only snapshot of the store (a RocksDB checkpoint the node made for it, so
   nothing writes the files while this process reads them);
3. the results are serialised with a cap in rows *and* bytes.

Why a process: a query the engine cannot survive (native stack overflow, allocation failure) ends
this process, not the node; a query past its time limit is ended with SIGKILL, so it never runs on
after its answer; its memory is returned to the system with the process. The address-space limit
(``RLIMIT_AS``) is set after the store is open (RocksDB reserves much address space it never
touches), to what is in use then plus the query budget. The process dies with its parent
(``PR_SET_PDEATHSIG``) and cannot open IP sockets (:mod:`catalogue.store._no_network`).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
from typing import Any, Final

from catalogue.store._no_network import deny_network
from catalogue.store._sparql_protocol import (
    MAX_REQUEST_BYTES,
    N_TRIPLES,
    SPARQL_RESULTS_JSON,
    read_frame,
    write_frame,
)

_PR_SET_PDEATHSIG: Final = 1
_XSD_STRING: Final = "http://www.w3.org/2001/XMLSchema#string"


def _address_space() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _set_memory_budget(budget: int | None) -> None:
    """Soft ``RLIMIT_AS`` = what is mapped now + ``budget`` (None lifts it, to open a store)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if budget is None:
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        return
    wanted = _address_space() + budget
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))


class _Results:
    """Serialises results within ``max_rows`` and ``max_bytes``."""

    def __init__(self, max_rows: int, max_bytes: int) -> None:
        self.max_rows = max_rows
        self.max_bytes = max_bytes

    @staticmethod
    def term_json(term: Any) -> dict[str, str]:
        import pyoxigraph as ox

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

    def serialise(self, results: Any) -> tuple[dict[str, Any], bytes]:
        import pyoxigraph as ox

        if isinstance(results, ox.QueryBoolean):
            body = json.dumps({"head": {}, "boolean": bool(results)}).encode()
            return {"media_type": SPARQL_RESULTS_JSON, "truncated": False, "count": 1}, body
        if isinstance(results, ox.QuerySolutions):
            names = [variable.value for variable in results.variables]
            opening = json.dumps({"head": {"vars": names}, "results": {"bindings": []}}).encode()
            # split at the empty bindings list: rows go between its brackets
            head, tail = opening[: opening.rindex(b"[") + 1], opening[opening.rindex(b"]") :]
            parts: list[bytes] = []
            size = len(head) + len(tail)
            truncated = False
            for solution in results:
                if len(parts) >= self.max_rows:
                    truncated = True
                    break
                row = {name: self.term_json(value) for name in names if (value := solution[name]) is not None}
                encoded = json.dumps(row).encode()
                if size + len(encoded) + 1 > self.max_bytes:
                    truncated = True
                    break
                parts.append(encoded)
                size += len(encoded) + 1
            body = head + b",".join(parts) + tail
            return {"media_type": SPARQL_RESULTS_JSON, "truncated": truncated, "count": len(parts)}, body
        lines: list[bytes] = []
        size = 0
        truncated = False
        for triple in results:
            if len(lines) >= self.max_rows:
                truncated = True
                break
            encoded = f"{triple} .\n".encode()
            if size + len(encoded) > self.max_bytes:
                truncated = True
                break
            lines.append(encoded)
            size += len(encoded)
        return {"media_type": N_TRIPLES, "truncated": truncated, "count": len(lines)}, b"".join(lines)


def _refused(code: int, reason: str) -> tuple[dict[str, Any], bytes]:
    return {"status": "refused", "code": code, "field": "query", "reason": reason}, b""


def _answer(request: dict[str, Any], stores: dict[str, Any], budget: int) -> tuple[dict[str, Any], bytes]:
    import pyoxigraph as ox

    from catalogue.store.sparql_check import QueryRefused, check_query
    from catalogue.store.sparql_scope import scoped_query

    try:
        query = check_query(str(request["query"])).text  # run what was checked, not what was sent
        query = scoped_query(query)  # ... reading the public graphs only (catalogue.store.sparql_scope)
    except QueryRefused as refusal:
        return _refused(refusal.status, refusal.reason)
    snapshot = str(request["snapshot"])
    store = stores.get(snapshot)
    if store is None:
        stores.clear()  # the older snapshot is closed before the new one is opened
        _set_memory_budget(None)
        store = stores[snapshot] = ox.Store.read_only(snapshot)
        _set_memory_budget(budget)
    results = _Results(int(request["max_rows"]), int(request["max_bytes"]))
    try:
        # the scoped query names its graphs; the default graph (empty) is not the union of all
        answer = store.query(query, use_default_graph_as_union=False)
        header, body = results.serialise(answer)
    except SyntaxError as error:
        return _refused(400, f"SPARQL syntax error: {error}")
    except MemoryError:
        return _refused(422, f"the query needed more than its memory limit of {budget // (1024 * 1024)} MiB")
    except OSError as error:
        return _refused(422, f"the query failed: {error}")
    return {"status": "ok", **header}, body


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if sys.platform.startswith("linux"):
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    isolated = deny_network()
    budget = int(sys.argv[1])
    source = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to the log, never into the protocol
    import pyoxigraph  # noqa: F401  (loaded before the ready signal: the query's clock starts after)

    import catalogue.store.sparql_check  # noqa: F401
    from catalogue.store.sparql_scope import scoped_query

    scoped_query("ASK { ?s ?p ?o }")  # the parser's first use is slow: not on a caller's clock

    write_frame(out, json.dumps({"ready": True, "network_denied": isolated}).encode())
    stores: dict[str, Any] = {}
    while True:
        frame = read_frame(source, MAX_REQUEST_BYTES)
        if frame is None:
            return
        header, body = _answer(json.loads(frame), stores, budget)
        write_frame(out, json.dumps(header).encode())
        write_frame(out, body)


if __name__ == "__main__":
    main()
