"""What the negotiation and transfer halves of the control plane share.

One participant's identity and key, its store and the process writer, the DID resolver, the
catalog, the clock - and the checks every DSP step makes before it plans anything: is this
process the caller's, do the pids in the message name it, may the caller be called back there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.callbacks import CallbackPolicy, callback_refusal
from connector.catalog import CatalogBuilder
from connector.control.errors import DspError, ServiceError
from connector.control.process import ProcessWriter, pids
from connector.identity import KeyPair, TrustedAuthority, VerifiedClaims
from connector.protocol import Role
from connector.store import ProcessRecord, Store


@dataclass
class ControlContext:
    participant_id: str
    key: KeyPair
    verification_method: str
    dsp_base: str
    store: Store
    writer: ProcessWriter
    resolver: Any
    trusted: TrustedAuthority | Sequence[TrustedAuthority]
    catalog: CatalogBuilder
    callback_policy: CallbackPolicy
    clock: Callable[[], datetime]

    def policy_context(
        self, claims: VerifiedClaims, extra: Mapping[str, object] | None = None
    ) -> dict[str, object]:
        """The facts a policy is evaluated on: the verified claims, plus declared job facts."""
        context = dict(claims.policy_context())
        context.update({k: v for k, v in (extra or {}).items() if v is not None})
        return context

    def check_callback(self, callback: str, claims: VerifiedClaims) -> None:
        refusal = callback_refusal(callback, claims, self.callback_policy)
        if refusal:
            raise DspError(400, "callback-refused", refusal)

    def own_process(self, kind: str, pid: str, claims: VerifiedClaims) -> ProcessRecord:
        """The process ``pid`` if the caller is its counter-party; 404 otherwise (no oracle)."""
        record = self.store.get_process(pid, kind)
        if record is None or record.counterparty_id != claims.participant_id:
            raise DspError(
                404, f"unknown-{kind}", f"no {kind} {pid} exists for you", provider_pid=pid, consumer_pid=pid
            )
        return record

    def local(self, kind: str, process_id: str) -> ProcessRecord:
        """One of our processes, for the management API."""
        record = self.store.get_process(process_id, kind)
        if record is None:
            raise ServiceError(404, f"unknown-{kind}", f"no {kind} {process_id}")
        return record

    @staticmethod
    def check_pids(record: ProcessRecord, body: Mapping[str, Any]) -> dict[str, Any]:
        """The message's pids must match ours; a peer's pid we did not know yet is learnt here."""
        ours, theirs = (
            ("providerPid", "consumerPid") if record.role == Role.PROVIDER else ("consumerPid", "providerPid")
        )
        if body.get(ours) != record.id:
            raise DspError(
                400, "pid-mismatch", f"{ours} {body.get(ours)!r} does not name this process", **pids(record)
            )
        known = record.consumer_pid if record.role == Role.PROVIDER else record.provider_pid
        given = body.get(theirs)
        if known is None and isinstance(given, str) and given:
            return {"consumer_pid" if record.role == Role.PROVIDER else "provider_pid": given}
        if given is not None and known is not None and given != known:
            raise DspError(
                400, "pid-mismatch", f"{theirs} {given!r} does not match this process", **pids(record)
            )
        return {}
