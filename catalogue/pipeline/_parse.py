"""Step 1 of the hot path: a document parsed once, by Oxigraph, straight into the compact form.

The limits are those of every other parse (``vocab.rdfio.StatementLimits``: statements counted
as they are read, literal length, characters XML cannot carry), checked on Oxigraph's terms
before any Python object per statement is made. Documents the fast path does not take (those
``catalogue._turtle`` hands to rdflib, so that rdflib's reading and its errors with line and
column stay exactly as they were; JSON-LD; RDF/XML) are parsed by :func:`parse_document` and
converted, which costs what it always did.
"""

from __future__ import annotations

import re
from typing import Final

import pyoxigraph as ox

from catalogue._turtle import _needs_rdflib
from catalogue.ingest.compact import CompactRecord
from catalogue.ingest.terms import TermError
from catalogue.publish import MAX_RECORD_STATEMENTS, parse_document
from vocab.errors import VocabError
from vocab.rdfio import DEFAULT_MAX_LITERAL_CHARS, N_TRIPLES, TURTLE, normalize_media_type

_FORMATS: Final = {TURTLE: ox.RdfFormat.TURTLE, N_TRIPLES: ox.RdfFormat.N_TRIPLES}
# The characters ``vocab.rdfio`` refuses (XML cannot carry them); a document holding one is read
# by the rdflib path, which refuses it with the property named.
_NOT_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


class _Refused(Exception):
    """A statement over a limit: the rdflib path gives the refusal, with its field and reason."""


def parse_compact(data: bytes, media_type: str, *, base: str, max_bytes: int) -> CompactRecord:
    """The document's statements; every failure a :class:`PublishError` as :func:`parse_document` gives."""
    fast = _parse_fast(data, media_type, base=base, max_bytes=max_bytes)
    if fast is not None:
        return fast
    return CompactRecord.from_rdflib(parse_document(data, media_type, base=base, max_bytes=max_bytes))


def _parse_fast(data: bytes, media_type: str, *, base: str, max_bytes: int) -> CompactRecord | None:
    try:
        fmt = _FORMATS.get(normalize_media_type(media_type))
    except VocabError:
        return None  # refused by the rdflib path with its 415
    if fmt is None or _needs_rdflib(data, max_bytes):
        return None
    try:
        quads = []
        for quad in ox.parse(data, fmt, base_iri=base):
            quads.append(quad)
            if len(quads) > MAX_RECORD_STATEMENTS:
                raise _Refused
        for quad in quads:
            _check(quad)
        return CompactRecord.from_oxigraph(quads)
    except (SyntaxError, ValueError, OSError, TermError, _Refused):
        return None  # the rdflib path decides, with its errors (line and column, field)


def _check(quad: ox.Quad) -> None:
    """What ``vocab.rdfio.StatementLimits.check`` refuses, found on Oxigraph's terms."""
    value = quad.object
    if isinstance(value, ox.Literal):
        text = value.value
        if len(text) > DEFAULT_MAX_LITERAL_CHARS or _NOT_XML.search(text):
            raise _Refused
        if value.language and _NOT_XML.search(value.language):
            raise _Refused
    elif isinstance(value, ox.NamedNode) and _NOT_XML.search(value.value):
        raise _Refused
    subject = quad.subject
    if isinstance(subject, ox.NamedNode) and _NOT_XML.search(subject.value):
        raise _Refused
    if _NOT_XML.search(quad.predicate.value):
        raise _Refused
