"""Render the DSP state machines in ``docs/protocol.md`` from the transition tables.

The diagrams are generated, never drawn by hand, so they cannot drift from the code; a test
compares the committed file with :func:`render_protocol_doc`. Regenerate with
``python -m connector.protocol.diagrams > docs/protocol.md``.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TypeVar

from connector.protocol._machine import ReactionTable, Role, TransitionTable, all_states
from connector.protocol.negotiation import NEGOTIATION_REACTIONS, NEGOTIATION_TRANSITIONS
from connector.protocol.transfer import TRANSFER_REACTIONS, TRANSFER_TRANSITIONS

#: Extension members of our DSP messages (documented here; used by ``connector.control``).
EXTENSION_MEMBERS = {
    "https://w3id.org/sluis/ns#purpose": "the purpose the consumer declares "
    "(ContractRequestMessage, TransferRequestMessage); the provider evaluates its policy with it",
    "https://w3id.org/sluis/ns#jobId": "the AI job a transfer is bound to (TransferRequestMessage)",
    "https://w3id.org/sluis/ns#computeSite": "where the data will be processed, declared by the consumer "
    "(ContractRequestMessage, TransferRequestMessage)",
    "https://w3id.org/sluis/ns#consumerProof": "the consumer's eddsa-jcs-2022 counter-signature of the "
    "agreement (ContractAgreementVerificationMessage), sent only when the signed-agreement extension "
    "was negotiated",
    "https://w3id.org/sluis/ns#agreementTerminated": "the agreement a ContractNegotiationTerminationMessage "
    "sent on a FINALIZED negotiation ends. DSP 2025-1 has no message that ends an agreement (FINALIZED "
    "is final; only transfers are terminated), so a party that revokes an agreement - with or without "
    "transfers - sends this to the counter-party: a Sluis peer marks the agreement terminated and "
    "acknowledges, the negotiation stays FINALIZED; a plain DSP peer refuses it as an illegal transition, "
    "which changes nothing on either side (its transfers, if any, were terminated with "
    "TransferTerminationMessage and every read is denied anyway)",
    "https://w3id.org/sluis/ns#extensions": "the protocol extensions a party supports: in a consumer's "
    "ContractRequestMessage, on the catalog's DataService and in /.well-known/dspace-version",
}

#: What each side of each DSP process supports, and where our own people drive it.
SUPPORT = {
    "Catalog": [
        (
            "provider",
            "answers CatalogRequestMessage and dataset requests with what the requester's "
            "verified claims may see (access policy per offer); anything else is a 404",
        ),
        (
            "consumer",
            "fetches a peer's catalog (`POST /management/catalog/request`) or one dataset "
            "(`POST /management/catalog/dataset`)",
        ),
    ],
    "Contract negotiation": [
        (
            "consumer",
            "starts with a request (`POST /management/negotiations`), receives provider-initiated "
            "offers (`/dsp/negotiations/offers`), counter-offers "
            "(`POST /management/negotiations/{id}/request`), accepts (`.../accept`, or `auto_accept`), "
            "verifies the agreement (checking the provider's proof when there is one; refusing an "
            "agreement whose `@id` - the provider's choice - already names an agreement of another "
            "negotiation, since ids are public in transparency registers) and counter-signs "
            "it when the agreement is signed, terminates (`.../terminate`)",
        ),
        (
            "provider",
            "offers first (`POST /management/negotiations/offers`), answers a request by agreeing "
            "or with a counter-offer, re-decides the access policy and the usage policy (negotiation scope) "
            "at every consumer message, signs the agreement, finalizes on a plain DSP verification or - when "
            "the consumer asked for signed agreements - only on a valid counter-signature, terminates",
        ),
    ],
    "Transfer process": [
        (
            "consumer",
            "requests (`POST /management/transfers`, bound to a job), suspends, resumes, completes, "
            "terminates (`POST /management/transfers/{id}/{command}`); keeps the data address of every start "
            "message; for HTTP push (`\"format\": \"HttpData-PUSH\"`) names a destination in the "
            "request's `dataAddress` (its own `PUT /push/{transfer}` with a one-transfer secret by default) "
            "and checks the content hash of what arrives (docs/connector-operations.md)",
        ),
        (
            "provider",
            "starts a transfer only under a finalized, unterminated agreement whose access and usage "
            "policy (transfer scope) still hold; refuses (DSP `400 data-address-not-expected`, naming "
            "`dataAddress`) an HTTP pull request that names a `dataAddress` - in DSP 2025-1 a consumer names "
            "one only for a push, and a push destination goes through the address policy (`400 "
            "destination-refused` for loopback, private, link-local or metadata addresses unless allowed); "
            "every start - the first and each resume, by either side - "
            "sends a fresh data address and token (HTTP pull), or pushes the granted data through the data "
            "plane's checks to the consumer's destination (HTTP push, retried through the outbox, then "
            "completed or terminated with the reason); suspension, completion and termination revoke access",
        ),
    ],
}

S = TypeVar("S", bound=StrEnum)
M = TypeVar("M", bound=StrEnum)

_ROLE_MARK = {Role.CONSUMER: "C", Role.PROVIDER: "P"}


def _short(message: StrEnum) -> str:
    text = str(message).replace("ContractNegotiation", "").replace("Contract", "").replace("Transfer", "")
    return text.replace("Message", "")


def render_mermaid(table: TransitionTable[S, M]) -> str:
    """A mermaid ``stateDiagram-v2``: one arrow per (sender, state, message)."""
    lines = ["stateDiagram-v2"]
    for role in (Role.CONSUMER, Role.PROVIDER):
        for state, moves in table.get(role, {}).items():
            for message, after in moves.items():
                source = "[*]" if str(state) == "INITIAL" else str(state)
                lines.append(f"    {source} --> {after}: {_ROLE_MARK[role]}: {_short(message)}")
    finals = {str(s) for s in all_states(table)} - {
        str(s) for moves in table.values() for s, out in moves.items() if out
    }
    for final in sorted(finals):
        lines.append(f"    {final} --> [*]")
    return "\n".join(lines)


def render_table(table: TransitionTable[S, M], reactions: ReactionTable[M, S]) -> str:
    """The same table as Markdown rows: sender, state, message, next state, receiver's effects."""
    rows = ["| sender | state | message | next state | receiver then |", "|---|---|---|---|---|"]
    for role in (Role.CONSUMER, Role.PROVIDER):
        for state, moves in table.get(role, {}).items():
            for message, after in moves.items():
                effects = ", ".join(reactions.get((role.other, message, after), ())) or "—"
                rows.append(f"| {role} | {state} | {message} | {after} | {effects} |")
    return "\n".join(rows)


def render_protocol_doc() -> str:
    """The whole of ``docs/protocol.md``."""
    parts = [
        "# DSP 2025-1 state machines",
        "",
        "Generated from `connector/protocol/` by `python -m connector.protocol.diagrams`;",
        "do not edit by hand.",
        "`C:` marks a message the consumer sends, `P:` one the provider sends. `[*]` on the left is",
        '"no process yet"; a message not in the table is refused as an illegal transition',
        "(DSP error, HTTP 400) naming the state and the message.",
        "",
        "## Contract negotiation",
        "",
        "```mermaid",
        render_mermaid(NEGOTIATION_TRANSITIONS),
        "```",
        "",
        render_table(NEGOTIATION_TRANSITIONS, NEGOTIATION_REACTIONS),
        "",
        "## Transfer process",
        "",
        "```mermaid",
        render_mermaid(TRANSFER_TRANSITIONS),
        "```",
        "",
        render_table(TRANSFER_TRANSITIONS, TRANSFER_REACTIONS),
        "",
        "## What each side supports",
        "",
        *(
            line
            for process, sides in SUPPORT.items()
            for line in (f"**{process}**", "", *(f"- *{role}*: {text}" for role, text in sides), "")
        ),
        "A message that repeats one already applied (equal member for member: same type, pids and",
        "content) is acknowledged again and changes nothing; any other message the table does not",
        "allow is refused with a DSP error (an agreement with another `@id` on a FINALIZED",
        "negotiation, a suspension of a COMPLETED transfer).",
        "",
        "## What DSP 2025-1 has no field for",
        "",
        "Sluis adds members keyed by absolute IRIs (kept by every JSON-LD processor, allowed by the",
        "official schemas) where the protocol has no field of its own:",
        "",
        *(f"- `{iri}`: {meaning}" for iri, meaning in EXTENSION_MEMBERS.items()),
        "",
    ]
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(render_protocol_doc())
