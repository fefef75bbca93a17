"""Fail closed: shapes the fast validator cannot compile are validated by pyshacl, never skipped."""

from __future__ import annotations

import pytest
from rdflib import Graph

from catalogue.validation import FastValidator, UnsupportedShapesError
from catalogue.validation._compile import compile_shapes
from catalogue.validation._reference import reference_raw

PREFIXES = """
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix ex: <https://example.org/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
"""
DATA = PREFIXES + """
ex:a a ex:Thing ; ex:size 3 ; ex:name "A" .
ex:b a ex:Thing ; ex:size 12 .
"""
UNSUPPORTED = {
    "value range": "ex:S a sh:NodeShape ; sh:targetClass ex:Thing ; "
    "sh:property [ sh:path ex:size ; sh:maxInclusive 10 ] .",
    "SHACL-SPARQL": "ex:S a sh:NodeShape ; sh:targetClass ex:Thing ; sh:sparql [ a sh:SPARQLConstraint ; "
    'sh:select "SELECT $this WHERE { $this <https://example.org/size> ?s FILTER (?s > 10) }" ] .',
    "property pair": "ex:S a sh:NodeShape ; sh:targetClass ex:Thing ; "
    "sh:property [ sh:path ex:size ; sh:lessThan ex:name ] .",
    "recursive shapes": "ex:S a sh:NodeShape ; sh:targetClass ex:Thing ; sh:node ex:T . "
    "ex:T a sh:NodeShape ; sh:node ex:S .",
}


@pytest.mark.parametrize("kind", sorted(UNSUPPORTED))
def test_unsupported_shapes_fall_back_to_pyshacl_with_the_same_results(kind: str) -> None:
    shapes = Graph().parse(data=PREFIXES + UNSUPPORTED[kind], format="turtle")
    data = Graph().parse(data=DATA, format="turtle")
    with pytest.raises(UnsupportedShapesError):
        compile_shapes(shapes)
    validator = FastValidator(shapes)
    assert not validator.is_fast
    assert validator.fallback_reason
    if kind == "recursive shapes":
        return  # pyshacl itself only warns about recursion; the point is that we did not compile
    conforms, results = validator.validate_raw(data)
    ref_conforms, ref_results = reference_raw(data, shapes)
    assert {(r.focus, r.component, r.value) for r in results} == {
        (r.focus, r.component, r.value) for r in ref_results
    }
    assert conforms == ref_conforms
    assert not conforms  # ex:b breaks the rule: the rule was applied, not skipped


def test_a_record_declaring_subclasses_is_validated_by_pyshacl_and_agrees() -> None:
    shapes = Graph().parse(
        data=PREFIXES + "ex:S a sh:NodeShape ; sh:targetClass ex:Thing ; "
        "sh:property [ sh:path ex:part ; sh:class ex:Part ] .",
        format="turtle",
    )
    data = Graph().parse(
        data=PREFIXES + "ex:Wheel rdfs:subClassOf ex:Part . ex:Car rdfs:subClassOf ex:Thing . "
        "ex:c a ex:Car ; ex:part ex:w, ex:x . ex:w a ex:Wheel . ex:x a ex:Other .",
        format="turtle",
    )
    validator = FastValidator(shapes)
    assert validator.is_fast
    conforms, results = validator.validate_raw(data)
    _, ref_results = reference_raw(data, shapes)
    keys = {(str(r.focus), str(r.value)) for r in results}
    assert keys == {(str(r.focus), str(r.value)) for r in ref_results}
    assert keys == {("https://example.org/c", "https://example.org/x")}
    assert not conforms


def test_every_core_constraint_we_compile_agrees_with_pyshacl() -> None:
    shapes = Graph().parse(
        data=PREFIXES
        + """
ex:S a sh:NodeShape ; sh:targetClass ex:Thing ; sh:closed true ;
  sh:ignoredProperties ( <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> ) ;
  sh:property [ sh:path ex:size ; sh:datatype xsd:integer ; sh:maxCount 1 ; sh:in ( 3 4 5 ) ] ,
    [ sh:path ex:name ; sh:minCount 1 ; sh:minLength 2 ; sh:pattern "^[A-Z]" ; sh:flags "i" ;
      sh:languageIn ( "en" ) ; sh:uniqueLang true ] ,
    [ sh:path ( ex:friend ex:name ) ; sh:maxLength 3 ] ,
    [ sh:path [ sh:inversePath ex:friend ] ; sh:nodeKind sh:IRI ] ,
    [ sh:path [ sh:alternativePath ( ex:friend ex:enemy ) ] ; sh:node ex:Named ] ,
    [ sh:path [ sh:oneOrMorePath ex:friend ] ; sh:not [ sh:hasValue ex:z ] ] ,
    [ sh:path ex:friend ; sh:qualifiedValueShape [ sh:class ex:Thing ] ; sh:qualifiedMinCount 2 ] ,
    [ sh:path ex:tag ; sh:xone ( [ sh:datatype xsd:string ] [ sh:minLength 3 ] ) ] ,
    [ sh:path ex:tag ; sh:and ( [ sh:nodeKind sh:Literal ] [ sh:maxLength 5 ] ) ] ,
    [ sh:path ex:friend ; sh:hasValue ex:b ; sh:deactivated true ] ,
    [ sh:path ex:enemy ; sh:hasValue ex:b ; sh:severity sh:Warning ; sh:message "needs b"@en ] .
ex:Named a sh:NodeShape ; sh:property [ sh:path ex:name ; sh:minCount 1 ] .
"""
        ,
        format="turtle",
    )
    data = Graph().parse(
        data=PREFIXES
        + """
ex:a a ex:Thing ; ex:size 3, 9 ; ex:name "a"@en, "Ab"@en, "x"@de ; ex:friend ex:b, ex:z ;
  ex:tag "hello", "hi", 42 ; ex:extra 1 .
ex:b a ex:Thing ; ex:size "4" ; ex:name "Bee"@en ; ex:friend ex:a ; ex:enemy ex:a .
ex:z ex:name "Zed" .
_:n a ex:Thing ; ex:name "Blank"@en ; ex:friend _:m .
_:m ex:name "m" .
"""
        ,
        format="turtle",
    )
    validator = FastValidator(shapes)
    assert validator.is_fast, validator.fallback_reason
    conforms, results = validator.validate_raw(data)
    ref_conforms, ref_results = reference_raw(data, shapes)
    fast_keys = {(r.focus, r.path, r.component, r.severity, r.value) for r in results}
    ref_keys = {(r.focus, r.path, r.component, r.severity, r.value) for r in ref_results}
    assert fast_keys == ref_keys
    assert conforms == ref_conforms
    assert len({k[2] for k in ref_keys}) >= 10  # many different components actually fired


def test_records_in_a_shared_store_are_read_as_their_own_triples_only() -> None:
    """The fast triple reader must see one named graph of a dataset, not the whole store."""
    from rdflib import Dataset, URIRef

    from catalogue.validation._view import triples_of

    dataset = Dataset()
    first = dataset.graph(URIRef("https://example.org/g1"))
    second = dataset.graph(URIRef("https://example.org/g2"))
    first.parse(data=DATA, format="turtle")
    second.parse(data=PREFIXES + "ex:c a ex:Thing .", format="turtle")
    assert set(triples_of(first)) == set(first)
    assert set(triples_of(second)) == set(second)
    shapes = Graph().parse(
        data=PREFIXES + "ex:S a sh:NodeShape ; sh:targetClass ex:Thing ; "
        "sh:property [ sh:path ex:size ; sh:minCount 1 ] .",
        format="turtle",
    )
    _, results = FastValidator(shapes).validate_raw(second)
    assert {str(r.focus) for r in results} == {"https://example.org/c"}
