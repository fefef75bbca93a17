"""The seed catalogue: about forty real European health and energy datasets, all valid and scored."""

from __future__ import annotations

from collections import Counter

from rdflib import Graph, URIRef
from rdflib.namespace import RDF

from catalogue.quality import assess
from catalogue.seed import DATASET_BASE, dataset_iri, seed_files
from catalogue.validation import validate_record
from vocab.namespaces import DCAT, DCT, EU_ACCESS_RIGHT, EU_DATA_THEME, FOAF, HEALTHDCATAP
from vocab.shacl import Profile, profiles_for

# Every seed record scores in this band (documented in docs/quality.md): complete descriptions,
# but no download URLs, file sizes or dates, which we do not state without the publisher's figures.
SEED_BAND = "good"


def test_the_seed_catalogue_holds_about_forty_health_and_energy_datasets() -> None:
    files = seed_files()
    assert 38 <= len(files) <= 50
    themes: Counter[str] = Counter()
    for path in files:
        graph = Graph().parse(path)
        datasets = list(graph.subjects(RDF.type, DCAT.Dataset))
        assert datasets == [URIRef(dataset_iri(path))], path.name
        assert str(datasets[0]).startswith(DATASET_BASE)
        for theme in graph.objects(datasets[0], DCAT.theme):
            themes[str(theme)] += 1
        publisher = graph.value(datasets[0], DCT.publisher)
        assert graph.value(publisher, FOAF.name) is not None
        assert graph.value(datasets[0], DCAT.contactPoint) is not None
    assert themes[str(EU_DATA_THEME.ENER)] >= 15
    assert themes[str(EU_DATA_THEME.HEAL)] >= 15


def test_every_seed_record_validates_clean_and_scores_in_the_documented_band() -> None:
    for path in seed_files():
        graph = Graph().parse(path)
        report = validate_record(graph)
        assert report.conforms, (path.name, [r.message for r in report.violations])
        assert not report.violations
        assessment = assess(graph, URIRef(dataset_iri(path)), report, signed=False, publisher_verified=False)
        assert assessment.band == SEED_BAND, (path.name, assessment.total)


def test_restricted_health_records_name_a_health_data_access_body_and_pass_the_restricted_tier() -> None:
    restricted = []
    for path in seed_files():
        graph = Graph().parse(path)
        dataset = URIRef(dataset_iri(path))
        if (dataset, DCT.accessRights, EU_ACCESS_RIGHT.RESTRICTED) not in graph:
            continue
        restricted.append(path.stem)
        assert Profile.HEALTH_RESTRICTED in profiles_for(graph)
        body = graph.value(dataset, HEALTHDCATAP.hdab)
        assert body is not None
        assert graph.value(body, FOAF.name) is not None
        assert validate_record(graph, [Profile.DCAT_AP, Profile.HEALTH_RESTRICTED]).conforms
    assert len(restricted) >= 5
