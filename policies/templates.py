"""Governance templates a provider starts from: each returns a DSP-ready ``Offer``.

Every template gives an ``Offer`` with a uid and no target (the dataset it is attached to is
the target, as DSP catalogs require), written in DSP compact form and parsed like any other
policy. ``combine`` merges templates into one offer: the permissions' constraints are joined
(all must hold), prohibitions and duties are kept, and the strictest action wins
(``aggregate`` over ``use``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from policies.model import Policy
from policies.parse import parse_policy
from policies.serialize import to_dsp_json

PURPOSE: Final = "https://w3id.org/sluis/purpose/"
PLACE: Final = "https://w3id.org/sluis/place/"
SCIENTIFIC_RESEARCH: Final = PURPOSE + "scientific-research"
SECONDARY_USE: Final = PURPOSE + "secondary-use"
AI_DEVELOPMENT: Final = PURPOSE + "ai-development"
COMMERCIAL_USE: Final = PURPOSE + "commercial-use"
EU: Final = PLACE + "EU"
EEA: Final = PLACE + "EEA"
SLUIS_PROFILE: Final = "https://w3id.org/sluis/odrl-profile"


def _offer(
    uid: str, permission: dict[str, Any], *, prohibitions: list[dict[str, Any]] | None = None
) -> Policy:
    document: dict[str, Any] = {"@id": uid, "@type": "Offer", "permission": [permission]}
    if prohibitions:
        document["prohibition"] = prohibitions
        document["conflict"] = "prohibit"
    return parse_policy(document)


def _stamp(moment: datetime) -> dict[str, str]:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {"@value": text, "@type": "xsd:dateTime"}


def research_only(uid: str, purpose: str = SCIENTIFIC_RESEARCH) -> Policy:
    """Use only for ``purpose`` or a narrower one (default: scientific research, EHDS Art. 53)."""
    return _offer(
        uid,
        {
            "action": "use",
            "constraint": [{"leftOperand": "purpose", "operator": "isA", "rightOperand": purpose}],
        },
    )


def eu_only_processing(uid: str, region: str = EU) -> Policy:
    """Processing only at compute sites inside ``region`` (default: the EU)."""
    return _offer(
        uid,
        {
            "action": "use",
            "constraint": [
                {"leftOperand": "sluis:computeSite", "operator": "isPartOf", "rightOperand": region}
            ],
        },
    )


def time_boxed(uid: str, start: datetime, end: datetime) -> Policy:
    """Use from ``start`` (inclusive) until ``end`` (exclusive)."""
    return _offer(
        uid,
        {
            "action": "use",
            "constraint": [
                {"leftOperand": "dateTime", "operator": "gteq", "rightOperand": _stamp(start)},
                {"leftOperand": "dateTime", "operator": "lt", "rightOperand": _stamp(end)},
            ],
        },
    )


def max_reads(uid: str, reads: int) -> Policy:
    """At most ``reads`` reads under the agreement (the world counts them)."""
    return _offer(
        uid,
        {
            "action": "use",
            "constraint": [
                {
                    "leftOperand": "count",
                    "operator": "lteq",
                    "rightOperand": {"@value": reads, "@type": "xsd:integer"},
                },
            ],
        },
    )


def aggregate_only(uid: str, min_group_size: int) -> Policy:
    """Only aggregates over groups of at least ``min_group_size`` rows."""
    return _offer(
        uid,
        {
            "action": "aggregate",
            "constraint": [
                {
                    "leftOperand": "sluis:aggregateOnly",
                    "operator": "eq",
                    "rightOperand": {"@value": True, "@type": "xsd:boolean"},
                },
                {
                    "leftOperand": "sluis:groupSize",
                    "operator": "gteq",
                    "rightOperand": {"@value": min_group_size, "@type": "xsd:integer"},
                },
            ],
        },
    )


def no_commercial_use(uid: str) -> Policy:
    """Any use except for commercial purposes (the prohibition wins a conflict)."""
    return _offer(
        uid,
        {"action": "use"},
        prohibitions=[
            {
                "action": "use",
                "constraint": [{"leftOperand": "purpose", "operator": "isA", "rightOperand": COMMERCIAL_USE}],
            }
        ],
    )


def delete_after(uid: str, days: int) -> Policy:
    """Use, with the duty to delete the data within ``days`` days of the agreement.

    The duty carries a deadline (``elapsedTime lteq P<days>D``, counted from the agreement's
    timestamp): until then use is permitted; once it has passed, use is permitted only if the
    deletion is recorded as fulfilled - otherwise the duty is violated and use is denied.
    """
    return _offer(
        uid,
        {
            "action": "use",
            "duty": [
                {
                    "action": "delete",
                    "constraint": [
                        {
                            "leftOperand": "elapsedTime",
                            "operator": "lteq",
                            "rightOperand": {"@value": f"P{days}D", "@type": "xsd:duration"},
                        }
                    ],
                }
            ],
        },
    )


def combine(uid: str, *parts: Policy) -> Policy:
    """One offer holding the restrictions of several templates (all must hold)."""
    permission: dict[str, Any] = {"action": "use"}
    constraints: list[Any] = []
    duties: list[Any] = []
    prohibitions: list[Any] = []
    for part in parts:
        document = to_dsp_json(part)
        for rule in document.get("permission", []):
            if rule.get("action") == "aggregate":
                permission["action"] = "aggregate"
            constraints.extend(rule.get("constraint", []))
            duties.extend(rule.get("duty", []))
        prohibitions.extend(document.get("prohibition", []))
    if constraints:
        permission["constraint"] = constraints
    if duties:
        permission["duty"] = duties
    return _offer(uid, permission, prohibitions=prohibitions or None)


TEMPLATES: Final = {
    "research-only": research_only,
    "eu-only-processing": eu_only_processing,
    "time-boxed": time_boxed,
    "max-reads": max_reads,
    "aggregate-only": aggregate_only,
    "no-commercial-use": no_commercial_use,
    "delete-after": delete_after,
}
