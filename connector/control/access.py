"""Authorisation at every step: knowing an id grants nothing.

The access policy of the contract definition behind an offer decides who may see it - in the
catalog, and again at every step after: the first negotiation request (an offer the requester
may not see is answered exactly like one that does not exist), every later negotiation message,
the transfer request and every (re)start of a transfer. The usage policy is decided in its scope
alongside (negotiation scope while negotiating, transfer scope when data is to flow). Facts come
from the requester's *verified* claims, never from the message body, except the purpose and
compute site a consumer declares (which bind it: the transfer and every read re-check them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import policies
from connector.catalog import offer_id
from connector.control.context import ControlContext
from connector.policy_gate import decide
from connector.protocol import Role
from connector.store import AgreementRecord, AssetRecord, ContractDefinition, ProcessRecord


def declared_facts(details: Mapping[str, Any], *, job: bool = False) -> dict[str, object]:
    """The facts a consumer declared for a process (purpose, compute site, and the job id)."""
    facts: dict[str, object] = {
        "purpose": details.get("purpose"),
        "sluis:computeSite": details.get("compute_site"),
    }
    if job:
        facts["sluis:jobId"] = details.get("job_id")
    return facts


class AccessGate:
    """Decides, for each step a peer takes, whether its verified claims still let it."""

    def __init__(self, ctx: ControlContext) -> None:
        self.ctx = ctx

    def visible_offer(
        self, offer_identifier: str, requester: str, facts: Mapping[str, object]
    ) -> tuple[AssetRecord, ContractDefinition, dict[str, Any]] | None:
        """The offer behind an id, if it exists *and* the requester may see it."""
        found = self.ctx.catalog.find_offer(offer_identifier)
        if found is None:
            return None
        asset, definition, _offer = found
        verdict = self.ctx.catalog.access(definition, asset.id, requester, facts, self.ctx.clock())
        return found if verdict.permitted else None

    def _access_refusal(
        self, definition_id: str, asset_id: str, requester: str, facts: Mapping[str, object]
    ) -> str | None:
        definition = self.ctx.catalog.definition(definition_id)
        if definition is None or asset_id not in definition.asset_ids:
            return f"the offer {offer_id(definition_id, asset_id)} is no longer offered"
        verdict = self.ctx.catalog.access(definition, asset_id, requester, facts, self.ctx.clock())
        return None if verdict.permitted else f"the access policy denies you: {verdict.summary}"

    def negotiation_refusal(self, record: ProcessRecord, facts: Mapping[str, object]) -> str | None:
        """Why the counter-party may not take this negotiation further (``None``: it may).

        Only negotiations in which we are the provider are gated: their offers are ours.
        ``facts`` are the counter-party's verified claims (the policy context).
        """
        if record.role != Role.PROVIDER:
            return None
        details = record.details
        definition_id = details.get("definition_id")
        asset_id = details.get("dataset_id")
        if not isinstance(definition_id, str) or not isinstance(asset_id, str):
            return None  # not yet decided on an offer: the first request's decision does it
        refusal = self._access_refusal(definition_id, asset_id, record.counterparty_id, facts)
        if refusal is not None:
            return refusal
        offer = details.get("offer")
        if isinstance(offer, Mapping):
            verdict = decide(
                offer,
                assignee=record.counterparty_id,
                target=asset_id,
                context={**facts, **{k: v for k, v in declared_facts(details).items() if v is not None}},
                now=self.ctx.clock(),
                scope=policies.Scope.NEGOTIATION,
            )
            if not verdict.permitted:
                return f"the usage policy denies you: {verdict.summary}"
        return None

    def transfer_refusal(
        self, agreement: AgreementRecord, details: Mapping[str, Any], facts: Mapping[str, object]
    ) -> str | None:
        """Why data may not flow under ``agreement`` for this transfer now (``None``: it may)."""
        if agreement.terminated:
            return f"agreement {agreement.id} was terminated"
        negotiation = self.ctx.store.get_process(agreement.negotiation_id, "negotiation")
        definition_id = negotiation.details.get("definition_id") if negotiation is not None else None
        if not isinstance(definition_id, str):
            found = self._definition_of(negotiation)
            if found is None:
                return f"the offer agreed in {agreement.id} is no longer offered"
            definition_id = found
        refusal = self._access_refusal(definition_id, agreement.asset_id, agreement.consumer_id, facts)
        if refusal is not None:
            return refusal
        policy = {k: v for k, v in agreement.agreement.items() if k != "proof"}
        verdict = decide(
            policy,
            assignee=agreement.consumer_id,
            target=agreement.asset_id,
            context={
                **facts,
                **{k: v for k, v in declared_facts(details, job=True).items() if v is not None},
            },
            now=self.ctx.clock(),
            scope=policies.Scope.TRANSFER,
        )
        return None if verdict.permitted else f"the usage policy denies the transfer: {verdict.summary}"

    def _definition_of(self, negotiation: ProcessRecord | None) -> str | None:
        """The contract definition of a negotiation stored before definitions were recorded."""
        if negotiation is None:
            return None
        offer = negotiation.details.get("offer")
        identifier = offer.get("@id") if isinstance(offer, Mapping) else None
        found = self.ctx.catalog.find_offer(identifier) if isinstance(identifier, str) else None
        return found[1].id if found is not None else None
