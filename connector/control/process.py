"""One negotiation or transfer process changing state: the plan of a step and its commit.

Every message that moves a process - received from the peer or started here - becomes a
:class:`Plan`: the new state, the field changes, the messages logged and those owed to the peer,
perhaps an agreement, perhaps a refusal. :meth:`ProcessWriter.compare_and_set` writes a plan in
one transaction *only if* the process is still at the version it was planned from; when another
writer (a replica, a retried delivery) got there first it re-reads the process and plans again.
This is the one compare-and-set loop of the control plane.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import quote

from connector.control.errors import MAX_REASON_CHARS, DspError
from connector.observability import tracing
from connector.protocol import (
    FINAL_NEGOTIATION_STATES,
    FINAL_TRANSFER_STATES,
    NegotiationState,
    Role,
    TransferState,
)
from connector.store import (
    AgreementRecord,
    LoggedMessage,
    OutboundMessage,
    OutboxItem,
    ProcessRecord,
    Store,
)

_log = logging.getLogger(__name__)

#: How often a compare-and-set is retried when another writer advanced the process meanwhile.
CAS_ATTEMPTS = 5


@dataclass
class Plan:
    """What one accepted message leads to; written in one transaction."""

    state: str
    changes: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    messages: list[LoggedMessage] = field(default_factory=list)
    outbox: list[OutboundMessage] = field(default_factory=list)
    agreement: AgreementRecord | None = None
    refusal: DspError | None = None
    after_commit: list[Callable[[], None]] = field(default_factory=list)


def logged(direction: str, body: Mapping[str, Any]) -> LoggedMessage:
    return LoggedMessage(direction, str(body.get("@type", "")), dict(body))


def message_identity(body: Mapping[str, Any]) -> str:
    """A message's identity: its type, pids and every other member, as one content hash.

    DSP 2025-1 messages carry no message id. Two deliveries are the same message when they are
    equal member for member (bodies are compared in the compact form every message is read
    into), so an agreement with another ``@id`` or a suspension with other reasons is another
    message, never a redelivery.
    """
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def is_redelivery(store: Store, record: ProcessRecord, body: Mapping[str, Any]) -> bool:
    """Whether ``body`` is a message this process already received and applied (the peer's
    outbox retried after a lost acknowledgement): acknowledged again, changing nothing."""
    identity = message_identity(body)
    return any(
        m.direction == "in" and m.type == body.get("@type") and message_identity(m.body) == identity
        for m in store.messages_of(record.id)
    )


def pids(record: ProcessRecord) -> dict[str, str]:
    """The process's pids as ``DspError`` keyword arguments."""
    return {"provider_pid": record.provider_pid or "", "consumer_pid": record.consumer_pid or ""}


def peer_url(record: ProcessRecord, suffix: str) -> str:
    """The peer's DSP endpoint for ``suffix`` of this process (``.../negotiations/{pid}/events``)."""
    area = "negotiations" if record.kind == "negotiation" else "transfers"
    peer_pid = record.consumer_pid if record.role == Role.PROVIDER else record.provider_pid
    return f"{record.counterparty_address.rstrip('/')}/{area}/{quote(peer_pid or '', safe=':')}/{suffix}"


def send(plan: Plan, record: ProcessRecord, suffix: str, message: dict[str, Any]) -> None:
    """Log ``message`` as sent and owe it to the peer (delivered after the commit)."""
    plan.messages.append(logged("out", message))
    plan.outbox.append(OutboundMessage(peer_url(record, suffix), record.counterparty_id, message))


def reason_text(body: Mapping[str, Any], default: str) -> str:
    reasons = body.get("reason")
    if isinstance(reasons, list) and reasons:
        return "; ".join(str(r) for r in reasons)[:MAX_REASON_CHARS]
    return default


def terminated_state(record: ProcessRecord) -> str:
    return NegotiationState.TERMINATED if record.kind == "negotiation" else TransferState.TERMINATED


def is_final(record: ProcessRecord) -> bool:
    final = FINAL_NEGOTIATION_STATES if record.kind == "negotiation" else FINAL_TRANSFER_STATES
    return record.state in final


def refuse(record: ProcessRecord, plan: Plan, code: str, reason: str, status: int = 400) -> None:
    """End the process here and answer the message with a DSP error carrying the reason."""
    plan.state = terminated_state(record)
    plan.changes["error"] = reason[:MAX_REASON_CHARS]
    plan.outbox.clear()
    plan.agreement = None
    plan.after_commit.clear()
    plan.refusal = DspError(status, code, reason, **pids(record))


def correlation_of(record: ProcessRecord) -> str | None:
    """A process's correlation id: its negotiation's consumer pid (see
    :mod:`connector.observability.correlation`)."""
    if record.kind == "negotiation":
        return record.consumer_pid
    value = record.details.get("correlation_id")
    return value if isinstance(value, str) else None


def _log_fields(record: ProcessRecord) -> dict[str, Any]:
    return {"process_id": record.id, "kind": record.kind, "correlation_id": correlation_of(record)}


def _span_fields(record: ProcessRecord, before: str, after: str) -> dict[str, Any]:
    return {
        "sluis.process_id": record.id,
        "sluis.process_kind": record.kind,
        "sluis.role": str(record.role),
        "sluis.state_from": before or None,
        "sluis.state_to": after,
        tracing.CORRELATION_ATTRIBUTE: correlation_of(record),
    }


def _stamped(record: ProcessRecord, outbox: list[OutboundMessage]) -> list[OutboundMessage]:
    """The messages a step owes, each carrying the process's correlation id and the step's trace
    context into the outbox (so the send logs and traces as part of this negotiation)."""
    if not outbox:
        return outbox
    correlation, traceparent = correlation_of(record), tracing.current_traceparent()
    return [
        replace(m, correlation_id=m.correlation_id or correlation, traceparent=m.traceparent or traceparent)
        for m in outbox
    ]


class Leaser(Protocol):
    """The outbox, as the writer needs it: lease new messages in the writing transaction."""

    def lease_args(self, outbox: list[OutboundMessage], leased: list[OutboxItem]) -> dict[str, Any]: ...

    def after_enqueue(self, outbox: list[OutboundMessage], leased: list[OutboxItem]) -> None: ...


class ProcessWriter:
    """Writes plans: new processes, and compare-and-set steps of existing ones."""

    def __init__(self, store: Store, outbox: Leaser) -> None:
        self.store = store
        self.outbox = outbox

    def create(
        self, record: ProcessRecord, plan: Plan, *, once_per_consumer_pid: bool = False
    ) -> ProcessRecord:
        """Store a new process in the plan's state, with its log, outbox and agreement.

        ``once_per_consumer_pid``: a provider's process for a consumer's initial request; when
        the consumer already has one for that pid, nothing is written and it is returned
        (see :meth:`Store.create_process`)."""
        leased: list[OutboxItem] = []
        if _log.isEnabledFor(logging.INFO):  # the hot path builds no log fields nobody reads
            _log.info("process created", extra={**_log_fields(record), "state": plan.state})
        with tracing.span("process.step", _span_fields(record, "", plan.state)):
            outbox = _stamped(record, plan.outbox)
            stored = self.store.create_process(
                replace(record, state=plan.state, details={**record.details, **plan.details}, **plan.changes),
                plan.messages,
                outbox,
                agreement=plan.agreement,
                once_per_consumer_pid=once_per_consumer_pid,
                **self.outbox.lease_args(outbox, leased),
            )
            if stored.id == record.id:
                self.outbox.after_enqueue(outbox, leased)
        return stored

    def commit(self, record: ProcessRecord, plan: Plan) -> ProcessRecord | None:
        """Write ``plan`` if ``record`` is still current; ``None`` if another writer was first."""
        leased: list[OutboxItem] = []
        with tracing.span("process.step", _span_fields(record, record.state, plan.state)):
            outbox = _stamped(record, plan.outbox)
            updated = self.store.advance(
                record,
                plan.state,
                changes=plan.changes,
                details=plan.details,
                messages=plan.messages,
                outbox=outbox,
                agreement=plan.agreement,
                **self.outbox.lease_args(outbox, leased),
            )
            if updated is not None:
                if _log.isEnabledFor(logging.INFO):
                    _log.info(
                        "process step",
                        extra={**_log_fields(record), "from": record.state, "state": plan.state},
                    )
                self.outbox.after_enqueue(outbox, leased)
                for action in plan.after_commit:
                    action()
        return updated

    def compare_and_set(
        self,
        load: Callable[[], ProcessRecord | None],
        plan_for: Callable[[ProcessRecord], Plan | None],
        conflict: Exception | None,
    ) -> tuple[ProcessRecord, Plan] | None:
        """Load, plan, commit - again from a fresh read while another writer wins the race.

        ``plan_for`` may raise to refuse, or return ``None`` when there is nothing to write
        (then so does this). After :data:`CAS_ATTEMPTS` lost races ``conflict`` is raised, or
        ``None`` returned when the caller passed none (a best-effort background update).
        """
        for _ in range(CAS_ATTEMPTS):
            record = load()
            if record is None:
                return None
            plan = plan_for(record)
            if plan is None:
                return None
            updated = self.commit(record, plan)
            if updated is not None:
                return updated, plan
        if conflict is not None:
            raise conflict
        return None

    # -- what the outbox learns about a process --------------------------------------------

    def end_after_refusal(self, process_id: str, reason: str) -> None:
        """The peer refused (or never took) a message: the process ends, the reason kept."""

        def plan_for(record: ProcessRecord) -> Plan | None:
            if is_final(record):
                return None
            return Plan(state=terminated_state(record), changes={"error": reason[:MAX_REASON_CHARS]})

        self.compare_and_set(lambda: self.store.get_process(process_id), plan_for, None)
