"""Parsing ODRL from every form we accept, and refusing bad policies with precise errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policies import PolicyError, parse_policy, to_dsp_json
from policies import terms as t
from policies.model import Constraint, LogicalConstraint
from policies.serialize import to_odrl_jsonld

OFFER_TTL = """
@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
<urn:policy:ttl> a odrl:Offer ;
  odrl:permission [
    odrl:action odrl:read ;
    odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:isA ;
                      odrl:rightOperand <https://w3id.org/sluis/purpose/scientific-research> ] ,
                    [ odrl:leftOperand odrl:dateTime ; odrl:operator odrl:lt ;
                      odrl:rightOperand "2026-01-01"^^xsd:date ]
  ] .
"""


def _errors(document: Any) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_policy(document)
    return caught.value


def test_every_dsp_negotiation_example_policy_parses(conformance_dir: Path) -> None:
    folder = conformance_dir / "dsp" / "2025-1" / "examples"
    found = 0
    for path in sorted((folder / "negotiation").glob("*.json")):
        message = json.loads(path.read_text())
        for key in ("offer", "agreement"):
            if key in message:
                policy = parse_policy(message[key])
                assert policy.uid == message[key]["@id"]
                assert policy.type_name in {"Offer", "Agreement"}
                found += 1
    assert found >= 4


def test_dsp_catalog_offers_parse_without_a_target(conformance_dir: Path) -> None:
    catalog = json.loads(
        (conformance_dir / "dsp" / "2025-1" / "examples" / "catalog" / "catalog.json").read_text()
    )
    offer = catalog["dataset"][0]["hasPolicy"][0]
    policy = parse_policy(offer)
    assert policy.type == t.OFFER
    assert policy.targets == ()
    [rule] = policy.atomic_rules
    [constraint] = rule.constraints
    assert isinstance(constraint, Constraint)
    assert constraint.left_operand == t.SPATIAL
    assert constraint.right[0].value == "http://example.org/EU"


def test_dsp_full_agreement_keeps_nested_logical_constraints(conformance_dir: Path) -> None:
    path = conformance_dir / "dsp/2025-1/examples/negotiation/contract-agreement-message-full.json"
    policy = parse_policy(json.loads(path.read_text())["agreement"])
    assert len(policy.atomic_rules) == 7
    last = policy.atomic_rules[-1].constraints[0]
    assert isinstance(last, LogicalConstraint)
    assert last.operator == t.odrl("or")
    assert isinstance(last.operands[0], LogicalConstraint)
    assert policy.assigner == "http://example.com/Provider"
    assert policy.timestamp == "2023-01-01T01:00:00Z"


def test_operand_spellings_are_equivalent() -> None:
    spellings = ["purpose", "odrl:purpose", t.PURPOSE, {"@id": "odrl:purpose"}, {"@id": t.PURPOSE}]
    parsed = set()
    for left in spellings:
        policy = parse_policy(
            {
                "@id": "urn:p",
                "@type": "Offer",
                "permission": [
                    {
                        "action": "odrl:use",
                        "constraint": [
                            {"leftOperand": left, "operator": {"@id": "odrl:eq"}, "rightOperand": "x"}
                        ],
                    }
                ],
            }
        )
        constraint = policy.atomic_rules[0].constraints[0]
        assert isinstance(constraint, Constraint)
        parsed.add((constraint.left_operand, constraint.operator))
    assert parsed == {(t.PURPOSE, t.odrl("eq"))}


def test_right_operand_forms_literal_list_and_typed_value() -> None:
    policy = parse_policy(
        {
            "@id": "urn:p",
            "permission": [
                {
                    "action": "use",
                    "constraint": [
                        {
                            "leftOperand": "dateTime",
                            "operator": "lt",
                            "rightOperand": {"@value": "2026-01-01", "@type": "xsd:date"},
                        },
                        {"leftOperand": "language", "operator": "isAnyOf", "rightOperand": ["nl", "en"]},
                        {"leftOperand": "count", "operator": "lteq", "rightOperand": 5},
                    ],
                }
            ],
        }
    )
    typed, listed, number = policy.atomic_rules[0].constraints
    assert isinstance(typed, Constraint)
    assert typed.right[0].datatype == t.XSD_NS + "date"
    assert isinstance(listed, Constraint)
    assert listed.right_is_list
    assert len(listed.right) == 2
    assert isinstance(number, Constraint)
    assert number.right[0].value == 5
    assert policy.type == t.SET  # no @type: Set is the ODRL default


def test_odrl_context_expanded_and_turtle_give_the_same_rules() -> None:
    compact = parse_policy(OFFER_TTL)
    odrl_jsonld = parse_policy(to_odrl_jsonld(compact))
    dsp = parse_policy(to_dsp_json(compact))
    assert compact.type == odrl_jsonld.type == dsp.type == t.OFFER
    for other in (odrl_jsonld, dsp):
        assert [r.action.iri for r in other.atomic_rules] == [t.READ]
        lefts = sorted(c.left_operand for c in other.atomic_rules[0].constraints if isinstance(c, Constraint))
        assert lefts == [t.DATE_TIME, t.PURPOSE]


def test_expanded_jsonld_without_context_is_read() -> None:
    expanded = [
        {
            "@id": "urn:policy:expanded",
            "@type": [t.OFFER],
            t.odrl("permission"): [
                {
                    t.odrl("action"): [{"@id": t.USE}],
                    t.odrl("constraint"): [
                        {
                            t.odrl("leftOperand"): [{"@id": t.SPATIAL}],
                            t.odrl("operator"): [{"@id": t.odrl("isPartOf")}],
                            t.odrl("rightOperand"): [{"@id": "https://w3id.org/sluis/place/EU"}],
                        }
                    ],
                }
            ],
        }
    ]
    policy = parse_policy(json.dumps(expanded))
    constraint = policy.atomic_rules[0].constraints[0]
    assert isinstance(constraint, Constraint)
    assert constraint.right[0].is_iri


def test_compact_policy_is_expanded_to_atomic_rules() -> None:
    policy = parse_policy(
        {
            "@id": "urn:p",
            "@type": "Agreement",
            "assigner": "urn:provider",
            "assignee": "urn:consumer",
            "target": "urn:dataset",
            "permission": [{"action": ["read", "aggregate"]}],
            "prohibition": [{"action": "distribute", "target": ["urn:a", "urn:b"]}],
        }
    )
    kinds = [(r.kind, r.action.iri, r.target.iri if r.target else None) for r in policy.atomic_rules]
    assert kinds == [
        ("permission", t.READ, "urn:dataset"),
        ("permission", t.AGGREGATE, "urn:dataset"),
        ("prohibition", t.odrl("distribute"), "urn:a"),
        ("prohibition", t.odrl("distribute"), "urn:b"),
    ]
    assert all(r.assigner and r.assigner.iri == "urn:provider" for r in policy.atomic_rules)
    assert len({r.uid for r in policy.atomic_rules}) == 4


@pytest.mark.parametrize(
    ("document", "code", "location"),
    [
        ({"@type": "Offer", "permission": [{"action": "use"}]}, "missing-uid", "$"),
        ({"@id": "urn:p", "permission": [{"constraint": []}]}, "missing-action", "$.permission[0]"),
        (
            {"@id": "urn:p", "@type": "Agreement", "assignee": "urn:c", "permission": [{"action": "use"}]},
            "agreement-without-assigner",
            "$.permission[0]",
        ),
        (
            {"@id": "urn:p", "@type": "Agreement", "assigner": "urn:c", "permission": [{"action": "use"}]},
            "agreement-without-assignee",
            "$.permission[0]",
        ),
        (
            {
                "@id": "urn:p",
                "permission": [
                    {
                        "action": "use",
                        "constraint": [
                            {
                                "and": [{"leftOperand": "count", "operator": "lt", "rightOperand": 1}],
                                "or": [{"leftOperand": "count", "operator": "lt", "rightOperand": 1}],
                            }
                        ],
                    }
                ],
            },
            "multiple-logical-operators",
            "$.permission[0].constraint[0]",
        ),
        (
            {
                "@id": "urn:p",
                "permission": [
                    {"action": "use", "constraint": [{"leftOperand": "count", "rightOperand": 1}]}
                ],
            },
            "missing-operator",
            "$.permission[0].constraint[0]",
        ),
        (
            {
                "@id": "urn:p",
                "permission": [{"action": "use", "constraint": [{"leftOperand": "count", "operator": "lt"}]}],
            },
            "missing-rightoperand",
            "$.permission[0].constraint[0]",
        ),
        (
            {"@id": "urn:p", "conflict": "whatever", "permission": [{"action": "use"}]},
            "unknown-conflict-strategy",
            "$.conflict",
        ),
        (
            {
                "@id": "urn:p",
                "@type": "Offer",
                "constraint": [{"leftOperand": "count", "operator": "lt", "rightOperand": 1}],
                "permission": [{"action": "use"}],
            },
            "policy-level-constraint",
            "$.constraint",
        ),
        (
            {"@id": "urn:p", "@type": "Catalog", "permission": [{"action": "use"}]},
            "unknown-policy-type",
            "$.@type",
        ),
        (
            {"@id": "urn:p", "prohibition": [{"action": "use", "duty": [{"action": "delete"}]}]},
            "misplaced-duty",
            "$.prohibition[0]",
        ),
    ],
)
def test_invalid_policies_are_refused_with_code_and_location(document: Any, code: str, location: str) -> None:
    error = _errors(document)
    assert error.code == code
    assert error.location == location
    assert error.message


def test_malformed_json_and_turtle_report_their_position() -> None:
    error = _errors('{"@id": "urn:p", ')
    assert error.code == "invalid-json"
    assert "line 1" in error.message
    turtle_error = _errors(
        "@prefix odrl: <http://www.w3.org/ns/odrl/2/> .\n<urn:p> a odrl:Offer ; odrl:permission [ .\n"
    )
    assert turtle_error.location
    assert turtle_error.location.startswith("line")
    assert turtle_error.code == "rdf-syntax"


def test_inherit_from_merges_parent_rules_and_resolves_lazily() -> None:
    parent = {
        "@id": "urn:parent",
        "@type": "Set",
        "conflict": "prohibit",
        "prohibition": [{"action": "distribute"}],
    }
    child = parse_policy(
        {
            "@id": "urn:child",
            "@type": "Offer",
            "inheritFrom": "urn:parent",
            "permission": [{"action": "use"}],
        },
        inherit={"urn:parent": parent},
    )
    assert [r.kind for r in child.atomic_rules] == ["permission", "prohibition"]
    assert child.atomic_rules[1].origin == "urn:parent"
    assert child.conflict == t.PROHIBIT


def test_circular_and_unresolved_inheritance_are_refused() -> None:
    a = {"@id": "urn:a", "inheritFrom": "urn:b", "permission": [{"action": "use"}]}
    b = {"@id": "urn:b", "inheritFrom": "urn:a", "permission": [{"action": "read"}]}
    with pytest.raises(PolicyError) as caught:
        parse_policy(a, inherit={"urn:a": a, "urn:b": b})
    assert caught.value.code == "circular-inheritance"
    assert "urn:a -> urn:b -> urn:a" in caught.value.message
    with pytest.raises(PolicyError) as missing:
        parse_policy(a)
    assert missing.value.code == "unresolved-inheritance"


def test_policies_are_immutable_values() -> None:
    policy = parse_policy({"@id": "urn:p", "permission": [{"action": "use"}]})
    with pytest.raises(AttributeError):
        policy.uid = "urn:other"  # type: ignore[misc]
    assert isinstance(policy.atomic_rules, tuple)


def test_a_policy_is_found_inside_a_whole_dsp_message(conformance_dir: Path) -> None:
    folder = conformance_dir / "dsp" / "2025-1" / "examples"
    message = json.loads((folder / "negotiation" / "contract-agreement-message.json").read_text())
    assert parse_policy(message).uid == message["agreement"]["@id"]
    request = json.loads((folder / "negotiation" / "contract-request-message_initial.json").read_text())
    policy = parse_policy(request)
    assert policy.target == request["offer"]["target"]
