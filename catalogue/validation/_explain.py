"""Violation messages a provider can act on: the property, the offending value, what is expected.

A SHACL engine says *"Value does not conform to shape https://…/vocabulary#InLicence"*; a
publisher needs *"dct:license: <…/licence/CC-BY> is not in the EU vocabulary "Licence"
(http://publications.europa.eu/resource/authority/licence); allowed values include
…/CC_BY_4_0, …"*. :func:`explain` turns one result into that sentence plus structured fields
(vocabulary IRI and label, a few allowed values, expected class or datatype). It reads our shapes
(which vocabulary a shape stands for) and the shipped tables (labels, members); the engine's own
message is kept beside it, so the agreement with pyshacl is untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, Final

from rdflib import Graph, URIRef

from vocab import shacl
from vocab.authority import tables
from vocab.namespaces import PREFIXES, RDFS, SH, SKOS
from vocab.shacl import Profile, ValidationResult

_COMPONENT: Final = str(SH)
_SHAPE_IN_MESSAGE: Final = re.compile(r"shape\s+<?(\S+?)>?\s*$")
# How many allowed values to show: enough to see the pattern, short enough to read.
ALLOWED_SHOWN: Final = 5


@dataclass(frozen=True)
class Explanation:
    """The actionable form of one validation result."""

    text: str
    property: str | None
    value: str | None
    vocabulary: str | None = None
    vocabulary_label: str | None = None
    allowed: tuple[str, ...] = ()
    allowed_total: int = 0
    expected: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"explanation": self.text}
        if self.vocabulary:
            found["vocabulary"] = self.vocabulary
            found["vocabulary_label"] = self.vocabulary_label
            found["allowed_examples"] = list(self.allowed)
            found["allowed_total"] = self.allowed_total
        if self.expected:
            found["expected"] = self.expected
        return found


# Distinct IRIs and (vocabulary, value) pairs remembered: every stored record's warnings and
# violations are explained, and the same few hundred properties, classes and codes recur.
MAX_REMEMBERED: Final = 8192


@lru_cache(maxsize=MAX_REMEMBERED)
def compact(iri: str | None) -> str:
    """``http://purl.org/dc/terms/license`` as ``dct:license``; other IRIs in angle brackets."""
    if not iri:
        return ""
    if iri.startswith("_:"):
        return iri
    inverse = iri.startswith("^")
    bare = iri[1:] if inverse else iri
    for prefix, namespace in PREFIXES.items():
        if bare.startswith(str(namespace)) and re.fullmatch(r"[A-Za-z_][\w.-]*", bare[len(str(namespace)) :]):
            return ("^" if inverse else "") + f"{prefix}:{bare[len(str(namespace)) :]}"
    return ("^" if inverse else "") + f"<{bare}>"


@cache
def _scheme_of_shape() -> dict[str, str]:
    """Our vocabulary shapes (``v:InLicence`` …) -> the scheme their ``skos:inScheme`` must hold."""
    graph: Graph = shacl.shapes_graph(list(Profile))
    found: dict[str, str] = {}
    for prop in graph.subjects(SH.path, SKOS.inScheme):
        scheme = graph.value(prop, SH.hasValue)
        for shape in graph.subjects(SH.property, prop):
            if isinstance(shape, URIRef) and isinstance(scheme, URIRef):
                found[str(shape)] = str(scheme)
    return found


@cache
def _shape_comments() -> dict[str, str]:
    """What each named shape of ours stands for, in its own words (its ``rdfs:comment``)."""
    graph: Graph = shacl.shapes_graph(list(Profile))
    return {
        str(shape): str(comment)
        for shape, comment in graph.subject_objects(RDFS.comment)
        if isinstance(shape, URIRef)
    }


@lru_cache(maxsize=MAX_REMEMBERED)
def _examples(scheme: str, value: str | None) -> tuple[str, ...]:
    """A few members of the scheme, those sharing a prefix with ``value`` first."""
    return tuple(tables().examples(scheme, near=value, count=ALLOWED_SHOWN))


def _shape_named(result: ValidationResult) -> str | None:
    match = _SHAPE_IN_MESSAGE.search(result.message or "")
    return match.group(1) if match else None


def _shown(value: str | None) -> str:
    """An IRI in angle brackets (compacted when we know its prefix), anything else in quotes."""
    if not value:
        return "the value"
    if value.startswith("_:"):
        return value
    if re.match(r"^[a-z][a-z0-9+.-]*:[^\s]*$", value, re.IGNORECASE) and (
        "/" in value or value.startswith(("urn:", "mailto:"))
    ):
        return compact(value)
    return '"' + (value if len(value) <= 80 else value[:77] + "...") + '"'


def explain(result: ValidationResult, languages: tuple[str, ...] = ()) -> Explanation:
    """One sentence (and the structured fields behind it) saying what to change."""
    component = result.constraint.removeprefix(_COMPONENT).removesuffix("ConstraintComponent")
    prop = compact(result.path) or "the resource"
    value = result.value
    shown = _shown(value)
    where = f" on {compact(result.focus_node)}"
    shape = _shape_named(result) if component == "Node" else None
    scheme = _scheme_of_shape().get(shape) if shape else None
    if scheme is None and component == "Class" and value:
        # A value that looks like a concept of a table it is not in: say which table.
        scheme = next((s for s in tables().members if value.startswith(s + "/")), None)
    if scheme is not None:
        known = tables()
        label = known.scheme_label(scheme)
        members = known.members.get(scheme, set())
        allowed = _examples(scheme, value)
        listed = ", ".join(f"{a.removeprefix(scheme + '/')} ({known.display(a, languages)})" for a in allowed)
        text = (
            f'{prop}{where}: {shown} is not in the EU vocabulary "{label}" <{scheme}>; '
            f"use <{scheme}/CODE> with a code such as {listed}"
            + (f" ({len(members)} codes in all)" if len(members) > len(allowed) else "")
        )
        return Explanation(text, result.path, value, scheme, label, allowed, len(members))
    if shape is not None and shape in _shape_comments():
        wanted = _shape_comments()[shape]
        text = f"{prop}{where}: {shown} is not {wanted[:1].lower()}{wanted[1:]}"
        return Explanation(text, result.path, value, expected=wanted)
    if component == "MinCount":
        number = re.search(r"Less than (\d+)", result.message or "")
        needed = number.group(1) if number else "1"
        text = f"{prop} is missing{where}: at least {needed} value(s) required"
        return Explanation(text, result.path, value)
    if component == "MaxCount":
        number = re.search(r"More than (\d+)", result.message or "")
        limit = number.group(1) if number else "1"
        text = f"{prop}{where}: at most {limit} value(s) allowed"
        return Explanation(text, result.path, value)
    if component == "Class":
        expected = re.search(r"instance of (\S+)", result.message or "")
        cls = compact(expected.group(1).rstrip(".")) if expected else "the expected class"
        text = (
            f"{prop}{where}: {shown} must be a {cls}; state its type "
            f"({shown} a {cls}) or use a value that has it"
        )
        return Explanation(text, result.path, value, expected=cls)
    if component == "Datatype":
        expected = re.search(r"[Dd]atatype (\S+)", result.message or "")
        dtype = compact(expected.group(1).rstrip(".")) if expected else "the expected datatype"
        text = f"{prop}{where}: {shown} must be a literal typed {dtype}"
        return Explanation(text, result.path, value, expected=dtype)
    if component == "NodeKind":
        text = f"{prop}{where}: {shown or 'the value'} has the wrong kind of node ({result.message})"
        return Explanation(text, result.path, value)
    if component == "HasValue":
        text = f"{prop}{where}: {result.message}"
        return Explanation(text, result.path, value)
    detail = result.message or component
    text = f"{prop}{where}: {detail}" + (f" (value {shown})" if shown and shown not in detail else "")
    return Explanation(text, result.path, value)
