"""An agreement copied from the per-offer cache is the agreement ``policies`` makes.

``connector.policy_gate.make_agreement`` makes the first agreement of an offer for a consumer
and dataset through ``policies.make_agreement`` and later ones by copying it with a new id
and time. Generated offers (the fast-decision tests' policies) and bindings - including ids
and parties that occur in the offer's rules - are compared with the agreement made from
scratch.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policies
from connector.policy_gate import make_agreement
from tests.policies.test_policy_fast_decisions import SETTINGS, policy_documents
from tests.policies.test_policy_properties import PARTIES, START, TARGETS


def _from_scratch(offer: dict[str, Any], binding: dict[str, Any]) -> dict[str, Any]:
    agreement = policies.make_agreement(
        policies.parse_policy(offer),
        assigner=binding["assigner"],
        assignee=binding["assignee"],
        target=binding["target"],
        timestamp=binding["now"],
        uid=binding["agreement_id"],
    )
    body = dict(policies.to_dsp_json(agreement))
    body.pop("@context", None)
    return {**body, "@type": "Agreement", "@id": binding["agreement_id"]}


bindings = st.fixed_dictionaries(
    {
        "agreement_id": st.sampled_from(
            ["urn:agreement:1", "urn:agreement:2", "urn:policy:fast", TARGETS[0]]
        ),
        "assigner": st.sampled_from(["did:web:provider.example", PARTIES[0]]),
        "assignee": st.sampled_from(PARTIES),
        "target": st.sampled_from(["urn:ds:c", *TARGETS]),
        "now": st.builds(lambda s: START + timedelta(seconds=s, microseconds=250), st.integers(0, 10**7)),
    }
)


@settings(SETTINGS, max_examples=120)
@given(policy_documents, st.lists(bindings, min_size=2, max_size=4))
def test_every_agreement_of_an_offer_is_the_one_made_from_scratch(
    doc: dict[str, Any], made: list[dict[str, Any]]
) -> None:
    offer = {**doc, "@type": "Offer"}
    for binding in made:
        try:
            expected = _from_scratch(offer, binding)
        except policies.PolicyError as error:
            with pytest.raises(policies.PolicyError, match=re.escape(str(error))):
                make_agreement(offer, **binding)
            continue
        assert make_agreement(offer, **binding) == expected


def test_a_changed_agreement_does_not_change_the_next_one() -> None:
    offer = {"@id": "urn:offer:x", "@type": "Offer", "permission": [{"action": "use"}]}
    binding: dict[str, Any] = {
        "assigner": "did:web:p.example",
        "assignee": "did:web:c.example",
        "target": "urn:ds",
        "now": datetime.fromisoformat("2026-01-02T03:04:05+00:00"),
    }
    first = make_agreement(offer, agreement_id="urn:agreement:a", **binding)
    first["permission"].append({"action": "distribute"})
    second = make_agreement(offer, agreement_id="urn:agreement:b", **binding)
    assert second == _from_scratch(offer, {**binding, "agreement_id": "urn:agreement:b"})
    with pytest.raises(policies.PolicyError):
        make_agreement(offer, agreement_id="", **binding)
