"""Where the connector may send DSP messages: only to endpoints the data space bound to the peer.

A ``callbackAddress`` in a DSP message is a place we will POST to, with our own token. Accepting
any URL would let a peer aim us at arbitrary hosts (server-side request forgery). Neither may a
peer's *own* statements decide it: a DID document is written by its controller, so a service
entry in it proves nothing about who should receive our requests. An address is bound to the
authenticated counter-party only by something a party we trust signed or set:

* the host of its did:web identifier, when the token carried a ``MembershipCredential`` of the
  trusted authority about that identifier (the authority vouched for that DID, host included);
* an endpoint the authority listed in that credential's ``dspEndpoints`` claim;
* an endpoint the operator pinned in ``security.callback_allow_list``.

A bound origin must also pass the :class:`~connector.addresses.AddressPolicy` (form, host
spelling, resolved addresses), so even a vouched-for host that resolves to a private or
loopback address is refused unless the operator allowed that range.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from connector.addresses import AddressPolicy, AddressRefused
from connector.identity import (
    MEMBERSHIP_CREDENTIAL,
    IdentityError,
    VerifiedClaims,
    credential_subject,
    credential_types,
    did_to_url,
)

#: Longest callback address accepted; real DSP base URLs are far shorter.
MAX_CALLBACK_CHARS = 2048
#: The membership claim in which the authority lists a participant's DSP endpoints.
ENDPOINTS_CLAIM = "dspEndpoints"

_Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_and_path(url: str) -> tuple[_Origin, str] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    origin = (parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme])
    return origin, parts.path


def _within(url: str, base: str) -> bool:
    """``url`` has ``base``'s origin and a path equal to or below ``base``'s (segment-wise)."""
    target, pinned = _origin_and_path(url), _origin_and_path(base)
    if target is None or pinned is None or target[0] != pinned[0]:
        return False
    prefix = pinned[1].rstrip("/")
    return not prefix or target[1] == prefix or target[1].startswith(prefix + "/")


def authority_bound_bases(claims: VerifiedClaims) -> list[str]:
    """Base URLs the trusted authority bound to the caller: its did:web origin and listed endpoints.

    Empty unless the caller presented a verified ``MembershipCredential`` (``verify_token`` has
    already checked its proof, validity and that it is about the token's issuer).
    """
    memberships = [c for c in claims.credentials if MEMBERSHIP_CREDENTIAL in credential_types(c)]
    if not memberships:
        return []
    bases: list[str] = []
    try:
        document_url = urlsplit(did_to_url(claims.participant_id))
        bases.append(f"{document_url.scheme}://{document_url.netloc}")
    except IdentityError:
        pass
    for credential in memberships:
        listed = credential_subject(credential).get(ENDPOINTS_CLAIM, [])
        if isinstance(listed, list):
            bases.extend(item for item in listed if isinstance(item, str))
    return bases


@dataclass(frozen=True)
class CallbackPolicy:
    """Decides whether a callback address may be used for an authenticated counter-party."""

    addresses: AddressPolicy = field(default_factory=AddressPolicy)
    pinned: tuple[str, ...] = ()

    @classmethod
    def of(cls, addresses: AddressPolicy, pinned: Iterable[str] = ()) -> CallbackPolicy:
        return cls(addresses, tuple(item for item in pinned if item))

    def bound(self, callback: str, claims: VerifiedClaims) -> bool:
        """Whether the authority or the operator bound ``callback``'s origin to the caller."""
        if any(_within(callback, base) for base in self.pinned):
            return True
        bases = authority_bound_bases(claims)
        return any(_within(callback, base) for base in bases)

    def refusal(self, callback: str, claims: VerifiedClaims) -> str | None:
        """``None`` when ``callback`` may be used for ``claims``' participant, else the reason."""
        if not isinstance(callback, str) or len(callback) > MAX_CALLBACK_CHARS:
            return f"callbackAddress must be a URL of at most {MAX_CALLBACK_CHARS} characters"
        # binding first: an address bound to no one is refused without even a DNS lookup
        if not self.bound(callback, claims):
            return (
                f"callbackAddress {callback} is not bound to {claims.participant_id}: neither its "
                f"did:web host vouched for by a {MEMBERSHIP_CREDENTIAL} of the trusted authority, "
                f"nor an endpoint in that credential's {ENDPOINTS_CLAIM}, nor pinned by the operator"
            )
        try:
            self.addresses.check_url(callback, what="callbackAddress")
        except AddressRefused as refused:
            return str(refused)
        return None


def callback_refusal(callback: str, claims: VerifiedClaims, policy: CallbackPolicy) -> str | None:
    """``None`` when ``callback`` may be used for the caller ``claims`` names; otherwise why not."""
    return policy.refusal(callback, claims)
