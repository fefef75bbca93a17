"""Whether a DSP address is served by the participant we are about to send a token for.

A DSP request carries a self-issued token whose only binding is its audience: the DID of the
participant it is meant for. A token for participant X sent to an address X does not serve is a
token the address's owner can present to X as us (with our credentials) until it expires. The
address and the DID often arrive together from a third party - a catalogue record names a
dataset's DSP endpoint and its provider, and a hostile publisher can pair a real provider's DID
with its own host - so before we start a conversation (catalog, dataset, negotiation, transfer)
the address must be the participant's by something the participant controls:

* it lies on the did:web's own origin (scheme, host and port of where the DID document lives:
  whoever serves the DID document controls the identifier), or
* the participant's DID document lists it (a ``service`` whose ``serviceEndpoint`` is the
  address or a path above it), which covers a connector whose public URL differs from its DID
  host; or
* the operator pinned it (``security.callback_allow_list``): a peer whose DID document names no
  endpoint can still be reached, on the operator's word.

Callbacks are not checked here: where we call a peer back was bound to it when it told us
(``connector.callbacks``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from connector.identity import IdentityError
from connector.identity.did import did_to_url, parse_did_web

_DEFAULT_PORTS = {"http": 80, "https": 443}


class DocumentResolver(Protocol):
    def resolve(self, did: str) -> dict[str, Any]: ...


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return scheme, parts.hostname.lower().strip("[]"), port


def _within(address: str, endpoint: str) -> bool:
    """``address`` is ``endpoint`` or a path below it, on the same origin."""
    if _origin(address) is None or _origin(address) != _origin(endpoint):
        return False
    base = urlsplit(endpoint).path.rstrip("/")
    path = urlsplit(address).path.rstrip("/")
    return path == base or path.startswith(base + "/")


def _service_endpoints(document: Mapping[str, Any]) -> list[str]:
    services = document.get("service")
    found: list[str] = []
    for service in services if isinstance(services, list) else []:
        endpoint = service.get("serviceEndpoint") if isinstance(service, Mapping) else None
        if isinstance(endpoint, str):
            found.append(endpoint)
    return found


def endpoint_refusal(
    address: str, did: str, resolver: DocumentResolver | object | None, pinned: Sequence[str] = ()
) -> str | None:
    """``None`` when ``address`` is served by ``did`` (see the module doc), else why not."""
    if any(_within(address, pin) for pin in pinned):
        return None
    try:
        parse_did_web(did)
        home = did_to_url(did)
    except IdentityError as error:
        return f"{did[:200]!r} is not a did:web we can check the address against ({error.message})"
    if _origin(address) is not None and _origin(address) == _origin(home):
        return None
    resolve = getattr(resolver, "resolve", None)  # a key-only resolver cannot list services
    if callable(resolve):
        try:
            document = resolve(did)
        except IdentityError as error:
            reason = error.message
            return f"{address[:200]} is not on {did}'s host and its DID document cannot be read ({reason})"
        if isinstance(document, Mapping) and any(
            _within(address, endpoint) for endpoint in _service_endpoints(document)
        ):
            return None
    return (
        f"{address[:200]} is not {did}'s: it is neither on the DID's host nor listed as a service in its "
        "DID document, and a token for that participant must not go to another host"
    )
