"""Offers read out as sentences agree with the engine's own reading of the same policy.

Each test reads the boundary *out of the sentence* (a date, a number of reads, a place, a
purpose) and asks the engine about requests just inside and just outside it: a sentence that
said "until 1 January 2028" for ``dateTime lt 2028-01-01`` would fail here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from policies import Request, World, evaluate, make_agreement, parse_policy, templates
from policies.model import Policy
from policies.sentences import policy_sentences
from vocab.hierarchy import places, purposes

CONSUMER = "did:web:consumer.example"
PROVIDER = "did:web:provider.example"
DATASET = "https://data.example/dataset/1"
COUNTRY = "http://publications.europa.eu/resource/authority/country/"
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _text(policy: Policy) -> str:
    sentences = policy_sentences(policy)
    assert len(sentences) == len(policy.rules), "one sentence per rule"
    return " ".join(sentence.text for sentence in sentences)


def _permits(policy: Policy, world: World | None = None, **context: object) -> bool:
    request = Request(CONSUMER, "use", DATASET, context)
    return evaluate(policy, request, world or World(now=datetime(2026, 6, 1, tzinfo=UTC))).permitted


def _day(text: str) -> datetime:
    day, month, year = text.split()
    return datetime(int(year), MONTHS.index(month) + 1, int(day), tzinfo=UTC)


def _term_labelled(hierarchy_terms: frozenset[str], label_of: object, phrase: str) -> str:
    for term in hierarchy_terms:
        label = label_of(term)  # type: ignore[operator]
        if label and label.lower() in phrase.lower():
            return term
    raise AssertionError(f"no term of the hierarchy is named in {phrase!r}")


def test_read_limit_in_the_sentence_is_the_last_read_the_engine_allows() -> None:
    for limit in (1, 3, 100):
        policy = templates.max_reads("urn:reads", limit)
        stated = int(re.search(r"at most (\d+) reads?", _text(policy)).group(1))  # type: ignore[union-attr]
        now = datetime(2026, 6, 1, tzinfo=UTC)
        assert _permits(policy, World(now=now, counts={policy.uid: stated - 1}))
        assert not _permits(policy, World(now=now, counts={policy.uid: stated}))


def test_exclusive_end_date_is_read_as_the_last_day_included() -> None:
    policy = templates.time_boxed(
        "urn:time", datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)
    )
    text = _text(policy)
    assert "until 31 December 2027" in text
    start = _day(re.search(r"from (\d+ \w+ \d{4})", text).group(1))  # type: ignore[union-attr]
    last = _day(re.search(r"until (\d+ \w+ \d{4})", text).group(1))  # type: ignore[union-attr]
    assert _permits(policy, World(now=start))
    assert not _permits(policy, World(now=start - timedelta(seconds=1)))
    assert _permits(policy, World(now=last + timedelta(hours=23, minutes=59, seconds=59)))
    assert not _permits(policy, World(now=last + timedelta(days=1)))


def test_an_instant_bound_says_whether_it_is_included() -> None:
    def bounded(operator: str) -> Policy:
        return parse_policy(
            {
                "@id": f"urn:{operator}",
                "@type": "Offer",
                "permission": [
                    {
                        "action": "use",
                        "constraint": [
                            {
                                "leftOperand": "dateTime",
                                "operator": operator,
                                "rightOperand": {"@value": "2027-03-01T12:30:00Z", "@type": "xsd:dateTime"},
                            }
                        ],
                    }
                ],
            }
        )

    bound = datetime(2027, 3, 1, 12, 30, tzinfo=UTC)
    inclusive, exclusive = bounded("lteq"), bounded("lt")
    assert "until 12:30 UTC on 1 March 2027 (inclusive)" in _text(inclusive)
    assert "before 12:30 UTC on 1 March 2027" in _text(exclusive)
    assert _permits(inclusive, World(now=bound))
    assert not _permits(exclusive, World(now=bound))
    assert _permits(exclusive, World(now=bound - timedelta(seconds=1)))


def test_purpose_named_in_the_sentence_is_the_one_the_engine_permits() -> None:
    policy = templates.research_only("urn:purpose", templates.AI_DEVELOPMENT)
    text = _text(policy)
    hierarchy = purposes()
    named = _term_labelled(hierarchy.terms(), hierarchy.label, text.split(" for ", 1)[1])
    assert named == templates.AI_DEVELOPMENT
    assert _permits(policy, purpose=named)
    assert _permits(policy, purpose="https://w3id.org/sluis/purpose/ai-training")  # narrower
    assert not _permits(policy, purpose=templates.COMMERCIAL_USE)


def test_place_named_in_the_sentence_is_where_the_engine_lets_the_job_run() -> None:
    policy = templates.eu_only_processing("urn:eu")
    text = _text(policy)
    assert "inside the European Union" in text
    hierarchy = places()
    region = _term_labelled(hierarchy.terms(), hierarchy.label, "European Union")
    assert _permits(policy, **{"sluis:computeSite": COUNTRY + "NLD"})
    assert hierarchy.is_a(COUNTRY + "NLD", region)
    assert not _permits(policy, **{"sluis:computeSite": COUNTRY + "USA"})


def test_deletion_deadline_in_days_is_the_engines_deadline() -> None:
    offer = templates.delete_after("urn:delete", 90)
    text = _text(offer)
    days = int(re.search(r"delete it within (\d+) days", text).group(1))  # type: ignore[union-attr]
    signed = datetime(2026, 1, 10, tzinfo=UTC)
    agreement = make_agreement(offer, PROVIDER, CONSUMER, DATASET, signed, "urn:agreement")
    assert "delete it within 90 days" in _text(agreement)
    assert _permits(agreement, World(now=signed + timedelta(days=days)))
    late = World(now=signed + timedelta(days=days, seconds=1))
    assert not _permits(agreement, late)
    done = World(now=late.now, duties={rule.uid: "fulfilled" for rule in _duties(agreement)})
    assert _permits(agreement, done)


def _duties(policy: Policy) -> list[object]:
    return [duty for rule in policy.atomic_rules for duty in rule.duties]


def test_the_issue_example_reads_as_one_sentence_per_rule() -> None:
    offer = templates.combine(
        "urn:combined",
        templates.research_only("urn:a", templates.AI_DEVELOPMENT),
        templates.eu_only_processing("urn:b"),
        templates.time_boxed("urn:c", datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)),
        templates.max_reads("urn:d", 100),
        templates.delete_after("urn:e", 90),
    )
    (sentence,) = policy_sentences(offer)
    assert sentence.text == (
        "You may use this data for development and innovation of products and services, including AI "
        "systems, inside the European Union, from 1 January 2026, until 31 December 2027, at most 100 "
        "reads; you must delete it within 90 days."
    )
    assert sentence.understood


def test_prohibition_reads_as_must_not_and_the_engine_refuses_it() -> None:
    policy = templates.no_commercial_use("urn:nc")
    sentences = {sentence.kind: sentence.text for sentence in policy_sentences(policy)}
    assert sentences["prohibition"] == "You must not use this data for commercial use."
    assert not _permits(policy, purpose=templates.COMMERCIAL_USE)
    assert _permits(policy, purpose=templates.SCIENTIFIC_RESEARCH)


@pytest.mark.parametrize(
    ("constraint", "unknown"),
    [
        (
            {"leftOperand": "https://example.org/partnerLevel", "operator": "eq", "rightOperand": "gold"},
            "https://example.org/partnerLevel",
        ),
        (
            {
                "leftOperand": "purpose",
                "operator": "https://example.org/resembles",
                "rightOperand": "https://w3id.org/sluis/purpose/ai-training",
            },
            "https://example.org/resembles",
        ),
    ],
)
def test_unknown_terms_are_named_and_said_to_be_refused(constraint: dict[str, object], unknown: str) -> None:
    policy = parse_policy(
        {
            "@id": "urn:unknown",
            "@type": "Offer",
            "permission": [{"action": "use", "constraint": [constraint]}],
        }
    )
    (sentence,) = policy_sentences(policy)
    assert unknown in sentence.text
    assert "refused" in sentence.text
    assert sentence.unknown_terms == (unknown,)
    assert not _permits(policy, purpose="https://w3id.org/sluis/purpose/ai-training")


def test_unknown_action_and_profile_are_never_hidden() -> None:
    policy = parse_policy(
        {
            "@id": "urn:odd",
            "@type": "Offer",
            "profile": "https://example.org/profile",
            "permission": [{"action": "https://example.org/teleport"}],
        }
    )
    texts = [sentence.text for sentence in policy_sentences(policy)]
    assert any("https://example.org/profile" in text and "refused" in text for text in texts)
    assert any("https://example.org/teleport" in text and "refused" in text for text in texts)
    assert not _permits(policy)


def test_aggregate_only_offer_names_the_smallest_group() -> None:
    policy = templates.aggregate_only("urn:agg", 10)
    (sentence,) = policy_sentences(policy)
    assert sentence.text == (
        "You may compute aggregates over this data only as aggregates, over groups of at least 10 rows."
    )
