"""Reading one harvested page: its dataset records, its tombstones, its proofs and its next page.

Pure functions over a fetched body (no I/O). A page is any RDF document: a Sluis node's
``/catalogue/catalog`` page, a CKAN or piveau DCAT endpoint page, or a whole catalogue dump. Each
``dcat:Dataset`` / ``dcat:DatasetSeries`` in it becomes one record, cut exactly as a publish cuts
one (:func:`catalogue.publish.extract_record`). Paging follows Hydra: ``hydra:next`` (Hydra core,
what Sluis and piveau write) or ``hydra:nextPage`` (the older term CKAN's ckanext-dcat writes).
An HTML page is read as a directory listing (a static file server): its same-origin links to RDF
files are dumps to harvest.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from catalogue._turtle import parse_turtle_fast
from catalogue.harvest._digest import collapse_duplicate_blanks, record_digest
from catalogue.harvest._fetch import origin_of
from catalogue.ingest.compact import CompactRecord, Triple
from catalogue.publish import RECORD_TYPES, PublishError, extract_record, statements_by_subject
from catalogue.signing import canonical_statements, canonical_statements_of
from catalogue.store import CHANGE_DELETED
from vocab.errors import RdfSyntaxError, VocabError
from vocab.namespaces import ADMS, DCAT, DCT, FOAF, HYDRA, RDF, SLUIS
from vocab.rdfio import MEDIA_TYPE_BY_SUFFIX, N_TRIPLES, RDF_XML, TURTLE, normalize_media_type, parse_rdf

#: Links read from one directory listing.
MAX_LISTING_LINKS = 10_000
#: Suffixes of files a directory listing may hold, beyond those vocab.rdfio names.
_EXTRA_SUFFIXES = {".xml": RDF_XML, ".owl": RDF_XML}
_GENERIC_TYPES = frozenset({"", "text/plain", "application/octet-stream", "binary/octet-stream"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: The record-level proof a Sluis node lists beside each record of its catalogue page.
NODE_PROOF = SLUIS.proof
NEXT_TERMS = (HYDRA.next, HYDRA.nextPage)


class PageError(Exception):
    """A page that could not be read as RDF; the message names the URL (and line/column)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PageRecord:
    """One dataset found on a page, with what a harvester needs to decide what to do with it.

    Read by :mod:`._fastpage`, a record is its N-Triples ``text`` until something asks for its
    rdflib :attr:`graph` (only records whose digest changed are asked).
    """

    dataset: str
    digest: str
    """SHA-256 over the record's canonical N-Triples (:meth:`CompactRecord.canonical_ntriples`):
    unchanged records are skipped cheaply, whichever reader read them."""
    node_proof: Any = None
    """The proof the source node listed for the record (a Sluis node's own signature), if any."""
    catalog_record: str | None = None
    """The source's ``dcat:CatalogRecord`` for the dataset, when the page lists one."""
    given_graph: Graph | None = None
    text: str | None = None
    """The record's statements as N-Triples lines, as cut from the page (fast reader)."""
    base: str = ""
    given_statements: tuple[str, ...] | None = None
    canonical: tuple[str, ...] | None = None
    """The compact canonical N-Triples the digest was made of (fast reader)."""
    triples: tuple[Triple, ...] | None = None
    """The record's statements as N-Triples terms (fast reader): its proof is checked over
    their signer's form without building an rdflib graph."""

    @classmethod
    def of_text(
        cls,
        dataset: str,
        text: str,
        canonical: Sequence[str] | None,
        digest: str,
        base: str,
        proof: Any,
        catalog_record: str | None,
        triples: Sequence[Triple] | None = None,
    ) -> PageRecord:
        lines = None if canonical is None else tuple(canonical)
        terms = None if triples is None else tuple(triples)
        return cls(
            dataset, digest, proof, catalog_record, text=text, base=base, canonical=lines, triples=terms
        )

    @cached_property
    def proof_statements(self) -> tuple[str, ...]:
        """What a node proof is checked over: the signer's canonical lines
        (:func:`catalogue.signing.canonical_statements_of`, typed literals in rdflib's form as
        every signer writes them) made from the fast reader's terms, else :attr:`statements`
        (an rdflib graph: blank nodes that do not form trees, or the rdflib reader's records)."""
        if self.triples is not None:
            found = canonical_statements_of(self.triples)
            if found is not None:
                return tuple(found)
        return self.statements

    @property
    def subject(self) -> URIRef:
        return URIRef(self.dataset)

    @cached_property
    def graph(self) -> Graph:
        """The rdflib graph (``VocabError`` if its statements break a per-statement limit)."""
        if self.given_graph is not None:
            return self.given_graph
        text = self.text or ""
        fast = parse_turtle_fast(text, self.base, len(text) + 1)
        return fast if fast is not None else parse_rdf(text, N_TRIPLES, self.base)

    @cached_property
    def statements(self) -> tuple[str, ...]:
        """The canonical statements proofs are checked over (rdflib's form, as signers wrote)."""
        if self.given_statements is not None:
            return self.given_statements
        return tuple(canonical_statements(self.graph))

    def content(self) -> str:
        """The record as N-Triples, as received (what its source graph keeps)."""
        return self.text if self.text is not None else "\n".join(self.statements)


@dataclass(frozen=True)
class Page:
    url: str
    records: list[PageRecord] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    """Datasets the page lists as deleted (``adms:status`` … ``changetype/deleted``)."""
    next_url: str | None = None
    links: list[str] = field(default_factory=list)
    """For a directory listing: the RDF files it links to."""
    newest: str | None = None
    """The latest ``dct:modified`` of the page's catalogue records (the next incremental watermark)."""
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """(dataset or node, reason) for datasets on the page that could not be cut into a record."""


def media_type_of(url: str, declared: str) -> str:
    """The RDF syntax of a fetched body: the declared type, or the URL's suffix when it is generic."""
    declared = declared.split(";")[0].strip().lower()
    path = urlsplit(url).path.lower()
    suffix = path[path.rfind(".") :] if "." in path.rsplit("/", 1)[-1] else ""
    by_suffix = MEDIA_TYPE_BY_SUFFIX.get(suffix) or _EXTRA_SUFFIXES.get(suffix)
    if declared in _HTML_TYPES:
        return declared
    if declared in _GENERIC_TYPES and by_suffix:
        return by_suffix
    return declared or by_suffix or TURTLE


def parse_page(body: bytes, media_type: str, url: str, max_bytes: int) -> Graph:
    """The page as a graph, relative IRIs resolved against its URL; ``PageError`` when unreadable."""
    try:
        kind = normalize_media_type(media_type)
        if kind in (TURTLE, N_TRIPLES):  # N-Triples is Turtle: Oxigraph's parser takes both
            fast = parse_turtle_fast(body, url, max_bytes)
            if fast is not None:
                return fast
        return parse_rdf(body, kind, url, max_bytes)
    except RdfSyntaxError as error:
        where = f" at line {error.line}" if error.line is not None else ""
        where += f", column {error.column}" if error.column is not None and where else ""
        raise PageError("unparsable", f"{url} is not readable {media_type}{where}: {error.reason}") from None
    except VocabError as error:
        raise PageError(error.code, f"{url}: {error}") from None


def skolem_iri(source: str, document: str, record: Graph) -> str:
    """An IRI for a blank-node dataset, from its source, its document and its content.

    A blank node has no identity outside its document, and real documents hold several blank
    datasets with the same ``dct:identifier`` (fixtures, language variants), so the content
    decides: an edited blank-node dataset becomes a new record, and the old one disappears with
    the next complete listing of the source.
    """
    basis = "\n".join(canonical_statements(record))
    digest = hashlib.sha256(f"{source}\n{document}\n{basis}".encode()).hexdigest()[:32]
    return f"urn:sluis:harvested:{digest}"


def _rename(graph: Graph, old: Node, new: URIRef) -> Graph:
    renamed = Graph(bind_namespaces="none")
    for s, p, o in graph:
        renamed.add((new if s == old else s, p, new if o == old else o))
    return renamed


def _collapsed(record: Graph, subject: Node) -> tuple[Graph, Node]:
    """The record with identical sibling blank nodes kept once, as the fast reader keeps them
    (:func:`._digest.collapse_duplicate_blanks`), so both readers give the same record."""
    compact = CompactRecord.from_rdflib(record)
    if compact._tree_labels() is not None:
        return record, subject
    collapsed = collapse_duplicate_blanks(compact.triples)
    if collapsed is None:
        return record, subject
    _, renamed = collapsed
    kept: dict[str, Node] = {}

    def one(node: Node) -> Node:
        if not isinstance(node, BNode):
            return node
        return kept.setdefault(renamed[f"_:{node}"], node)  # each set's first blank node stands for it

    merged = Graph(bind_namespaces="none")
    for s, p, o in record:
        merged.add((one(s), p, one(o)))
    return merged, one(subject)


def _proofs_by_dataset(graph: Graph) -> dict[str, tuple[str, Any]]:
    proofs: dict[str, tuple[str, Any]] = {}
    for record, _, text in graph.triples((None, NODE_PROOF, None)):
        topic = graph.value(record, FOAF.primaryTopic)
        if isinstance(topic, URIRef) and isinstance(text, Literal):
            try:
                proofs[str(topic)] = (str(record), json.loads(str(text)))
            except ValueError:
                proofs[str(topic)] = (str(record), {"unreadable": str(text)[:200]})
    return proofs


def signed_record_url(catalog_record: str | None) -> str | None:
    """Where a Sluis node serves the signed form of a record it lists as ``catalog_record``.

    On a catalogue page several records share resources (a publisher, a landing page) and their
    statements merge, so a record cut from the page can hold more than its publisher signed; the
    signed form (``/catalogue/datasets/{id}/proof``) holds exactly the signed statements.
    """
    if not catalog_record or "/catalogue/records/" not in catalog_record:
        return None
    base, _, record_id = catalog_record.rpartition("/catalogue/records/")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", record_id):
        return None
    return f"{base}/catalogue/datasets/{record_id}/proof"


def read_signed_record(body: bytes, dataset: str) -> tuple[Graph, Any] | None:
    """The record graph and proof of a signed record document, or None when it is not one."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("id") != dataset:
        return None
    statements = document.get("statements")
    if not isinstance(statements, list) or not all(isinstance(line, str) for line in statements):
        return None
    try:
        graph = parse_rdf("\n".join(statements), N_TRIPLES, dataset)
    except VocabError:
        return None
    return graph, document.get("proof")


def read_page(graph: Graph, url: str, source: str) -> Page:
    """Records, tombstones, proofs, next link and watermark of one parsed page."""
    proofs = _proofs_by_dataset(graph)
    deleted: list[str] = []
    newest: str | None = None
    for record in set(graph.subjects(RDF.type, DCAT.CatalogRecord)):
        modified = graph.value(record, DCT.modified)
        if isinstance(modified, Literal):
            text = str(modified)
            newest = text if newest is None or text > newest else newest
        if graph.value(record, ADMS.status) == URIRef(CHANGE_DELETED):
            topic = graph.value(record, FOAF.primaryTopic)
            if isinstance(topic, URIRef):
                deleted.append(str(topic))
    records: list[PageRecord] = []
    rejected: list[tuple[str, str]] = []
    subjects = sorted({s for kind in RECORD_TYPES for s in graph.subjects(RDF.type, kind)}, key=str)
    by_subject = statements_by_subject(graph)
    for subject in subjects:
        try:
            record = extract_record(graph, subject, by_subject)
            record, subject = _collapsed(record, subject)
            if isinstance(subject, BNode):
                iri = URIRef(skolem_iri(source, url.split("?")[0], record))
                record, subject = _rename(record, subject, iri), iri
            statements = canonical_statements(record)  # refuses blank nodes too costly to label
        except PublishError as error:
            rejected.append((str(subject), error.detail))
            continue
        digest, _ = record_digest(CompactRecord.from_rdflib(record))
        catalog_record, proof = proofs.get(str(subject), (None, None))
        records.append(
            PageRecord(
                str(subject),
                digest,
                proof,
                catalog_record,
                given_graph=record,
                given_statements=tuple(statements),
            )
        )
    next_urls = sorted({str(o) for term in NEXT_TERMS for o in graph.objects(None, term)})
    next_url = urljoin(url, next_urls[0]) if next_urls else None
    return Page(url, records, sorted(set(deleted)), next_url, [], newest, rejected)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a" and len(self.hrefs) < MAX_LISTING_LINKS:
            self.hrefs.extend(value for name, value in attrs if name == "href" and value)


_RDF_FILE = re.compile(r"\.(ttl|rdf|xml|owl|nt|jsonld)$", re.IGNORECASE)


def read_listing(body: bytes, url: str) -> Page:
    """A directory listing: its same-origin links to RDF files, and to sub-folders (as pages)."""
    parser = _Links()
    parser.feed(body.decode("utf-8", errors="replace"))
    base = url if url.endswith("/") else url + "/"
    origin = origin_of(url)
    links: list[str] = []
    for href in parser.hrefs:
        target = urljoin(base, href).split("#", 1)[0].split("?", 1)[0]
        if origin_of(target) != origin or not target.startswith(base) or target == base:
            continue
        if _RDF_FILE.search(target) or target.endswith("/"):
            links.append(target)
    return Page(url, links=sorted(set(links)))


def rdf_suffixes() -> Sequence[str]:
    return sorted({*MEDIA_TYPE_BY_SUFFIX, *_EXTRA_SUFFIXES})
