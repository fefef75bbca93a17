"""Validating DCAT-AP records against our own profiles: the entry points the catalogue uses.

The shapes and vocabularies come from ``vocab.shacl``; a :class:`FastValidator` is built once per
combination of profiles and kept, so publishing and bulk ingest pay the compile cost once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from rdflib import Graph

from catalogue.validation._validator import FastValidator
from vocab import shacl
from vocab.shacl import Profile, ValidationReport, profiles_for, shapes_graph, vocabularies_graph

_validators: dict[tuple[Profile, ...], FastValidator] = {}
_validators_lock = threading.Lock()


def _profiles_key(profiles: Iterable[Profile]) -> tuple[Profile, ...]:
    return tuple(sorted(set(profiles), key=lambda p: p.value))


def validator_for(profiles: Iterable[Profile]) -> FastValidator:
    """The (cached) fast validator for a set of our profiles, with our vocabularies as background."""
    key = _profiles_key(profiles)
    found = _validators.get(key)
    if found is not None:
        return found
    with _validators_lock:
        found = _validators.get(key)
        if found is None:
            # allow_warnings as in vocab.shacl: a nested shape failing only with warnings conforms.
            found = FastValidator(shapes_graph(key), vocabularies_graph(), allow_warnings=True)
            _validators[key] = found
    return found


def validate_record(graph: Graph, profiles: Iterable[Profile] | None = None) -> ValidationReport:
    """Validate one record with our shapes; the profiles default to ``vocab.shacl.profiles_for``."""
    chosen = profiles_for(graph) if profiles is None else list(profiles)
    return validator_for(chosen).validate(graph)


def validate_records(
    graphs: Iterable[Graph], profiles: Iterable[Profile] | None = None
) -> Iterator[ValidationReport]:
    """Validate records one after the other (bulk ingest, harvesting), lazily."""
    fixed = None if profiles is None else list(profiles)
    for graph in graphs:
        yield validate_record(graph, fixed)


def reference_validate(
    graph: Graph,
    profiles: Iterable[Profile] | None = None,
    *,
    shapes: Graph | None = None,
    background: Graph | None = None,
) -> ValidationReport:
    """pyshacl's report for the same question, in the same form: the reference the tests compare with.

    Without ``shapes``: ``vocab.shacl.validate`` (our profiles). With ``shapes``: pyshacl on
    ``graph + background`` read by the same rules (``vocab.shacl.run_pyshacl``).
    """
    if shapes is None:
        return shacl.validate(graph, profiles)
    results = shacl.run_pyshacl(graph, shapes, background)
    return ValidationReport(conforms=not any(r.severity == "Violation" for r in results), results=results)
