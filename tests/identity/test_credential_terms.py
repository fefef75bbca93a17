"""Credentials we issue expand offline with every claim kept (no term silently dropped)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connector.identity import KeyPair, issue_credential
from connector.identity.credentials import EHDS_DATA_PERMIT
from vocab import jsonld

SLUIS = "https://w3id.org/sluis/ns#"


def test_an_ehds_permit_expands_with_all_its_claims() -> None:
    authority = KeyPair.generate()
    now = datetime(2026, 11, 1, tzinfo=UTC)
    permit = issue_credential(
        authority,
        "did:web:authority.example",
        "did:web:consumer.example",
        EHDS_DATA_PERMIT,
        {
            "permitId": "permit-1",
            "purposes": ["https://w3id.org/sluis/purpose/scientific-research"],
            "datasets": ["https://data.sluis.example/dataset/x"],
            "healthDataAccessBody": "https://hdab.example",
        },
        now,
        now + timedelta(days=30),
    )
    expanded = jsonld.expand(permit, base="https://authority.example/")
    node = expanded[0]
    assert SLUIS + "EHDSDataPermit" in node["@type"]
    subject = node["https://www.w3.org/2018/credentials#credentialSubject"][0]
    for claim in ("permitId", "purposes", "datasets", "healthDataAccessBody"):
        assert SLUIS + claim in subject, f"{claim} was dropped on expansion"
