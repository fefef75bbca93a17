"""Where the connector may send messages: only to the counter-party's own registered endpoints.

A ``callbackAddress`` in a DSP message is a place we will POST to (with our token). Accepting any
URL would let a peer aim us at arbitrary hosts (server-side request forgery), so an address is
allowed only when its origin is one the *authenticated* counter-party controls: the host its
did:web identifier names, or a DSP service listed in its DID document - or when the operator put
it on the configured allow-list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from connector.identity import IdentityError, did_to_url

#: Longest callback address accepted; real DSP base URLs are far shorter.
MAX_CALLBACK_CHARS = 2048
_DSP_SERVICE_TYPES = frozenset({"DataService", "CatalogService", "DSPService"})


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.username or parts.password:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def registered_origins(
    participant_id: str, did_document: Mapping[str, Any] | None
) -> set[tuple[str, str, int]]:
    """Origins a participant controls: its did:web host and its DID document's DSP services."""
    origins: set[tuple[str, str, int]] = set()
    try:
        origin = _origin(did_to_url(participant_id))
    except IdentityError:
        origin = None
    if origin:
        origins.add(origin)
    services = (did_document or {}).get("service", [])
    for service in services if isinstance(services, list) else []:
        if not isinstance(service, Mapping):
            continue
        types = service.get("type")
        type_set = {types} if isinstance(types, str) else set(types or [])
        endpoint = service.get("serviceEndpoint")
        if type_set & _DSP_SERVICE_TYPES and isinstance(endpoint, str):
            service_origin = _origin(endpoint)
            if service_origin:
                origins.add(service_origin)
    return origins


def callback_refusal(
    callback: str,
    participant_id: str,
    resolve: Callable[[str], Mapping[str, Any]] | None,
    allow_list: Iterable[str] = (),
) -> str | None:
    """``None`` when ``callback`` may be used for ``participant_id``; otherwise the reason it may not."""
    if len(callback) > MAX_CALLBACK_CHARS:
        return f"callbackAddress is longer than {MAX_CALLBACK_CHARS} characters"
    origin = _origin(callback)
    if origin is None:
        return "callbackAddress must be an absolute http(s) URL without credentials"
    for allowed in allow_list:
        if allowed and callback.rstrip("/").startswith(allowed.rstrip("/")):
            return None
    document: Mapping[str, Any] | None = None
    if resolve is not None:
        try:
            document = resolve(participant_id)
        except IdentityError:
            document = None
    if origin in registered_origins(participant_id, document):
        return None
    return (
        f"callbackAddress {callback} is not an endpoint registered for {participant_id} "
        "(its did:web host or a DSP service in its DID document) nor on the allow-list"
    )
