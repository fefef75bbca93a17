"""The ODRL 2.2 terms the engine understands, and how short names map to IRIs.

Everything the evaluator may meet is listed here once: policy types, rule properties,
operators, logical operators, conflict strategies, the actions of the ODRL Common Vocabulary
with their ``includedIn`` parents, and the left operands. A term that is not listed is
*unknown*, and a rule that uses an unknown term fails closed.
"""

from __future__ import annotations

from typing import Final

ODRL_NS: Final = "http://www.w3.org/ns/odrl/2/"
SLUIS_NS: Final = "https://w3id.org/sluis/ns#"
DSPACE_NS: Final = "https://w3id.org/dspace/2025/1/"
XSD_NS: Final = "http://www.w3.org/2001/XMLSchema#"
RDF_NS: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DCT_NS: Final = "http://purl.org/dc/terms/"
# Left operands in this namespace name a column of the asset's table: a row filter.
COLUMN_NS: Final = "https://w3id.org/sluis/column/"
# Left operands in this namespace declare the clamping range of a column for differentially
# private sums and means (``bounds:age gteq 0`` and ``bounds:age lteq 120``): not a row filter.
BOUNDS_NS: Final = "https://w3id.org/sluis/bounds/"
# Left operands in this namespace declare the public key set of a column for differentially
# private grouped reads (``keys:region isAnyOf [...]``): which groups exist is then not a fact
# the data releases. Not a row filter.
KEYS_NS: Final = "https://w3id.org/sluis/keys/"

# Prefixes accepted in compact names ("odrl:purpose", "sluis:credential", "xsd:dateTime").
PREFIXES: Final[dict[str, str]] = {
    "odrl": ODRL_NS,
    "sluis": SLUIS_NS,
    "dspace": DSPACE_NS,
    "xsd": XSD_NS,
    "rdf": RDF_NS,
    "dct": DCT_NS,
    "column": COLUMN_NS,
    "bounds": BOUNDS_NS,
    "keys": KEYS_NS,
}


def odrl(name: str) -> str:
    return ODRL_NS + name


def sluis(name: str) -> str:
    return SLUIS_NS + name


# --- policy types ---------------------------------------------------------------------------
POLICY: Final = odrl("Policy")
SET: Final = odrl("Set")
OFFER: Final = odrl("Offer")
AGREEMENT: Final = odrl("Agreement")
REQUEST: Final = odrl("Request")
TICKET: Final = odrl("Ticket")
ASSERTION: Final = odrl("Assertion")
PRIVACY: Final = odrl("Privacy")
POLICY_TYPES: Final = frozenset({POLICY, SET, OFFER, AGREEMENT, REQUEST, TICKET, ASSERTION, PRIVACY})

# --- conflict strategies --------------------------------------------------------------------
PERM: Final = odrl("perm")
PROHIBIT: Final = odrl("prohibit")
INVALID: Final = odrl("invalid")
CONFLICT_STRATEGIES: Final = frozenset({PERM, PROHIBIT, INVALID})

# --- operators ------------------------------------------------------------------------------
OPERATOR_NAMES: Final = (
    "eq",
    "neq",
    "lt",
    "lteq",
    "gt",
    "gteq",
    "isA",
    "hasPart",
    "isPartOf",
    "isAllOf",
    "isAnyOf",
    "isNoneOf",
)
OPERATORS: Final = frozenset(odrl(name) for name in OPERATOR_NAMES)
LOGICAL_NAMES: Final = ("or", "xone", "and", "andSequence")
LOGICAL_OPERATORS: Final = frozenset(odrl(name) for name in LOGICAL_NAMES)

# --- actions: ODRL Common Vocabulary, term -> the action it is ``includedIn`` ---------------
USE: Final = odrl("use")
TRANSFER: Final = odrl("transfer")
_INCLUDED_IN: Final[dict[str, str | None]] = {
    "use": None,
    "transfer": None,
    "acceptTracking": "use",
    "aggregate": "use",
    "annotate": "use",
    "anonymize": "use",
    "archive": "use",
    "attribute": "use",
    "compensate": "use",
    "concurrentUse": "use",
    "delete": "use",
    "derive": "use",
    "digitize": "use",
    "display": "play",
    "distribute": "use",
    "ensureExclusivity": "use",
    "execute": "use",
    "extract": "reproduce",
    "give": "transfer",
    "grantUse": "use",
    "include": "use",
    "index": "use",
    "inform": "use",
    "install": "use",
    "modify": "use",
    "move": "use",
    "nextPolicy": "use",
    "obtainConsent": "use",
    "play": "use",
    "present": "use",
    "print": "present",
    "read": "use",
    "reproduce": "use",
    "reviewPolicy": "use",
    "sell": "transfer",
    "stream": "use",
    "synchronize": "use",
    "textToSpeech": "read",
    "transform": "use",
    "translate": "use",
    "uninstall": "use",
    "watermark": "use",
}
# Terms the ODRL 2.2 vocabulary deprecates, read as the term that replaces them.
DEPRECATED_ACTIONS: Final[dict[str, str]] = {
    "write": "modify",
    "append": "modify",
    "appendTo": "modify",
    "copy": "reproduce",
    "pay": "compensate",
}
ACTION_PARENT: Final[dict[str, str | None]] = {
    odrl(term): (odrl(parent) if parent else None) for term, parent in _INCLUDED_IN.items()
}
ACTIONS: Final = frozenset(ACTION_PARENT)


def canonical_action(iri: str) -> str:
    """The action an IRI stands for, replacing a deprecated ODRL action by its successor."""
    if iri.startswith(ODRL_NS):
        replacement = DEPRECATED_ACTIONS.get(iri[len(ODRL_NS) :])
        if replacement:
            return odrl(replacement)
    return iri


def action_ancestors(iri: str) -> tuple[str, ...]:
    """The action and every action it is included in (``read`` -> ``read``, ``use``)."""
    chain: list[str] = []
    current: str | None = canonical_action(iri)
    while current is not None and current not in chain:
        chain.append(current)
        current = ACTION_PARENT.get(current)
    return tuple(chain)


def action_included_in(requested: str, granted: str) -> bool:
    """Whether exercising ``requested`` is an exercise of ``granted`` (reflexive, transitive)."""
    return canonical_action(granted) in action_ancestors(requested)


def is_known_action(iri: str) -> bool:
    return canonical_action(iri) in ACTION_PARENT


# --- left operands --------------------------------------------------------------------------
ODRL_LEFT_OPERAND_NAMES: Final = (
    "absolutePosition",
    "absoluteSpatialPosition",
    "absoluteTemporalPosition",
    "absoluteSize",
    "count",
    "dateTime",
    "delayPeriod",
    "deliveryChannel",
    "device",
    "elapsedTime",
    "event",
    "fileFormat",
    "industry",
    "language",
    "media",
    "meteredTime",
    "payAmount",
    "percentage",
    "product",
    "purpose",
    "recipient",
    "relativePosition",
    "relativeSpatialPosition",
    "relativeTemporalPosition",
    "relativeSize",
    "resolution",
    "spatial",
    "spatialCoordinates",
    "systemDevice",
    "timeInterval",
    "unitOfCount",
    "version",
    "virtualLocation",
)
SLUIS_LEFT_OPERAND_NAMES: Final = (
    "computeSite",
    "jobId",
    "credential",
    "groupSize",
    "columns",
    "aggregateOnly",
    "disclosureProfile",
    "readScope",
    "epsilon",
)
DATE_TIME: Final = odrl("dateTime")
ELAPSED_TIME: Final = odrl("elapsedTime")
COUNT: Final = odrl("count")
PURPOSE: Final = odrl("purpose")
SPATIAL: Final = odrl("spatial")
RECIPIENT: Final = odrl("recipient")
EVENT: Final = odrl("event")
POLICY_USAGE: Final = odrl("policyUsage")
COMPUTE_SITE: Final = sluis("computeSite")
JOB_ID: Final = sluis("jobId")
CREDENTIAL: Final = sluis("credential")
GROUP_SIZE: Final = sluis("groupSize")
COLUMNS: Final = sluis("columns")
AGGREGATE_ONLY: Final = sluis("aggregateOnly")
DISCLOSURE_PROFILE: Final = sluis("disclosureProfile")
READ_SCOPE: Final = sluis("readScope")
EPSILON: Final = sluis("epsilon")
AGGREGATE: Final = odrl("aggregate")
READ: Final = odrl("read")

# Short names accepted for the ODRL vocabulary in compact JSON without a context.
_ODRL_TERMS: Final = frozenset(
    {
        *(t[len(ODRL_NS) :] for t in POLICY_TYPES),
        *OPERATOR_NAMES,
        *LOGICAL_NAMES,
        *_INCLUDED_IN,
        *DEPRECATED_ACTIONS,
        *ODRL_LEFT_OPERAND_NAMES,
        "perm",
        "prohibit",
        "invalid",
        "policyUsage",
        "Permission",
        "Prohibition",
        "Duty",
        "Constraint",
        "LogicalConstraint",
        "Action",
        "Asset",
        "AssetCollection",
        "Party",
        "PartyCollection",
        "Rule",
    }
)


def expand_term(term: str) -> str:
    """The IRI a compact name stands for; an IRI (or an unknown bare name) is returned as is.

    ``"purpose"``, ``"odrl:purpose"`` and the full IRI all give the same IRI. An unknown bare
    name such as ``"partner"`` stays ``"partner"`` so the explanation can name it.
    """
    if ":" in term:
        prefix, _, rest = term.partition(":")
        namespace = PREFIXES.get(prefix)
        if namespace is not None and not rest.startswith("//"):
            return namespace + rest
        return term
    if term in _ODRL_TERMS:
        return ODRL_NS + term
    if term in SLUIS_LEFT_OPERAND_NAMES:
        return SLUIS_NS + term
    return term


def compact_term(iri: str) -> str:
    """The short name we write for an IRI in DSP compact JSON (``odrl:`` terms lose the prefix)."""
    if iri.startswith(ODRL_NS):
        return iri[len(ODRL_NS) :]
    if iri.startswith(SLUIS_NS):
        return "sluis:" + iri[len(SLUIS_NS) :]
    return iri


def local_name(iri: str) -> str:
    for namespace in (ODRL_NS, SLUIS_NS, XSD_NS):
        if iri.startswith(namespace):
            return iri[len(namespace) :]
    return iri
