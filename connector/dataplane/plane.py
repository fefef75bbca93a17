"""The data plane: every read re-checks token, contract state and policy, then runs sandboxed.

Order of checks for one read (each failure is audited and answered with a problem body):

1. the access token (signature, issuer, audience, expiry, not refreshed or revoked) and the
   proof of possession (consumer's key, method, URL, token hash, age, single use);
2. the transfer is STARTED and belongs to this token's consumer and agreement; the agreement
   is not terminated (read from ``ContractState`` at every read: no cache window);
   Only then is the consumer's optional identity token verified (its DID resolved): the
   data plane never contacts an address a caller chose before the token binds the caller;
3. the SQL passes ``sql_guard`` (one SELECT over the granted view, names resolved by scope);
4. ``policies.evaluate`` in scope *access*, with the read's context: time, purpose, compute
   site, job, reads so far, requested columns (and ``aggregate`` as the action for a plain
   grouped aggregate); then ``data_scope`` gives columns, row filters, aggregate-only and read
   limit; aggregate-only reads get the disclosure rules of ``disclosure``;
5. the granted relation (permitted columns, filtered rows) is materialised once per grant and
   asset version (``granted``) and the query is bound in a locked-down DuckDB that can open
   that one file only (``sandbox``); the whole view, and a query that only lists granted
   columns, are read from the relation's Arrow copy instead, without an engine; an output type
   the media type cannot carry is refused here, before any byte and before the read is counted;
6. the read is counted atomically against the limit (compare-and-set in the database). Every
   query that reaches the engine counts, failed or not. Reads are counted per consumer and
   offer (renegotiating the same offer does not reset them) unless the agreement scopes its
   limit to itself (``sluis:readScope eq "agreement"``);
7. the query runs and streams out; engine errors reach the consumer as a generic reason;
8. a signed, hash-chained audit entry records what left (rows, bytes, query hash, decision).
   Requests that never authenticated (no valid token and proof) are not written to the signed
   chain - anyone could grow it - but logged and counted (``unauthenticated_denials``).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from connector.audit import AuditLog
from connector.database import Database
from connector.dataplane.contract_state import STARTED, AgreementView, ContractState, TransferView
from connector.dataplane.denial_budget import DenialBudget
from connector.dataplane.disclosure import DisclosureProfile, profile_named
from connector.dataplane.encoders import ARROW_STREAM, MAX_PIECE_BYTES, check_encodable, encode
from connector.dataplane.errors import (
    AccessDenied,
    Busy,
    DataPlaneError,
    InvalidToken,
    NotFound,
    ResultTooLarge,
)
from connector.dataplane.granted import STREAM_BATCH_ROWS, GrantedFiles, check_asset
from connector.dataplane.obligations import Duty, agreed_at, duties_of
from connector.dataplane.privacy import MICRO, PrivacyPlan
from connector.dataplane.privacy import plan as privacy_plan
from connector.dataplane.privacy_bounds import declared_bounds, declared_keys
from connector.dataplane.privacy_noise import add_noise, noisy_schema
from connector.dataplane.read_rules import read_counter, read_rules
from connector.dataplane.sandbox import Sandbox, SandboxLimits, SandboxPool
from connector.dataplane.sql_guard import (
    GuardedQuery,
    ParsedQuery,
    check_query_text,
    guard,
    parse_query,
    query_hash,
    select_all_sql,
)
from connector.dataplane.store import ACTIVE, DataPlaneStore
from connector.dataplane.tokens import (
    DEFAULT_ACCESS_TOKEN_SECONDS,
    REFRESH_GRACE_SECONDS,
    AccessClaims,
    issue_access_token,
    jwk_thumbprint,
    verify_access_token,
    verify_proof,
)
from connector.dataplane.verified_tokens import VerifiedTokens
from connector.identity import (
    IdentityError,
    KeyPair,
    PublicKeyResolver,
    TrustedAuthority,
    verification_method_id,
    verify_token,
)
from connector.observability import tracing
from connector.policy_gate import parsed_policy
from connector.watchdog import Watchdog
from policies import (
    DataScope,
    Decision,
    Policy,
    PolicyError,
    Request,
    World,
    data_scope,
    evaluate,
)

_log = logging.getLogger(__name__)

DATA_PREFIX = "/data"
# The end-of-stream marker of an Arrow IPC stream (continuation, then a zero length).
_IPC_END = b"\xff\xff\xff\xff\x00\x00\x00\x00"


@dataclass(frozen=True)
class DataAddress:
    """Where and how a job reads one transfer (what the DSP TransferStartMessage carries)."""

    endpoint: str
    token: str
    expires_at: datetime
    refresh_endpoint: str
    token_type: str = "DPoP"  # noqa: S105 - the token scheme name, not a secret

    def to_json(self) -> dict[str, str]:
        return {
            "endpoint": self.endpoint,
            "token": self.token,
            "token_type": self.token_type,
            "expires_at": self.expires_at.astimezone(UTC).isoformat(timespec="seconds"),
            "refresh_endpoint": self.refresh_endpoint,
        }

    def to_dsp(self) -> dict[str, Any]:
        """The DSP 2025-1 ``DataAddress`` form (HTTP pull with endpoint properties)."""
        properties = [
            ("authorization", self.token),
            ("authType", self.token_type),
            ("expiresAt", self.expires_at.astimezone(UTC).isoformat(timespec="seconds")),
            ("refreshEndpoint", self.refresh_endpoint),
        ]
        return {
            "@type": "DataAddress",
            "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
            "endpoint": self.endpoint,
            "endpointProperties": [
                {"@type": "EndpointProperty", "name": name, "value": value} for name, value in properties
            ],
        }


@dataclass(frozen=True)
class DataPlaneLimits:
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    # Rows one read may return: a job wanting more reads in slices (LIMIT/OFFSET or filters).
    max_result_rows: int = 200_000_000
    # Bytes one read may send (encoded): bounds egress per token and request.
    max_result_bytes: int = 32 * 1024**3
    # Lifetime of an access token (the issue caps it at 10 minutes).
    token_seconds: int = DEFAULT_ACCESS_TOKEN_SECONDS
    # Reads running at once (each holds a DuckDB database with its own memory limit and threads).
    max_concurrent_reads: int = 16
    # Reads one consumer may run at once (on this process; more wait their turn as for a slot):
    # a consumer holding every slot with long queries would keep every other consumer waiting.
    # Two of sixteen, each at most SandboxLimits.timeout_seconds on SandboxLimits.threads threads.
    max_concurrent_reads_per_consumer: int = 2
    # How long a read waits for a free slot before it is answered 503.
    slot_wait_seconds: float = 30.0
    # Queries an aggregate-only agreement allows when it states no read limit of its own: a
    # budget against differencing (subtracting overlapping aggregates to isolate a small group).
    aggregate_query_budget: int = 200
    # Epsilon each read spends under an agreement with a differential-privacy budget.
    epsilon_per_read: float = 0.1
    # Disk the materialised granted relations may use (least recently used ones are evicted).
    granted_cache_bytes: int = 16 * 1024**3


def configured_limits(config: Any) -> DataPlaneLimits:
    """The default limits with what the connector configuration's ``[dataplane]`` sets
    (``read_timeout_seconds``, ``reads_per_consumer``; ``connector.config.DataplaneConfig``)."""
    limits = DataPlaneLimits()
    section = getattr(config, "dataplane", None)
    timeout = getattr(section, "read_timeout_seconds", None)
    if isinstance(timeout, int | float):
        limits = replace(limits, sandbox=replace(limits.sandbox, timeout_seconds=float(timeout)))
    per_consumer = getattr(section, "reads_per_consumer", None)
    if isinstance(per_consumer, int):
        limits = replace(limits, max_concurrent_reads_per_consumer=per_consumer)
    return limits


@dataclass
class ReadContext:
    """What one read is about, gathered as checks pass (the audit entry is built from it)."""

    transfer_id: str
    kind: str
    claims: AccessClaims | None = None
    transfer: TransferView | None = None
    agreement: AgreementView | None = None
    query_hash: str | None = None
    sql: str | None = None
    read_number: int | None = None
    identity: dict[str, object] = field(default_factory=dict)
    # Differential-privacy mode: epsilon this read spends, and the total spent / budget after it.
    epsilon: float | None = None
    epsilon_spent: float | None = None
    epsilon_budget: float | None = None
    # ... and the Laplace scale of the noise on each aggregate column (public: both sides see it).
    noise_scales: dict[str, float] | None = None
    # True once the token and its proof of possession verified: only then is a denial audited.
    authenticated: bool = False

    def audit_body(self) -> dict[str, Any]:
        transfer, claims, agreement = self.transfer, self.claims, self.agreement
        return {
            "kind": self.kind,
            "transfer_id": self.transfer_id,
            "agreement_id": transfer.agreement_id if transfer else claims.agreement_id if claims else None,
            "consumer_id": transfer.consumer_id if transfer else claims.consumer_id if claims else None,
            "provider_id": agreement.provider_id if agreement else transfer.provider_id if transfer else None,
            "asset_id": transfer.asset_id if transfer else None,
            "job_id": claims.job_id if claims else (transfer.job_id if transfer else None),
            "purpose": claims.purpose if claims else (transfer.purpose if transfer else None),
            "compute_site": claims.compute_site if claims else (transfer.compute_site if transfer else None),
            "token_id": claims.jti if claims else None,
            "query_hash": self.query_hash,
            "query": self.sql,
            "read_number": self.read_number,
            "correlation_id": transfer.correlation_id if transfer else None,
            **({"epsilon": self.epsilon, "epsilon_spent": self.epsilon_spent,
                "epsilon_budget": self.epsilon_budget, "noise_scales": self.noise_scales}
               if self.epsilon is not None else {}),
        }


@dataclass
class PreparedRead:
    """A read that passed every check: its sandbox is open and its batches are ready to stream."""

    context: ReadContext
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    media_type: str
    decision: str
    resources: ExitStack = field(default_factory=ExitStack)
    finished: bool = False
    # The whole view as Arrow IPC stream bytes ready to send (an HTTP read sends them as they
    # are, with a Content-Length), when the read is one and fits the caps; else None.
    encoded: memoryview | None = None
    encoded_rows: int = 0

    def finish(self) -> None:
        """Close the sandbox, let go of the granted file and free the read slot, once (also if
        the stream never started)."""
        if not self.finished:
            self.finished = True
            self.resources.close()


def _policy_of(agreement: AgreementView) -> Policy:
    """The agreement's policy, parsed once per distinct document by the connector's shared cache
    (parsing is pure; the agreement's *state* is read afresh at every read, never cached)."""
    try:
        return parsed_policy(agreement.policy)
    except PolicyError as error:
        reason = f"the agreement's policy cannot be read: {error}"
        raise AccessDenied("bad_agreement_policy", reason) from None


def _now() -> datetime:
    return datetime.now(UTC)


class DataPlane:
    """Issues job-scoped access and serves policy-checked reads. Stateless beyond the database."""

    def __init__(
        self,
        config: Any,
        state: ContractState,
        signing_key: KeyPair,
        storage: str | Database,
        *,
        key_resolver: PublicKeyResolver | None = None,
        limits: DataPlaneLimits | None = None,
        clock: Callable[[], datetime] = _now,
        provider_id: str | None = None,
        public_url: str | None = None,
        data_root: Path | None = None,
        management_token: str | None = None,
        trusted: TrustedAuthority | None = None,
        granted_root: Path | None = None,
    ) -> None:
        self.state = state
        self.key = signing_key
        self.provider_id: str = provider_id or config.participant.id
        self.public_url: str = (public_url or config.server.public_url).rstrip("/")
        root = data_root if data_root is not None else (config.dataplane.data_root if config else None)
        self.data_root: Path | None = Path(root) if root is not None else None
        self.management_token: str | None = management_token or (config.management.token if config else None)
        self.trusted: TrustedAuthority | None = trusted or (config.trusted_authority if config else None)
        self.limits = limits or configured_limits(config)
        # Locked DuckDB connections kept per granted file (reused only when provably clean).
        self.sandboxes = SandboxPool(self.limits.sandbox)
        self.watchdog = Watchdog()
        # Signature and claims of tokens already seen (time, status and proof: every read).
        self.verified_tokens = VerifiedTokens(
            lambda token, moment, grace: verify_access_token(
                token, self.key.public_key, self.provider_id, self.audience, moment, grace)
        )
        self.granted_files = GrantedFiles(granted_root, self.limits.granted_cache_bytes)
        self.granted_files.on_drop = self.sandboxes.discard_file
        # Test-only switch: with it off, a query goes to the engine unchecked, to prove that the
        # sandbox alone keeps every byte the agreement does not grant away from the consumer.
        self.check_sql = True
        # Denials of requests that never authenticated: counted and logged, never audited.
        self.unauthenticated_denials = 0
        self._count_lock = threading.Lock()
        # Refusals of authenticated requests are audited up to a rate per transfer, then counted.
        self.denial_budget = DenialBudget()
        self._slots = threading.BoundedSemaphore(self.limits.max_concurrent_reads)
        self._running_by_consumer: dict[str, int] = {}
        self._consumer_slots = threading.Condition()
        self.clock = clock
        # The connector hands over its store's database (one pool for everything); a storage URL
        # opens a handle of the data plane's own (a data plane running apart, tests, benchmarks).
        self._owns_database = not isinstance(storage, Database)
        self.database = Database(storage) if isinstance(storage, str) else storage
        self.store = DataPlaneStore(self.database)
        self.audit_signer = verification_method_id(self.provider_id)
        self.audit = AuditLog(self.database, signing_key, self.audit_signer)
        if key_resolver is None:
            from connector.identity import DidResolver

            key_resolver = DidResolver()
        self.key_resolver = key_resolver


    # --- addresses and tokens -----------------------------------------------------------------
    @property
    def audience(self) -> str:
        return self.public_url + DATA_PREFIX

    def endpoint_for(self, transfer_id: str) -> str:
        return f"{self.audience}/{transfer_id}"

    def consumer_thumbprint(self, consumer_id: str) -> str:
        """The thumbprint of the consumer's authentication key, from its DID document."""
        public_key = self.key_resolver.public_key(verification_method_id(consumer_id), "authentication")
        return jwk_thumbprint(public_key)

    def issue_access(self, transfer: TransferView, now: datetime | None = None) -> DataAddress:
        """A data address and a fresh token for a STARTED transfer (called when it starts)."""
        moment = now or self.clock()
        return self._issue(transfer, self.consumer_thumbprint(transfer.consumer_id), moment, "access-issued")

    def issue_push_access(self, transfer: TransferView, now: datetime | None = None) -> DataAddress:
        """A token bound to this provider's own key, for an HTTP push: the provider reads the
        granted data on the consumer's behalf, in-process, through the very checks, counters and
        audit of a consumer's read (the token never leaves the process)."""
        moment = now or self.clock()
        return self._issue(transfer, jwk_thumbprint(self.key.public_key), moment, "push-access-issued")

    def _issue(self, transfer: TransferView, jkt: str, moment: datetime, kind: str,
               replaces: str | None = None) -> DataAddress:
        token, claims = issue_access_token(
            self.key, self.provider_id, self.audience, transfer, jkt, moment, self.limits.token_seconds
        )
        self.store.record_token(claims.jti, transfer.id, transfer.agreement_id, transfer.consumer_id,
                                claims.expires_at)
        if replaces is not None:
            self.store.link_refresh(replaces, claims.jti)
        context = ReadContext(transfer.id, kind, claims=claims, transfer=transfer)
        self.audit.append({**context.audit_body(), "decision": "permit", "replaces": replaces,
                           "at": moment.isoformat(timespec="microseconds")})
        endpoint = self.endpoint_for(transfer.id)
        return DataAddress(endpoint, token, claims.expires_datetime(), endpoint + "/token/refresh")

    def revoke(self, transfer_id: str) -> None:
        """Kill every token of a transfer now (the next read is also denied by the state check)."""
        revoked = self.store.revoke_transfer(transfer_id)
        self.sandboxes.discard_transfer(transfer_id)
        transfer = self.state.transfer(transfer_id)
        context = ReadContext(transfer_id, "revocation", transfer=transfer)
        self.audit.append({**context.audit_body(), "decision": "revoke", "tokens_revoked": revoked})

    def refresh(
        self, transfer_id: str, authorization: str | None, proof: str | None, path: str
    ) -> DataAddress:
        """Exchange a token (once) for a new one; state is re-checked, the key binding kept."""
        moment = self.clock()
        context = ReadContext(transfer_id, "token-refresh")
        try:
            claims = self._authenticate(context, authorization, proof, "POST", path, moment,
                                        grace=REFRESH_GRACE_SECONDS, check_status=False)
            transfer, _ = self._check_state(context, claims)
            if not self.store.claim_refresh(claims.jti):
                raise InvalidToken("token_replayed", "this token was already refreshed or revoked")
        except DataPlaneError as error:
            self._audit_denial(context, error)
            raise
        return self._issue(transfer, claims.jkt, moment, "token-refreshed", replaces=claims.jti)

    # --- the checks ---------------------------------------------------------------------------
    def _authenticate(self, context: ReadContext, authorization: str | None, proof: str | None,
                      method: str, path: str, moment: datetime, grace: int = 0,
                      check_status: bool = True) -> AccessClaims:
        token = _bearer(authorization)
        claims = self.verified_tokens.verify(token, moment, grace)
        context.claims = claims
        if claims.transfer_id != context.transfer_id:
            raise InvalidToken("wrong_transfer", "the token was issued for another transfer")
        verified = verify_proof(proof, method, path, token, claims.jkt, moment)
        fresh, status = self.store.remember_proof_and_status(
            verified.jti, verified.issued_at + 2 * 3600, claims.jti if check_status else None)
        if not fresh:
            raise InvalidToken("proof_replayed", "this proof was already used; make a fresh one per request")
        context.authenticated = True
        if check_status and status != ACTIVE:
            reason = {"refreshed": "it was replaced by a refreshed token",
                      "revoked": "the transfer was revoked"}.get(status or "", "it is unknown here")
            raise InvalidToken("token_inactive", f"the token can no longer be used: {reason}")
        return claims

    def _identity(self, identity: str, claims: AccessClaims, moment: datetime) -> dict[str, object]:
        """The consumer's self-issued identity token with its credentials (optional header
        ``Sluis-Identity``): verified like a DSP request's, so policies that require a credential
        (an EHDS data permit) can be decided at every read."""
        if self.trusted is None:
            raise InvalidToken("identity_unverifiable", "this data plane trusts no credential authority")
        # The issuer is compared with the bound consumer *before* verifying, because verifying
        # resolves the issuer's DID: an outbound request to an address the token names.
        if _unverified_issuer(identity) != claims.consumer_id:
            raise InvalidToken("wrong_holder", "the identity token is another participant's")
        try:
            verified = verify_token(identity, self.audience, self.key_resolver, _ProofReplayGuard(self.store),
                                    self.trusted, moment)
        except IdentityError as error:
            reason = f"the identity token does not verify: {error.message}"
            raise InvalidToken("bad_identity", reason) from None
        if verified.participant_id != claims.consumer_id:
            raise InvalidToken("wrong_holder", "the identity token is another participant's")
        return verified.policy_context()

    def _check_state(self, context: ReadContext, claims: AccessClaims) -> tuple[TransferView, AgreementView]:
        transfer = self.state.transfer(context.transfer_id)
        if transfer is None:
            raise NotFound("unknown_transfer", "no such transfer on this connector")
        context.transfer = transfer
        if transfer.consumer_id != claims.consumer_id or transfer.agreement_id != claims.agreement_id:
            raise AccessDenied("wrong_consumer", "the token does not belong to this transfer's consumer")
        if (transfer.purpose, transfer.compute_site, transfer.job_id) != (
            claims.purpose, claims.compute_site, claims.job_id
        ):
            raise AccessDenied(
                "job_mismatch", "the token's job, purpose or compute site differ from the transfer's"
            )
        if transfer.state != STARTED:
            raise AccessDenied("transfer_not_started", f"the transfer is {transfer.state}, not {STARTED}")
        agreement = self.state.agreement(transfer.agreement_id)
        if agreement is None:
            raise AccessDenied("unknown_agreement", "the transfer's agreement is unknown")
        context.agreement = agreement
        if agreement.terminated:
            raise AccessDenied("agreement_terminated", "the agreement was terminated; no further reads")
        if agreement.consumer_id != claims.consumer_id:
            raise AccessDenied("wrong_consumer", "the agreement was concluded with another consumer")
        return transfer, agreement

    def _decide(self, policy: Policy, claims: AccessClaims, transfer: TransferView, action: str,
                columns: frozenset[str] | None, moment: datetime, reads: int,
                duties: Mapping[str, str], identity: Mapping[str, object]) -> tuple[Decision, Request, World]:
        context: dict[str, object] = {**identity, "recipient": claims.consumer_id}
        if claims.purpose:
            context["purpose"] = claims.purpose
        if claims.compute_site:
            context["sluis:computeSite"] = claims.compute_site
        if claims.job_id:
            context["sluis:jobId"] = claims.job_id
        if columns is not None:
            context["sluis:columns"] = sorted(columns)
        request = Request(
            assignee=claims.consumer_id, action=action, target=transfer.asset_id, context=context
        )
        world = World(now=moment, counts={policy.uid: reads}, duties=dict(duties))
        return evaluate(policy, request, world), request, world

    def _duty_states(self, agreement_id: str, duties: list[Duty], moment: datetime) -> dict[str, str]:
        states: dict[str, str] = {duty.uid: "fulfilled" for duty in duties if duty.per_use}
        if not duties:  # obligations are only ever recorded for the agreement's duties
            return states
        for obligation in self.store.obligations(agreement_id=agreement_id):
            shown = obligation.to_json(moment)["status"]
            if shown == "fulfilled":
                states[obligation.duty_uid] = "fulfilled"
            elif shown == "overdue":
                states[obligation.duty_uid] = "violated"
        return states

    # --- reads --------------------------------------------------------------------------------
    def prepare_read(
        self, transfer_id: str, authorization: str | None, proof: str | None, method: str, path: str,
        sql: str | None, media_type: str, identity: str | None = None, read_key: str | None = None,
    ) -> PreparedRead:
        """:meth:`_prepare_read`, as a ``dataplane.read`` span with the transfer's correlation id
        when tracing is on (:mod:`connector.observability.tracing`)."""
        attributes = {"sluis.transfer_id": transfer_id, "sluis.media_type": media_type}
        with tracing.span("dataplane.read", attributes):
            read = self._prepare_read(
                transfer_id, authorization, proof, method, path, sql, media_type, identity, read_key
            )
            transfer = read.context.transfer
            tracing.annotate_correlation(transfer.correlation_id if transfer is not None else None)
            return read

    def _prepare_read(
        self, transfer_id: str, authorization: str | None, proof: str | None, method: str, path: str,
        sql: str | None, media_type: str, identity: str | None = None, read_key: str | None = None,
    ) -> PreparedRead:
        """Run every check and open the sandbox; raises ``DataPlaneError`` (audited) on denial.

        ``read_key`` (an HTTP push's delivery) makes the read count once: reading again under
        the same key - a retry after a restart, on another replica - is checked and audited
        like any read but counted as, and decided with the count before, its first read."""
        moment = self.clock()
        context = ReadContext(transfer_id, "read")
        resources = ExitStack()
        try:
            claims = self._authenticate(context, authorization, proof, method, path, moment)
            transfer, agreement = self._check_state(context, claims)
            if identity:
                context.identity = self._identity(identity, claims, moment)
            policy = _policy_of(agreement)
            found = self.state.asset_data(transfer.asset_id)
            if found is None:
                raise NotFound("unknown_asset", "the transfer's asset has no data on this connector")
            asset = check_asset(found, self.data_root)
            source_columns = self.granted_files.source_columns(asset)
            if sql is not None:
                check_query_text(sql)  # also with the test-only switch off: text nothing can encode
            parsed = parse_query(sql, source_columns) if sql is not None and self.check_sql else None
            duties = duties_of(policy)
            duty_states = self._duty_states(agreement.id, duties, moment)
            rules = read_rules(policy)
            counter = read_counter(agreement, rules)
            action = "aggregate" if parsed is not None and parsed.aggregate else "use"
            requested = (parsed.columns if parsed is not None and parsed.resolved and not parsed.selects_all
                         else None)
            reads = self.store.reads(counter)
            first = self.store.keyed_read(read_key) if read_key is not None else None
            if first is not None:
                reads = first - 1  # decided as the first read under this key was
            decision, request, world = self._decide(
                policy, claims, transfer, action, requested, moment, reads, duty_states, context.identity
            )
            if not decision.permitted:
                summary = decision.summary
                if parsed is not None and parsed.aggregate_problem is not None and action == "use":
                    summary += f" (the query is not a plain aggregate: {parsed.aggregate_problem})"
                raise AccessDenied("policy_denied", summary, decision.to_json())
            scope = data_scope(policy, request, world)
            # a differential-privacy budget implies aggregate-only reads
            aggregate_only = (scope.aggregate_only or scope.min_group_size is not None
                              or rules.epsilon is not None)
            disclosure = profile_named(rules.profile, scope.min_group_size) if aggregate_only else None
            limit = scope.max_reads
            if aggregate_only and limit is None:
                limit = self.limits.aggregate_query_budget
            view_columns = self._granted_columns(source_columns, scope)
            privacy = self._privacy_plan(parsed, rules.epsilon, policy)
            # under a budget, counts are rounded after the noise (``privacy_noise``), not before
            checked = replace(disclosure, round_to=None) if privacy is not None and disclosure else disclosure
            guarded = self._guard(parsed, sql, source_columns, view_columns, checked, privacy)
            context.sql, context.query_hash = guarded.sql, guarded.query_hash
            if privacy is not None:
                context.epsilon, context.epsilon_budget = privacy.epsilon, rules.epsilon
                context.noise_scales = privacy.scales()

            def count() -> None:
                if context.epsilon is not None:
                    self._spend(context, counter)
                self._count(context, counter, limit, policy, claims, transfer, action, requested, moment,
                            duty_states, read_key)

            self._hold_consumer_slot(claims.consumer_id, resources)
            if not self._slots.acquire(timeout=self.limits.slot_wait_seconds):
                raise Busy("busy", f"{self.limits.max_concurrent_reads} reads are running; retry shortly")
            resources.callback(self._slots.release)
            granted = resources.enter_context(
                self.granted_files.granted(asset, view_columns, scope.row_filters, source_columns)
            )
            if sql is None or guarded.projection is not None:
                # The whole view is the granted relation itself, and a query that only lists
                # granted columns is those columns of it: both are read from its Arrow copy,
                # without an engine.
                rows = min(self.limits.sandbox.batch_rows, STREAM_BATCH_ROWS)
                whole = self.granted_files.whole_view(granted, rows)
                resources.callback(whole.close)
                schema: pa.Schema = whole.schema
                batches: Iterator[pa.RecordBatch] = whole.batches
                if guarded.projection is not None and sql is not None:
                    schema, batches = _projected(schema, batches, guarded.projection)
                if media_type != ARROW_STREAM:
                    check_encodable(schema, media_type)
                count()
                self._track_obligations(agreement, policy, duties, moment)
                prepared = PreparedRead(context, schema, batches, media_type, decision.decision, resources)
                fits = (whole.rows <= self.limits.max_result_rows
                        and whole.stream.nbytes <= self.limits.max_result_bytes)
                if sql is None and media_type == ARROW_STREAM and fits:  # else batch by batch, capped
                    prepared.encoded, prepared.encoded_rows = whole.stream, whole.rows
                return prepared
            sandbox = Sandbox(granted, self.limits.sandbox, self.sandboxes, self.watchdog, transfer.id,
                              checked=self.check_sql)
            resources.callback(sandbox.close)
            try:
                relation = sandbox.bind(guarded.sql)
                schema = sandbox.result_schema(relation) if media_type != ARROW_STREAM else None
            except DataPlaneError:
                # the query reached the engine: it counts, failed or not (no free error oracle)
                count()
                raise
            if schema is not None:
                check_encodable(schema, media_type)
            count()
            reader = sandbox.stream(relation)
            # The first batch is produced before any byte is sent: an engine failure met while
            # producing rows (a value that does not convert, memory) is then a problem answer,
            # not a 200 cut off mid-stream. Later batches can still fail after the status is sent.
            batches = _first_batch_ready(sandbox.batches(reader))
            self._track_obligations(agreement, policy, duties, moment)
            schema = reader.schema
            if privacy is not None:
                # noised now, before any byte is sent: a failure is a problem answer, not a cut stream
                noisy = add_noise(pa.Table.from_batches(list(batches), schema), privacy,
                                  disclosure.round_to if disclosure else None,
                                  disclosure.min_cell if disclosure else None)
                schema, batches = noisy_schema(schema, privacy), iter(noisy.to_batches())
            return PreparedRead(context, schema, batches, media_type, decision.decision, resources)
        except PolicyError as error:
            resources.close()
            denial = AccessDenied("policy_denied", str(error))
            self._audit_denial(context, denial)
            raise denial from None
        except DataPlaneError as error:
            resources.close()
            if context.read_number is not None:
                self._audit_failed_read(context, error)
            else:
                self._audit_denial(context, error)
            raise
        except BaseException:
            resources.close()
            raise

    def disclosure(self, read: PreparedRead) -> dict[str, str]:
        """What both sides are told about a read beside its rows: its query hash and number, the
        caps, and under a differential-privacy budget the epsilon it spent, the budget spent so far
        and the Laplace scale of each noisy column. HTTP sends these as headers, Arrow Flight as
        the result schema's metadata (lower-case keys), so no protocol hides them."""
        context = read.context
        shown = {
            "Sluis-Query-Hash": context.query_hash or "",
            "Sluis-Read-Number": str(context.read_number or 0),
            "Sluis-Max-Result-Rows": str(self.limits.max_result_rows),
            "Sluis-Max-Result-Bytes": str(self.limits.max_result_bytes),
        }
        if context.epsilon is not None:
            shown["Sluis-Epsilon"] = f"{context.epsilon:g}"
            shown["Sluis-Epsilon-Spent"] = f"{context.epsilon_spent or 0:g}"
            shown["Sluis-Epsilon-Budget"] = f"{context.epsilon_budget or 0:g}"
            # the Laplace scale of each aggregate column's noise: public, and what an analyst needs
            shown["Sluis-Noise-Scales"] = json.dumps(context.noise_scales or {}, separators=(",", ":"))
        return shown

    def _hold_consumer_slot(self, consumer_id: str, resources: ExitStack) -> None:
        """Count this read among its consumer's running reads, waiting (as for a slot) while the
        consumer already runs as many as it may; released with the read's resources. A
        consumer's extra reads queue behind its own, not in front of everyone else's."""
        cap = self.limits.max_concurrent_reads_per_consumer
        deadline = time.monotonic() + self.limits.slot_wait_seconds
        with self._consumer_slots:
            while self._running_by_consumer.get(consumer_id, 0) >= cap:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Busy("busy_consumer", f"you already run {cap} reads at once; retry when one ends")
                self._consumer_slots.wait(remaining)
            self._running_by_consumer[consumer_id] = self._running_by_consumer.get(consumer_id, 0) + 1

        def release() -> None:
            with self._consumer_slots:
                left = self._running_by_consumer.get(consumer_id, 1) - 1
                if left > 0:
                    self._running_by_consumer[consumer_id] = left
                else:
                    self._running_by_consumer.pop(consumer_id, None)
                self._consumer_slots.notify_all()

        resources.callback(release)

    def _count(self, context: ReadContext, counter: str, limit: int | None, policy: Policy,
               claims: AccessClaims, transfer: TransferView, action: str, requested: frozenset[str] | None,
               moment: datetime, duty_states: Mapping[str, str], read_key: str | None = None) -> None:
        """Count this read against the limit, atomically; a read past the limit is denied."""
        number = self.store.reserve_read(counter, limit, read_key)
        if number is None:
            limit_reads = limit or 0
            denied, _, _ = self._decide(policy, claims, transfer, action, requested, moment, limit_reads,
                                        duty_states, context.identity)
            raise AccessDenied(
                "read_limit", denied.summary if not denied.permitted else
                f"the agreement allows {limit_reads} reads (queries) and they have all been made",
                denied.to_json(),
            )
        context.read_number = number

    def _spend(self, context: ReadContext, counter: str) -> None:
        """Spend this read's epsilon from the agreement's budget, atomically, before the engine runs."""
        assert context.epsilon is not None
        assert context.epsilon_budget is not None
        amount = round(context.epsilon * MICRO)
        total = self.store.spend_privacy(counter, amount, round(context.epsilon_budget * MICRO))
        if total is None:
            spent = self.store.privacy_spent(counter) / MICRO
            raise AccessDenied(
                "privacy_budget",
                f"the agreement's privacy budget (epsilon {context.epsilon_budget:g}) is spent:"
                f" {spent:g} used, a read costs {context.epsilon:g}",
            )
        context.epsilon_spent = total / MICRO

    def _privacy_plan(self, parsed: ParsedQuery | None, epsilon: float | None,
                      policy: Policy) -> PrivacyPlan | None:
        """The noise a read under a differential-privacy budget gets (``None`` without one).

        A query the disclosure rules refuse gets no plan: the guard refuses it with their reason."""
        if epsilon is None or parsed is None or parsed.aggregate_problem is not None:
            return None
        assert isinstance(parsed.tree, exp.Select)
        return privacy_plan(parsed.tree, declared_bounds(policy), self.limits.epsilon_per_read,
                            declared_keys(policy))

    def _granted_columns(self, source: list[str], scope: DataScope) -> list[str]:
        denied = {name.lower() for name in scope.denied_columns}
        allowed = None if scope.allowed_columns is None else {name.lower() for name in scope.allowed_columns}
        return [name for name in source
                if name.lower() not in denied and (allowed is None or name.lower() in allowed)]

    def _guard(self, parsed: ParsedQuery | None, sql: str | None, source_columns: list[str],
               view_columns: list[str], disclosure: DisclosureProfile | None,
               privacy: PrivacyPlan | None = None) -> GuardedQuery:
        if sql is not None and not self.check_sql:  # the test-only switch: the SQL as sent
            return GuardedQuery(sql, query_hash(sql), frozenset(), False)
        if parsed is None:
            if disclosure is not None:
                raise AccessDenied("aggregate_only", "the agreement allows only grouped aggregates: "
                                   "POST a query to /data/{transfer}/query")
            # the whole view, in the provider's own words: nothing of the consumer's to check
            whole = select_all_sql(view_columns)
            return GuardedQuery(whole, query_hash(whole), frozenset(c.lower() for c in view_columns), False)
        return guard(sql or "", source_columns, view_columns, disclosure, privacy)

    def _track_obligations(self, agreement: AgreementView, policy: Policy, duties: list[Duty],
                           moment: datetime) -> None:
        agreed = agreed_at(policy)
        for duty in duties:
            self.store.track_obligation(
                agreement.id, duty.uid, agreement.consumer_id, agreement.provider_id, duty.action,
                duty.description, duty.due(moment, agreed), duty.per_use, moment,
            )

    def stream(self, read: PreparedRead) -> Iterator[bytes | memoryview]:
        """Encode and send the result batch by batch; caps are enforced while streaming, and
        the audit entry is written when the stream ends (completed, capped or aborted)."""
        rows = 0
        sent = 0
        status = "aborted"
        reason: str | None = None
        limits = self.limits

        def counted() -> Iterator[pa.RecordBatch]:
            nonlocal rows
            for batch in read.batches:
                rows += batch.num_rows
                if rows > limits.max_result_rows:
                    raise ResultTooLarge("result_rows", f"the result exceeds {limits.max_result_rows} rows")
                yield batch

        audited = False

        def audit() -> None:
            nonlocal audited
            audited = True
            read.finish()
            self.audit.append({
                **read.context.audit_body(), "decision": read.decision, "status": status, "reason": reason,
                "rows": rows, "bytes": sent, "media_type": read.media_type,
            })

        try:
            if read.encoded is not None:
                # The whole view, already an Arrow stream: sent as it is. Its last 8 bytes, the
                # stream's end marker, go out only once the audit entry is written - as the end
                # of a chunked stream does - so a client that has the whole stream knows the
                # read is in the log (the Content-Length would otherwise end it earlier).
                body = read.encoded[:-len(_IPC_END)]
                for start in range(0, body.nbytes, MAX_PIECE_BYTES):
                    piece = body[start:start + MAX_PIECE_BYTES]
                    sent += piece.nbytes
                    yield piece
                rows, sent, status = read.encoded_rows, sent + len(_IPC_END), "completed"
                audit()
                yield _IPC_END
                return
            for chunk in encode(read.schema, counted(), read.media_type):
                sent += len(chunk) if isinstance(chunk, bytes) else chunk.nbytes
                if sent > limits.max_result_bytes:
                    cap = limits.max_result_bytes
                    raise ResultTooLarge("result_bytes", f"the result exceeds {cap} bytes")
                yield chunk
            status = "completed"
        except DataPlaneError as error:
            status, reason = "failed", error.message
            _log.warning("read stopped", extra={"transfer": read.context.transfer_id, "code": error.code})
            raise
        finally:
            if not audited:
                audit()

    def stream_batches(self, read: PreparedRead, protocol: str) -> Iterator[pa.RecordBatch]:
        """The result as record batches (for Arrow Flight), with the same caps and the same
        audit entry as :meth:`stream`; bytes are the batches' Arrow buffer sizes."""
        rows = 0
        sent = 0
        status = "aborted"
        reason: str | None = None
        max_rows, max_bytes = self.limits.max_result_rows, self.limits.max_result_bytes
        try:
            for batch in read.batches:
                rows += batch.num_rows
                sent += batch.nbytes
                if rows > max_rows:
                    raise ResultTooLarge("result_rows", f"the result exceeds {max_rows} rows")
                if sent > max_bytes:
                    raise ResultTooLarge("result_bytes", f"the result exceeds {max_bytes} bytes")
                yield batch
            status = "completed"
        except DataPlaneError as error:
            status, reason = "failed", error.message
            raise
        finally:
            read.finish()
            self.audit.append({
                **read.context.audit_body(), "decision": read.decision, "status": status, "reason": reason,
                "rows": rows, "bytes": sent, "media_type": read.media_type, "protocol": protocol,
            })

    def _audit_failed_read(self, context: ReadContext, error: DataPlaneError) -> None:
        """A read that was counted (it reached the engine) and then failed before its answer -
        the watchdog stopped it, it ran out of memory, the engine refused a value: audited as
        every counted read is, always (not a refusal, whose entries are rate-limited)."""
        self.audit.append({
            **context.audit_body(), "decision": "permit", "status": "failed", "code": error.code,
            "reason": error.message, "rows": 0, "bytes": 0,
        })

    def _audit_denial(self, context: ReadContext, error: DataPlaneError) -> None:
        if not context.authenticated:
            # Anyone can send a request without a valid token: its text never enters the signed
            # chain (it would let anyone grow it); it is counted and logged instead.
            with self._count_lock:
                self.unauthenticated_denials += 1
            _log.warning("unauthenticated data-plane request denied",
                         extra={"kind": context.kind, "code": error.code, "status": error.status})
            return
        audit_it, left_out = self.denial_budget.take(context.transfer_id)
        if not audit_it:
            _log.warning("data-plane refusal not audited: over the transfer's rate",
                         extra={"transfer_id": context.transfer_id, "code": error.code,
                                "left_out": left_out})
            return
        body = {**context.audit_body(), "kind": context.kind, "decision": "deny", "code": error.code,
                "reason": error.message, "status": error.status}
        if left_out:
            body["refusals_left_out_before"] = left_out
        if error.decision is not None:
            body["policy_decision"] = error.decision.get("summary")
        self.audit.append(body)

    # --- obligations --------------------------------------------------------------------------
    def consumer_context(self, transfer_id: str, authorization: str | None, proof: str | None, method: str,
                         path: str) -> tuple[TransferView, AgreementView | None]:
        """Authenticate the consumer for side endpoints (obligations, audit); state not required."""
        moment = self.clock()
        context = ReadContext(transfer_id, "consumer-request")
        claims = self._authenticate(context, authorization, proof, method, path, moment,
                                    grace=REFRESH_GRACE_SECONDS, check_status=False)
        transfer = self.state.transfer(transfer_id)
        if transfer is None or transfer.consumer_id != claims.consumer_id:
            raise NotFound("unknown_transfer", "no such transfer for this consumer")
        return transfer, self.state.agreement(transfer.agreement_id)

    def close(self) -> None:
        self.granted_files.close()
        self.sandboxes.close()
        self.watchdog.close()
        if self._owns_database:
            self.database.close()


class _ProofReplayGuard:
    """Identity-token ids share the proof table: used once, on any replica."""

    def __init__(self, store: DataPlaneStore) -> None:
        self._store = store

    def check_and_remember(self, jti: str, expires_at: datetime) -> bool:
        return self._store.remember_proof(f"identity:{jti}", int(expires_at.timestamp()) + 60)


def _projected(schema: pa.Schema, batches: Iterator[pa.RecordBatch],
               columns: tuple[str, ...]) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """``columns`` of the granted relation, batch by batch (a selection: no copy)."""
    indices = [schema.get_field_index(name) for name in columns]
    if any(index < 0 for index in indices):  # the copy lacks a column the view has: never expected
        raise DataPlaneError("asset_unreadable", "the granted data could not be read")
    selected = pa.schema([schema.field(index) for index in indices], metadata=schema.metadata)
    return selected, (batch.select(indices) for batch in batches)


def _first_batch_ready(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``batches`` with the first one already produced (its failure raised here, now)."""
    first = next(batches, None)
    return batches if first is None else itertools.chain((first,), batches)


def _unverified_issuer(token: str) -> object:
    """The ``iss`` a compact JWS claims, read without verifying (``None`` if unreadable)."""
    parts = token.split(".")
    if len(parts) != 3 or len(parts[1]) > 64 * 1024:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return None
    return payload.get("iss") if isinstance(payload, dict) else None


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise InvalidToken("token_missing", "send the access token as 'Authorization: DPoP <token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "dpop" or not token.strip():
        raise InvalidToken("token_scheme", "the access token is key-bound: use 'Authorization: DPoP <token>'"
                           " with a DPoP proof header")
    return token.strip()
