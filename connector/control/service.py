"""One participant's connector, provider and consumer at once: the parts wired together.

:class:`ConnectorService` is what the HTTP layers hold. It authenticates callers, serves the
catalog, and hands each negotiation or transfer message to :class:`Negotiations` or
:class:`Transfers`; their steps are written by the one compare-and-set
:class:`~connector.control.process.ProcessWriter`, and what they owe the peer leaves through the
:class:`~connector.control.outbox.Outbox`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from connector.callbacks import CallbackPolicy
from connector.catalog import CatalogBuilder
from connector.control.context import ControlContext
from connector.control.errors import DspError, DspReply, ServiceError
from connector.control.flows import AccessIssuer, PullFlow, TransferFlow
from connector.control.negotiation import Negotiations
from connector.control.outbox import Outbox
from connector.control.process import ProcessWriter
from connector.control.push import PushDestination, PushFlow, PushReader
from connector.control.push_delivery import PushDelivery, spool_root
from connector.control.push_secrets import CredentialSealer
from connector.control.transfer import Transfers
from connector.dsp_client import DspClient
from connector.endpoints import endpoint_refusal
from connector.identity import (
    IdentityError,
    KeyPair,
    TrustedAuthority,
    VerifiedClaims,
    verification_method_id,
    verify_token,
)
from connector.observability.correlation import correlated
from connector.store import ProcessRecord, Store, TokenReplayed, deferral, deferred_replay
from vocab import dsp


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _consumer_pid(message: dsp.DspMessage) -> str | None:
    value = message.body.get("consumerPid")
    return value if isinstance(value, str) else None


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
        callback_policy: CallbackPolicy | None = None,
        dataplane: AccessIssuer | None = None,
        push_reader: PushReader | None = None,
        client: DspClient | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.participant_id = participant_id
        self.public_url = public_url.rstrip("/")
        self.dsp_base = f"{self.public_url}/dsp"
        self.store = store
        self.client = client or DspClient(participant_id, key, credentials)
        #: Write a DSP token's id with the step it authorised (``False``: a write of its own first,
        #: the per-message baseline of ``[tuning] fast_paths = false``).
        self.defer_replay_writes = True
        self.outbox = Outbox(store, self.client, CredentialSealer(key))
        writer = ProcessWriter(store, self.outbox)
        self.outbox.listen(writer)
        self.ctx = ControlContext(
            participant_id=participant_id,
            key=key,
            verification_method=verification_method_id(participant_id),
            dsp_base=self.dsp_base,
            store=store,
            writer=writer,
            resolver=resolver,
            trusted=trusted,
            catalog=CatalogBuilder(store, participant_id, self.dsp_base),
            callback_policy=callback_policy or CallbackPolicy(pinned=tuple(callback_allow_list)),
            clock=clock,
        )
        flows: dict[str, TransferFlow] = {}
        if dataplane is not None:
            pull = PullFlow(dataplane)
            flows[pull.format] = pull
        self.pushes: PushDelivery | None = None
        if push_reader is not None:
            push = PushFlow(push_reader)
            flows[push.format] = push
        self.negotiations = Negotiations(self.ctx)
        self.transfers = Transfers(self.ctx, flows)
        if push_reader is not None:
            self.pushes = PushDelivery(
                store,
                push_reader,
                key,
                self.ctx.callback_policy.addresses,
                participant_id,
                self.transfers.push_finished,
                spool_root(push_reader.data_root, participant_id),
            )
            self.outbox.pusher = self.pushes

    # -- identity --------------------------------------------------------------------------

    @contextmanager
    def replay_checked(self) -> Iterator[None]:
        """The block that authenticates one DSP request and handles it: the token's id is written
        with the step it causes, or on its own at the end when the request wrote no step
        (:mod:`connector.store.replay`). A replay is a 401 ``token-token_replayed`` either way."""
        if not self.defer_replay_writes:
            yield
            return
        with deferred_replay() as pending:
            try:
                try:
                    yield
                finally:
                    pending.settle(self.store)
            except TokenReplayed as error:
                raise DspError(401, f"token-{error.code}", str(error)) from None

    def authenticate(self, authorization: str | None) -> VerifiedClaims:
        """Verify the caller's self-issued token (signature, audience, expiry, replay, credentials)."""
        token = (authorization or "").strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if not token:
            raise DspError(401, "token-missing", "the request carries no Authorization token")
        ctx = self.ctx
        try:
            guard = deferral() or ctx.store
            return verify_token(token, ctx.participant_id, ctx.resolver, guard, ctx.trusted, ctx.clock())
        except IdentityError as error:
            raise DspError(401, f"token-{error.code}", str(error)) from error

    # -- catalog ---------------------------------------------------------------------------

    def catalog_for(self, claims: VerifiedClaims) -> dict[str, Any]:
        ctx = self.ctx
        return ctx.catalog.catalog(claims.participant_id, ctx.policy_context(claims), ctx.clock())

    def dataset_for(self, claims: VerifiedClaims, dataset_id: str) -> dict[str, Any]:
        ctx = self.ctx
        found = ctx.catalog.dataset(
            claims.participant_id, ctx.policy_context(claims), ctx.clock(), dataset_id
        )
        if found is None:
            raise DspError(404, "unknown-dataset", f"no dataset {dataset_id} is offered to you")
        return found

    # -- DSP messages received ---------------------------------------------------------------

    # Each is run with the negotiation's correlation id (its consumer pid) for the log lines it
    # causes; a transfer's is the one of the negotiation behind its agreement.

    def request_negotiation(self, claims: VerifiedClaims, message: dsp.DspMessage) -> DspReply:
        with correlated(_consumer_pid(message)):
            return self.negotiations.request(claims, message)

    def receive_offer(self, claims: VerifiedClaims, message: dsp.DspMessage) -> DspReply:
        with correlated(_consumer_pid(message)):
            return self.negotiations.offer_received(claims, message)

    def negotiation_message(self, claims: VerifiedClaims, pid: str, message: dsp.DspMessage) -> DspReply:
        with correlated(_consumer_pid(message)):
            return self.negotiations.message(claims, pid, message)

    def negotiation_state(self, claims: VerifiedClaims, pid: str) -> DspReply:
        return self.negotiations.state(claims, pid)

    def request_transfer(self, claims: VerifiedClaims, message: dsp.DspMessage) -> DspReply:
        with correlated(self._agreement_correlation(str(message.body.get("agreementId") or ""))):
            return self.transfers.request(claims, message)

    def transfer_message(self, claims: VerifiedClaims, pid: str, message: dsp.DspMessage) -> DspReply:
        record = self.store.get_process(pid, "transfer")
        with correlated(record.details.get("correlation_id") if record is not None else None):
            return self.transfers.message(claims, pid, message)

    def _agreement_correlation(self, agreement_id: str) -> str | None:
        agreement = self.store.get_agreement(agreement_id) if agreement_id else None
        negotiation = self.store.get_process(agreement.negotiation_id) if agreement is not None else None
        return negotiation.consumer_pid if negotiation is not None else None

    def transfer_state(self, claims: VerifiedClaims, pid: str) -> DspReply:
        return self.transfers.state(claims, pid)

    # -- what our own people start (management API) ------------------------------------------

    def check_endpoint(self, counterparty_address: str, counterparty_id: str) -> None:
        """Refuse (400, naming ``counterparty_address``) to send a token for ``counterparty_id``
        to an address that participant does not serve (``connector.endpoints``): the address and
        the DID often come together from a catalogue record, which anyone may publish."""
        refusal = endpoint_refusal(
            counterparty_address, counterparty_id, self.ctx.resolver, self.ctx.callback_policy.pinned
        )
        if refusal is not None:
            raise ServiceError(400, "endpoint-not-of-participant", refusal, "counterparty_address")

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
        self.check_endpoint(counterparty_address, counterparty_id)
        return self.negotiations.start(
            counterparty_address,
            counterparty_id,
            dataset_id,
            offer,
            purpose=purpose,
            compute_site=compute_site,
            auto_accept=auto_accept,
        )

    def offer_negotiation(
        self, counterparty_address: str, counterparty_id: str, offer_id: str
    ) -> ProcessRecord:
        """Provider-initiated: send one of our offers to a participant."""
        self.check_endpoint(counterparty_address, counterparty_id)
        return self.negotiations.offer(counterparty_address, counterparty_id, offer_id)

    def counter_offer(self, negotiation_id: str, offer: Mapping[str, Any]) -> ProcessRecord:
        """Consumer: answer the provider's offer with another one."""
        return self.negotiations.counter(negotiation_id, offer)

    def accept_offer(self, negotiation_id: str) -> ProcessRecord:
        return self.negotiations.accept(negotiation_id)

    def terminate_negotiation(
        self, negotiation_id: str, reason: str = "terminated by the user"
    ) -> ProcessRecord:
        return self.negotiations.terminate(negotiation_id, reason)

    def start_transfer(
        self,
        agreement_id: str,
        counterparty_address: str,
        format_: str = "HttpData-PULL",
        job: Mapping[str, Any] | None = None,
        destination: PushDestination | None = None,
    ) -> ProcessRecord:
        agreement = self.store.get_agreement(agreement_id)
        if agreement is not None and agreement.consumer_id == self.participant_id:
            self.check_endpoint(counterparty_address, agreement.provider_id)
        return self.transfers.start(agreement_id, counterparty_address, format_, job, destination)

    def transfer_command(self, transfer_id: str, command: str, reason: str = "") -> ProcessRecord:
        return self.transfers.command(transfer_id, command, reason)

    def terminate_agreement(
        self, agreement_id: str, reason: str = "agreement terminated"
    ) -> list[ProcessRecord]:
        """Revoke an agreement: no new transfers, every running transfer terminated, the peer told."""
        agreement = self.store.get_agreement(agreement_id)
        if agreement is None:
            raise ServiceError(404, "unknown-agreement", f"no agreement {agreement_id}")
        self.store.terminate_agreement(agreement_id)
        ended = self.transfers.terminate_agreement(agreement_id, reason)
        # with or without transfers, the counter-party hears of it (DSP has no agreement message)
        self.negotiations.tell_agreement_terminated(agreement, reason)
        return ended

    # -- outbox ----------------------------------------------------------------------------

    def start_worker(self) -> None:
        self.outbox.start()

    def stop_worker(self) -> None:
        self.outbox.stop()  # spooled pushes stay on disk for the next attempt or process

    def deliver_due(self) -> int:
        """Deliver, in this thread, every message that is due now; returns how many were attempted."""
        return self.outbox.deliver_due()
