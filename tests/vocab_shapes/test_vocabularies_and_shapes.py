"""The SKOS subsets and shape files we ship: complete enough, well-formed, SHACL Core only."""

from __future__ import annotations

from importlib import resources

import pytest
from rdflib import Graph, Literal, URIRef

from vocab.authority import tables
from vocab.namespaces import (
    DCT,
    EU_ACCESS_RIGHT,
    EU_AUTHORITY,
    EU_COUNTRY,
    EU_DATA_THEME,
    EU_FILE_TYPE,
    EU_LANGUAGE,
    EU_LICENCE,
    HEALTHDCATAP,
    HEALTHDCATAP_RELEASE,
    OWL,
    RDF,
    SH,
    SKOS,
    SLUIS,
)
from vocab.shacl import PROFILE_SHAPE_FILES, VOCABULARY_FILES, Profile, shapes_graph, vocabularies_graph

HEALTH_CATEGORY = "https://hdeu-dcat.data.health.europa.eu/resource/authority/healthcategories/"

# The SHACL Core vocabulary our shapes may use (K2's fast validator implements exactly these).
SHACL_CORE_TERMS = {
    SH[name]
    for name in (
        *("path", "inversePath", "alternativePath", "targetClass", "targetObjectsOf", "targetSubjectsOf"),
        *("targetNode",),
        *("minCount", "maxCount", "nodeKind", "datatype", "class", "node", "property", "hasValue", "in"),
        *("pattern", "or", "and", "not", "severity", "message", "name", "description"),
    )
}
DATA_THEMES = {
    *("AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL"),
    *("INTR", "JUST", "REGI", "SOCI", "TECH", "TRAN", "OP_DATPRO"),
}


def _concepts(scheme: str) -> set[URIRef]:
    graph = vocabularies_graph()
    return {c for c in graph.subjects(SKOS.inScheme, URIRef(scheme)) if isinstance(c, URIRef)}


# The copies of these EU tables carry no labels (see docs/shapes.md): their concepts are shown by code.
UNLABELLED_SCHEMES = {str(EU_FILE_TYPE).rstrip("/"), str(EU_LANGUAGE).rstrip("/"), EU_AUTHORITY + "frequency"}


def test_every_concept_has_a_type_a_scheme_with_its_source_and_version_and_a_label() -> None:
    graph = vocabularies_graph()
    concepts = set(graph.subjects(RDF.type, SKOS.Concept))
    assert len(concepts) > 10_000  # the complete EU tables, not subsets
    for concept in concepts:
        schemes = list(graph.objects(concept, SKOS.inScheme))
        assert schemes, concept
        for scheme in schemes:
            assert (scheme, RDF.type, SKOS.ConceptScheme) in graph, (concept, scheme)
            assert (
                graph.value(scheme, SKOS.prefLabel) is not None or graph.value(scheme, DCT.title) is not None
            ), scheme
        if not any(str(scheme) in UNLABELLED_SCHEMES for scheme in schemes):
            labels = [label for label in graph.objects(concept, SKOS.prefLabel) if isinstance(label, Literal)]
            assert any(label.language == "en" for label in labels), concept


def test_each_generated_table_states_its_version_source_and_licence() -> None:
    generated = [name for name in VOCABULARY_FILES if name.startswith(("eu-", "hdeu-"))]
    assert len(generated) >= 15
    for name in generated:
        graph = Graph()
        graph.parse(data=resources.files("vocab").joinpath("skos", name).read_text("utf-8"), format="turtle")
        schemes = list(graph.subjects(RDF.type, SKOS.ConceptScheme))
        assert schemes, name
        for scheme in schemes:
            assert graph.value(scheme, OWL.versionInfo) is not None, (name, scheme)
            assert "@" in str(graph.value(scheme, DCT.source)), (name, scheme)  # repository @ commit
            assert graph.value(scheme, DCT.rights) is not None, (name, scheme)


def test_all_fourteen_data_themes_are_there() -> None:
    codes = {str(c).rsplit("/", 1)[-1] for c in _concepts(str(EU_DATA_THEME).rstrip("/"))}
    assert codes == DATA_THEMES


@pytest.mark.parametrize(
    ("scheme", "required"),
    [
        (EU_FILE_TYPE, "CSV PARQUET JSON XML RDF_TURTLE JSON_LD ZIP PDF XLSX GEOJSON NETCDF HDF SHP"),
        (EU_ACCESS_RIGHT, "PUBLIC RESTRICTED NON_PUBLIC"),
        (EU_LICENCE, "CC_BY_4_0 CC_BYSA_4_0 CC0 ODC_BL ODC_BY ODC_PDDL"),
        (
            EU_LANGUAGE,
            "BUL HRV CES DAN NLD ENG EST FIN FRA DEU ELL HUN GLE ITA LAV LIT MLT POL POR RON SLK SLV SPA SWE",
        ),
        (
            EU_COUNTRY,
            "AUT BEL BGR HRV CYP CZE DNK EST FIN FRA DEU GRC HUN IRL ITA LVA LTU LUX MLT NLD POL PRT "
            "ROU SVK SVN ESP SWE ISL LIE NOR",
        ),
    ],
    ids=["file-types", "access-rights", "licences", "eu-languages", "eu-eea-countries"],
)
def test_the_common_concepts_of_each_eu_vocabulary_are_there(scheme: str, required: str) -> None:
    codes = {str(c).rsplit("/", 1)[-1] for c in _concepts(str(scheme).rstrip("/"))}
    assert set(required.split()) <= codes


def test_file_types_cover_the_common_thirty() -> None:
    assert len(_concepts(str(EU_FILE_TYPE).rstrip("/"))) >= 30


def test_the_seventeen_ehds_health_data_categories_of_release_8_are_there() -> None:
    categories = _concepts(HEALTH_CATEGORY.rstrip("/"))
    assert len(categories) == 17
    assert all(str(c).startswith(HEALTH_CATEGORY) for c in categories)
    labels = {tables().label(str(c), ("en",)) for c in categories}
    assert "Data from medical registries and mortality registries" in labels


def test_the_policy_hierarchies_are_not_validation_background() -> None:
    assert "purposes.ttl" not in VOCABULARY_FILES
    assert "places.ttl" not in VOCABULARY_FILES
    assert not list(vocabularies_graph().subjects(SKOS.inScheme, URIRef("https://w3id.org/sluis/purposes")))


def test_shapes_use_only_shacl_core_constraint_components() -> None:
    graph = shapes_graph(list(Profile))
    used = {p for p in graph.predicates() if str(p).startswith(str(SH))}
    assert used <= SHACL_CORE_TERMS, used - SHACL_CORE_TERMS
    assert not list(graph.subjects(RDF.type, SH.SPARQLConstraint))


def test_every_shape_file_says_what_it_is_and_for_which_profile() -> None:
    for profile, names in PROFILE_SHAPE_FILES.items():
        for name in names:
            text = resources.files("vocab").joinpath("shapes", name).read_text("utf-8")
            graph = Graph()
            graph.parse(data=text, format="turtle")
            [ontology] = list(graph.subjects(RDF.type, OWL.Ontology))
            assert graph.value(ontology, DCT.title) is not None, name
            declared = str(graph.value(ontology, SLUIS.profile))
            assert declared == str(profile) or str(profile).startswith(declared), (name, declared)


def test_health_shapes_carry_the_pinned_namespace_and_release() -> None:
    graph = shapes_graph([Profile.HEALTH_PUBLIC, Profile.HEALTH_RESTRICTED, Profile.HEALTH_NON_PUBLIC])
    namespaces = set(graph.objects(None, SLUIS.healthDcatApNamespace))
    releases = set(graph.objects(None, SLUIS.healthDcatApRelease))
    assert namespaces == {Literal(str(HEALTHDCATAP))}
    assert releases == {Literal(HEALTHDCATAP_RELEASE)}
    health_paths = {p for p in graph.objects(None, SH.path) if "health" in str(p).lower()}
    assert health_paths
    assert all(str(p).startswith(str(HEALTHDCATAP)) for p in health_paths)


def test_shapes_graphs_are_cached_per_set_of_profiles() -> None:
    assert shapes_graph([Profile.HVD, Profile.DCAT_AP]) is shapes_graph([Profile.DCAT_AP, Profile.HVD])
    assert shapes_graph([Profile.DCAT_AP]) is not shapes_graph([Profile.DCAT_AP, Profile.HVD])
    assert vocabularies_graph() is vocabularies_graph()
