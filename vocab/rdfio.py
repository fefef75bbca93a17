"""Reading and writing single RDF documents, safely: size-limited, offline, with precise errors.

Every RDF document that enters Sluis (a published record, a harvested page, a policy in Turtle)
is parsed here, so three rules hold in one place:

* the size is checked *before* any parsing (:data:`DEFAULT_MAX_DOCUMENT_BYTES`, configurable);
* nothing is dereferenced: JSON-LD goes through the offline loader of :mod:`vocab.jsonld` (never
  rdflib's JSON-LD parser, which would fetch remote contexts), and RDF/XML is checked for
  external entities, external DTDs and entity expansion before rdflib sees it;
* malformed input raises :class:`~vocab.errors.RdfSyntaxError` with a 1-based line and column, so
  a publisher can find the mistake;
* every statement is checked *as the parser adds it* (:class:`StatementLimits`): a statement past
  the document's limit, a literal past its length limit or a character XML cannot carry stops the
  parse there, before memory grows with the rest of the document (a million-statement document
  of 3 MB cost 1.2 GB and 15 s to parse whole).
"""

from __future__ import annotations

import json
import os
import re
import xml.parsers.expat
from typing import Any, Final

import pyoxigraph as ox
from rdflib import Graph, Literal, URIRef
from rdflib.exceptions import ParserError as ParseError
from rdflib.plugins.parsers.notation3 import BadSyntax
from rdflib.plugins.parsers.ntriples import NTGraphSink, W3CNTriplesParser
from rdflib.plugins.stores.memory import Memory

from vocab import jsonld
from vocab.errors import (
    DocumentTooDeepError,
    DocumentTooLargeError,
    InvalidCharacterError,
    LiteralTooLongError,
    RdfSyntaxError,
    TooManyStatementsError,
    UnsupportedMediaTypeError,
    VocabError,
)
from vocab.namespaces import bind_prefixes

__all__ = [
    "DEFAULT_MAX_DOCUMENT_BYTES",
    "DEFAULT_MAX_LITERAL_CHARS",
    "DEFAULT_MAX_STATEMENTS",
    "JSON_LD",
    "MEDIA_TYPE_BY_SUFFIX",
    "N_TRIPLES",
    "RDF_XML",
    "TURTLE",
    "StatementLimits",
    "media_type_for_path",
    "normalize_media_type",
    "parse_rdf",
    "serialize",
]

DEFAULT_MAX_DOCUMENT_BYTES: Final = 10 * 1024 * 1024
"""Largest document parsed by default (10 MiB). One DCAT-AP record or policy is a few KiB; a
harvested page of a hundred records stays far below this. Callers may lower or raise it."""

DEFAULT_MAX_STATEMENTS: Final = 100_000
"""Most statements one document may hold by default. A record with its distributions is tens to a
few thousand; a harvested page of a hundred records some tens of thousands. Parsing stops at the
first statement over (rdflib needs ~1.2 kB and ~15 us per statement)."""

DEFAULT_MAX_LITERAL_CHARS: Final = 262_144
"""Longest literal by default (256 Ki characters). Titles and descriptions are at most a few
thousand characters; a literal of megabytes is a payload, not metadata, and is multiplied by every
page, query result and copy that includes it."""

_NOT_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
"""Characters XML 1.0 cannot carry, even escaped (C0 controls but tab/LF/CR, U+FFFE/U+FFFF, lone
surrogates)."""

MAX_XML_ENTITY_DECLARATIONS: Final = 256
"""Most internal entities an RDF/XML document may declare (they are used as namespace shorthands;
a handful is normal)."""

MAX_XML_ENTITY_VALUE_CHARS: Final = 2048
"""Longest replacement text of one internal entity (a namespace IRI is well under 200)."""

TURTLE: Final = "text/turtle"
JSON_LD: Final = "application/ld+json"
RDF_XML: Final = "application/rdf+xml"
N_TRIPLES: Final = "application/n-triples"

MEDIA_TYPE_BY_SUFFIX: Final[dict[str, str]] = {
    ".ttl": TURTLE,
    ".jsonld": JSON_LD,
    ".rdf": RDF_XML,
    ".nt": N_TRIPLES,
}

_MEDIA_TYPE_ALIASES: Final[dict[str, str]] = {
    "application/x-turtle": TURTLE,
    "application/json": JSON_LD,
    "application/xml": RDF_XML,
    "text/xml": RDF_XML,
    "text/plain": N_TRIPLES,  # what N-Triples was served as before it had a media type
}

_RDFLIB_FORMAT: Final[dict[str, str]] = {TURTLE: "turtle", RDF_XML: "xml", N_TRIPLES: "nt"}


def normalize_media_type(media_type: str) -> str:
    """The canonical media type we handle for ``media_type`` (parameters and case ignored)."""
    essence = media_type.split(";", 1)[0].strip().lower()
    essence = _MEDIA_TYPE_ALIASES.get(essence, essence)
    if essence not in _RDFLIB_FORMAT and essence != JSON_LD:
        raise UnsupportedMediaTypeError(
            f"unsupported RDF media type {media_type!r}; use one of "
            + ", ".join(sorted(MEDIA_TYPE_BY_SUFFIX.values()))
        )
    return essence


def media_type_for_path(path: str | os.PathLike[str]) -> str:
    """The media type for a file name by its suffix (``.ttl``, ``.jsonld``, ``.rdf``, ``.nt``)."""
    _, suffix = os.path.splitext(os.fspath(path))
    try:
        return MEDIA_TYPE_BY_SUFFIX[suffix.lower()]
    except KeyError:
        raise UnsupportedMediaTypeError(
            f"cannot tell the RDF syntax of {os.fspath(path)!r} from its suffix; use one of "
            + ", ".join(sorted(MEDIA_TYPE_BY_SUFFIX))
        ) from None


class StatementLimits:
    """The checks every parsed statement passes, counted across one document.

    ``check`` raises :class:`~vocab.errors.TooManyStatementsError` at the first statement over
    ``max_statements``, :class:`~vocab.errors.LiteralTooLongError` for a literal over
    ``max_literal_chars``, and :class:`~vocab.errors.InvalidCharacterError` for a term holding a
    character XML cannot carry (each naming the statement's property).
    """

    def __init__(
        self, max_statements: int = DEFAULT_MAX_STATEMENTS, max_literal_chars: int = DEFAULT_MAX_LITERAL_CHARS
    ) -> None:
        self.max_statements = max_statements
        self.max_literal_chars = max_literal_chars
        self.count = 0

    def check(self, triple: tuple[Any, Any, Any]) -> None:
        self.count += 1
        if self.count > self.max_statements:
            raise TooManyStatementsError(self.max_statements)
        subject, predicate, value = triple
        field = str(predicate)
        if isinstance(value, Literal):
            text = str(value)
            if len(text) > self.max_literal_chars:
                raise LiteralTooLongError(
                    field,
                    f"a literal of {len(text)} characters, more than the limit of {self.max_literal_chars}",
                )
            _check_characters(field, text, "a literal")
            if value.language:
                _check_characters(field, value.language, "a language tag")
        elif isinstance(value, URIRef):
            _check_characters(field, str(value), "an IRI")
        if isinstance(subject, URIRef):
            _check_characters(field, str(subject), "the subject IRI")
        _check_characters(field, field, "the property IRI")


def _check_characters(field: str, text: str, what: str) -> None:
    found = _NOT_XML.search(text)
    if found is not None:
        raise InvalidCharacterError(
            field,
            f"{what} holds the character U+{ord(found.group()):04X} at position {found.start() + 1}, "
            "which XML cannot carry",
        )


class _CheckedMemory(Memory):
    """rdflib's memory store, checking each statement as a parser adds it (until :meth:`release`)."""

    def __init__(self, limits: StatementLimits) -> None:
        super().__init__()
        self._limits: StatementLimits | None = limits

    def add(self, triple: Any, context: Any, quoted: bool = False) -> None:
        if self._limits is not None:
            self._limits.check(triple)
        super().add(triple, context, quoted)

    def release(self) -> None:
        """Parsing is over: the graph is the caller's to extend as it likes."""
        self._limits = None


def parse_rdf(
    data: bytes | str,
    media_type: str,
    base: str,
    max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    *,
    max_statements: int = DEFAULT_MAX_STATEMENTS,
    max_literal_chars: int = DEFAULT_MAX_LITERAL_CHARS,
) -> Graph:
    """Parse one RDF document into a new graph, offline, with relative IRIs resolved against ``base``.

    Raises :class:`DocumentTooLargeError` (before parsing; :class:`TooManyStatementsError` while
    parsing), :class:`RdfSyntaxError` (with line and column when the syntax allows),
    :class:`LiteralTooLongError` / :class:`InvalidCharacterError` (naming the property),
    :class:`UnsupportedMediaTypeError`, or for JSON-LD :class:`~vocab.errors.UnknownContextError` /
    :class:`~vocab.errors.JsonLdError`.
    """
    kind = normalize_media_type(media_type)
    jsonld.check_size(data, max_bytes)
    store = _CheckedMemory(StatementLimits(max_statements, max_literal_chars))
    graph = Graph(store=store)
    if kind == JSON_LD:
        document = jsonld.parse_json(data, max_bytes, JSON_LD)
        # Every statement comes from at least one JSON value; far more values than statements
        # allowed is refused before the JSON-LD algorithms run over them.
        jsonld.check_json_limits(document, max_values=4 * max_statements + 1000)
        jsonld.to_graph(document, base, graph)
    elif kind == RDF_XML:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        _check_xml_is_safe(raw, max_bytes)
        _count_statements(raw, kind, base, max_statements)
        _parse_with_rdflib(graph, raw, kind, base)
    else:
        text = jsonld.decode_text(data, kind)
        _count_statements(text.encode("utf-8"), kind, base, max_statements)
        if kind == N_TRIPLES:
            _parse_ntriples(graph, text)
        else:
            _parse_with_rdflib(graph, text, kind, base)
    store.release()
    return graph


_OXIGRAPH_FORMAT: Final = {
    TURTLE: ox.RdfFormat.TURTLE,
    N_TRIPLES: ox.RdfFormat.N_TRIPLES,
    RDF_XML: ox.RdfFormat.RDF_XML,
}


def _count_statements(data: bytes, kind: str, base: str, limit: int) -> None:
    """Refuse a document over ``limit`` statements at native speed, before rdflib builds any.

    rdflib spends ~30-100 us a statement; Oxigraph's streaming parser counts a million in about
    a second and stops at the first one over. A document Oxigraph cannot read is left to rdflib,
    whose errors (with line and column) the caller gets; rdflib's own count then still applies.
    """
    count = 0
    try:
        for _ in ox.parse(data, _OXIGRAPH_FORMAT[kind], base_iri=base):
            count += 1
            if count > limit:
                raise TooManyStatementsError(limit)
    except (SyntaxError, ValueError, OSError):
        return


def _parse_with_rdflib(graph: Graph, data: bytes | str, kind: str, base: str) -> None:
    try:
        # data= (never source=): a string must never be taken for a path or a URL to open.
        graph.parse(data=data, format=_RDFLIB_FORMAT[kind], publicID=base)
    except BadSyntax as exc:
        raise _turtle_error(exc, kind) from None
    except RecursionError:
        raise DocumentTooDeepError(jsonld.MAX_JSON_DEPTH, jsonld.MAX_JSON_DEPTH, kind) from None
    except VocabError:
        raise
    except Exception as exc:
        line, column = _position_in_message(str(exc))
        reason = _POSITION_IN_MESSAGE.split(_short(exc), maxsplit=1)[-1] if line is not None else _short(exc)
        raise RdfSyntaxError(reason, line=line, column=column, media_type=kind) from None


def _turtle_error(exc: BadSyntax, kind: str) -> RdfSyntaxError:
    """Line and column from rdflib's Turtle error, which carries the text and a character index."""
    text = exc._str.decode("utf-8", errors="replace")  # rdflib keeps these private
    index: int = exc._i
    why: str = exc._why
    near = text[index : index + 40].split("\n", 1)[0]
    if why.startswith("expected") and index > 0 and text[index - 1 : index].isspace():
        # rdflib reports where the *next* token starts; a missing terminator belongs to the end of
        # the previous token (e.g. the line of a "@prefix ... <iri>" without its final ".").
        while index > 0 and text[index - 1].isspace():
            index -= 1
    line, column = _line_column(text, index)
    return RdfSyntaxError(f"{why} (near {near!r})", line=line, column=column, media_type=kind)


def _line_column(text: str, index: int) -> tuple[int, int]:
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


_POSITION_IN_MESSAGE: Final = re.compile(r":(\d+):(\d+): ")


def _position_in_message(message: str) -> tuple[int | None, int | None]:
    """rdflib's RDF/XML errors start with ``systemId:line:column:`` (column 0-based)."""
    match = _POSITION_IN_MESSAGE.search(message)
    if match is None:
        return None, None
    return int(match.group(1)), int(match.group(2)) + 1


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# --- N-Triples -----------------------------------------------------------------------------------


def _parse_ntriples(graph: Graph, text: str) -> None:
    """N-Triples, one line at a time, so an error names its line and the column where it stopped."""
    parser = W3CNTriplesParser(NTGraphSink(graph))
    parser.skolemize = False
    blank_nodes: dict[str, Any] = {}
    for number, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.removesuffix("\r")
        parser.line = line
        try:
            parser.parseline(bnode_context=blank_nodes)
        except (ParseError, ValueError) as exc:
            remaining = parser.line if isinstance(parser.line, str) else line
            column = len(line) - len(remaining) + 1
            reason = "unexpected text" if str(exc).startswith("Failed to eat") else _short(exc)
            raise RdfSyntaxError(
                f"{reason} (near {remaining[:40]!r})",
                line=number,
                column=column,
                media_type=N_TRIPLES,
            ) from None


# --- RDF/XML safety --------------------------------------------------------------------------------


class _UnsafeXmlError(Exception):
    pass


def _check_xml_is_safe(data: bytes, max_bytes: int) -> None:
    """Well-formedness and safety check of RDF/XML before rdflib parses it.

    Refused: external DTDs, external or parameter entities, unparsed entities and notations
    (anything that could make a parser open a file or a URL), entities that refer to other
    entities, and internal entities whose total expansion would exceed ``max_bytes``
    ("billion laughs"). Plain internal entities used as namespace shorthands are accepted.
    """
    parser = xml.parsers.expat.ParserCreate()
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    entities: dict[str, int] = {}

    def refuse(reason: str) -> None:
        raise _UnsafeXmlError(reason)

    def doctype(name: str, system_id: str | None, public_id: str | None, _internal: int) -> None:
        if system_id or public_id:
            refuse(f"external DTD {system_id or public_id!r} is not allowed")

    def entity(
        name: str,
        is_parameter: int,
        value: str | None,
        _base: str | None,
        system_id: str | None,
        public_id: str | None,
        notation: str | None,
    ) -> None:
        if is_parameter:
            refuse(f"parameter entity {name!r} is not allowed")
        if value is None or system_id or public_id or notation:
            raise _UnsafeXmlError(f"external entity {name!r} is not allowed")
        if "&" in value or "%" in value or "<" in value:
            refuse(f"entity {name!r} refers to other entities or markup, which is not allowed")
        if len(value) > MAX_XML_ENTITY_VALUE_CHARS:
            refuse(f"entity {name!r} is longer than {MAX_XML_ENTITY_VALUE_CHARS} characters")
        if len(entities) >= MAX_XML_ENTITY_DECLARATIONS:
            refuse(f"more than {MAX_XML_ENTITY_DECLARATIONS} entity declarations")
        entities[name] = len(value.encode("utf-8"))

    def external_reference(*_args: Any) -> int:
        refuse("external entity references are not allowed")
        return 0

    def notation(*_args: Any) -> None:
        refuse("notation declarations are not allowed")

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.ExternalEntityRefHandler = external_reference
    parser.NotationDeclHandler = notation
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise RdfSyntaxError(
            xml.parsers.expat.ErrorString(exc.code),
            line=exc.lineno,
            column=exc.offset + 1,
            media_type=RDF_XML,
        ) from None
    except _UnsafeXmlError as exc:
        raise RdfSyntaxError(
            str(exc),
            line=parser.CurrentLineNumber,
            column=parser.CurrentColumnNumber + 1,
            media_type=RDF_XML,
        ) from None
    if entities:
        expanded = len(data)
        for name, size in entities.items():
            expanded += data.count(b"&" + name.encode("utf-8") + b";") * size
        if expanded > max_bytes:
            raise DocumentTooLargeError(expanded, max_bytes, "RDF/XML document after entity expansion")


# --- serialising ---------------------------------------------------------------------------------


def serialize(graph: Graph, media_type: str, context: Any = None) -> bytes:
    """``graph`` in the given syntax, as UTF-8 bytes. The graph itself is not modified.

    Turtle gets our usual prefixes. JSON-LD is produced through :mod:`vocab.jsonld` (never
    rdflib's JSON-LD plugin): expanded form under ``@graph``, or compacted with ``context``
    (a context URL we ship, or a context object) when given.
    """
    kind = normalize_media_type(media_type)
    if kind == JSON_LD:
        document = jsonld.from_graph(graph, context)
        return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
    out = graph
    if kind == TURTLE:
        out = Graph()
        bind_prefixes(out)
        for prefix, namespace in graph.namespaces():
            out.bind(prefix, namespace, override=False)
        out += graph
    return out.serialize(format=_RDFLIB_FORMAT[kind], encoding="utf-8")
