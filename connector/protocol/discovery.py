"""The DSP version document (``/.well-known/dspace-version``): what a connector publishes and
how a peer reads it.

Both sides live here so that the consumer-side readers (the job client, the request-access page)
cannot drift from what the provider side writes: they pick the entry for the protocol version
this connector speaks (a connector may list several), not whichever comes first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from connector.protocol.extensions import EXT_EXTENSIONS, SUPPORTED_EXTENSIONS

DSP_VERSION: Final = "2025-1"
"""The Dataspace Protocol release this connector implements."""
VERSION_PATH: Final = "/.well-known/dspace-version"
MAX_VERSION_ENTRIES: Final = 32
"""Entries read from a peer's document at most (a hostile peer may list millions)."""


def version_document(participant: str) -> dict[str, Any]:
    """This connector's version document: one DSP 2025-1 entry served at ``/dsp``."""
    return {
        "protocolVersions": [
            {
                "version": DSP_VERSION,
                "path": "/dsp",
                "binding": "HTTPS",
                "identifierType": "did:web",
                "serviceId": f"{participant}#dsp",
                EXT_EXTENSIONS: list(SUPPORTED_EXTENSIONS),
            }
        ]
    }


def version_url(dsp_endpoint: str) -> str:
    """Where the connector serving ``dsp_endpoint`` (``…/dsp``) publishes its version document."""
    endpoint = dsp_endpoint.rstrip("/")
    origin = endpoint[: -len("/dsp")] if endpoint.endswith("/dsp") else endpoint
    return f"{origin}{VERSION_PATH}"


def participant_of(document: Any) -> str | None:
    """The participant (DID, without fragment) serving DSP 2025-1 per a peer's version document.

    None when the document lists no 2025-1 entry with a ``serviceId``; callers turn that into
    their own error, since "who is this" cannot be guessed.
    """
    if not isinstance(document, Mapping):
        return None
    entries = document.get("protocolVersions")
    if not isinstance(entries, list):
        return None
    for entry in entries[:MAX_VERSION_ENTRIES]:
        if not isinstance(entry, Mapping) or entry.get("version") != DSP_VERSION:
            continue
        service = entry.get("serviceId")
        if isinstance(service, str) and service.strip():
            return service.split("#", 1)[0]
    return None
