"""RDF terms as their N-Triples text: the one term representation of the ingest hot path.

An IRI is ``<iri>``, a blank node ``_:id``, a literal ``"lexical"`` (xsd:string),
``"lexical"@lang`` or ``"lexical"^^<datatype>``, escaped as Oxigraph writes N-Triples. Plain
strings are what make the hot path fast: they hash and compare in C (rdflib terms hash through
Python code on every dict lookup), pickle seven times faster than Oxigraph terms (worker
processes), and are already the form signing and the store need. The kind of a term is its
first character.

rdflib terms are converted here too, for the cold paths (pages, explanations, pyshacl): literals
keep their lexical form (``normalize=False``), so a conversion both ways gives the same text.
"""

from __future__ import annotations

import re
from typing import Final

from rdflib import BNode, Literal, URIRef
from rdflib.term import Node

XSD_STRING: Final = "http://www.w3.org/2001/XMLSchema#string"
RDF_LANG_STRING: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"

_ESCAPES: Final = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_ESCAPED: Final = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))", re.DOTALL)
_NEEDS_ESCAPE: Final = re.compile('[\\\\"\x00-\x1f\x7f]')
_ESCAPE_AS: Final = {
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
    '"': '\\"',
    "\\": "\\\\",
}


class TermError(ValueError):
    """A string that is not an N-Triples term, or a term kind the ingest path does not take."""


def is_iri(term: str) -> bool:
    return term[:1] == "<"


def is_blank(term: str) -> bool:
    return term[:2] == "_:"


def is_literal(term: str) -> bool:
    return term[:1] == '"'


def iri(text: str) -> str:
    """The term of an IRI given as plain text."""
    return f"<{text}>"


def iri_text(term: str) -> str:
    """The plain IRI of an IRI term (raises for other kinds: a caller mixing kinds is a bug)."""
    if term[:1] != "<":
        raise TermError(f"not an IRI term: {term[:80]!r}")
    return term[1:-1]


def _unescape_one(match: re.Match[str]) -> str:
    short, long, char = match.groups()
    if short is not None:
        return chr(int(short, 16))
    if long is not None:
        return chr(int(long, 16))
    found = _ESCAPES.get(char)
    if found is None:
        raise TermError(f"unknown escape \\{char} in a literal")
    return found


def escape(text: str) -> str:
    """A lexical form escaped for N-Triples, character for character as Oxigraph writes it."""
    if not _NEEDS_ESCAPE.search(text):
        return text
    return _NEEDS_ESCAPE.sub(lambda m: _ESCAPE_AS.get(m.group(0)) or f"\\u{ord(m.group(0)):04X}", text)


def literal(lexical: str, *, language: str | None = None, datatype: str | None = None) -> str:
    """The term of a literal; an xsd:string datatype is written as a plain literal (RDF 1.1)."""
    body = f'"{escape(lexical)}"'
    if language:
        return f"{body}@{language}"
    if datatype and datatype != XSD_STRING:
        return f"{body}^^<{datatype}>"
    return body


def literal_parts(term: str) -> tuple[str, str | None, str | None]:
    """(lexical form, language, datatype) of a literal term; plain literals have neither."""
    end = term.rfind('"')
    if term[:1] != '"' or end < 1:
        raise TermError(f"not a literal term: {term[:80]!r}")
    body = term[1:end]
    lexical = _ESCAPED.sub(_unescape_one, body) if "\\" in body else body
    suffix = term[end + 1 :]
    if not suffix:
        return lexical, None, None
    if suffix[0] == "@":
        return lexical, suffix[1:], None
    if suffix.startswith("^^<") and suffix[-1] == ">":
        return lexical, None, suffix[3:-1]
    raise TermError(f"not a literal term: {term[:80]!r}")


def text_of(term: str) -> str:
    """What rdflib's ``str()`` gives for the term: an IRI, a blank node id, a lexical form."""
    kind = term[:1]
    if kind == "<":
        return term[1:-1]
    if kind == "_":
        return term[2:]
    return literal_parts(term)[0]


# ---- rdflib, for the cold paths ------------------------------------------------------------


def from_rdflib(node: Node) -> str:
    """The N-Triples text of an rdflib term (literals as written, not re-normalised)."""
    kind = type(node)
    if kind is URIRef or isinstance(node, URIRef):
        return f"<{str.__str__(node)}>"
    if kind is BNode or isinstance(node, BNode):
        return f"_:{str.__str__(node)}"
    if isinstance(node, Literal):
        body = f'"{escape(str.__str__(node))}"'
        if node.language:
            return f"{body}@{node.language}"
        if node.datatype is not None:
            return f"{body}^^<{node.datatype}>"
        return body
    raise TermError(f"{kind.__name__} is not an RDF term the catalogue takes (variables, graphs)")


def to_rdflib(term: str) -> Node:
    """The rdflib term of an N-Triples text; literals keep their lexical form exactly."""
    kind = term[:1]
    if kind == "<":
        return URIRef(term[1:-1])
    if kind == "_":
        return BNode(term[2:])
    lexical, language, datatype = literal_parts(term)
    if language:
        return Literal(lexical, lang=language)
    if datatype:
        return Literal(lexical, datatype=URIRef(datatype), normalize=False)
    return Literal(lexical)
