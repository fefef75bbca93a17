"""Reading a Turtle or N-Triples page without rdflib: records cut, digested and left as text.

Most records on a page a harvester reads again are unchanged, and for those it needs only the
dataset IRI and the digest of its statements. Building rdflib graphs for a page of a thousand
records cost far more than everything else done with them (``bench/bench_harvest.py``), so
this path parses the page with Oxigraph into a :class:`catalogue.ingest.compact.CompactRecord`,
cuts each record from its subject index exactly as :func:`catalogue.publish.extract_record`
cuts one (the same boundaries and limits), and digests its canonical N-Triples. A record whose
digest changed gets its rdflib graph only then (:attr:`PageRecord.graph`), by re-reading its own
statements through the same fast Turtle reader the page would have gone through, so what is
proof-checked and published is what the rdflib path gives.

It takes only what that reader takes (:func:`catalogue._turtle.parse_turtle_fast`'s rules) and
answers None for anything else, which then goes through :func:`._pages.read_page`.
"""

from __future__ import annotations

import json
from typing import Final
from urllib.parse import urljoin

import pyoxigraph as ox

from catalogue._turtle import _needs_rdflib
from catalogue.harvest._digest import collapse_page_blanks, record_digest
from catalogue.harvest._pages import NEXT_TERMS, NODE_PROOF, Page, PageRecord, skolem_iri
from catalogue.ingest.compact import RDF_TYPE, CompactRecord, Triple
from catalogue.ingest.terms import TermError, is_blank, is_iri, literal_parts, text_of
from catalogue.publish import MAX_DISTRIBUTIONS, MAX_RECORD_STATEMENTS, RECORD_TYPES
from catalogue.store import CHANGE_DELETED
from vocab.namespaces import ADMS, DCAT, DCT, FOAF
from vocab.rdfio import DEFAULT_MAX_STATEMENTS, N_TRIPLES, TURTLE, normalize_media_type

_BOUNDARIES: Final = frozenset(
    f"<{kind}>" for kind in (DCAT.Dataset, DCAT.DatasetSeries, DCAT.Catalog, DCAT.CatalogRecord)
)
_RECORD_TYPES: Final = tuple(f"<{kind}>" for kind in RECORD_TYPES)
_DISTRIBUTION: Final = f"<{DCAT.distribution}>"
_TOPIC, _MODIFIED, _STATUS = f"<{FOAF.primaryTopic}>", f"<{DCT.modified}>", f"<{ADMS.status}>"
_PROOF, _DELETED = f"<{NODE_PROOF}>", f"<{CHANGE_DELETED}>"
_CATALOG_RECORD: Final = f"<{DCAT.CatalogRecord}>"
_NEXT: Final = tuple(f"<{term}>" for term in NEXT_TERMS)


class _Refused(Exception):
    """A record cut refuses (too many distributions or statements); the message says which."""


def read_page_fast(body: bytes, media_type: str, url: str, source: str, max_bytes: int) -> Page | None:
    """The page, or None when it must be read through rdflib (:func:`._pages.read_page`)."""
    kind = normalize_media_type(media_type)
    if kind not in (TURTLE, N_TRIPLES) or _needs_rdflib(body, max_bytes):
        return None
    try:
        statements: list[Triple] = []
        for quad in ox.parse(body, ox.RdfFormat.TURTLE, base_iri=url):
            if len(statements) >= DEFAULT_MAX_STATEMENTS or getattr(quad.object, "direction", None):
                return None  # the rdflib path refuses it with its own error
            statements.append((str(quad.subject), str(quad.predicate), str(quad.object)))
        # Identical blank nodes the page merged from several records (a shared access body's
        # contact point) are kept once, as each record's publisher stated and signed them.
        page = CompactRecord(collapse_page_blanks(statements))
    except (SyntaxError, ValueError, OSError, TermError):
        return None
    return _read(page, url, source)


def _read(page: CompactRecord, url: str, source: str) -> Page:
    proofs = _proofs(page)
    deleted: set[str] = set()
    newest: str | None = None
    for record in page.subjects_of_type(_CATALOG_RECORD):
        modified = page.value(record, _MODIFIED)
        if modified is not None and modified[:1] == '"':
            text = literal_parts(modified)[0]
            newest = text if newest is None or text > newest else newest
        topic = page.value(record, _TOPIC)
        if page.value(record, _STATUS) == _DELETED and topic is not None and is_iri(topic):
            deleted.add(topic[1:-1])
    subjects = sorted({s for kind in _RECORD_TYPES for s in page.subjects_of_type(kind)}, key=text_of)
    records: list[PageRecord] = []
    rejected: list[tuple[str, str]] = []
    for subject in subjects:
        try:
            triples = _cut(page, subject)
        except _Refused as refusal:
            rejected.append((text_of(subject), str(refusal)))
            continue
        cut = CompactRecord(triples)
        if is_blank(subject):
            # Named as the rdflib path names it (its canonical statements), so the IRI is stable.
            graph = cut.to_rdflib()
            named = f"<{skolem_iri(source, url.split('?')[0], graph)}>"
            triples = [(named if s == subject else s, p, named if o == subject else o) for s, p, o in triples]
            subject = named
            cut = CompactRecord(triples)
        digest, canonical = record_digest(cut)
        dataset = subject[1:-1]
        catalog_record, proof = proofs.get(dataset, (None, None))
        records.append(
            PageRecord.of_text(
                dataset, _text(cut), canonical, digest, url, proof, catalog_record, cut.triples
            )
        )
    nexts = sorted({o[1:-1] for s in page.subjects() for p in _NEXT for o in page.objects(s, p) if is_iri(o)})
    next_url = urljoin(url, nexts[0]) if nexts else None
    return Page(url, records, sorted(deleted), next_url, [], newest, rejected)


def _text(record: CompactRecord) -> str:
    return "\n".join(f"{s} {p} {o} ." for s, p, o in record.triples)


def _proofs(page: CompactRecord) -> dict[str, tuple[str, object]]:
    found: dict[str, tuple[str, object]] = {}
    for record in page.subjects():
        for text in page.objects(record, _PROOF):
            topic = page.value(record, _TOPIC)
            if topic is None or not is_iri(topic) or text[:1] != '"':
                continue
            lexical = literal_parts(text)[0]
            try:
                found[topic[1:-1]] = (text_of(record), json.loads(lexical))
            except ValueError:
                found[topic[1:-1]] = (text_of(record), {"unreadable": lexical[:200]})
    return found


def _cut(page: CompactRecord, subject: str) -> list[Triple]:
    """What :func:`catalogue.publish.extract_record` cuts, over the compact page."""
    distributions = len(page.objects(subject, _DISTRIBUTION))
    if distributions > MAX_DISTRIBUTIONS:
        raise _Refused(
            f"a record may have at most {MAX_DISTRIBUTIONS} distributions; this one has {distributions}"
        )
    triples: list[Triple] = []
    seen = {subject}
    pending = [subject]
    while pending:
        node = pending.pop()
        for predicate, objects in page.out(node).items():
            for value in objects:
                triples.append((node, predicate, value))
                if len(triples) > MAX_RECORD_STATEMENTS:
                    raise _Refused(f"a record may hold at most {MAX_RECORD_STATEMENTS} statements")
                if value in seen or value[:1] == '"':
                    continue
                seen.add(value)
                described = page.out(value)
                if not described:
                    continue
                if any(kind in _BOUNDARIES for kind in described.get(RDF_TYPE, ())):
                    continue
                pending.append(value)
    return triples
