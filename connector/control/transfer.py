"""Transfer processes, both roles: DSP messages received, and what our own people start.

The provider checks the agreement and the usage policy (transfer scope) before a transfer
starts, then lets its :class:`~connector.control.flows.TransferFlow` open access; every later
move that stops data flowing closes it again. The consumer keeps the data address its job
reads from.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from connector.addresses import AddressPolicy
from connector.control.access import AccessGate
from connector.control.context import ControlContext
from connector.control.errors import DspError, DspReply, ServiceError
from connector.control.flows import PULL_FORMAT, TransferFlow, received_address
from connector.control.process import Plan, is_redelivery, logged, pids, reason_text, refuse, send
from connector.control.push import (
    PUSH_FORMAT,
    DestinationRefused,
    PushDestination,
    destination_of,
    redacted,
    sealed_request,
)
from connector.control.push_secrets import CredentialSealer
from connector.dataplane.contract_state import TransferView
from connector.identity import VerifiedClaims
from connector.protocol import (
    FINAL_TRANSFER_STATES,
    Effect,
    IllegalTransition,
    NegotiationState,
    Role,
    TransferMessage,
    TransferState,
    transfer_step,
)
from connector.protocol.extensions import EXT_COMPUTE_SITE, EXT_JOB_ID, EXT_PURPOSE
from connector.store import AgreementRecord, OutboundMessage, ProcessRecord, new_pid
from vocab import dsp

#: Transfer formats this connector serves (HTTP pull through the data plane, HTTP push from it).
SUPPORTED_FORMATS = frozenset({PULL_FORMAT, PUSH_FORMAT})

_log = logging.getLogger(__name__)


class Transfers:
    """Transfer processes of one participant, as provider and as consumer."""

    _COMMANDS: ClassVar[dict[str, tuple[TransferMessage, str]]] = {
        "suspend": (TransferMessage.SUSPENSION, "suspension"),
        "resume": (TransferMessage.START, "start"),
        "complete": (TransferMessage.COMPLETION, "completion"),
        "terminate": (TransferMessage.TERMINATION, "termination"),
    }

    def __init__(self, ctx: ControlContext, flows: Mapping[str, TransferFlow]) -> None:
        self.ctx = ctx
        self.flows = dict(flows)
        self.gate = AccessGate(ctx)

    # -- messages received ------------------------------------------------------------------

    def request(self, claims: VerifiedClaims, message: dsp.DspMessage) -> DspReply:
        """POST /transfers/request: check agreement, policy (scope transfer) and start the transfer."""
        ctx = self.ctx
        body = message.body
        consumer_pid = str(body["consumerPid"])
        existing = ctx.store.find_provider_process("transfer", claims.participant_id, consumer_pid)
        if existing is not None:
            return DspReply(201, dsp.transfer_process(existing.id, consumer_pid, existing.state))
        ids = {"consumer_pid": consumer_pid}
        callback = str(body["callbackAddress"])
        try:
            ctx.check_callback(callback, claims)
        except DspError as error:
            error.consumer_pid = consumer_pid
            raise
        if str(body["format"]) == PULL_FORMAT and body.get("dataAddress") is not None:
            # DSP 2025-1: a consumer names a dataAddress only for a push; a pull's address comes
            # from the provider in TransferStartMessage. Silently dropping it would let a
            # consumer believe its destination was taken.
            raise DspError(
                400,
                "data-address-not-expected",
                f"dataAddress: a {PULL_FORMAT} transfer takes no dataAddress (the provider sends"
                f" one in TransferStartMessage); name a destination only with {PUSH_FORMAT}",
                **ids,
            )
        agreement_id = str(body["agreementId"])
        agreement = ctx.store.get_agreement(agreement_id)
        if (
            agreement is None
            or agreement.provider_id != ctx.participant_id
            or agreement.consumer_id != claims.participant_id
        ):
            raise DspError(400, "unknown-agreement", f"no agreement {agreement_id} exists between us", **ids)
        negotiation = ctx.store.get_process(agreement.negotiation_id, "negotiation")
        if negotiation is None or negotiation.state != NegotiationState.FINALIZED:
            raise DspError(400, "agreement-not-final", f"agreement {agreement_id} is not finalized", **ids)
        if agreement.terminated:
            raise DspError(400, "agreement-terminated", f"agreement {agreement_id} was terminated", **ids)
        pid = new_pid()
        push: dict[str, Any] | None = None
        if str(body["format"]) == PUSH_FORMAT:
            try:
                destination = destination_of(body.get("dataAddress"), ctx.callback_policy.addresses)
            except DestinationRefused as refused:
                raise DspError(400, "destination-refused", str(refused), **ids) from None
            push = destination.sealed(CredentialSealer(ctx.key), pid)
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
            details={
                "asset_id": agreement.asset_id,
                "provider_id": ctx.participant_id,
                "format": str(body["format"]),
                "job_id": body.get(EXT_JOB_ID),
                "purpose": body.get(EXT_PURPOSE),
                "compute_site": body.get(EXT_COMPUTE_SITE),
                # the verified facts a provider-side resume is decided on again
                "requester_facts": ctx.policy_context(claims),
                # the negotiation's consumer pid: one id for everything the agreement leads to
                "correlation_id": negotiation.consumer_pid,
                **({"push": push} if push is not None else {}),
            },
        )
        # the destination's credentials are kept sealed in the details alone, never in the message log
        plan = Plan(state=TransferState.REQUESTED, messages=[logged("in", redacted(body))])
        self._start(record, agreement, plan)
        # copies of one request handled at once make one process: the others answer with it
        stored = ctx.writer.create(record, plan, once_per_consumer_pid=True)
        if stored.id == record.id and plan.refusal:
            raise plan.refusal
        return DspReply(201, dsp.transfer_process(stored.id, consumer_pid, stored.state))

    def _start(self, record: ProcessRecord, agreement: AgreementRecord, plan: Plan) -> None:
        """Start (or restart) a transfer: format, access and usage policy, then open its flow."""
        details = record.details
        if details["format"] not in SUPPORTED_FORMATS:
            refuse(
                record,
                plan,
                "unsupported-format",
                f"format {details['format']!r} is not one of {sorted(SUPPORTED_FORMATS)}",
            )
            return
        flow = self.flows.get(details["format"])
        if flow is None:
            refuse(record, plan, "no-data-plane", "this connector runs no data plane to serve transfers")
            return
        facts = details.get("requester_facts")
        refusal = self.gate.transfer_refusal(agreement, details, facts if isinstance(facts, dict) else {})
        if refusal is not None:
            refuse(record, plan, "policy-denied", refusal, status=403)
            return
        view = TransferView(
            id=record.id,
            state=TransferState.STARTED,
            agreement_id=agreement.id,
            consumer_id=record.counterparty_id,
            provider_id=self.ctx.participant_id,
            asset_id=agreement.asset_id,
            job_id=details.get("job_id"),
            purpose=details.get("purpose"),
            compute_site=details.get("compute_site"),
            correlation_id=details.get("correlation_id"),
        )
        address = flow.open(view, self.ctx.clock())
        message = dsp.transfer_start_message(
            record.id, record.consumer_pid or "", address.to_dsp() if address is not None else None
        )
        plan.state = TransferState.STARTED
        send(plan, record, "start", message)
        plan.outbox.extend(flow.deliveries(view))

    def _restart(self, record: ProcessRecord, plan: Plan) -> None:
        """A resumed transfer (either side resumed it): decide again and send a fresh address."""
        agreement = self.ctx.store.get_agreement(record.agreement_id or "")
        if agreement is None or agreement.provider_id != self.ctx.participant_id:
            refuse(record, plan, "unknown-agreement", f"no agreement {record.agreement_id} exists between us")
            return
        self._start(record, agreement, plan)

    def message(self, claims: VerifiedClaims, pid: str, message: dsp.DspMessage) -> DspReply:
        """A message about an existing transfer (POST /transfers/{pid}/start, suspension, ...)."""
        ctx = self.ctx
        body = message.body
        try:
            kind = TransferMessage(message.type)
        except ValueError:
            raise DspError(400, "unexpected-message", f"{message.type} is not a transfer message") from None

        # Decided before the transaction (it resolves host names): where the peer tells our job
        # to read from is an address the peer chose, like a callback.
        address_refusal = (
            data_address_refusal(body.get("dataAddress"), ctx.callback_policy.addresses)
            if kind == TransferMessage.START
            else None
        )

        def plan_for(record: ProcessRecord) -> Plan | None:
            learnt = ctx.check_pids(record, body)
            result = transfer_step(TransferState(record.state), kind, Role(record.role).other)
            if isinstance(result, IllegalTransition):
                if is_redelivery(ctx.store, record, body):
                    return None
                raise DspError(400, result.code, result.reason, **pids(record))
            plan = Plan(state=result.after, changes=learnt)
            _erase_push_credential(record, plan)
            if result.after == TransferState.TERMINATED:
                plan.changes["error"] = reason_text(body, "the counter-party terminated the transfer")
            for effect in result.effects:
                if effect == Effect.RECORD_DATA_ADDRESS and isinstance(body.get("dataAddress"), dict):
                    if address_refusal is not None:
                        raise DspError(400, "data-address-refused", address_refusal, **pids(record))
                    plan.details["data_address"] = received_address(body["dataAddress"])
                elif effect == Effect.REVOKE_ACCESS:
                    plan.after_commit.append(functools.partial(self._close, record))
                elif effect == Effect.REISSUE_ACCESS:
                    # the consumer resumed: decided again on its claims *now*
                    facts = ctx.policy_context(claims)
                    plan.details["requester_facts"] = facts
                    self._restart(replace(record, details={**record.details, "requester_facts": facts}), plan)
            plan.messages.insert(0, logged("in", body))
            return plan

        done = ctx.writer.compare_and_set(
            lambda: ctx.own_process("transfer", pid, claims),
            plan_for,
            DspError(409, "concurrent-update", "the transfer changed while this message was applied"),
        )
        if done is not None and done[1].refusal:
            raise done[1].refusal
        return DspReply(200)

    def _close(self, record: ProcessRecord) -> None:
        flow = self.flows.get(str(record.details.get("format") or PULL_FORMAT))
        if flow is not None:
            flow.close(record.id)

    def state(self, claims: VerifiedClaims, pid: str) -> DspReply:
        record = self.ctx.own_process("transfer", pid, claims)
        return DspReply(
            200, dsp.transfer_process(record.provider_pid or "", record.consumer_pid or "", record.state)
        )

    # -- what we start (management API) ------------------------------------------------------

    def start(
        self,
        agreement_id: str,
        counterparty_address: str,
        format_: str = PULL_FORMAT,
        job: Mapping[str, Any] | None = None,
        destination: PushDestination | None = None,
    ) -> ProcessRecord:
        """Ask the provider for a transfer. For ``HttpData-PUSH`` without a ``destination`` the
        data comes to our own receiving endpoint (``/push/{transfer}``) with a fresh secret."""
        ctx = self.ctx
        agreement = ctx.store.get_agreement(agreement_id)
        if agreement is None or agreement.consumer_id != ctx.participant_id:
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
        push_details: dict[str, Any] = {}
        address: dict[str, Any] | None = None
        if format_ == PUSH_FORMAT:
            if destination is None:
                secret = secrets.token_urlsafe(32)
                receiver = f"{ctx.dsp_base.removesuffix('/dsp')}/push/{pid}"
                destination = PushDestination(receiver, secret, "Bearer")
                push_details["push_secret_sha256"] = hashlib.sha256(secret.encode()).hexdigest()
            push_details["push_endpoint"] = destination.endpoint
            push_details["push_media_type"] = destination.media_type
            address = destination.to_dsp()
        elif destination is not None:
            raise ServiceError(400, "destination-not-push", f"a destination is only for {PUSH_FORMAT}")
        message = dsp.transfer_request_message(
            pid, agreement_id, format_, ctx.dsp_base, address=address, extensions=extensions or None
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
                "correlation_id": self._negotiation_pid(agreement),
                **push_details,
            },
        )
        plan = Plan(
            state=record.state,
            messages=[logged("out", redacted(message))],
            # a push credential stays sealed until the message is sent (connector.control.outbox)
            outbox=[
                OutboundMessage(
                    f"{base}/transfers/request",
                    agreement.provider_id,
                    sealed_request(message, CredentialSealer(ctx.key), pid),
                )
            ],
        )
        return ctx.writer.create(record, plan)

    def _negotiation_pid(self, agreement: AgreementRecord) -> str | None:
        negotiation = self.ctx.store.get_process(agreement.negotiation_id, "negotiation")
        return negotiation.consumer_pid if negotiation is not None else None

    def command(self, transfer_id: str, command: str, reason: str = "") -> ProcessRecord:
        if command not in self._COMMANDS:
            raise ServiceError(404, "unknown-command", f"{command} is not one of {sorted(self._COMMANDS)}")
        kind, suffix = self._COMMANDS[command]

        def plan_for(record: ProcessRecord) -> Plan:
            result = transfer_step(TransferState(record.state), kind, Role(record.role))
            if isinstance(result, IllegalTransition):
                raise ServiceError(409, result.code, result.reason)
            return self._command_plan(record, result.after, kind, suffix, reason)

        done = self.ctx.writer.compare_and_set(
            lambda: self.ctx.local("transfer", transfer_id),
            plan_for,
            ServiceError(409, "concurrent-update", "the transfer changed meanwhile; try again"),
        )
        assert done is not None  # local() raises for an unknown id; plan_for never returns None
        return done[0]

    def _command_plan(
        self, record: ProcessRecord, after: TransferState, kind: TransferMessage, suffix: str, reason: str
    ) -> Plan:
        plan = Plan(state=after)
        _erase_push_credential(record, plan)
        ids = pids(record)
        reasons = [reason] if reason else []
        if kind == TransferMessage.SUSPENSION:
            message = dsp.transfer_suspension_message(
                ids["provider_pid"], ids["consumer_pid"], "suspended", reasons
            )
        elif kind == TransferMessage.START and record.role == Role.PROVIDER:
            self._restart(record, plan)  # a fresh data address, or a refusal
            if plan.refusal is not None:
                raise ServiceError(plan.refusal.status, plan.refusal.code, plan.refusal.reason)
            return plan
        elif kind == TransferMessage.START:
            message = dsp.transfer_start_message(ids["provider_pid"], ids["consumer_pid"])
        elif kind == TransferMessage.COMPLETION:
            message = dsp.transfer_completion_message(ids["provider_pid"], ids["consumer_pid"])
        else:
            message = dsp.transfer_termination_message(
                ids["provider_pid"], ids["consumer_pid"], "terminated", reasons
            )
            plan.changes["error"] = reason or "terminated by the user"
        if record.provider_pid and record.consumer_pid:
            send(plan, record, suffix, message)
        if record.role == Role.PROVIDER and after != TransferState.STARTED:
            plan.after_commit.append(functools.partial(self._close, record))
        return plan

    def push_finished(self, transfer_id: str, failure: str | None) -> None:
        """A push was delivered (the transfer completes) or gave up (it ends with the reason);
        either way the consumer is told over DSP. A transfer that moved on meanwhile stays."""
        try:
            if failure is None:
                self.command(transfer_id, "complete")
            else:
                self.command(transfer_id, "terminate", failure)
        except ServiceError as error:
            _log.info("push finished on a transfer that moved on", extra={"transfer": transfer_id,
                                                                            "reason": error.reason})

    def terminate_agreement(self, agreement_id: str, reason: str) -> list[ProcessRecord]:
        """Every running transfer under an agreement terminated and the peer told."""
        ended = []
        for transfer in self.ctx.store.processes_for_agreement(agreement_id):
            if transfer.state in FINAL_TRANSFER_STATES:
                continue
            try:
                ended.append(self.command(transfer.id, "terminate", reason))
            except ServiceError as error:
                _log.warning(
                    "could not terminate transfer", extra={"transfer": transfer.id, "reason": error.reason}
                )
        return ended


def data_address_refusal(address: object, policy: AddressPolicy) -> str | None:
    """Why we refuse to keep the ``DataAddress`` a provider sent, or ``None``.

    The provider chooses the endpoint and refresh endpoint our job will send requests to (with
    its token and our key's proofs), from inside the consumer's network: without this check a
    provider could aim the job at an internal service. Both go through the same address policy
    as callbacks and push destinations (private, loopback, link-local refused unless configured).
    """
    if not isinstance(address, Mapping):
        return None
    properties = dsp.data_address_properties(address)
    for name, value in (
        ("dataAddress.endpoint", address.get("endpoint")),
        ("dataAddress refreshEndpoint", properties.get("refreshEndpoint")),
    ):
        if value is None:
            continue
        if not isinstance(value, str):
            return f"{name} must be a URL"
        refusal = policy.url_refusal(value, what=name)
        if refusal is not None:
            return refusal
    return None


def _erase_push_credential(record: ProcessRecord, plan: Plan) -> None:
    """A push transfer that ends (completed, terminated) keeps its destination without the
    credential: nothing more is sent, so nothing is kept that could be used to write there."""
    kept = record.details.get("push")
    if isinstance(kept, dict) and plan.state in FINAL_TRANSFER_STATES:
        plan.details["push"] = PushDestination.erased(kept)
