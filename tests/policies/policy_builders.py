"""Small builders for policies and requests in DSP compact form, shared by the policy tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from policies import Policy, Request, World, parse_policy

PURPOSE = "https://w3id.org/sluis/purpose/"
PLACE = "https://w3id.org/sluis/place/"
COUNTRY = "http://publications.europa.eu/resource/authority/country/"
ALICE = "did:web:alice.example"
BOB = "did:web:bob.example"
DATASET = "urn:dataset:cohort-2024"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def constraint(left: str, operator: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": operator, "rightOperand": right}


def offer(*permission_constraints: dict[str, Any], action: str = "use", **extra: Any) -> Policy:
    permission: dict[str, Any] = {"action": action}
    if permission_constraints:
        permission["constraint"] = list(permission_constraints)
    document: dict[str, Any] = {"@id": "urn:policy:test", "@type": "Offer", "permission": [permission]}
    document.update(extra)
    return parse_policy(document)


def request(action: str = "use", assignee: str = ALICE, target: str = DATASET, **context: Any) -> Request:
    return Request(
        assignee, action, target, {key.replace("__", ":"): value for key, value in context.items()}
    )


def world(**kwargs: Any) -> World:
    kwargs.setdefault("now", NOW)
    return World(**kwargs)
