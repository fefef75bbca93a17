"""Validating DCAT-AP records against our own profiles: the entry points the catalogue uses.

The shapes and vocabularies come from ``vocab.shacl``; a :class:`FastValidator` is built once per
combination of profiles and kept, so publishing and bulk ingest pay the compile cost once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import Final

from rdflib import Graph

from catalogue.ingest.compact import RDF_TYPE, CompactRecord
from catalogue.ingest.terms import from_rdflib
from catalogue.validation._validator import FastValidator
from vocab import shacl
from vocab.namespaces import DCAT, DCATAP, DCT, EU_ACCESS_RIGHT, HEALTHDCATAP
from vocab.shacl import Profile, ValidationReport, shapes_graph, vocabularies_graph

_HEALTH_NAMESPACE: Final = "<" + str(HEALTHDCATAP)
_DATASET: Final = from_rdflib(DCAT.Dataset)
_HVD_LEGISLATION: Final = from_rdflib(shacl.HVD_LEGISLATION)
_TIER_BY_ACCESS_RIGHT: Final = {
    from_rdflib(EU_ACCESS_RIGHT.PUBLIC): Profile.HEALTH_PUBLIC,
    from_rdflib(EU_ACCESS_RIGHT.RESTRICTED): Profile.HEALTH_RESTRICTED,
    from_rdflib(EU_ACCESS_RIGHT.NON_PUBLIC): Profile.HEALTH_NON_PUBLIC,
}
_WATCHED: Final[dict[str, str]] = {
    RDF_TYPE: "type",
    from_rdflib(DCT.accessRights): "rights",
    from_rdflib(DCATAP.applicableLegislation): "legislation",
}
_TIER_ORDER: Final = (Profile.HEALTH_PUBLIC, Profile.HEALTH_RESTRICTED, Profile.HEALTH_NON_PUBLIC)

_validators: dict[tuple[Profile, ...], FastValidator] = {}
_validators_lock = threading.Lock()
_compiling: list[float] = [0.0]


def compile_seconds() -> float:
    """CPU seconds this process spent compiling validators so far (once per profile combination:
    what a benchmark tells apart from the cost per record)."""
    return _compiling[0]


def _profiles_key(profiles: Iterable[Profile]) -> tuple[Profile, ...]:
    return tuple(sorted(set(profiles), key=lambda p: p.value))


def profiles_in_one_pass(graph: Graph) -> list[Profile]:
    """``vocab.shacl.profiles_for`` of an rdflib graph, by :func:`profiles_of`."""
    return profiles_of(CompactRecord.from_rdflib(graph))


def profiles_of(record: CompactRecord) -> list[Profile]:
    """``vocab.shacl.profiles_for`` computed in one pass over the record's statements.

    Same rules (DCAT-AP always; HVD when the HVD regulation is named; the strictest health tier
    of the health datasets' access rights, none or unknown counting as non-public), but without
    a dozen rdflib pattern queries, which cost more than validating the record. The tests check
    that both give the same profiles on every record they validate.
    """
    hvd = False
    health = False
    datasets: set[str] = set()
    health_subjects: set[str] = set()
    rights: dict[str, list[str]] = {}
    for s, p, o in record.triples:
        kind = _WATCHED.get(p)
        if kind is None:
            if p.startswith(_HEALTH_NAMESPACE):
                health = True
                health_subjects.add(s)
        elif kind == "type":
            if o == _DATASET:
                datasets.add(s)
            if o.startswith(_HEALTH_NAMESPACE):
                health = True
        elif kind == "rights":
            rights.setdefault(s, []).append(o)
        elif o == _HVD_LEGISLATION:
            hvd = True
    chosen = [Profile.DCAT_AP]
    if hvd:
        chosen.append(Profile.HVD)
    if health:
        pool = (datasets & health_subjects) or datasets
        tiers: list[Profile] = []
        for dataset in pool:
            stated = rights.get(dataset)
            if not stated:
                tiers.append(Profile.HEALTH_NON_PUBLIC)
                continue
            for right in stated:
                tiers.append(_TIER_BY_ACCESS_RIGHT.get(right) or Profile.HEALTH_NON_PUBLIC)
        chosen.append(max(tiers, key=_TIER_ORDER.index) if tiers else Profile.HEALTH_NON_PUBLIC)
    return chosen


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
            started = time.process_time()
            found = FastValidator(shapes_graph(key), vocabularies_graph(), allow_warnings=True)
            _compiling[0] += time.process_time() - started
            _validators[key] = found
    return found


def validate_record(graph: Graph, profiles: Iterable[Profile] | None = None) -> ValidationReport:
    """Validate one record with our shapes; the profiles default to ``vocab.shacl.profiles_for``."""
    return validate_compact(CompactRecord.from_rdflib(graph), profiles)


def validate_compact(record: CompactRecord, profiles: Iterable[Profile] | None = None) -> ValidationReport:
    """:func:`validate_record` on the compact form (the ingest path: no rdflib graph involved)."""
    chosen = profiles_of(record) if profiles is None else list(profiles)
    return validator_for(chosen).validate_compact(record)


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
