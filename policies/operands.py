"""The left-operand registry: each operand we support and how its value is found.

EDC's lesson, inverted: an operand that is not registered here is *unknown* and the rule
using it fails closed. A resolver reads the value from the request's context, from the world
(the time, use counts) or from the policy (an agreement's timestamp for ``elapsedTime``).
Operands the data plane enforces row by row (``https://w3id.org/sluis/column/<name>``,
``sluis:aggregateOnly``, and ``sluis:columns`` / ``sluis:groupSize`` when the request does
not state them) resolve to :data:`DEFERRED`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from policies import terms
from policies.values import Kind, ValueMismatch, to_datetime, to_duration

if TYPE_CHECKING:
    from policies.model import Policy
    from policies.request import Request, World


class Missing:
    """A left-operand value the request and the world do not give; carries the reason."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Deferred:
    __slots__ = ()


DEFERRED: Final = _Deferred()


class Env:
    """One evaluation: the request, the world, the policy and the rule being looked at."""

    __slots__ = ("policy", "request", "rule_uid", "world")

    def __init__(self, request: Request, world: World, policy: Policy, rule_uid: str = "") -> None:
        self.request = request
        self.world = world
        self.policy = policy
        self.rule_uid = rule_uid


Resolver = Callable[[Env], object]


@dataclass(frozen=True, slots=True)
class Operand:
    iri: str
    kind: Kind | None  # None: read the kind from the right operand's datatype
    resolve: Resolver
    set_valued: bool = False
    description: str = ""


def _from_context(iri: str, *, deferred: bool = False) -> Resolver:
    name = terms.compact_term(iri)

    def resolve(env: Env) -> object:
        value = env.request.operands.get(iri)
        if value is None:
            return DEFERRED if deferred else Missing(f"the request does not state {name}")
        return value

    return resolve


def _date_time(env: Env) -> object:
    if env.world.now is None:
        return Missing("time unknown: the world gives no current time (now)")
    return env.world.now


def _elapsed_time(env: Env) -> object:
    stated = env.request.operands.get(terms.ELAPSED_TIME)
    if stated is not None:
        try:
            negative = to_duration(stated) < 0
        except ValueMismatch:
            return stated  # the comparison reports the unreadable value
        if negative:
            return Missing(f"elapsed time unknown: the request states a negative one ({stated!r})")
        return stated
    if env.world.now is None:
        return Missing("time unknown: the world gives no current time (now)")
    if env.policy.timestamp is None:
        if env.policy.type != terms.AGREEMENT:
            return Decimal(0)  # an Offer or Set has not taken effect: no time has elapsed under it
        return Missing(
            "elapsed time unknown: the request does not state it and the agreement has no timestamp"
        )
    try:
        start = to_datetime(env.policy.timestamp)
    except ValueMismatch:
        return Missing(
            f"elapsed time unknown: the policy timestamp {env.policy.timestamp!r} is not a date-time"
        )
    elapsed = Decimal(repr((env.world.now - start).total_seconds()))
    if elapsed < 0:
        # An agreement that takes effect in the future has not started: no use is within it.
        return Missing(f"elapsed time unknown: the policy timestamp {env.policy.timestamp} is in the future")
    return elapsed


def _count(env: Env) -> object:
    counts = env.world.counts
    for key in (env.rule_uid, env.policy.uid, env.request.target):
        if key in counts:
            return counts[key] + 1
    return 1


def _recipient(env: Env) -> object:
    return env.request.operands.get(terms.RECIPIENT, env.request.assignee)


_ODRL_KINDS: Final[dict[str, Kind | None]] = {
    "purpose": Kind.IRI,
    "spatial": Kind.IRI,
    "industry": Kind.IRI,
    "language": Kind.IRI,
    "event": Kind.IRI,
    "virtualLocation": Kind.IRI,
    "deliveryChannel": Kind.IRI,
    "device": Kind.IRI,
    "systemDevice": Kind.IRI,
    "media": Kind.IRI,
    "product": Kind.IRI,
    "fileFormat": Kind.TEXT,
    "version": Kind.TEXT,
    "absoluteSize": Kind.NUMBER,
    "relativeSize": Kind.NUMBER,
    "percentage": Kind.NUMBER,
    "payAmount": Kind.NUMBER,
    "resolution": Kind.NUMBER,
    "absolutePosition": None,
    "relativePosition": None,
    "absoluteSpatialPosition": None,
    "relativeSpatialPosition": None,
    "absoluteTemporalPosition": None,
    "relativeTemporalPosition": None,
    "spatialCoordinates": Kind.TEXT,
    "meteredTime": Kind.DURATION,
    "delayPeriod": Kind.DURATION,
    "timeInterval": Kind.DURATION,
    "unitOfCount": Kind.TEXT,
}


def _build_registry() -> dict[str, Operand]:
    registry: dict[str, Operand] = {
        terms.DATE_TIME: Operand(
            terms.DATE_TIME, Kind.DATETIME, _date_time, description="the world's current time"
        ),
        terms.ELAPSED_TIME: Operand(
            terms.ELAPSED_TIME,
            Kind.DURATION,
            _elapsed_time,
            description="stated in the request, else now minus the policy's timestamp",
        ),
        terms.COUNT: Operand(
            terms.COUNT,
            Kind.NUMBER,
            _count,
            description="uses so far (world counts by rule, policy or target) plus this one",
        ),
        terms.RECIPIENT: Operand(
            terms.RECIPIENT, Kind.IRI, _recipient, description="stated in the request, else the assignee"
        ),
        terms.COMPUTE_SITE: Operand(
            terms.COMPUTE_SITE,
            Kind.IRI,
            _from_context(terms.COMPUTE_SITE),
            description="where the job runs (a place IRI)",
        ),
        terms.JOB_ID: Operand(
            terms.JOB_ID, Kind.TEXT, _from_context(terms.JOB_ID), description="the job's id"
        ),
        terms.CREDENTIAL: Operand(
            terms.CREDENTIAL,
            Kind.IRI,
            _from_context(terms.CREDENTIAL),
            set_valued=True,
            description="verified credential types the requester holds",
        ),
        terms.GROUP_SIZE: Operand(
            terms.GROUP_SIZE,
            Kind.NUMBER,
            _from_context(terms.GROUP_SIZE, deferred=True),
            description="smallest aggregation group of the query; enforced by the data plane if not stated",
        ),
        terms.COLUMNS: Operand(
            terms.COLUMNS,
            Kind.TEXT,
            _from_context(terms.COLUMNS, deferred=True),
            set_valued=True,
            description="requested columns; enforced by the data plane if not stated",
        ),
        terms.AGGREGATE_ONLY: Operand(
            terms.AGGREGATE_ONLY,
            Kind.BOOLEAN,
            lambda env: DEFERRED,
            description="only aggregates may be read; enforced by the data plane",
        ),
        terms.DISCLOSURE_PROFILE: Operand(
            terms.DISCLOSURE_PROFILE,
            Kind.TEXT,
            lambda env: DEFERRED,
            description="output-checking profile of aggregate reads; enforced by the data plane",
        ),
        terms.READ_SCOPE: Operand(
            terms.READ_SCOPE,
            Kind.TEXT,
            lambda env: DEFERRED,
            description="whether read limits count per agreement or per consumer and offer; data plane",
        ),
        terms.EPSILON: Operand(
            terms.EPSILON,
            Kind.NUMBER,
            lambda env: DEFERRED,
            description="differential-privacy budget of aggregate reads; spent by the data plane",
        ),
    }
    for name, kind in _ODRL_KINDS.items():
        iri = terms.odrl(name)
        registry[iri] = Operand(iri, kind, _from_context(iri), description=f"stated in the request as {name}")
    return registry


REGISTRY: Final[dict[str, Operand]] = _build_registry()


def _column(env: Env) -> object:
    return DEFERRED


def lookup(iri: str) -> Operand | None:
    """The operand an IRI names, or ``None`` when the engine does not know it."""
    found = REGISTRY.get(iri)
    if found is not None:
        return found
    if iri.startswith(terms.COLUMN_NS) and len(iri) > len(terms.COLUMN_NS):
        return Operand(iri, None, _column, description="a column of the asset: a row filter")
    if is_bounds(iri):
        return Operand(
            iri,
            Kind.NUMBER,
            _column,
            description="clamping range of a column for differentially private sums; data plane",
        )
    if is_keys(iri):
        return Operand(
            iri,
            None,
            _column,
            description="public key set of a column for differentially private groups; data plane",
        )
    return None


def is_row_filter(iri: str) -> bool:
    return iri.startswith(terms.COLUMN_NS) and len(iri) > len(terms.COLUMN_NS)


def column_name(iri: str) -> str:
    return iri[len(terms.COLUMN_NS) :]


def is_bounds(iri: str) -> bool:
    """A column's declared clamping range (``bounds:<column>``), read by the data plane's
    differential-privacy mode: it constrains what a sum may be computed over, not which rows."""
    return iri.startswith(terms.BOUNDS_NS) and len(iri) > len(terms.BOUNDS_NS)


def bounds_column(iri: str) -> str:
    return iri[len(terms.BOUNDS_NS) :]


def is_keys(iri: str) -> bool:
    """A column's declared public key set (``keys:<column>``), read by the data plane's
    differential-privacy mode: the groups a grouped read releases, whatever the data holds."""
    return iri.startswith(terms.KEYS_NS) and len(iri) > len(terms.KEYS_NS)


def keys_column(iri: str) -> str:
    return iri[len(terms.KEYS_NS) :]
