"""Reading a peer's ``/.well-known/dspace-version``: the 2025-1 entry, whatever else it lists."""

from __future__ import annotations

from typing import Any

import pytest

from connector.protocol.discovery import (
    DSP_VERSION,
    MAX_VERSION_ENTRIES,
    participant_of,
    version_document,
    version_url,
)


def test_our_own_document_names_us() -> None:
    assert participant_of(version_document("did:web:provider.example")) == "did:web:provider.example"


def test_the_entry_for_our_version_is_used_not_the_first() -> None:
    document = {
        "protocolVersions": [
            {"version": "2024-1", "serviceId": "did:web:old.example#dsp"},
            {"version": DSP_VERSION, "serviceId": "did:web:current.example#dsp"},
        ]
    }
    assert participant_of(document) == "did:web:current.example"


@pytest.mark.parametrize(
    "document",
    [
        None,
        "text",
        [],
        {},
        {"protocolVersions": "2025-1"},
        {"protocolVersions": [{"version": DSP_VERSION}]},
        {"protocolVersions": [{"version": DSP_VERSION, "serviceId": "  "}]},
        {"protocolVersions": [{"version": DSP_VERSION, "serviceId": 7}]},
        {"protocolVersions": [{"version": "2024-1", "serviceId": "did:web:old.example"}]},
    ],
)
def test_documents_naming_no_current_participant_give_none(document: Any) -> None:
    assert participant_of(document) is None


def test_a_huge_list_is_read_only_up_to_the_cap() -> None:
    filler = [{"version": "0"}] * MAX_VERSION_ENTRIES
    late = {"version": DSP_VERSION, "serviceId": "did:web:late.example"}
    assert participant_of({"protocolVersions": [*filler, late]}) is None


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("https://p.example/dsp", "https://p.example/.well-known/dspace-version"),
        ("https://p.example/dsp/", "https://p.example/.well-known/dspace-version"),
        ("https://p.example/api/dsp", "https://p.example/api/.well-known/dspace-version"),
    ],
)
def test_version_url_sits_beside_the_dsp_endpoint(endpoint: str, expected: str) -> None:
    assert version_url(endpoint) == expected
