"""Contract negotiation, both roles: DSP messages received, and what our own people start.

Each message runs through the pure state machine of ``connector.protocol``; the transition's
effects decide what we do (evaluate the offer, sign an agreement, verify and counter-sign it,
finalize), and the resulting :class:`~connector.control.process.Plan` is written by the one
compare-and-set writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import policies
from connector.control.access import AccessGate, declared_facts
from connector.control.context import ControlContext
from connector.control.errors import (
    MAX_REASON_CHARS,
    TRANSIENT_IDENTITY_CODES,
    DspError,
    DspReply,
    ServiceError,
    transient,
)
from connector.control.process import Plan, is_redelivery, logged, pids, reason_text, refuse, send
from connector.identity import IdentityError, VerifiedClaims, sign_agreement, verify_agreement
from connector.policy_gate import decide, make_agreement, same_rules
from connector.protocol import (
    Effect,
    IllegalTransition,
    NegotiationMessage,
    NegotiationState,
    Role,
    negotiation_message_for,
    negotiation_step,
)
from connector.protocol.extensions import (
    EXT_AGREEMENT_TERMINATED,
    EXT_COMPUTE_SITE,
    EXT_CONSUMER_PROOF,
    EXT_EXTENSIONS,
    EXT_PURPOSE,
    SIGNED_AGREEMENT,
    SUPPORTED_EXTENSIONS,
    listed_extensions,
)
from connector.store import AgreementRecord, OutboundMessage, ProcessRecord, new_pid
from vocab import dsp
from vocab.jsonld import DSP_CONTEXT, SLUIS_CONTEXT


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


class Negotiations:
    """Contract negotiations of one participant, as provider and as consumer."""

    def __init__(self, ctx: ControlContext) -> None:
        self.ctx = ctx
        self.gate = AccessGate(ctx)

    # -- messages received ------------------------------------------------------------------

    def message(self, claims: VerifiedClaims, pid: str, message: dsp.DspMessage) -> DspReply:
        """A message about an existing negotiation (all POST /negotiations/{pid}/... endpoints)."""
        body = message.body
        kind = negotiation_message_for(message.type, body.get("eventType"))
        if kind is None:
            raise DspError(400, "unexpected-message", f"{message.type} is not a negotiation message")
        ctx = self.ctx

        def plan_for(record: ProcessRecord) -> Plan | None:
            learnt = ctx.check_pids(record, body)
            if (
                kind == NegotiationMessage.TERMINATION
                and record.state == NegotiationState.FINALIZED
                and EXT_AGREEMENT_TERMINATED in body
            ):
                return self._agreement_ended(record, body)
            result = negotiation_step(NegotiationState(record.state), kind, Role(record.role).other)
            if isinstance(result, IllegalTransition):
                if is_redelivery(ctx.store, record, body):
                    return None
                raise DspError(400, result.code, result.reason, **pids(record))
            refusal = None
            if kind != NegotiationMessage.TERMINATION:  # walking away needs no permission
                refusal = self.gate.negotiation_refusal(record, ctx.policy_context(claims))
            if refusal is not None:
                plan = Plan(state=result.after)
                refuse(record, plan, "access-denied", refusal, status=403)
            else:
                plan = self._plan(record, result.after, result.effects, body, claims)
            plan.changes.update(learnt)
            plan.messages.insert(0, logged("in", body))
            return plan

        done = ctx.writer.compare_and_set(
            lambda: ctx.own_process("negotiation", pid, claims),
            plan_for,
            DspError(409, "concurrent-update", "the negotiation changed while this message was applied"),
        )
        if done is not None and done[1].refusal:
            raise done[1].refusal
        return DspReply(200)

    def _agreement_ended(self, record: ProcessRecord, body: Mapping[str, Any]) -> Plan | None:
        """The counter-party revoked the agreement of this FINALIZED negotiation (our extension):
        the agreement is marked terminated here too; the negotiation stays FINALIZED."""
        if body.get(EXT_AGREEMENT_TERMINATED) != record.agreement_id or not record.agreement_id:
            raise DspError(
                400, "unknown-agreement", "the message names another agreement than this negotiation's",
                **pids(record),
            )
        if record.details.get("agreement_terminated"):
            return None  # told before: acknowledged again
        self.ctx.store.terminate_agreement(record.agreement_id)
        reason = reason_text(body, "the counter-party terminated the agreement")
        return Plan(
            state=record.state, details={"agreement_terminated": reason}, messages=[logged("in", body)]
        )

    def tell_agreement_terminated(self, agreement: AgreementRecord, reason: str) -> None:
        """Tell the counter-party that we revoked ``agreement`` (the nearest DSP allows: see
        :data:`~connector.protocol.extensions.EXT_AGREEMENT_TERMINATED`), through the outbox."""
        ctx = self.ctx

        def plan_for(record: ProcessRecord) -> Plan | None:
            if record.state != NegotiationState.FINALIZED or record.details.get("agreement_terminated"):
                return None
            message = dsp.negotiation_termination_message(
                record.provider_pid or "", record.consumer_pid or "", "agreement-terminated", [reason]
            )
            message[EXT_AGREEMENT_TERMINATED] = agreement.id
            plan = Plan(state=record.state, details={"agreement_terminated": reason})
            send(plan, record, "termination", message)
            return plan

        ctx.writer.compare_and_set(
            lambda: ctx.store.get_process(agreement.negotiation_id, "negotiation"), plan_for, None
        )

    def request(self, claims: VerifiedClaims, message: dsp.DspMessage) -> DspReply:
        """POST /negotiations/request: a consumer's first request creates a provider-side negotiation."""
        ctx = self.ctx
        body = message.body
        consumer_pid = str(body["consumerPid"])
        if "providerPid" in body:
            raise DspError(
                400,
                "unexpected-provider-pid",
                "an initial request carries no providerPid",
                consumer_pid=consumer_pid,
            )
        existing = ctx.store.find_provider_process("negotiation", claims.participant_id, consumer_pid)
        if existing is not None:
            return DspReply(201, dsp.contract_negotiation(existing.id, consumer_pid, existing.state))
        callback = str(body.get("callbackAddress", ""))
        try:
            ctx.check_callback(callback, claims)
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
            details={
                "purpose": body.get(EXT_PURPOSE),
                "compute_site": body.get(EXT_COMPUTE_SITE),
                "extensions": sorted(listed_extensions(body)),
            },
        )
        result = negotiation_step(NegotiationState.INITIAL, NegotiationMessage.REQUEST, Role.CONSUMER)
        assert not isinstance(result, IllegalTransition)
        plan = self._plan(record, result.after, result.effects, body, claims)
        plan.messages.insert(0, logged("in", body))
        # copies of one request handled at once make one process: the others answer with it
        stored = ctx.writer.create(record, plan, once_per_consumer_pid=True)
        if stored.id == record.id and plan.refusal:
            raise plan.refusal
        return DspReply(201, dsp.contract_negotiation(stored.id, consumer_pid, stored.state))

    def offer_received(self, claims: VerifiedClaims, message: dsp.DspMessage) -> DspReply:
        """POST /negotiations/offers: a provider's unsolicited offer creates a consumer-side negotiation."""
        ctx = self.ctx
        body = message.body
        provider_pid = str(body["providerPid"])
        callback = str(body.get("callbackAddress", ""))
        try:
            ctx.check_callback(callback, claims)
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
        stored = ctx.writer.create(record, Plan(state=record.state, messages=[logged("in", body)]))
        return DspReply(201, dsp.contract_negotiation(provider_pid, stored.id, stored.state))

    def state(self, claims: VerifiedClaims, pid: str) -> DspReply:
        record = self.ctx.own_process("negotiation", pid, claims)
        refusal = self.gate.negotiation_refusal(record, self.ctx.policy_context(claims))
        if refusal is not None:
            raise DspError(403, "access-denied", refusal, **pids(record))
        state = record.state if record.state != NegotiationState.INITIAL else NegotiationState.REQUESTED
        return DspReply(
            200, dsp.contract_negotiation(record.provider_pid or "", record.consumer_pid or "", state)
        )

    # -- what a step does ------------------------------------------------------------------

    def _plan(
        self,
        record: ProcessRecord,
        after: NegotiationState,
        effects: Sequence[Effect],
        body: Mapping[str, Any],
        claims: VerifiedClaims,
    ) -> Plan:
        plan = Plan(state=after)
        if after == NegotiationState.TERMINATED:
            plan.changes["error"] = reason_text(body, "the counter-party terminated the negotiation")
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

    def _decide_on_request(
        self, record: ProcessRecord, body: Mapping[str, Any], claims: VerifiedClaims, plan: Plan
    ) -> None:
        requested = dict(body["offer"])
        # an offer the requester may not see is answered exactly like one that does not exist
        found = self.gate.visible_offer(
            str(requested.get("@id", "")), claims.participant_id, self.ctx.policy_context(claims)
        )
        if found is None:
            refuse(record, plan, "unknown-offer", f"no offer {requested.get('@id')!r} exists")
            return
        asset, definition, ours = found
        target = requested.get("target", asset.id)
        if target != asset.id:
            refuse(
                record, plan, "wrong-target", f"offer {ours['@id']} is for dataset {asset.id}, not {target}"
            )
            return
        plan.details.update({"dataset_id": asset.id, "offer": ours, "definition_id": definition.id})
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
        send(plan, record, "offers", offer_message)

    def _agree(
        self, record: ProcessRecord, offer: Mapping[str, Any], claims: VerifiedClaims, plan: Plan
    ) -> None:
        ctx = self.ctx
        dataset_id = str(record.details.get("dataset_id") or plan.details.get("dataset_id") or "")
        declared = {**record.details, **plan.details}
        now = ctx.clock()
        # scope negotiation: the verified claims plus what the consumer declared (purpose, site)
        verdict = decide(
            offer,
            assignee=claims.participant_id,
            target=dataset_id,
            context=ctx.policy_context(claims, declared_facts(declared)),
            now=now,
            scope=policies.Scope.NEGOTIATION,
        )
        if not verdict.permitted:
            refuse(record, plan, "policy-denied", verdict.summary)
            return
        agreement_id = new_pid()
        agreement = make_agreement(
            offer,
            agreement_id=agreement_id,
            assigner=ctx.participant_id,
            assignee=claims.participant_id,
            target=dataset_id,
            now=now,
        )
        signed = sign_agreement(agreement, ctx.key, ctx.verification_method, created=now)
        plan.state = NegotiationState.AGREED
        plan.changes["agreement_id"] = agreement_id
        plan.agreement = AgreementRecord(
            agreement_id, record.id, ctx.participant_id, claims.participant_id, dataset_id, signed
        )
        message = dsp.contract_agreement_message(record.id, record.consumer_pid or "", signed)
        message["@context"] = [DSP_CONTEXT, SLUIS_CONTEXT]  # defines ``proof`` for JSON-LD processors
        send(plan, record, "agreement", message)

    def _verify_and_countersign(self, record: ProcessRecord, body: Mapping[str, Any], plan: Plan) -> None:
        ctx = self.ctx
        agreement = dict(body["agreement"])
        # signed-agreement extension: a proof, when there is one, must verify; a plain DSP
        # provider sends none, and its agreement is checked like any other
        signed = "proof" in agreement
        problem = self._agreement_problem(record, agreement, signed)
        if problem:
            refuse(record, plan, "agreement-rejected", problem)
            return
        countersigned = (
            sign_agreement(agreement, ctx.key, ctx.verification_method, created=ctx.clock())
            if signed
            else agreement
        )
        agreement_id = str(agreement["@id"])
        plan.state = NegotiationState.VERIFIED
        plan.changes["agreement_id"] = agreement_id
        plan.agreement = AgreementRecord(
            agreement_id,
            record.id,
            record.counterparty_id,
            ctx.participant_id,
            str(agreement.get("target", "")),
            countersigned,
        )
        provider_pid = str(body.get("providerPid") or record.provider_pid)
        message = dsp.agreement_verification_message(
            provider_pid,
            record.id,
            extensions={EXT_CONSUMER_PROOF: proof_by(countersigned, ctx.participant_id)} if signed else None,
        )
        send(plan, replace(record, provider_pid=provider_pid), "agreement/verification", message)

    def _agreement_problem(
        self, record: ProcessRecord, agreement: Mapping[str, Any], signed: bool
    ) -> str | None:
        """Why the consumer may not accept this agreement (``None``: it may)."""
        if signed:
            check = verify_agreement(agreement, self.ctx.resolver, require_countersignature=False)
            if not check.valid and check.code in TRANSIENT_IDENTITY_CODES:
                raise transient(f"the provider's signature cannot be checked now: {check.reason}")
            if not check.valid:
                return f"the provider's signature does not verify: {check.reason}"
        if agreement.get("assigner") != record.counterparty_id:
            return f"the agreement's assigner is {agreement.get('assigner')}, not the provider"
        # the id is the provider's choice, and agreement ids are public (transparency registers):
        # one naming an agreement of another negotiation would overwrite that one
        existing = self.ctx.store.get_agreement(str(agreement.get("@id", "")))
        if existing is not None and existing.negotiation_id != record.id:
            return f"the agreement id {agreement.get('@id')} already names another agreement"
        if agreement.get("assignee") != self.ctx.participant_id:
            return f"the agreement's assignee is {agreement.get('assignee')}, not us"
        dataset_id = record.details.get("dataset_id")
        if dataset_id and agreement.get("target") != dataset_id:
            return f"the agreement is for {agreement.get('target')}, not the dataset negotiated"
        if record.details.get("offer") and not same_rules(agreement, record.details["offer"]):
            return "the agreement's rules differ from the offer"
        return None

    def _finalize(self, record: ProcessRecord, body: Mapping[str, Any], plan: Plan) -> None:
        ctx = self.ctx
        stored = ctx.store.get_agreement(record.agreement_id or "")
        consumer_proof = body.get(EXT_CONSUMER_PROOF)
        if stored is None:
            refuse(record, plan, "agreement-missing", "this negotiation holds no agreement to verify")
            return
        if consumer_proof is None and SIGNED_AGREEMENT not in (record.details.get("extensions") or ()):
            # a plain DSP 2025-1 consumer: the agreement stays signed by us alone
            plan.state = NegotiationState.FINALIZED
            send(
                plan,
                record,
                "events",
                dsp.negotiation_event_message(record.id, record.consumer_pid or "", "FINALIZED"),
            )
            return
        if not isinstance(consumer_proof, dict):
            refuse(
                record,
                plan,
                "countersignature-missing",
                f"the verification message carries no {EXT_CONSUMER_PROOF}, though the consumer "
                "asked for signed agreements",
            )
            return
        provider_proof = proof_by(stored.agreement, ctx.participant_id)
        document = {**stored.agreement, "proof": [provider_proof, consumer_proof]}
        check = verify_agreement(document, ctx.resolver, require_countersignature=True)
        if not check.valid and check.code in TRANSIENT_IDENTITY_CODES:
            raise transient(f"the counter-signature cannot be checked now: {check.reason}")
        if not check.valid:
            refuse(record, plan, "countersignature-invalid", check.reason)
            return
        plan.agreement = replace(stored, agreement=document)
        plan.state = NegotiationState.FINALIZED
        send(
            plan,
            record,
            "events",
            dsp.negotiation_event_message(record.id, record.consumer_pid or "", "FINALIZED"),
        )

    @staticmethod
    def _accept_into(record: ProcessRecord, plan: Plan) -> None:
        plan.state = NegotiationState.ACCEPTED
        send(
            plan,
            record,
            "events",
            dsp.negotiation_event_message(record.provider_pid or "", record.id, "ACCEPTED"),
        )

    # -- what we start (management API) ------------------------------------------------------

    def start(
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
        ctx = self.ctx
        if not isinstance(offer.get("@id"), str):
            raise ServiceError(400, "invalid-offer", "the offer needs an @id", "offer.@id")
        pid = new_pid()
        requested = {**dict(offer), "@type": "Offer", "target": dataset_id}
        message = dsp.contract_request_message(
            pid,
            requested,
            callback_address=ctx.dsp_base,
            extensions=self._request_extensions({"purpose": purpose, "compute_site": compute_site}),
        )
        problems = dsp.check_message(message)
        if problems:
            raise ServiceError(400, "invalid-offer", f"{problems[0][0]}: {problems[0][1]}", "offer")
        details = {
            "dataset_id": dataset_id,
            "offer": requested,
            "purpose": purpose,
            "compute_site": compute_site,
            "auto_accept": auto_accept,
        }
        return self._open(Role.CONSUMER, pid, counterparty_address, counterparty_id, message, details)

    def offer(self, counterparty_address: str, counterparty_id: str, offer_identifier: str) -> ProcessRecord:
        """Provider-initiated negotiation: send one of our catalog offers to a participant.

        The offer must be one we publish; whether the participant may see and take it is decided
        when it answers (its verified claims against the access and usage policy, at every step).
        """
        ctx = self.ctx
        found = ctx.catalog.find_offer(offer_identifier)
        if found is None:
            raise ServiceError(404, "unknown-offer", f"we publish no offer {offer_identifier}", "offer_id")
        asset, definition, ours = found
        pid = new_pid()
        offered = {**ours, "target": asset.id}
        message = dsp.contract_offer_message(pid, offered, callback_address=ctx.dsp_base)
        details = {"dataset_id": asset.id, "offer": ours, "definition_id": definition.id}
        return self._open(Role.PROVIDER, pid, counterparty_address, counterparty_id, message, details)

    def _open(
        self,
        role: Role,
        pid: str,
        counterparty_address: str,
        counterparty_id: str,
        message: dict[str, Any],
        details: dict[str, Any],
    ) -> ProcessRecord:
        """A negotiation we start: a consumer with a request, a provider with an offer."""
        consumer = role == Role.CONSUMER
        opening = NegotiationMessage.REQUEST if consumer else NegotiationMessage.OFFER
        path = "request" if consumer else "offers"
        result = negotiation_step(NegotiationState.INITIAL, opening, role)
        assert not isinstance(result, IllegalTransition)
        base = counterparty_address.rstrip("/")
        record = ProcessRecord(
            id=pid,
            kind="negotiation",
            role=role,
            state=result.after,
            version=0,
            counterparty_id=counterparty_id,
            counterparty_address=base,
            consumer_pid=pid if consumer else None,
            provider_pid=None if consumer else pid,
            details=details,
        )
        plan = Plan(
            state=record.state,
            messages=[logged("out", message)],
            outbox=[OutboundMessage(f"{base}/negotiations/{path}", counterparty_id, message)],
        )
        return self.ctx.writer.create(record, plan)

    def counter(self, negotiation_id: str, offer: Mapping[str, Any]) -> ProcessRecord:
        """Consumer counter-offer: answer the provider's offer with the offer we want instead."""
        if not isinstance(offer.get("@id"), str):
            raise ServiceError(400, "invalid-offer", "the offer needs an @id", "offer.@id")

        def plan_for(record: ProcessRecord) -> Plan:
            result = negotiation_step(
                NegotiationState(record.state), NegotiationMessage.REQUEST, Role(record.role)
            )
            if isinstance(result, IllegalTransition):
                raise ServiceError(409, result.code, result.reason)
            dataset_id = record.details.get("dataset_id")
            requested = {**dict(offer), "@type": "Offer", "target": dataset_id or offer.get("target")}
            message = dsp.contract_request_message(
                record.id,
                requested,
                provider_pid=record.provider_pid,  # a later request: the callback is known
                extensions=self._request_extensions(record.details),
            )
            problems = dsp.check_message(message)
            if problems:
                raise ServiceError(400, "invalid-offer", f"{problems[0][0]}: {problems[0][1]}", "offer")
            plan = Plan(state=result.after, details={"offer": requested})
            send(plan, record, "request", message)
            return plan

        return self._local_step(negotiation_id, plan_for)

    @staticmethod
    def _request_extensions(details: Mapping[str, Any]) -> dict[str, Any]:
        """What a consumer's request carries beyond DSP: our extensions and its declared facts."""
        declared = ((EXT_PURPOSE, details.get("purpose")), (EXT_COMPUTE_SITE, details.get("compute_site")))
        return {EXT_EXTENSIONS: list(SUPPORTED_EXTENSIONS), **{k: v for k, v in declared if v}}

    def accept(self, negotiation_id: str) -> ProcessRecord:
        def plan_for(record: ProcessRecord) -> Plan:
            result = negotiation_step(
                NegotiationState(record.state), NegotiationMessage.ACCEPT, Role(record.role)
            )
            if isinstance(result, IllegalTransition):
                raise ServiceError(409, result.code, result.reason)
            plan = Plan(state=result.after)
            self._accept_into(record, plan)
            return plan

        return self._local_step(negotiation_id, plan_for)

    def terminate(self, negotiation_id: str, reason: str = "terminated by the user") -> ProcessRecord:
        def plan_for(record: ProcessRecord) -> Plan:
            result = negotiation_step(
                NegotiationState(record.state), NegotiationMessage.TERMINATION, Role(record.role)
            )
            if isinstance(result, IllegalTransition):
                raise ServiceError(409, result.code, result.reason)
            plan = Plan(state=result.after, changes={"error": reason[:MAX_REASON_CHARS]})
            peer_pid = record.consumer_pid if record.role == Role.PROVIDER else record.provider_pid
            if peer_pid:
                ids = pids(record)
                message = dsp.negotiation_termination_message(
                    ids["provider_pid"], ids["consumer_pid"], "terminated", [reason]
                )
                send(plan, record, "termination", message)
            return plan

        return self._local_step(negotiation_id, plan_for)

    def _local_step(self, negotiation_id: str, plan_for: Any) -> ProcessRecord:
        done = self.ctx.writer.compare_and_set(
            lambda: self.ctx.local("negotiation", negotiation_id),
            plan_for,
            ServiceError(409, "concurrent-update", "the negotiation changed meanwhile; try again"),
        )
        assert done is not None  # local() raises for an unknown id; plan_for never returns None
        return done[0]
