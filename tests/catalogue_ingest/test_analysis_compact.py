"""The analysis stages on the compact form: pyshacl's verdicts on real records, the same answers in workers.

The real-world corpus (``../shared/corpus/dcat-real/``) is parsed by Oxigraph into compact
records, normalised, and validated by our compiled shapes; pyshacl gets the same statements as an
rdflib graph, with the official DCAT-AP 3.0.1 shapes and the vocabularies, and with our profiles.
"""

from __future__ import annotations

import json
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from rdflib import Graph

from catalogue.analysis import warm_up
from catalogue.ingest.compact import CompactRecord
from catalogue.normalise import normalise, normalise_compact
from catalogue.quality import assess_compact
from catalogue.validation import FastValidator, Finding, profiles_of, validate_compact
from catalogue.validation._reference import reference_raw, to_findings
from catalogue.validation._report import ResultKey, result_key
from tests.catalogue_quality.conftest import dcat_ap_dir, official_split_shapes
from tests.conftest import CONFORMANCE_DIR
from vocab import shacl
from vocab.shacl import Profile, background_for, vocabularies_graph

CORPUS = CONFORMANCE_DIR.parent / "corpus" / "dcat-real"
SKOLEM = "http://127.0.0.1:9"
BASE = "http://example.org/"
DATASET = "<http://www.w3.org/ns/dcat#Dataset>"

pytestmark = pytest.mark.conformance
__all__ = ["dcat_ap_dir", "official_split_shapes"]  # the official shapes, as the quality tests read them


Key = tuple[str, str | None, str, str, str | None]


def key(finding: Finding) -> Key:
    return (finding.focus, finding.path, finding.component, finding.severity, finding.value)


def masked(found: ResultKey) -> ResultKey:
    """A result with blank node labels blanked: each parser labels blank nodes its own way."""
    focus, path, component, severity, value = found
    if value is not None and value.startswith("_:"):
        value = "_:"
    return ("_:" if focus.startswith("_:") else focus, path, component, severity, value)


@pytest.fixture(scope="module")
def parsed() -> list[tuple[str, CompactRecord]]:
    """Every one-record file of the corpus, as Oxigraph parses it."""
    manifest = CORPUS / "manifest.json"
    if not manifest.is_file():
        pytest.skip(f"the real-world DCAT corpus is not at {CORPUS} (it lives beside the conformance data)")
    names = sorted(json.loads(manifest.read_text(encoding="utf-8"))["records"])
    found = [
        (
            name,
            CompactRecord.parse((CORPUS / name).read_bytes(), "text/turtle", base_iri=BASE),
        )
        for name in names
    ]
    assert len(found) > 100
    return found


@pytest.fixture(scope="module")
def corpus(parsed: list[tuple[str, CompactRecord]]) -> list[tuple[str, CompactRecord]]:
    """The same records normalised on the compact form, as ingest validates them."""
    return [(name, normalise_compact(record, skolem_base=SKOLEM)[0]) for name, record in parsed]


def test_official_shapes_give_pyshacls_verdict_on_real_records_and_the_rdflib_paths_on_all(
    corpus: list[tuple[str, CompactRecord]], official_split_shapes: Graph
) -> None:
    """Every record: the compact path (Oxigraph) gives what the rdflib path (rdflib's parser)
    gives, blank node labels aside; every third record: what pyshacl gives on the same statements."""
    fast = FastValidator(official_split_shapes, vocabularies_graph())
    assert fast.is_fast, fast.fallback_reason
    violations = 0
    for number, (name, record) in enumerate(corpus):
        findings, subjects = fast.about_record(record)
        ours = {key(f) for f in findings if f.focus in subjects}
        graph = Graph().parse(CORPUS / name, format="turtle", publicID=BASE)
        normalise(graph, skolem_base=SKOLEM)
        by_rdflib = {masked(result_key(r)) for r in fast.validate(graph).results}
        assert {masked(result_key(r)) for r in fast.validate_compact(record).results} == by_rdflib, name
        verdict = not any(r[3].endswith("Violation") for r in ours)
        violations += not verdict
        if number % 3:
            continue
        rebuilt = record.to_rdflib()
        _, raw = reference_raw(rebuilt, official_split_shapes, background_for(rebuilt), allow_warnings=True)
        theirs = {key(f) for f in to_findings(raw) if f.focus in subjects}
        assert ours == theirs, (name, sorted(ours - theirs)[:3], sorted(theirs - ours)[:3])
        assert verdict == (not any(r[3].endswith("Violation") for r in theirs)), name
    assert violations > 0  # real records break the official shapes: the comparison saw reports


def test_our_profiles_give_pyshacls_reports_on_a_sample_and_run_on_every_record(
    corpus: list[tuple[str, CompactRecord]],
) -> None:
    chosen: set[tuple[Profile, ...]] = set()
    for number, (name, record) in enumerate(corpus):
        report = validate_compact(record)
        profiles = profiles_of(record)
        chosen.add(tuple(profiles))
        if number % 4:
            assert report.conforms == (not report.violations), name
            continue
        graph = record.to_rdflib()
        assert profiles == shacl.profiles_for(graph), name
        reference = shacl.validate(graph)
        assert {result_key(r) for r in report.results} == {result_key(r) for r in reference.results}, name
        assert report.conforms == reference.conforms, name
    assert len(chosen) > 1  # the corpus takes more than one profile combination


def analyse(record: CompactRecord) -> dict[str, Any]:
    """Normalise, validate and score one record (run in a worker and in the test process)."""
    normalised, repairs = normalise_compact(record, skolem_base=SKOLEM)
    report = validate_compact(normalised)
    datasets = normalised.subjects_of_type(DATASET)
    quality = [
        assess_compact(normalised, d, report, signed=False, publisher_verified=False).to_json()
        for d in datasets
    ]
    return {
        "statements": sorted(normalised.triples),
        "repairs": [r.to_json() for r in repairs],
        "results": sorted(map(result_key, report.results), key=str),
        "quality": quality,
    }


def test_a_spawned_worker_warmed_up_once_gives_the_same_answers(
    parsed: list[tuple[str, CompactRecord]],
) -> None:
    sample = [record for _, record in parsed[::20]]
    assert all(pickle.loads(pickle.dumps(r)) == r for r in sample)
    expected = [analyse(r) for r in sample]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        1, mp_context=context, initializer=warm_up, initargs=([[Profile.DCAT_AP]],)
    ) as pool:
        assert list(pool.map(analyse, sample)) == expected


def test_a_background_result_that_read_nothing_is_reported_when_the_record_names_its_node() -> None:
    """A cached evaluation of a background node may read nothing (a node kind check on the focus
    itself) and so is never rerun; once the record says something of that node, its result is
    about the record and belongs in the report, as pyshacl has it."""
    shapes = Graph().parse(
        data="""@prefix sh: <http://www.w3.org/ns/shacl#> . @prefix ex: <https://example.org/> .
        ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:nodeKind sh:BlankNode .""",
        format="turtle",
    )
    background = Graph().parse(data="<https://example.org/b> a <https://example.org/C> .", format="turtle")
    data = Graph().parse(data='<https://example.org/b> <https://example.org/p> "x" .', format="turtle")
    fast = FastValidator(shapes, background)
    report = fast.validate_compact(CompactRecord.from_rdflib(data))
    assert [result_key(r) for r in report.results] == [result_key(r) for r in fast.reference(data).results]
    assert not report.conforms
    untouched = Graph().parse(data='<https://example.org/a> <https://example.org/p> "x" .', format="turtle")
    assert fast.validate_compact(CompactRecord.from_rdflib(untouched)).conforms
