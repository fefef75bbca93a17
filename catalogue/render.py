"""A stored record as RDF bytes: Oxigraph's serialisers over the stored statements, cached.

Reads are anonymous, and a record may hold up to 50,000 statements, so what one read costs is
what anyone can make the node spend. Parsing the stored N-Triples with rdflib and serialising
with rdflib's Turtle writer (which sorts every literal) took seconds per read of a large record.
Here the stored text is read by Oxigraph's native parser and written by its native serialisers
(Turtle, N-Triples, RDF/XML); only JSON-LD, compacted with the DCAT-AP context, still goes
through the JSON-LD algorithms. Each rendering is kept in a byte-bounded LRU cache keyed by the
record version: a stored version never changes, so a new version has a new key and is never
served stale, and a repeated read costs a dictionary look-up.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from catalogue.store import RecordVersion
from vocab import jsonld
from vocab.jsonld import DCAT_AP_CONTEXT
from vocab.namespaces import PREFIXES
from vocab.rdfio import JSON_LD, N_TRIPLES, RDF_XML, TURTLE, serialize

MAX_CACHE_BYTES: Final = 64 * 1024 * 1024
"""Rendered bytes kept (64 MiB): a few hundred typical records, or a dozen of the largest."""

_OXIGRAPH_FORMAT: Final = {
    TURTLE: ox.RdfFormat.TURTLE,
    N_TRIPLES: ox.RdfFormat.N_TRIPLES,
    RDF_XML: ox.RdfFormat.RDF_XML,
}
_PREFIXES: Final = {prefix: str(namespace) for prefix, namespace in PREFIXES.items()}
# The characters XML 1.0 cannot carry, even escaped; publishing refuses them, so a stored record
# holding one came from elsewhere and is not written as RDF/XML (it would not be XML).
_NOT_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_BLANK_PREFIX: Final = "t"
_XSD_STRING: Final = "http://www.w3.org/2001/XMLSchema#string"
_RDF_TYPE: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


class NotXmlError(ValueError):
    """The record holds a character XML cannot carry, so it has no RDF/XML form."""


@dataclass(frozen=True)
class CacheKey:
    """One rendering: the version (with what identifies its stored text) and the media type."""

    record_id: str
    version: int
    modified: str
    content_chars: int
    quality_chars: int
    media_type: str


class ByteLru:
    """A thread-safe LRU map of bytes, bounded by the sum of the values' lengths."""

    def __init__(self, max_bytes: int = MAX_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[CacheKey, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: CacheKey, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return  # one answer larger than the whole cache is served, not kept
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= len(old)
            self._items[key] = value
            self.size += len(value)
            while self.size > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self.size -= len(evicted)

    def __len__(self) -> int:
        return len(self._items)


def stored_triples(*texts: str) -> list[ox.Triple]:
    """The statements of N-Triples ``texts`` (a record and its quality statements, or a page's
    listing and records), each once, grouped by subject.

    The texts were written separately, so each one's blank nodes are renamed apart from the
    others' (the first keeps its labels). Sorting by subject and property lets the Turtle and
    RDF/XML writers group a subject's statements under one heading.
    """
    seen: dict[ox.Triple, None] = {}
    for number, text in enumerate(texts):
        prefix = f"{_BLANK_PREFIX}{number}x" if number else ""
        for quad in ox.parse(text.encode("utf-8"), ox.RdfFormat.N_TRIPLES):
            subject, value = quad.subject, quad.object
            if prefix and isinstance(subject, ox.BlankNode):
                subject = ox.BlankNode(prefix + subject.value)
            if prefix and isinstance(value, ox.BlankNode):
                value = ox.BlankNode(prefix + value.value)
            seen[ox.Triple(subject, quad.predicate, value)] = None
    return sorted(seen, key=lambda t: (str(t.subject), str(t.predicate)))


def write_rdf(triples: Iterable[ox.Triple], media_type: str) -> bytes:
    """Turtle, N-Triples or RDF/XML of ``triples`` with our usual prefixes (Oxigraph's writers)."""
    kind = _OXIGRAPH_FORMAT[media_type]
    prefixes = _PREFIXES if media_type != N_TRIPLES else None
    body = ox.serialize(triples, format=kind, prefixes=prefixes)
    return body if body is not None else b""


class RecordRenderer:
    """Renders stored record versions in an RDF syntax, each (version, syntax) at most once.

    ``quality_of`` gives the DQV statements of a record stored without them (the bulk path),
    which are then made on the first read. ``renders`` counts the renderings actually done, so
    a test can tell a cached answer from a fresh one without measuring time.
    """

    def __init__(
        self, quality_of: Callable[[RecordVersion], Graph], max_bytes: int = MAX_CACHE_BYTES
    ) -> None:
        self._quality_of = quality_of
        self.cache = ByteLru(max_bytes)
        self.renders = 0
        self._count_lock = threading.Lock()

    def body(self, record: RecordVersion, media_type: str) -> bytes:
        """The record (with its quality statements) in ``media_type``; raises :class:`NotXmlError`."""
        return self.cached(record, media_type, lambda: self._render(record, media_type))

    def cached(self, record: RecordVersion, kind: str, make: Callable[[], bytes]) -> bytes:
        """``make()`` for this version and ``kind`` (a media type, or another rendering such as
        the signed document), made once and then served from the cache."""
        key = CacheKey(
            record.record_id,
            record.version,
            record.modified.isoformat(),
            len(record.content),
            len(record.quality_content or ""),
            kind,
        )
        found = self.cache.get(key)
        if found is not None:
            return found
        made = make()
        with self._count_lock:
            self.renders += 1
        self.cache.put(key, made)
        return made

    def _render(self, record: RecordVersion, media_type: str) -> bytes:
        quality = record.quality_content or ""
        if not quality:
            quality = serialize(self._quality_of(record), N_TRIPLES).decode("utf-8")
        triples = stored_triples(record.content, quality)
        if media_type == JSON_LD:
            return _json_ld(triples)
        if media_type == RDF_XML and not _xml_can_carry(triples):
            raise NotXmlError("the record holds a character XML cannot carry")
        return write_rdf(triples, media_type)


def _json_ld(triples: Iterable[ox.Triple]) -> bytes:
    """JSON-LD compacted with the DCAT-AP context.

    Oxigraph writes the expanded form (native speed); ``rdf:type`` to an IRI or blank node
    becomes ``@type`` as the JSON-LD from-RDF algorithm makes it, then the JSON-LD algorithms
    compact it, which is what the answer has always been.
    """
    written = ox.serialize(triples, format=ox.RdfFormat.JSON_LD)
    expanded = json.loads(written) if written else []
    for node in expanded:
        values = node.pop(_RDF_TYPE, [])
        types = [value["@id"] for value in values if set(value) == {"@id"}]
        others = [value for value in values if set(value) != {"@id"}]
        if types:
            node["@type"] = types
        if others:
            node[_RDF_TYPE] = others
    document = jsonld.compact(expanded, DCAT_AP_CONTEXT, base="")
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


def _xml_can_carry(triples: Iterable[ox.Triple]) -> bool:
    for triple in triples:
        for term in (triple.subject, triple.predicate, triple.object):
            if isinstance(term, ox.NamedNode | ox.Literal) and _NOT_XML.search(term.value):
                return False
    return True


MAX_PAGE_STATEMENTS: Final = 20_000
"""Most statements one ``/catalog`` page holds in Turtle, RDF/XML or JSON-LD. The listing of a
page of records (a handful of statements each, at most 1,000 records) always fits; records are
inlined in page order while they fit, the rest are listed with a link to their own document.
N-Triples pages are served as the stored text, a string join, and are not bounded by this."""


def statements_in(content: str) -> int:
    """How many statements a stored N-Triples text holds (one a line), without parsing it."""
    return content.count("\n") + (0 if content.endswith("\n") or not content else 1)


def fits_as_xml(content: str) -> bool:
    """Whether the stored text has an RDF/XML form (no character XML cannot carry)."""
    return _xml_can_carry(stored_triples(content))


def write_page(listing: Graph, contents: Iterable[str], media_type: str) -> bytes:
    """A ``/catalog`` page: the listing (an rdflib graph) with the inlined records' stored texts.

    Written like a single record, by Oxigraph's writers (JSON-LD then compacted); every record's
    blank nodes stay its own.
    """
    triples = stored_triples(serialize(listing, N_TRIPLES).decode("utf-8"), *contents)
    if media_type == JSON_LD:
        return _json_ld(triples)
    return write_rdf(triples, media_type)


class RdflibTerms:
    """Oxigraph terms as rdflib terms (one rdflib blank node per stored label), without the
    rdflib N-Triples parser, which costs ~30 us a statement."""

    def __init__(self) -> None:
        self._blank: dict[str, BNode] = {}

    def node(self, term: ox.NamedNode | ox.BlankNode) -> URIRef | BNode:
        if isinstance(term, ox.NamedNode):
            return URIRef(term.value)
        found = self._blank.get(term.value)
        if found is None:
            found = self._blank[term.value] = BNode()
        return found

    def value(self, term: ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple) -> Node:
        if isinstance(term, ox.Literal):
            if term.language:
                return Literal(term.value, lang=term.language)
            if term.datatype.value == _XSD_STRING:
                return Literal(term.value)
            return Literal(term.value, datatype=URIRef(term.datatype.value))
        if isinstance(term, ox.Triple):
            return Literal(str(term))  # RDF 1.2 triple terms are shown as text, never walked
        return self.node(term)
