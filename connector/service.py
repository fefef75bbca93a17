"""The connector's control plane: DSP messages in, state machines, store, outbox, messages out.

HTTP routes (``connector.dsp_http``, ``connector.management``) are thin: they authenticate,
parse and hand a checked message to :class:`ConnectorService`. Here each message is run through
the pure state machine of ``connector.protocol``; the transition's effects decide what we do
(evaluate a policy, sign an agreement, issue data access), and the new state, the message log,
the agreement and every message we owe the peer are written in one compare-and-set transaction.
Messages to the peer leave through the outbox, delivered by a background worker that survives
restarts - so a connector killed mid-negotiation picks up where it stopped.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import quote

from connector._policy import decide, make_agreement, same_rules
from connector.callbacks import callback_refusal
from connector.catalog import CatalogBuilder
from connector.dataplane.contract_state import TransferView
from connector.dsp_client import DspClient, DspClientError
from connector.identity import (
    IdentityError,
    KeyPair,
    TrustedAuthority,
    VerifiedClaims,
    sign_agreement,
    verification_method_id,
    verify_agreement,
    verify_token,
)
from connector.protocol import (
    FINAL_NEGOTIATION_STATES,
    FINAL_TRANSFER_STATES,
    Effect,
    IllegalTransition,
    NegotiationMessage,
    NegotiationState,
    Role,
    TransferMessage,
    TransferState,
    negotiation_message_for,
    negotiation_step,
    transfer_step,
)
from connector.store import (
    AgreementRecord,
    LoggedMessage,
    OutboundMessage,
    OutboxItem,
    ProcessRecord,
    Store,
    new_pid,
)
from vocab import dsp
from vocab.namespaces import SLUIS

_log = logging.getLogger(__name__)

#: Extension members (absolute IRIs, so every JSON-LD processor keeps them and the DSP schemas
#: allow them) carrying what DSP 2025-1 has no field for.
EXT_PURPOSE = f"{SLUIS}purpose"
EXT_COMPUTE_SITE = f"{SLUIS}computeSite"
EXT_JOB_ID = f"{SLUIS}jobId"
EXT_CONSUMER_PROOF = f"{SLUIS}consumerProof"

#: Transfer formats this connector serves (HTTP pull through the data plane).
SUPPORTED_FORMATS = frozenset({"HttpData-PULL"})
#: How often a compare-and-set is retried when another writer advanced the process meanwhile.
CAS_ATTEMPTS = 5
#: Outbox delivery: parallel senders (each waits on one peer's answer, so more senders than
#: cores keep both sides busy), retry backoff (first, cap) and attempts before giving up.
OUTBOX_SENDERS = 32
RETRY_FIRST_SECONDS = 0.2
RETRY_MAX_SECONDS = 5.0
MAX_DELIVERY_ATTEMPTS = 200
#: Idle poll of the outbox (new work from this process wakes the worker at once).
OUTBOX_POLL_SECONDS = 1.0
#: Longest reason text we store or send.
MAX_REASON_CHARS = 1000


class DspError(Exception):
    """A DSP-level refusal: becomes a ``ContractNegotiationError``/``TransferError``/``CatalogError``."""

    def __init__(
        self, status: int, code: str, reason: str, *, provider_pid: str = "", consumer_pid: str = ""
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason[:MAX_REASON_CHARS]
        self.provider_pid = provider_pid
        self.consumer_pid = consumer_pid


class ServiceError(Exception):
    """A management request that cannot be carried out (unknown id, wrong state, bad input)."""

    def __init__(self, status: int, code: str, reason: str, field_name: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.field = field_name


@dataclass(frozen=True)
class DspReply:
    status: int
    body: dict[str, Any] | None = None


class AccessIssuer(Protocol):
    """What the control plane needs from the data plane."""

    def issue_access(self, transfer: TransferView, now: datetime) -> Any: ...

    def revoke(self, transfer_id: str) -> None: ...


@dataclass
class _Plan:
    """What one accepted message leads to; written in one transaction."""

    state: str
    changes: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    messages: list[LoggedMessage] = field(default_factory=list)
    outbox: list[OutboundMessage] = field(default_factory=list)
    agreement: AgreementRecord | None = None
    refusal: DspError | None = None
    after_commit: list[Callable[[], None]] = field(default_factory=list)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _logged(direction: str, body: Mapping[str, Any]) -> LoggedMessage:
    return LoggedMessage(direction, str(body.get("@type", "")), dict(body))


def _path(pid: str) -> str:
    return quote(pid, safe=":")


def proof_by(document: Mapping[str, Any], did: str) -> dict[str, Any]:
    """The proof on a signed document made with a key of ``did``: the DID part of its
    verification method must equal ``did`` exactly (a prefix match would take the proof of
    ``did:web:127.0.0.1%3A91910`` for one of ``did:web:127.0.0.1%3A9191``)."""
    proofs = document.get("proof")
    for proof in proofs if isinstance(proofs, list) else [proofs]:
        if not isinstance(proof, dict):
            continue
        method = proof.get("verificationMethod")
        if isinstance(method, str) and method.partition("#")[0] == did:
            return proof
    raise IdentityError("missing_proof", f"no signature by {did} is on the document")


class ConnectorService:
    """One participant's connector: provider and consumer at once."""

    def __init__(
        self,
        *,
        participant_id: str,
        key: KeyPair,
        public_url: str,
        store: Store,
        resolver: Any,
        trusted: TrustedAuthority | Sequence[TrustedAuthority],
        credentials: Sequence[Mapping[str, Any]] = (),
        callback_allow_list: Sequence[str] = (),
        dataplane: AccessIssuer | None = None,
        client: DspClient | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.participant_id = participant_id
        self.key = key
        self.verification_method = verification_method_id(participant_id)
        self.public_url = public_url.rstrip("/")
        self.dsp_base = f"{self.public_url}/dsp"
        self.store = store
        self.resolver = resolver
        self.trusted = trusted
        self.callback_allow_list = tuple(callback_allow_list)
        self.dataplane = dataplane
        self.client = client or DspClient(participant_id, key, credentials)
        self.catalog = CatalogBuilder(store, participant_id, self.dsp_base)
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._senders: ThreadPoolExecutor | None = None
        self._worker_id = f"worker-{uuid.uuid4()}"
        self._flight_lock = threading.Lock()
        self._in_flight = 0

    # -- identity --------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> VerifiedClaims:
        """Verify the caller's self-issued token (signature, audience, expiry, replay, credentials)."""
        token = (authorization or "").strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if not token:
            raise DspError(401, "token-missing", "the request carries no Authorization token")
        try:
            return verify_token(
                token, self.participant_id, self.resolver, self.store, self.trusted, self.clock()
            )
        except IdentityError as error:
            raise DspError(401, f"token-{error.code}", str(error)) from error

    def _policy_context(
        self, claims: VerifiedClaims, extra: Mapping[str, object] | None = None
    ) -> dict[str, object]:
        context = dict(claims.policy_context())
        context.update({k: v for k, v in (extra or {}).items() if v is not None})
        return context

    def _check_callback(self, callback: str, claims: VerifiedClaims) -> None:
        refusal = callback_refusal(
            callback, claims.participant_id, self.resolver.resolve, self.callback_allow_list
        )
        if refusal:
            raise DspError(400, "callback-refused", refusal)

    # -- catalog ---------------------------------------------------------------------------

    def catalog_for(self, claims: VerifiedClaims) -> dict[str, Any]:
        return self.catalog.catalog(claims.participant_id, self._policy_context(claims), self.clock())

    def dataset_for(self, claims: VerifiedClaims, dataset_id: str) -> dict[str, Any]:
        found = self.catalog.dataset(
            claims.participant_id, self._policy_context(claims), self.clock(), dataset_id
        )
        if found is None:
            raise DspError(404, "unknown-dataset", f"no dataset {dataset_id} is offered to you")
        return found

    # -- negotiation: messages received ------------------------------------------------------

    def _own_process(self, kind: str, pid: str, claims: VerifiedClaims) -> ProcessRecord:
        record = self.store.get_process(pid, kind)
        if record is None or record.counterparty_id != claims.participant_id:
            raise DspError(
                404, f"unknown-{kind}", f"no {kind} {pid} exists for you", provider_pid=pid, consumer_pid=pid
            )
        return record

    def _check_pids(self, record: ProcessRecord, body: Mapping[str, Any]) -> dict[str, Any]:
        """The message's pids must match ours; a peer's pid we did not know yet is learnt here."""
        ours, theirs = (
            ("providerPid", "consumerPid") if record.role == Role.PROVIDER else ("consumerPid", "providerPid")
        )
        if body.get(ours) != record.id:
            raise DspError(
                400,
                "pid-mismatch",
                f"{ours} {body.get(ours)!r} does not name this process",
                **self._pids(record),
            )
        known = record.consumer_pid if record.role == Role.PROVIDER else record.provider_pid
        given = body.get(theirs)
        if known is None and isinstance(given, str) and given:
            return {"consumer_pid" if record.role == Role.PROVIDER else "provider_pid": given}
        if given is not None and known is not None and given != known:
            raise DspError(
                400, "pid-mismatch", f"{theirs} {given!r} does not match this process", **self._pids(record)
            )
        return {}

    @staticmethod
    def _pids(record: ProcessRecord) -> dict[str, str]:
        return {"provider_pid": record.provider_pid or "", "consumer_pid": record.consumer_pid or ""}

    def _peer_url(self, record: ProcessRecord, suffix: str) -> str:
        area = "negotiations" if record.kind == "negotiation" else "transfers"
        peer_pid = record.consumer_pid if record.role == Role.PROVIDER else record.provider_pid
        return f"{record.counterparty_address.rstrip('/')}/{area}/{_path(peer_pid or '')}/{suffix}"

    def _commit(self, record: ProcessRecord, plan: _Plan) -> ProcessRecord | None:
        leased: list[OutboxItem] = []
        updated = self.store.advance(
            record,
            plan.state,
            changes=plan.changes,
            details=plan.details,
            messages=plan.messages,
            outbox=plan.outbox,
            agreement=plan.agreement,
            **self._lease_args(plan.outbox, leased),
        )
        if updated is not None:
            self._after_enqueue(plan.outbox, leased)
            for action in plan.after_commit:
                action()
        return updated

    def _lease_args(self, outbox: Sequence[OutboundMessage], leased: list[OutboxItem]) -> dict[str, Any]:
        """Let the store lease a new message to us in its own transaction while a sender is free."""
        if not outbox or self._senders is None:
            return {}
        with self._flight_lock:
            if self._in_flight >= OUTBOX_SENDERS:
                return {}
        return {"claim_for": self._worker_id, "claimed": leased}

    def _after_enqueue(self, outbox: Sequence[OutboundMessage], leased: list[OutboxItem]) -> None:
        """Deliver what the commit leased to us now; anything else is the worker's (woken here)."""
        for item in leased:
            self._dispatch(item)
        if len(outbox) > len(leased):
            self._wake.set()

    def negotiation_message(self, claims: VerifiedClaims, pid: str, message: dsp.DspMessage) -> DspReply:
        """A message about an existing negotiation (all POST /negotiations/{pid}/... endpoints)."""
        body = message.body
        kind = negotiation_message_for(message.type, body.get("eventType"))
        if kind is None:
            raise DspError(400, "unexpected-message", f"{message.type} is not a negotiation message")
        record = self._own_process("negotiation", pid, claims)
        for _ in range(CAS_ATTEMPTS):
            learnt = self._check_pids(record, body)
            state = NegotiationState(record.state)
            result = negotiation_step(state, kind, Role(record.role).other)
            if isinstance(result, IllegalTransition):
                if self._is_repeat(record, kind):
                    return DspReply(200)
                raise DspError(400, result.code, result.reason, **self._pids(record))
            plan = self._negotiation_plan(record, result.after, result.effects, body, claims)
            plan.changes.update(learnt)
            plan.messages.insert(0, _logged("in", body))
            if self._commit(record, plan) is not None:
                if plan.refusal:
                    raise plan.refusal
                return DspReply(200)
            record = self._own_process("negotiation", pid, claims)
        raise DspError(409, "concurrent-update", "the negotiation changed while this message was applied")

    def _is_repeat(self, record: ProcessRecord, kind: NegotiationMessage | TransferMessage) -> bool:
        """A re-delivered message we already applied (the peer's outbox retried after a lost ack).

        DSP messages carry no message id, so a message of the same type among the last few this
        process received counts as the same message: it is acknowledged again, changing nothing.
        """
        return any(
            m.direction == "in" and m.type == kind.value.split(":")[0]
            for m in self.store.messages_of(record.id)[-3:]
        )

    def request_negotiation(self, claims: VerifiedClaims, message: dsp.DspMessage) -> DspReply:
        """POST /negotiations/request: a consumer's first request creates a provider-side negotiation."""
        body = message.body
        consumer_pid = str(body["consumerPid"])
        if "providerPid" in body:
            raise DspError(
                400,
                "unexpected-provider-pid",
                "an initial request carries no providerPid",
                consumer_pid=consumer_pid,
            )
        existing = self.store.find_provider_process("negotiation", claims.participant_id, consumer_pid)
        if existing is not None:
            return DspReply(201, dsp.contract_negotiation(existing.id, consumer_pid, existing.state))
        callback = str(body.get("callbackAddress", ""))
        try:
            self._check_callback(callback, claims)
        except DspError as error:
            error.consumer_pid = consumer_pid
            raise
        pid = new_pid()
        record = ProcessRecord(
            id=pid,
            kind="negotiation",
            role=Role.PROVIDER,
            state=NegotiationState.INITIAL,
            version=0,
            counterparty_id=claims.participant_id,
            counterparty_address=callback,
            provider_pid=pid,
            consumer_pid=consumer_pid,
            details={"purpose": body.get(EXT_PURPOSE), "compute_site": body.get(EXT_COMPUTE_SITE)},
        )
        result = negotiation_step(NegotiationState.INITIAL, NegotiationMessage.REQUEST, Role.CONSUMER)
        assert not isinstance(result, IllegalTransition)
        plan = self._negotiation_plan(record, result.after, result.effects, body, claims)
        plan.messages.insert(0, _logged("in", body))
        leased: list[OutboxItem] = []
        stored = self.store.create_process(
            replace(record, state=plan.state, details={**record.details, **plan.details}, **plan.changes),
            plan.messages,
            plan.outbox,
            agreement=plan.agreement,
            **self._lease_args(plan.outbox, leased),
        )
        self._after_enqueue(plan.outbox, leased)
        if plan.refusal:
            raise plan.refusal
        return DspReply(201, dsp.contract_negotiation(stored.id, consumer_pid, stored.state))

    def receive_offer(self, claims: VerifiedClaims, message: dsp.DspMessage) -> DspReply:
        """POST /negotiations/offers: a provider's unsolicited offer creates a consumer-side negotiation."""
        body = message.body
        provider_pid = str(body["providerPid"])
        callback = str(body.get("callbackAddress", ""))
        try:
            self._check_callback(callback, claims)
        except DspError as error:
            error.provider_pid = provider_pid
            raise
        pid = new_pid()
        offer = dict(body["offer"])
        record = ProcessRecord(
            id=pid,
            kind="negotiation",
            role=Role.CONSUMER,
            state=NegotiationState.OFFERED,
            version=0,
            counterparty_id=claims.participant_id,
            counterparty_address=callback,
            provider_pid=provider_pid,
            consumer_pid=pid,
            details={"offer": offer, "dataset_id": offer.get("target")},
        )
        stored = self.store.create_process(record, [_logged("in", body)])
        return DspReply(201, dsp.contract_negotiation(provider_pid, stored.id, stored.state))

    def _negotiation_plan(
        self,
        record: ProcessRecord,
        after: NegotiationState,
        effects: Sequence[Effect],
        body: Mapping[str, Any],
        claims: VerifiedClaims,
    ) -> _Plan:
        plan = _Plan(state=after)
        if after == NegotiationState.TERMINATED:
            plan.changes["error"] = self._reason_text(body, "the counter-party terminated the negotiation")
        for effect in effects:
            if effect == Effect.DECIDE_ON_REQUEST:
                self._decide_on_request(record, body, claims, plan)
            elif effect == Effect.DECIDE_ON_OFFER:
                plan.details["offer"] = dict(body["offer"])
                if record.details.get("auto_accept"):
                    self._accept_into(record, plan)
            elif effect == Effect.SEND_AGREEMENT:
                self._agree(record, dict(record.details.get("offer") or {}), claims, plan)
            elif effect == Effect.VERIFY_AGREEMENT:
                self._verify_and_countersign(record, body, plan)
            elif effect == Effect.FINALIZE:
                self._finalize(record, body, plan)
        return plan

    @staticmethod
    def _reason_text(body: Mapping[str, Any], default: str) -> str:
        reasons = body.get("reason")
        if isinstance(reasons, list) and reasons:
            return "; ".join(str(r) for r in reasons)[:MAX_REASON_CHARS]
        return default

    def _refuse(self, record: ProcessRecord, plan: _Plan, code: str, reason: str) -> None:
        """End the process here and answer the message with a DSP error carrying the reason."""
        plan.state = NegotiationState.TERMINATED if record.kind == "negotiation" else TransferState.TERMINATED
        plan.changes["error"] = reason[:MAX_REASON_CHARS]
        plan.outbox.clear()
        plan.agreement = None
        plan.after_commit.clear()
        plan.refusal = DspError(400, code, reason, **self._pids(record))

    def _decide_on_request(
        self, record: ProcessRecord, body: Mapping[str, Any], claims: VerifiedClaims, plan: _Plan
    ) -> None:
        requested = dict(body["offer"])
        found = self.catalog.find_offer(str(requested.get("@id", "")))
        if found is None:
            self._refuse(record, plan, "unknown-offer", f"no offer {requested.get('@id')!r} exists")
            return
        asset, _definition, ours = found
        target = requested.get("target", asset.id)
        if target != asset.id:
            self._refuse(
                record, plan, "wrong-target", f"offer {ours['@id']} is for dataset {asset.id}, not {target}"
            )
            return
        plan.details.update({"dataset_id": asset.id, "offer": ours})
        for key, member in (("purpose", EXT_PURPOSE), ("compute_site", EXT_COMPUTE_SITE)):
            if body.get(member) is not None:  # a counter-request may declare them anew
                plan.details[key] = body.get(member)
        if same_rules(requested, ours):
            self._agree(replace(record, details={**record.details, **plan.details}), ours, claims, plan)
            return
        # a counter-offer: answer with what we do offer
        plan.state = NegotiationState.OFFERED
        offer_message = dsp.contract_offer_message(
            record.id, {**ours, "target": asset.id}, consumer_pid=record.consumer_pid
        )
        plan.messages.append(_logged("out", offer_message))
        plan.outbox.append(
            OutboundMessage(self._peer_url(record, "offers"), record.counterparty_id, offer_message)
        )

    def _agree(
        self, record: ProcessRecord, offer: Mapping[str, Any], claims: VerifiedClaims, plan: _Plan
    ) -> None:
        dataset_id = str(record.details.get("dataset_id") or plan.details.get("dataset_id") or "")
        declared = {**record.details, **plan.details}
        now = self.clock()
        # scope negotiation: the verified claims plus what the consumer declared (purpose, site)
        verdict = decide(
            offer,
            assignee=claims.participant_id,
            target=dataset_id,
            context=self._policy_context(
                claims,
                {"purpose": declared.get("purpose"), "sluis:computeSite": declared.get("compute_site")},
            ),
            now=now,
            defer_job_facts=True,
        )
        if not verdict.permitted:
            self._refuse(record, plan, "policy-denied", verdict.summary)
            return
        agreement_id = new_pid()
        agreement = make_agreement(
            offer,
            agreement_id=agreement_id,
            assigner=self.participant_id,
            assignee=claims.participant_id,
            target=dataset_id,
            now=now,
        )
        signed = sign_agreement(agreement, self.key, self.verification_method, created=now)
        plan.state = NegotiationState.AGREED
        plan.changes["agreement_id"] = agreement_id
        plan.agreement = AgreementRecord(
            agreement_id, record.id, self.participant_id, claims.participant_id, dataset_id, signed
        )
        message = dsp.contract_agreement_message(record.id, record.consumer_pid or "", signed)
        plan.messages.append(_logged("out", message))
        plan.outbox.append(
            OutboundMessage(self._peer_url(record, "agreement"), record.counterparty_id, message)
        )

    def _verify_and_countersign(self, record: ProcessRecord, body: Mapping[str, Any], plan: _Plan) -> None:
        agreement = dict(body["agreement"])
        check = verify_agreement(agreement, self.resolver, require_countersignature=False)
        problem = None
        if not check.valid:
            problem = f"the provider's signature does not verify: {check.reason}"
        elif agreement.get("assigner") != record.counterparty_id:
            problem = f"the agreement's assigner is {agreement.get('assigner')}, not the provider"
        elif agreement.get("assignee") != self.participant_id:
            problem = f"the agreement's assignee is {agreement.get('assignee')}, not us"
        elif record.details.get("dataset_id") and agreement.get("target") != record.details.get("dataset_id"):
            problem = f"the agreement is for {agreement.get('target')}, not the dataset negotiated"
        elif record.details.get("offer") and not same_rules(agreement, record.details["offer"]):
            problem = "the agreement's rules differ from the offer"
        if problem:
            self._refuse(record, plan, "agreement-rejected", problem)
            return
        countersigned = sign_agreement(agreement, self.key, self.verification_method, created=self.clock())
        agreement_id = str(agreement["@id"])
        plan.state = NegotiationState.VERIFIED
        plan.changes["agreement_id"] = agreement_id
        plan.agreement = AgreementRecord(
            agreement_id,
            record.id,
            record.counterparty_id,
            self.participant_id,
            str(agreement.get("target", "")),
            countersigned,
        )
        provider_pid = str(body.get("providerPid") or record.provider_pid)
        target = replace(record, provider_pid=provider_pid)
        message = dsp.agreement_verification_message(
            provider_pid, record.id, extensions={EXT_CONSUMER_PROOF: self._own_proof(countersigned)}
        )
        plan.messages.append(_logged("out", message))
        plan.outbox.append(
            OutboundMessage(self._peer_url(target, "agreement/verification"), record.counterparty_id, message)
        )

    def _own_proof(self, document: Mapping[str, Any]) -> dict[str, Any]:
        return proof_by(document, self.participant_id)

    def _finalize(self, record: ProcessRecord, body: Mapping[str, Any], plan: _Plan) -> None:
        stored = self.store.get_agreement(record.agreement_id or "")
        consumer_proof = body.get(EXT_CONSUMER_PROOF)
        if stored is None:
            self._refuse(record, plan, "agreement-missing", "this negotiation holds no agreement to verify")
            return
        if not isinstance(consumer_proof, dict):
            self._refuse(
                record,
                plan,
                "countersignature-missing",
                f"the verification message carries no {EXT_CONSUMER_PROOF}",
            )
            return
        provider_proof = self._own_proof(stored.agreement)
        document = {**stored.agreement, "proof": [provider_proof, consumer_proof]}
        check = verify_agreement(document, self.resolver, require_countersignature=True)
        if not check.valid:
            self._refuse(record, plan, "countersignature-invalid", check.reason)
            return
        plan.agreement = replace(stored, agreement=document)
        message = dsp.negotiation_event_message(record.id, record.consumer_pid or "", "FINALIZED")
        plan.state = NegotiationState.FINALIZED
        plan.messages.append(_logged("out", message))
        plan.outbox.append(OutboundMessage(self._peer_url(record, "events"), record.counterparty_id, message))

    def _accept_into(self, record: ProcessRecord, plan: _Plan) -> None:
        message = dsp.negotiation_event_message(record.provider_pid or "", record.id, "ACCEPTED")
        plan.state = NegotiationState.ACCEPTED
        plan.messages.append(_logged("out", message))
        plan.outbox.append(OutboundMessage(self._peer_url(record, "events"), record.counterparty_id, message))

    def negotiation_state(self, claims: VerifiedClaims, pid: str) -> DspReply:
        record = self._own_process("negotiation", pid, claims)
        state = record.state if record.state != NegotiationState.INITIAL else NegotiationState.REQUESTED
        return DspReply(
            200, dsp.contract_negotiation(record.provider_pid or "", record.consumer_pid or "", state)
        )

    # -- negotiation: what we start (management API) -------------------------------------------

    def start_negotiation(
        self,
        counterparty_address: str,
        counterparty_id: str,
        dataset_id: str,
        offer: Mapping[str, Any],
        *,
        purpose: str | None = None,
        compute_site: str | None = None,
        auto_accept: bool = False,
    ) -> ProcessRecord:
        if not isinstance(offer.get("@id"), str):
            raise ServiceError(400, "invalid-offer", "the offer needs an @id", "offer.@id")
        pid = new_pid()
        requested = {**dict(offer), "@type": "Offer", "target": dataset_id}
        message = dsp.contract_request_message(
            pid,
            requested,
            callback_address=self.dsp_base,
            extensions={
                key: value
                for key, value in ((EXT_PURPOSE, purpose), (EXT_COMPUTE_SITE, compute_site))
                if value
            }
            or None,
        )
        problems = dsp.check_message(message)
        if problems:
            raise ServiceError(400, "invalid-offer", f"{problems[0][0]}: {problems[0][1]}", "offer")
        result = negotiation_step(NegotiationState.INITIAL, NegotiationMessage.REQUEST, Role.CONSUMER)
        assert not isinstance(result, IllegalTransition)
        base = counterparty_address.rstrip("/")
        record = ProcessRecord(
            id=pid,
            kind="negotiation",
            role=Role.CONSUMER,
            state=result.after,
            version=0,
            counterparty_id=counterparty_id,
            counterparty_address=base,
            consumer_pid=pid,
            details={
                "dataset_id": dataset_id,
                "offer": requested,
                "purpose": purpose,
                "compute_site": compute_site,
                "auto_accept": auto_accept,
            },
        )
        outbox = [OutboundMessage(f"{base}/negotiations/request", counterparty_id, message)]
        leased: list[OutboxItem] = []
        stored = self.store.create_process(
            record, [_logged("out", message)], outbox, **self._lease_args(outbox, leased)
        )
        self._after_enqueue(outbox, leased)
        return stored

    def _local(self, kind: str, process_id: str) -> ProcessRecord:
        record = self.store.get_process(process_id, kind)
        if record is None:
            raise ServiceError(404, f"unknown-{kind}", f"no {kind} {process_id}")
        return record

    def accept_offer(self, negotiation_id: str) -> ProcessRecord:
        for _ in range(CAS_ATTEMPTS):
            record = self._local("negotiation", negotiation_id)
            result = negotiation_step(
                NegotiationState(record.state), NegotiationMessage.ACCEPT, Role(record.role)
            )
            if isinstance(result, IllegalTransition):
                raise ServiceError(409, result.code, result.reason)
            plan = _Plan(state=result.after)
            self._accept_into(record, plan)
            updated = self._commit(record, plan)
            if updated is not None:
                return updated
        raise ServiceError(409, "concurrent-update", "the negotiation changed meanwhile; try again")

    def terminate_negotiation(
        self, negotiation_id: str, reason: str = "terminated by the user"
    ) -> ProcessRecord:
        for _ in range(CAS_ATTEMPTS):
            record = self._local("negotiation", negotiation_id)
            result = negotiation_step(
                NegotiationState(record.state), NegotiationMessage.TERMINATION, Role(record.role)
            )
            if isinstance(result, IllegalTransition):
                raise ServiceError(409, result.code, result.reason)
            plan = _Plan(state=result.after, changes={"error": reason[:MAX_REASON_CHARS]})
            peer_pid = record.consumer_pid if record.role == Role.PROVIDER else record.provider_pid
            if peer_pid:
                pids = self._pids(record)
                message = dsp.negotiation_termination_message(
                    pids["provider_pid"], pids["consumer_pid"], "terminated", [reason]
                )
                plan.messages.append(_logged("out", message))
                plan.outbox.append(
                    OutboundMessage(self._peer_url(record, "termination"), record.counterparty_id, message)
                )
            updated = self._commit(record, plan)
            if updated is not None:
                return updated
        raise ServiceError(409, "concurrent-update", "the negotiation changed meanwhile; try again")

    # -- transfers: messages received ------------------------------------------------------

    def request_transfer(self, claims: VerifiedClaims, message: dsp.DspMessage) -> DspReply:
        """POST /transfers/request: check agreement, policy (scope transfer) and start the transfer."""
        body = message.body
        consumer_pid = str(body["consumerPid"])
        existing = self.store.find_provider_process("transfer", claims.participant_id, consumer_pid)
        if existing is not None:
            return DspReply(201, dsp.transfer_process(existing.id, consumer_pid, existing.state))
        pids = {"consumer_pid": consumer_pid}
        callback = str(body["callbackAddress"])
        try:
            self._check_callback(callback, claims)
        except DspError as error:
            error.consumer_pid = consumer_pid
            raise
        agreement_id = str(body["agreementId"])
        agreement = self.store.get_agreement(agreement_id)
        if (
            agreement is None
            or agreement.provider_id != self.participant_id
            or agreement.consumer_id != claims.participant_id
        ):
            raise DspError(400, "unknown-agreement", f"no agreement {agreement_id} exists between us", **pids)
        negotiation = self.store.get_process(agreement.negotiation_id, "negotiation")
        if negotiation is None or negotiation.state != NegotiationState.FINALIZED:
            raise DspError(400, "agreement-not-final", f"agreement {agreement_id} is not finalized", **pids)
        if agreement.terminated:
            raise DspError(400, "agreement-terminated", f"agreement {agreement_id} was terminated", **pids)
        format_ = str(body["format"])
        pid = new_pid()
        details = {
            "asset_id": agreement.asset_id,
            "provider_id": self.participant_id,
            "format": format_,
            "job_id": body.get(EXT_JOB_ID),
            "purpose": body.get(EXT_PURPOSE),
            "compute_site": body.get(EXT_COMPUTE_SITE),
        }
        record = ProcessRecord(
            id=pid,
            kind="transfer",
            role=Role.PROVIDER,
            state=TransferState.REQUESTED,
            version=0,
            counterparty_id=claims.participant_id,
            counterparty_address=callback,
            provider_pid=pid,
            consumer_pid=consumer_pid,
            agreement_id=agreement_id,
            details=details,
        )
        plan = _Plan(state=TransferState.REQUESTED, messages=[_logged("in", body)])
        self._start_transfer(record, agreement, claims, plan)
        leased: list[OutboxItem] = []
        stored = self.store.create_process(
            replace(record, state=plan.state, **plan.changes),
            plan.messages,
            plan.outbox,
            **self._lease_args(plan.outbox, leased),
        )
        self._after_enqueue(plan.outbox, leased)
        if plan.refusal:
            raise plan.refusal
        return DspReply(201, dsp.transfer_process(stored.id, consumer_pid, stored.state))

    def _start_transfer(
        self, record: ProcessRecord, agreement: AgreementRecord, claims: VerifiedClaims, plan: _Plan
    ) -> None:
        details = record.details
        if details["format"] not in SUPPORTED_FORMATS:
            self._refuse(
                record,
                plan,
                "unsupported-format",
                f"format {details['format']!r} is not one of {sorted(SUPPORTED_FORMATS)}",
            )
            return
        if self.dataplane is None:
            self._refuse(
                record, plan, "no-data-plane", "this connector runs no data plane to serve transfers"
            )
            return
        now = self.clock()
        policy = {k: v for k, v in agreement.agreement.items() if k != "proof"}
        context = self._policy_context(
            claims,
            {
                "purpose": details.get("purpose"),
                "sluis:computeSite": details.get("compute_site"),
                "sluis:jobId": details.get("job_id"),
            },
        )
        verdict = decide(
            policy, assignee=claims.participant_id, target=agreement.asset_id, context=context, now=now
        )
        if not verdict.permitted:
            self._refuse(record, plan, "policy-denied", verdict.summary)
            return
        view = TransferView(
            id=record.id,
            state=TransferState.STARTED,
            agreement_id=agreement.id,
            consumer_id=claims.participant_id,
            provider_id=self.participant_id,
            asset_id=agreement.asset_id,
            job_id=details.get("job_id"),
            purpose=details.get("purpose"),
            compute_site=details.get("compute_site"),
        )
        access = self.dataplane.issue_access(view, now)
        expires = getattr(access, "expires_at", "")
        properties = {
            "authorization": str(access.token),
            # the data plane's token is DPoP-bound: ``Authorization: DPoP <token>`` plus a fresh
            # ``DPoP`` proof signed by the consumer's key on every request (RFC 9449)
            "authType": "DPoP",
            "expiresAt": expires.isoformat() if isinstance(expires, datetime) else str(expires),
            "refreshEndpoint": str(getattr(access, "refresh_endpoint", "")),
        }
        address = dsp.data_address(str(access.endpoint), properties)
        message = dsp.transfer_start_message(record.id, record.consumer_pid or "", address)
        plan.state = TransferState.STARTED
        plan.messages.append(_logged("out", message))
        plan.outbox.append(OutboundMessage(self._peer_url(record, "start"), record.counterparty_id, message))

    def transfer_message(self, claims: VerifiedClaims, pid: str, message: dsp.DspMessage) -> DspReply:
        """A message about an existing transfer (POST /transfers/{pid}/start, suspension, ...)."""
        body = message.body
        try:
            kind = TransferMessage(message.type)
        except ValueError:
            raise DspError(400, "unexpected-message", f"{message.type} is not a transfer message") from None
        record = self._own_process("transfer", pid, claims)
        for _ in range(CAS_ATTEMPTS):
            learnt = self._check_pids(record, body)
            result = transfer_step(TransferState(record.state), kind, Role(record.role).other)
            if isinstance(result, IllegalTransition):
                if self._is_repeat(record, kind):
                    return DspReply(200)
                raise DspError(400, result.code, result.reason, **self._pids(record))
            plan = _Plan(state=result.after, changes=learnt, messages=[_logged("in", body)])
            if result.after == TransferState.TERMINATED:
                plan.changes["error"] = self._reason_text(body, "the counter-party terminated the transfer")
            for effect in result.effects:
                if effect == Effect.RECORD_DATA_ADDRESS and isinstance(body.get("dataAddress"), dict):
                    plan.details["data_address"] = self._address_for_job(body["dataAddress"])
                elif effect == Effect.REVOKE_ACCESS and self.dataplane is not None:
                    plan.after_commit.append(functools.partial(self._revoke, record.id))
            if self._commit(record, plan) is not None:
                return DspReply(200)
            record = self._own_process("transfer", pid, claims)
        raise DspError(409, "concurrent-update", "the transfer changed while this message was applied")

    @staticmethod
    def _address_for_job(address: Mapping[str, Any]) -> dict[str, Any]:
        properties = dsp.data_address_properties(address)
        return {
            "endpoint": address.get("endpoint"),
            "token": properties.get("authorization"),
            "expires_at": properties.get("expiresAt"),
            "refresh_endpoint": properties.get("refreshEndpoint"),
        }

    def _revoke(self, transfer_id: str) -> None:
        if self.dataplane is not None:
            try:
                self.dataplane.revoke(transfer_id)
            except Exception:  # the transfer's state already denies reads; log and go on
                _log.exception("data plane revoke failed", extra={"transfer": transfer_id})

    def transfer_state(self, claims: VerifiedClaims, pid: str) -> DspReply:
        record = self._own_process("transfer", pid, claims)
        return DspReply(
            200, dsp.transfer_process(record.provider_pid or "", record.consumer_pid or "", record.state)
        )

    # -- transfers: what we start (management API) -------------------------------------------

    def start_transfer(
        self,
        agreement_id: str,
        counterparty_address: str,
        format_: str = "HttpData-PULL",
        job: Mapping[str, Any] | None = None,
    ) -> ProcessRecord:
        agreement = self.store.get_agreement(agreement_id)
        if agreement is None or agreement.consumer_id != self.participant_id:
            raise ServiceError(
                404, "unknown-agreement", f"no agreement {agreement_id} in which we are the consumer"
            )
        if agreement.terminated:
            raise ServiceError(409, "agreement-terminated", f"agreement {agreement_id} was terminated")
        job = dict(job or {})
        pid = new_pid()
        extensions = {
            key: str(job[name])
            for key, name in (
                (EXT_JOB_ID, "id"),
                (EXT_PURPOSE, "purpose"),
                (EXT_COMPUTE_SITE, "compute_site"),
            )
            if job.get(name)
        }
        message = dsp.transfer_request_message(
            pid, agreement_id, format_, self.dsp_base, extensions=extensions or None
        )
        base = counterparty_address.rstrip("/")
        record = ProcessRecord(
            id=pid,
            kind="transfer",
            role=Role.CONSUMER,
            state=TransferState.REQUESTED,
            version=0,
            counterparty_id=agreement.provider_id,
            counterparty_address=base,
            consumer_pid=pid,
            agreement_id=agreement_id,
            details={
                "asset_id": agreement.asset_id,
                "format": format_,
                "job_id": job.get("id"),
                "purpose": job.get("purpose"),
                "compute_site": job.get("compute_site"),
            },
        )
        outbox = [OutboundMessage(f"{base}/transfers/request", agreement.provider_id, message)]
        leased: list[OutboxItem] = []
        stored = self.store.create_process(
            record, [_logged("out", message)], outbox, **self._lease_args(outbox, leased)
        )
        self._after_enqueue(outbox, leased)
        return stored

    _COMMANDS: ClassVar[dict[str, tuple[TransferMessage, str]]] = {
        "suspend": (TransferMessage.SUSPENSION, "suspension"),
        "resume": (TransferMessage.START, "start"),
        "complete": (TransferMessage.COMPLETION, "completion"),
        "terminate": (TransferMessage.TERMINATION, "termination"),
    }

    def transfer_command(self, transfer_id: str, command: str, reason: str = "") -> ProcessRecord:
        if command not in self._COMMANDS:
            raise ServiceError(404, "unknown-command", f"{command} is not one of {sorted(self._COMMANDS)}")
        kind, suffix = self._COMMANDS[command]
        for _ in range(CAS_ATTEMPTS):
            record = self._local("transfer", transfer_id)
            result = transfer_step(TransferState(record.state), kind, Role(record.role))
            if isinstance(result, IllegalTransition):
                raise ServiceError(409, result.code, result.reason)
            plan = self._transfer_command_plan(record, result.after, kind, suffix, reason)
            updated = self._commit(record, plan)
            if updated is not None:
                return updated
        raise ServiceError(409, "concurrent-update", "the transfer changed meanwhile; try again")

    def _transfer_command_plan(
        self, record: ProcessRecord, after: TransferState, kind: TransferMessage, suffix: str, reason: str
    ) -> _Plan:
        plan = _Plan(state=after)
        pids = self._pids(record)
        reasons = [reason] if reason else []
        if kind == TransferMessage.SUSPENSION:
            message = dsp.transfer_suspension_message(
                pids["provider_pid"], pids["consumer_pid"], "suspended", reasons
            )
        elif kind == TransferMessage.START:
            message = dsp.transfer_start_message(pids["provider_pid"], pids["consumer_pid"])
        elif kind == TransferMessage.COMPLETION:
            message = dsp.transfer_completion_message(pids["provider_pid"], pids["consumer_pid"])
        else:
            message = dsp.transfer_termination_message(
                pids["provider_pid"], pids["consumer_pid"], "terminated", reasons
            )
            plan.changes["error"] = reason or "terminated by the user"
        if record.provider_pid and record.consumer_pid:
            plan.messages.append(_logged("out", message))
            plan.outbox.append(
                OutboundMessage(self._peer_url(record, suffix), record.counterparty_id, message)
            )
        if record.role == Role.PROVIDER and after != TransferState.STARTED:
            plan.after_commit.append(lambda: self._revoke(record.id))
        return plan

    def terminate_agreement(
        self, agreement_id: str, reason: str = "agreement terminated"
    ) -> list[ProcessRecord]:
        """Revoke an agreement: no new transfers, every running transfer terminated and the peer told."""
        agreement = self.store.get_agreement(agreement_id)
        if agreement is None:
            raise ServiceError(404, "unknown-agreement", f"no agreement {agreement_id}")
        self.store.terminate_agreement(agreement_id)
        ended = []
        for transfer in self.store.processes_for_agreement(agreement_id):
            if transfer.state in FINAL_TRANSFER_STATES:
                continue
            try:
                ended.append(self.transfer_command(transfer.id, "terminate", reason))
            except ServiceError as error:
                _log.warning(
                    "could not terminate transfer", extra={"transfer": transfer.id, "reason": error.reason}
                )
        return ended

    # -- outbox ----------------------------------------------------------------------------

    def start_worker(self) -> None:
        if self._worker is not None:
            return
        self._stop.clear()
        with self._flight_lock:
            self._in_flight = 0
        self._senders = ThreadPoolExecutor(OUTBOX_SENDERS, thread_name_prefix="dsp-outbox")
        self._worker = threading.Thread(target=self._run_worker, name="dsp-outbox-worker", daemon=True)
        self._worker.start()

    def stop_worker(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None
        if self._senders is not None:
            self._senders.shutdown(wait=True, cancel_futures=True)
            self._senders = None

    def _run_worker(self) -> None:
        """The recovery and retry path: claim due messages nobody is delivering yet.

        New messages of this process are leased in the transaction that queues them and handed
        to a sender right after the commit (:meth:`_after_enqueue`); this loop finds the rest -
        retries whose backoff ran out, later messages of a process whose earlier one was just
        delivered (a sender wakes it), and work a stopped process left behind - and otherwise
        sleeps until woken or the next retry falls due (at most :data:`OUTBOX_POLL_SECONDS`).
        """
        while not self._stop.is_set():
            self._wake.clear()
            claimed = 0
            with self._flight_lock:
                free = OUTBOX_SENDERS - self._in_flight
            try:
                if free > 0 and self._senders is not None:
                    for item in self.store.claim_outbox(self._worker_id, limit=free):
                        self._dispatch(item)
                        claimed += 1
            except Exception:
                _log.exception("outbox pass failed")
            if claimed:
                continue
            wait = OUTBOX_POLL_SECONDS  # with every sender busy, the first to finish wakes us
            if free > 0:
                # sleep until the next retry is due; a message due but not claimable waits behind
                # an earlier one of its process, whose sender wakes us when it is done
                try:
                    due = self.store.next_outbox_due()
                except Exception:
                    due = None
                if due is not None and due > time.time():
                    wait = min(OUTBOX_POLL_SECONDS, due - time.time())
            self._wake.wait(wait)

    def _dispatch(self, item: OutboxItem) -> None:
        senders = self._senders
        if senders is None:  # stopping: the lease runs out and the message is delivered after restart
            return
        with self._flight_lock:
            self._in_flight += 1
        try:
            senders.submit(self._deliver_and_release, item)
        except RuntimeError:  # the pool shut down meanwhile
            with self._flight_lock:
                self._in_flight -= 1

    def _deliver_and_release(self, item: OutboxItem) -> None:
        try:
            self._deliver(item)
        except Exception:
            _log.exception("outbox delivery failed", extra={"url": item.url})
        finally:
            with self._flight_lock:
                self._in_flight -= 1
            self._wake.set()

    def deliver_due(self) -> int:
        """Deliver, in this thread, every message that is due now; returns how many were attempted."""
        items = self.store.claim_outbox(self._worker_id)
        for item in items:
            self._deliver(item)
        return len(items)

    def _deliver(self, item: OutboxItem) -> None:
        try:
            response = self.client.post(item.url, item.audience, item.body)
        except DspClientError as error:
            self._retry(item, str(error))
            return
        except Exception as error:
            _log.exception("outbox delivery failed", extra={"url": item.url})
            self._retry(item, str(error))
            return
        if 200 <= response.status < 300:
            self.store.outbox_delivered(item.id)
            self._learn_from_ack(item, response.body)
        elif response.status in (408, 409, 425, 429) or response.status >= 500:
            self._retry(item, f"HTTP {response.status}")
        else:
            reason = self._reason_text(
                response.body or {}, f"the counter-party answered HTTP {response.status}"
            )
            self.store.outbox_failed(item.id, reason)
            self._end_after_refusal(item.process_id, reason)

    def _retry(self, item: OutboxItem, reason: str) -> None:
        attempts = item.attempts + 1
        if attempts >= MAX_DELIVERY_ATTEMPTS:
            self.store.outbox_failed(item.id, reason)
            self._end_after_refusal(item.process_id, f"the counter-party stayed unreachable: {reason}")
            return
        delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * (2 ** min(attempts, 10)))
        self.store.outbox_retry(item.id, attempts, time.time() + delay, reason)

    def _learn_from_ack(self, item: OutboxItem, body: Mapping[str, Any] | None) -> None:
        """The provider's answer to our first request names its pid for the process."""
        if not body or body.get("@type") not in ("ContractNegotiation", "TransferProcess"):
            return
        provider_pid = body.get("providerPid")
        for _ in range(CAS_ATTEMPTS):
            record = self.store.get_process(item.process_id)
            if record is None or record.provider_pid or not isinstance(provider_pid, str):
                return
            if self.store.advance(record, record.state, changes={"provider_pid": provider_pid}) is not None:
                return

    def _end_after_refusal(self, process_id: str, reason: str) -> None:
        for _ in range(CAS_ATTEMPTS):
            record = self.store.get_process(process_id)
            if record is None:
                return
            final = FINAL_NEGOTIATION_STATES if record.kind == "negotiation" else FINAL_TRANSFER_STATES
            if record.state in final:
                return
            terminated = (
                NegotiationState.TERMINATED if record.kind == "negotiation" else TransferState.TERMINATED
            )
            if (
                self.store.advance(record, terminated, changes={"error": reason[:MAX_REASON_CHARS]})
                is not None
            ):
                return
