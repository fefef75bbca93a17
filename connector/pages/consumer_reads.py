"""Reads made under an agreement, as a consumer learns them: from the provider's signed audit log.

The consumer's jobs read straight from the provider's data plane, so the consumer connector has
no count of its own. It asks the provider for the consumer's audit export of a transfer under
the agreement (``GET {endpoint}/audit``, with the transfer's access token and a fresh proof
signed by this participant's key, as the job client does), checks the export's signature and
chain against the provider's key named in the agreement's proof, and counts the permitted and
denied reads under this agreement. Nothing is refreshed: a token past the data plane's grace
period yields "not available", never a new token that a running job would then lose.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from connector.addresses import AddressPolicy, AddressRefused
from connector.audit import AuditError, verify_export
from connector.dataplane.tokens import make_proof
from connector.identity import (
    IdentityError,
    KeyPair,
    PublicKeyResolver,
    public_key_to_multibase,
    verification_method_id,
)
from connector.store import Store

# An export of one consumer's entries; bigger answers are not read.
MAX_EXPORT_BYTES: Final = 16 * 1024 * 1024
TIMEOUT_SECONDS: Final = 10.0


@dataclass(frozen=True)
class ConsumerReads:
    permitted: int | None
    denied: int | None
    note: str


def reads_from_provider(
    agreement_id: str, store: Store, key: KeyPair, addresses: AddressPolicy, resolver: PublicKeyResolver
) -> ConsumerReads:
    """Permitted and denied reads under ``agreement_id`` in the provider's audit export."""
    agreement = store.get_agreement(agreement_id)
    if agreement is None:
        return ConsumerReads(None, None, "no such agreement")
    transfers = [
        record for record in store.processes_for_agreement(agreement_id)
        if record.kind == "transfer" and isinstance(record.details.get("data_address"), dict)
    ]  # fmt: skip
    if not transfers:
        return ConsumerReads(None, None, "no transfer under this agreement yet, so no reads")
    address = transfers[-1].details["data_address"]
    endpoint, token = address.get("endpoint"), address.get("token")
    if not isinstance(endpoint, str) or not isinstance(token, str):
        return ConsumerReads(None, None, "the provider's data address has no endpoint or token")
    url = endpoint.rstrip("/") + "/audit"
    try:
        checked = addresses.check_url(url, what="the provider's data plane")
    except AddressRefused as refusal:
        return ConsumerReads(None, None, str(refusal))
    # the request goes to the address just checked, not to a second resolution of the name
    target, host_header, extensions = checked.pinned()
    headers = {"Authorization": f"DPoP {token}", "DPoP": make_proof(key, "GET", url, token), **host_header}
    try:
        with (
            httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client,
            client.stream("GET", target, headers=headers, extensions=extensions) as response,
        ):
            if response.status_code != 200:
                return ConsumerReads(
                    None, None, f"the provider did not give its audit log (HTTP {response.status_code})"
                )
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > MAX_EXPORT_BYTES:
                    return ConsumerReads(None, None, "the provider's audit export is too large to read here")
    except httpx.HTTPError as error:
        return ConsumerReads(None, None, f"the provider's data plane did not answer: {error}")
    try:
        provider_key = public_key_to_multibase(
            resolver.public_key(verification_method_id(agreement.provider_id))
        )
    except IdentityError as error:  # the provider's DID document is unreachable or lists no such key
        return ConsumerReads(None, None, f"the provider's key could not be resolved: {error}")
    return _count(bytes(body), agreement_id, provider_key)


def _count(export: bytes, agreement_id: str, provider_key: str) -> ConsumerReads:
    with tempfile.TemporaryDirectory(prefix="sluis-pages-") as folder:
        path = Path(folder) / "audit.jsonl"
        path.write_bytes(export)
        try:
            result = verify_export(path, provider_key)
        except AuditError as error:
            return ConsumerReads(None, None, f"the provider's audit export could not be read: {error}")
    if not result.report.intact:
        return ConsumerReads(
            None, None, f"the provider's audit export does not verify: {result.report.problem}"
        )
    permitted = denied = 0
    for line in export.decode("utf-8", errors="replace").splitlines()[1:]:  # the first line is the header
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # verify_export read every line already; this cannot happen for a verified file
        body = entry.get("body") if isinstance(entry, dict) else None
        if (
            not isinstance(body, dict)
            or body.get("agreement_id") != agreement_id
            or body.get("kind") != "read"
        ):
            continue
        if body.get("decision") == "deny":
            denied += 1
        elif body.get("decision") is not None:
            permitted += 1
    return ConsumerReads(permitted, denied, "from the provider's signed audit log, verified now")
