"""Offline JSON-LD: the one document loader, and expand / compact / RDF conversion built on it.

Every JSON-LD operation in Sluis goes through this module so that one rule holds everywhere:
contexts come from the files in :mod:`vocab.contexts`, and a context we do not ship is an
error (:class:`~vocab.errors.UnknownContextError`), never a download. The loader is registered
as pyld's default on import *and* passed explicitly to every pyld call, together with an explicit
base IRI, so nothing depends on global state another library might change.

RDF conversion goes JSON-LD -> pyld's RDF dataset -> rdflib terms directly. rdflib's own JSON-LD
parser can fetch remote contexts, so on import this module also replaces it: after
``import vocab.jsonld``, ``Graph().parse(data=..., format="json-ld")`` anywhere in the process goes
through this offline path too.

Documents are checked for size, nesting depth and number of values before processing, because
the JSON-LD algorithms are recursive and quadratic in places.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from cachetools import LRUCache
from pyld import jsonld as _pyld
from pyld.context_resolver import ContextResolver
from rdflib import BNode, Dataset, Graph, Literal, URIRef, plugin
from rdflib.parser import InputSource, Parser
from rdflib.term import Node

from vocab.contexts import (
    CREDENTIALS_V2_CONTEXT,
    DCAT_AP_CONTEXT,
    DID_V1_CONTEXT,
    DSP_CONTEXT,
    DSP_ODRL_PROFILE_CONTEXT,
    MULTIKEY_V1_CONTEXT,
    ODRL_CONTEXT,
    SLUIS_CONTEXT,
    canonical_url,
    context_document,
    known_context_urls,
)
from vocab.errors import (
    DocumentTooDeepError,
    DocumentTooLargeError,
    JsonLdError,
    RdfSyntaxError,
    UnknownContextError,
    VocabError,
)

__all__ = [
    "CREDENTIALS_V2_CONTEXT",
    "DCAT_AP_CONTEXT",
    "DID_V1_CONTEXT",
    "DSP_CONTEXT",
    "DSP_ODRL_PROFILE_CONTEXT",
    "MAX_DOCUMENT_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_JSON_VALUES",
    "MULTIKEY_V1_CONTEXT",
    "ODRL_CONTEXT",
    "SLUIS_CONTEXT",
    "OfflineJsonLdParser",
    "check_json_limits",
    "compact",
    "document_loader",
    "expand",
    "from_graph",
    "is_dsp_compact",
    "known_context_urls",
    "parse_json",
    "to_dataset",
    "to_graph",
]

JSON_LD_MEDIA_TYPE: Final = "application/ld+json"

MAX_DOCUMENT_BYTES: Final = 10 * 1024 * 1024
"""Largest JSON-LD text we parse (10 MiB): a DCAT-AP record or DSP message is a few KiB; a whole
catalogue page stays well below this. Bigger input is refused before parsing."""

MAX_JSON_DEPTH: Final = 64
"""Deepest nesting of objects/arrays we accept. Real DSP messages and DCAT-AP records nest < 15
levels; pyld's algorithms use several Python frames per level, so this keeps far from the
interpreter's recursion limit."""

MAX_JSON_VALUES: Final = 1_000_000
"""Most JSON values (objects, arrays, scalars) in one document handed in as Python data: about
what a 10 MiB text can hold, so in-memory documents are bounded like parsed ones."""

_CONTEXT_CACHE_SIZE: Final = 256
"""Resolved contexts kept between calls: our few remote contexts plus recent inline ones."""

_RESOLVED_CONTEXTS: LRUCache[str, Any] = LRUCache(maxsize=_CONTEXT_CACHE_SIZE)
"""Our own cache of resolved contexts. pyld's module-level cache is shared by every loader in the
process; keeping ours separate means a different loader (e.g. a test's) can never see or seed
what our loader resolved, and vice versa."""

_PYLD_LOCK: Final = threading.RLock()
"""Serialises pyld calls. pyld keeps unsynchronised LRU caches (ours above and its own inverse-context
cache) that threads of a web server would otherwise update concurrently; pyld is pure Python,
so under the GIL the lock costs next to no throughput."""

_XSD_STRING: Final = "http://www.w3.org/2001/XMLSchema#string"
_RDF_LANG_STRING: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"


# --- the document loader -----------------------------------------------------------------------


def document_loader(url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """pyld document loader that answers only from the contexts in :mod:`vocab.contexts`.

    Returns a pyld RemoteDocument dict. Any other URL raises :class:`UnknownContextError`
    naming it; there is no network fallback.
    """
    del options  # headers and profiles do not matter: nothing is requested from anywhere
    document = context_document(url)
    if document is None:
        raise UnknownContextError(url)
    return {
        "contextUrl": None,
        "documentUrl": canonical_url(url),
        "document": document,
        "contentType": JSON_LD_MEDIA_TYPE,
        # "static" lets pyld keep the resolved context in our cache across calls.
        "tag": "static",
    }


_pyld.set_document_loader(document_loader)


def _isolated_loader(url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The same answers as :func:`document_loader`, without letting pyld cache them across calls."""
    remote = document_loader(url, options)
    del remote["tag"]
    return remote


def _options(base: str, uses_import: bool = False) -> dict[str, Any]:
    """Options for one pyld call: our loader, a context resolver, an explicit base.

    pyld merges an ``@import``-ed context into the cached copy of the imported document in place
    (pyld 3.3), which would let one document change what a shared context means for every later
    call. Our own contexts do not use ``@import``; a document whose inline context does is
    processed with a resolver of its own, whose cache dies with the call.
    """
    if uses_import:
        resolver = ContextResolver({}, _isolated_loader)
        loader = _isolated_loader
    else:
        resolver = ContextResolver(_RESOLVED_CONTEXTS, document_loader)
        loader = document_loader
    return {
        "base": base,
        "documentLoader": loader,
        "contextResolver": resolver,
        "processingMode": "json-ld-1.1",
    }


# --- limits and JSON parsing -------------------------------------------------------------------


class _NonFiniteNumberError(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NonFiniteNumberError(f"{name} is not a JSON number")


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of character ``index`` in ``text``."""
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


def decode_text(data: bytes | str, media_type: str) -> str:
    """UTF-8 text of ``data``, or :class:`RdfSyntaxError` at the first undecodable byte."""
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8-sig", errors="replace")
        line, column = _position(prefix, len(prefix))
        raise RdfSyntaxError(
            f"not UTF-8 text ({exc.reason})", line=line, column=column, media_type=media_type
        ) from None


def check_size(data: bytes | str, max_bytes: int, what: str = "document") -> None:
    """Refuse ``data`` before any parsing when it is larger than ``max_bytes``."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8"))
    if size > max_bytes:
        raise DocumentTooLargeError(size, max_bytes, what)


def parse_json(
    data: bytes | str, max_bytes: int = MAX_DOCUMENT_BYTES, media_type: str = JSON_LD_MEDIA_TYPE
) -> Any:
    """Parse JSON text within our limits.

    Size is checked before parsing; syntax errors become :class:`RdfSyntaxError` with line and
    column; nesting beyond :data:`MAX_JSON_DEPTH` is :class:`DocumentTooDeepError`.
    """
    check_size(data, max_bytes)
    text = decode_text(data, media_type)
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise RdfSyntaxError(exc.msg, line=exc.lineno, column=exc.colno, media_type=media_type) from None
    except _NonFiniteNumberError as exc:
        raise RdfSyntaxError(str(exc), media_type=media_type) from None
    except RecursionError:
        raise DocumentTooDeepError(MAX_JSON_DEPTH, MAX_JSON_DEPTH) from None
    return value


def check_json_limits(value: Any, max_depth: int = MAX_JSON_DEPTH, max_values: int = MAX_JSON_VALUES) -> None:
    """Refuse JSON data nested deeper than ``max_depth`` or holding more than ``max_values`` values.

    Iterative, so the check itself cannot hit the recursion limit.
    """
    _scan_json(value, max_depth, max_values)


def _scan_json(value: Any, max_depth: int, max_values: int) -> bool:
    """Enforce the limits; return whether any object has an ``@import`` entry (see :func:`_options`)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    has_import = False
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > max_values:
            raise DocumentTooLargeError(seen, max_values, "JSON document (number of values)")
        if isinstance(item, Mapping):
            if depth > max_depth:
                raise DocumentTooDeepError(depth, max_depth)
            has_import = has_import or "@import" in item
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            if depth > max_depth:
                raise DocumentTooDeepError(depth, max_depth)
            stack.extend((child, depth + 1) for child in item)
    return has_import


def _as_input(doc: Any) -> tuple[Any, bool]:
    """The JSON data pyld should process, and whether it uses ``@import``.

    Text is parsed here, so pyld never mistakes a string for a URL to load.
    """
    if isinstance(doc, bytes | str):
        data = parse_json(doc)
    elif isinstance(doc, Mapping | list):
        data = doc
    else:
        raise JsonLdError(f"a JSON-LD document is a JSON object or array, not {type(doc).__name__}")
    return data, _scan_json(data, MAX_JSON_DEPTH, MAX_JSON_VALUES)


# --- error translation -------------------------------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        nested = getattr(current, "cause", None)
        current = current.__cause__ or current.__context__ or (
            nested if isinstance(nested, BaseException) else None
        )


def _translate(exc: Exception) -> VocabError:
    """Our error for anything pyld raised: the root cause if it is ours, else invalid JSON-LD."""
    for cause in _causes(exc):
        if isinstance(cause, VocabError):
            return cause
        if isinstance(cause, RecursionError):
            return DocumentTooDeepError(MAX_JSON_DEPTH, MAX_JSON_DEPTH)
    messages: list[str] = []
    for cause in _causes(exc):
        if isinstance(cause, _pyld.JsonLdError):
            text = str(cause.args[0]) if cause.args else cause.type
            if cause.code:
                text += f" ({cause.code})"
        else:
            text = f"{type(cause).__name__}: {cause}"
        if text not in messages:
            messages.append(text)
    return JsonLdError("invalid JSON-LD: " + "; ".join(messages))


# --- public operations -------------------------------------------------------------------------


def expand(doc: Any, base: str) -> list[dict[str, Any]]:
    """Expanded form of ``doc`` (a JSON object/array, or JSON text) resolved against ``base``."""
    data, uses_import = _as_input(doc)
    try:
        with _PYLD_LOCK:
            expanded: list[dict[str, Any]] = _pyld.expand(data, _options(base, uses_import))
    except VocabError:
        raise
    except Exception as exc:
        raise _translate(exc) from exc
    return expanded


def compact(doc: Any, context: str | Mapping[str, Any] | Sequence[Any], base: str) -> dict[str, Any]:
    """``doc`` compacted with ``context`` (a known context URL, a context object, or a list).

    ``base`` is used both to expand ``doc`` and as the compaction base, so IRIs under it come out
    relative; pass ``""`` to keep every IRI absolute.
    """
    data, uses_import = _as_input(doc)
    ctx: Any = dict(context) if isinstance(context, Mapping) else context
    if isinstance(ctx, dict) and "@context" in ctx:
        ctx = ctx["@context"]
    uses_import = uses_import or _scan_json(ctx, MAX_JSON_DEPTH, MAX_JSON_VALUES)
    try:
        with _PYLD_LOCK:
            compacted: dict[str, Any] = _pyld.compact(data, ctx, _options(base, uses_import))
    except VocabError:
        raise
    except Exception as exc:
        raise _translate(exc) from exc
    return compacted


def _to_rdf_dataset(doc: Any, base: str) -> dict[str, list[dict[str, Any]]]:
    data, uses_import = _as_input(doc)
    try:
        with _PYLD_LOCK:
            dataset: dict[str, list[dict[str, Any]]] = _pyld.to_rdf(data, _options(base, uses_import))
    except VocabError:
        raise
    except Exception as exc:
        raise _translate(exc) from exc
    return dataset


def _term(node: Mapping[str, Any], blanks: dict[str, BNode]) -> Node:
    kind = node["type"]
    value = node["value"]
    if kind == "IRI":
        return URIRef(value)
    if kind == "blank node":
        label = value[2:] if value.startswith("_:") else value
        if label not in blanks:
            blanks[label] = BNode()
        return blanks[label]
    datatype = node.get("datatype")
    language = node.get("language")
    if language is not None or datatype == _RDF_LANG_STRING:
        return Literal(value, lang=language)
    if datatype is None or datatype == _XSD_STRING:
        return Literal(value)
    return Literal(value, datatype=URIRef(datatype))


def _triples(
    dataset: Mapping[str, list[dict[str, Any]]], blanks: dict[str, BNode]
) -> Iterator[tuple[str, tuple[Node, Node, Node]]]:
    for graph_name, triples in dataset.items():
        for triple in triples:
            yield graph_name, (
                _term(triple["subject"], blanks),
                _term(triple["predicate"], blanks),
                _term(triple["object"], blanks),
            )


def to_graph(doc: Any, base: str, graph: Graph | None = None) -> Graph:
    """The RDF triples of ``doc`` as an rdflib Graph, without rdflib ever seeing JSON-LD.

    Triples of named graphs (e.g. a Data Integrity proof under ``@container: @graph``) are merged
    into the one returned graph; use :func:`to_dataset` when graph names matter. Blank nodes are
    fresh for every call, so graphs of two documents never share a blank node by accident.
    ``graph`` is the graph to add them to (a new one when None).
    """
    graph = Graph() if graph is None else graph
    blanks: dict[str, BNode] = {}
    for _name, triple in _triples(_to_rdf_dataset(doc, base), blanks):
        graph.add(triple)
    return graph


def to_dataset(doc: Any, base: str) -> Dataset:
    """The RDF dataset of ``doc`` (default graph plus named graphs) as an rdflib Dataset."""
    dataset = Dataset()
    blanks: dict[str, BNode] = {}
    for name, (s, p, o) in _triples(_to_rdf_dataset(doc, base), blanks):
        if name == "@default":
            dataset.default_graph.add((s, p, o))
        else:
            kind = "blank node" if name.startswith("_:") else "IRI"
            graph_id = _term({"type": kind, "value": name}, blanks)
            dataset.add((s, p, o, graph_id))  # type: ignore[arg-type]
    return dataset


def _pyld_term(term: Node) -> dict[str, Any]:
    if isinstance(term, URIRef):
        return {"type": "IRI", "value": str(term)}
    if isinstance(term, BNode):
        return {"type": "blank node", "value": f"_:{term}"}
    if isinstance(term, Literal):
        if term.language:
            return {
                "type": "literal",
                "value": str(term),
                "datatype": _RDF_LANG_STRING,
                "language": term.language,
            }
        datatype = str(term.datatype) if term.datatype is not None else _XSD_STRING
        return {"type": "literal", "value": str(term), "datatype": datatype}
    raise JsonLdError(f"cannot express RDF term {term!r} in JSON-LD")


def from_graph(
    graph: Graph, context: str | Mapping[str, Any] | Sequence[Any] | None = None
) -> dict[str, Any]:
    """JSON-LD for ``graph``, compacted with ``context`` (``None``: expanded form under ``@graph``).

    Literals keep their datatypes (no conversion to JSON numbers/booleans), so the round trip
    ``to_graph(from_graph(g, ctx))`` gives back a graph isomorphic to ``g``. Named graphs of a
    Dataset are kept.
    """
    dataset: dict[str, list[dict[str, Any]]] = {"@default": []}
    if isinstance(graph, Dataset):
        quads: Iterator[tuple[Node, Node, Node, Any]] = graph.quads((None, None, None, None))
        for s, p, o, g in quads:
            name = "@default"
            identifier = getattr(g, "identifier", g)
            if identifier is not None and identifier != graph.default_graph.identifier:
                name = _pyld_term(identifier)["value"]
            dataset.setdefault(name, []).append(
                {"subject": _pyld_term(s), "predicate": _pyld_term(p), "object": _pyld_term(o)}
            )
    else:
        for s, p, o in graph:
            dataset["@default"].append(
                {"subject": _pyld_term(s), "predicate": _pyld_term(p), "object": _pyld_term(o)}
            )
    try:
        with _PYLD_LOCK:
            expanded = _pyld.from_rdf(dataset, {"useNativeTypes": False, "useRdfType": False})
    except Exception as exc:
        raise _translate(exc) from exc
    if context is None:
        return {"@graph": expanded}
    return compact(expanded, context, base="")


def is_dsp_compact(doc: Any) -> bool:
    """Whether ``doc`` is in the DSP 2025-1 compact form, so a connector may skip expansion.

    True only when the top-level ``@context`` is exactly our DSP context (the URL, alone or as the
    only list entry) and no nested object carries a ``@context`` of its own: then every term means
    what the DSP context says and the message can be checked against the DSP JSON Schemas instead
    of being expanded. Anything else (other contexts, embedded contexts, too deep) -> False, and
    the caller falls back to full JSON-LD processing.
    """
    if not isinstance(doc, Mapping):
        return False
    ctx = doc.get("@context")
    if not (ctx == DSP_CONTEXT or (isinstance(ctx, list) and len(ctx) == 1 and ctx[0] == DSP_CONTEXT)):
        return False
    stack: list[tuple[Any, int]] = [(value, 2) for key, value in doc.items() if key != "@context"]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            if depth > MAX_JSON_DEPTH or "@context" in item:
                return False
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            if depth > MAX_JSON_DEPTH:
                return False
            stack.extend((child, depth + 1) for child in item)
    return True


# --- rdflib integration ---------------------------------------------------------------------------


class OfflineJsonLdParser(Parser):
    """rdflib parser plugin for JSON-LD that uses only our contexts (replaces rdflib's own).

    The base IRI is the parse call's ``publicID`` (or the source's system id). Triples of named
    graphs are added to the target graph, as :func:`to_graph` does.
    """

    def parse(self, source: InputSource, sink: Graph, **kwargs: Any) -> None:
        stream: Any = source.getCharacterStream() or source.getByteStream()
        if stream is None:
            raise JsonLdError("nothing to parse: the JSON-LD source has no content")
        data = stream.read(MAX_DOCUMENT_BYTES + 1)
        check_size(data, MAX_DOCUMENT_BYTES)
        base = kwargs.get("base") or source.getPublicId() or source.getSystemId() or ""
        for _name, triple in _triples(_to_rdf_dataset(data, str(base)), {}):
            sink.add(triple)


for _name in ("json-ld", "application/ld+json"):
    plugin.register(_name, Parser, __name__, OfflineJsonLdParser.__name__)
