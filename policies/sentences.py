"""A policy read out as plain sentences, one per rule, for the people who agree to it.

"You may use this data for training of AI systems, inside the European Union, until 31 December
2027, at most 100 reads; you must delete it within 90 days." Each sentence is made from the
parsed model (never from the JSON), so it says what the engine enforces: a date bound states
whether the last day is included, a count bound states the last read allowed, and the tests
evaluate requests on both sides of every stated boundary to check the sentence and the engine
agree.

A term the engine does not know (an operand, operator, action or profile) is never left out or
paraphrased into something it is not: the sentence names it and says that requests under it are
refused, because that is what the engine does (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from policies import operands, terms
from policies.compile import SUPPORTED_PROFILES
from policies.model import Action, Constraint, ConstraintNode, Entity, LogicalConstraint, Policy, Rule, Value
from policies.values import ValueMismatch, parse_date, parse_datetime, parse_duration
from vocab.hierarchy import PLACE_BASE, places, purposes

# A list of values longer than this is shortened ("a, b, c and 7 more"): a sentence stays a line.
MAX_LISTED_VALUES: Final = 8
# Nesting of logical constraints we read out; deeper nests are summarised, not recursed into.
MAX_READ_DEPTH: Final = 8

_ACTION_VERBS: Final[dict[str, str]] = {
    "use": "use",
    "read": "read",
    "aggregate": "compute aggregates over",
    "reproduce": "copy",
    "distribute": "pass on",
    "transfer": "transfer",
    "derive": "derive new data from",
    "modify": "change",
    "delete": "delete",
    "anonymize": "anonymise",
    "archive": "archive",
    "index": "index",
    "print": "print",
    "display": "display",
    "play": "play",
    "present": "present",
    "execute": "run",
    "install": "install",
    "compensate": "pay for",
    "inform": "inform the provider about",
    "attribute": "attribute",
    "attribution": "attribute",
    "commercialize": "sell",
    "annotate": "annotate",
    "translate": "translate",
    "textToSpeech": "read aloud",
    "watermark": "watermark",
    "concurrentUse": "use concurrently",
    "grantUse": "grant others use of",
    "include": "include",
    "extract": "extract from",
    "move": "move",
    "give": "give away",
    "sell": "sell",
    "stream": "stream",
    "synchronize": "synchronise",
    "ensureExclusivity": "keep exclusive",
    "obtainConsent": "obtain consent for",
    "reviewPolicy": "review the policy of",
    "acceptTracking": "accept tracking of",
    "lease": "lease",
    "lend": "lend",
    "license": "license",
    "nextPolicy": "pass on this policy with",
    "uninstall": "uninstall",
}
_OPERATOR_WORDS: Final[dict[str, str]] = {
    "eq": "is",
    "neq": "is not",
    "lt": "is less than",
    "lteq": "is at most",
    "gt": "is more than",
    "gteq": "is at least",
    "isA": "is a kind of",
    "hasPart": "includes",
    "isPartOf": "lies within",
    "isAllOf": "is all of",
    "isAnyOf": "is one of",
    "isNoneOf": "is none of",
}
_MONTHS: Final = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
# Places that are unions of states read with an article: "inside the European Union".
_UNIONS: Final = frozenset({PLACE_BASE + "EU", PLACE_BASE + "EEA"})
_DURATION_UNITS: Final = (("year", 365 * 86400), ("week", 7 * 86400), ("day", 86400),
                          ("hour", 3600), ("minute", 60), ("second", 1))  # fmt: skip


@dataclass(frozen=True)
class Sentence:
    """One rule of a policy, read out. ``unknown_terms`` lists what the engine does not know."""

    kind: str  # permission | prohibition | obligation | profile
    rule: str
    text: str
    unknown_terms: tuple[str, ...] = ()

    @property
    def understood(self) -> bool:
        return not self.unknown_terms


class _Reading:
    """The unknown terms met while reading one rule (collected, then put on its sentence)."""

    def __init__(self) -> None:
        self.unknown: list[str] = []

    def note(self, term: str) -> None:
        if term not in self.unknown:
            self.unknown.append(term)


def policy_sentences(policy: Policy) -> tuple[Sentence, ...]:
    """Every rule of ``policy`` (its own and the ones it inherits) as one sentence each."""
    found: list[Sentence] = []
    for profile in policy.profiles:
        if profile not in SUPPORTED_PROFILES:
            found.append(
                Sentence(
                    "profile",
                    profile,
                    f"This policy follows the profile {profile}, which this connector does not "
                    "understand: every request under it is refused.",
                    (profile,),
                )
            )
    for rule in (*policy.rules, *policy.inherited_rules):
        found.append(rule_sentence(rule))
    if not policy.rules and not policy.inherited_rules:
        nothing = "This policy grants nothing: every request is refused."
        found.append(Sentence("permission", policy.uid, nothing))
    return tuple(found)


def rule_sentence(rule: Rule) -> Sentence:
    """One declared rule as a sentence: who, may or must (not), what, under which conditions."""
    reading = _Reading()
    verbs = _verbs(rule.actions, reading)
    conditions = _conditions(rule, reading)
    subject = _subject(rule.assignees)
    if rule.kind == "permission":
        text = f"{subject} may {verbs} {_object(rule.targets)}{conditions}"
        duties = [_duty_clause(duty, reading) for duty in rule.duties]
        if duties:
            who = "you" if not rule.assignees else "they"
            text += "; " + "; ".join(f"{who} must {duty}" for duty in duties)
    elif rule.kind == "prohibition":
        text = f"{subject} must not {verbs} {_object(rule.targets)}{conditions}"
        remedies = [_duty_clause(remedy, reading) for remedy in rule.remedies]
        if remedies:
            text += "; if this happens, you must " + " and ".join(remedies)
    else:
        text = f"{subject} must {verbs} {_object(rule.targets)}{conditions}"
        consequences = [_duty_clause(item, reading) for item in rule.consequences]
        if consequences:
            text += "; if not, you must " + " and ".join(consequences)
    text = text.rstrip() + "."
    if reading.unknown:
        listed = ", ".join(reading.unknown)
        text += (
            f" It uses {'a term' if len(reading.unknown) == 1 else 'terms'} this connector does not "
            f"understand ({listed}), so every request under this rule is refused."
        )
    return Sentence(rule.kind, rule.uid, text, tuple(reading.unknown))


# ---- parts of a sentence -------------------------------------------------------------------------
def _subject(assignees: tuple[Entity, ...]) -> str:
    if not assignees:
        return "You"
    return "Only " + _join([_name(entity.iri) for entity in assignees], "or")


def _object(targets: tuple[Entity, ...]) -> str:
    if not targets:
        return "this data"
    return _join([_name(entity.iri) for entity in targets], "and")


def _verbs(actions: tuple[Action, ...], reading: _Reading) -> str:
    words: list[str] = []
    for action in actions:
        name = terms.local_name(terms.canonical_action(action.iri))
        if not terms.is_known_action(action.iri):
            reading.note(action.iri)
            words.append(f"perform the action {action.iri}")
            continue
        verb = _ACTION_VERBS.get(name, name)
        if action.refinements:
            verb += " (" + _join([_constraint(node, reading, 0) for node in action.refinements], "and") + ")"
        words.append(verb)
    return _join(words, "or") if words else "do nothing with"


def _conditions(rule: Rule, reading: _Reading) -> str:
    phrases = [_constraint(node, reading, 0) for node in rule.constraints]
    for entity in (*rule.targets, *rule.assignees):
        phrases.extend(_constraint(node, reading, 0) for node in entity.refinements)
    return (" " + ", ".join(phrases)) if phrases else ""


def _duty_clause(duty: Rule, reading: _Reading) -> str:
    """What a duty asks, as a verb phrase: "delete it within 90 days"."""
    verb = _verbs(duty.actions, reading)
    deadline: list[str] = []
    others: list[ConstraintNode] = []
    for node in duty.constraints:
        if (
            isinstance(node, Constraint)
            and node.left_operand == terms.ELAPSED_TIME
            and terms.local_name(node.operator) in ("lteq", "lt")
            and len(node.right) == 1
        ):
            span = _duration(node.right[0])
            if span is not None:
                inclusive = node.operator.endswith("lteq")
                deadline.append(f"within {span}" if inclusive else f"in less than {span}")
                continue
        others.append(node)
    text = f"{verb} it"
    if deadline:
        text += " " + " and ".join(deadline)
    if others:
        text += ", " + ", ".join(_constraint(node, reading, 0) for node in others)
    return text


def _constraint(node: ConstraintNode, reading: _Reading, depth: int) -> str:
    if isinstance(node, LogicalConstraint):
        name = terms.local_name(node.operator)
        if node.operator not in terms.LOGICAL_OPERATORS:
            reading.note(node.operator)
            return f"under a combination ({node.operator}) this connector does not understand"
        if depth >= MAX_READ_DEPTH:
            return "under further nested conditions"
        parts = [_constraint(operand, reading, depth + 1) for operand in node.operands]
        if name == "or":
            return "either " + _join(parts, "or")
        if name == "xone":
            return "under exactly one of: " + "; ".join(parts)
        if name == "andSequence":
            return "checked in this order: " + "; then ".join(parts)
        return _join(parts, "and")
    return _atom(node, reading)


def _atom(node: Constraint, reading: _Reading) -> str:
    operator = terms.local_name(node.operator)
    if node.operator not in terms.OPERATORS:
        reading.note(node.operator)
        return f"only if {terms.compact_term(node.left_operand)} {node.operator} {_values(node.right)}"
    if operands.lookup(node.left_operand) is None:
        reading.note(node.left_operand)
        return f"only if {node.left_operand} {_OPERATOR_WORDS[operator]} {_values(node.right)}"
    if node.right_reference is not None and not node.right:
        return (
            f"only if {terms.compact_term(node.left_operand)} {_OPERATOR_WORDS[operator]} "
            f"the value at {node.right_reference}"
        )
    reader = _READERS.get(node.left_operand)
    if reader is not None:
        phrase = reader(operator, node.right)
        if phrase is not None:
            return phrase
    if operands.is_row_filter(node.left_operand):
        column = operands.column_name(node.left_operand)
        return f"only rows where {column} {_OPERATOR_WORDS[operator]} {_values(node.right)}"
    if operands.is_bounds(node.left_operand):
        column = operands.bounds_column(node.left_operand)
        words = _OPERATOR_WORDS[operator]
        return f"with private sums of {column} over values clamped so each {words} {_values(node.right)}"
    if operands.is_keys(node.left_operand):
        column = operands.keys_column(node.left_operand)
        return f"with private groups of {column} for the public keys {_values(node.right)}"
    name = terms.compact_term(node.left_operand)
    return f"only if {name} {_OPERATOR_WORDS[operator]} {_values(node.right)}"


# ---- readers for the operands people meet most ---------------------------------------------------
def _purpose(operator: str, right: tuple[Value, ...]) -> str | None:
    names = [_name(str(value.value)) for value in right]
    if operator in ("eq", "isA", "isAnyOf", "isAllOf"):
        return "for " + _join(names, "or" if operator != "isAllOf" else "and")
    if operator in ("neq", "isNoneOf"):
        return "not for " + _join(names, "or")
    return None


def _place(operator: str, right: tuple[Value, ...]) -> str | None:
    names = [_name(str(value.value)) for value in right]
    if operator in ("isPartOf", "isA", "eq", "isAnyOf"):
        return "inside " + _join(names, "or")
    if operator in ("neq", "isNoneOf"):
        return "outside " + _join(names, "and")
    return None


def _date_time(operator: str, right: tuple[Value, ...]) -> str | None:
    if len(right) != 1:
        return None
    moment = _moment(right[0])
    if moment is None:
        return None
    midnight = moment.time() == datetime.min.time()
    if operator == "lt":
        return f"until {_day(moment - timedelta(days=1))}" if midnight else f"before {_instant(moment)}"
    if operator == "lteq":
        last_second = moment.hour == 23 and moment.minute == 59 and moment.second == 59
        return f"until {_day(moment)}" if last_second else f"until {_instant(moment)} (inclusive)"
    if operator == "gteq":
        return f"from {_day(moment)}" if midnight else f"from {_instant(moment)}"
    if operator == "gt":
        return f"after {_instant(moment)}"
    if operator == "eq":
        return f"only at {_instant(moment)}"
    return None


def _count(operator: str, right: tuple[Value, ...]) -> str | None:
    if len(right) != 1:
        return None
    number = _integer(right[0])
    if number is None:
        return None
    if operator == "lteq":
        return f"at most {_reads(number)}"
    if operator == "lt":
        return f"at most {_reads(number - 1)}"
    if operator == "eq":
        return f"only as read number {number}"
    if operator in ("gteq", "gt"):
        least = number if operator == "gteq" else number + 1
        return f"only from read number {least} on"
    return None


def _elapsed(operator: str, right: tuple[Value, ...]) -> str | None:
    if len(right) != 1:
        return None
    span = _duration(right[0])
    if span is None:
        return None
    if operator == "lteq":
        return f"for {span} after the agreement"
    if operator == "lt":
        return f"for less than {span} after the agreement"
    if operator in ("gteq", "gt"):
        return f"only once {span} have passed since the agreement"
    return None


def _columns(operator: str, right: tuple[Value, ...]) -> str | None:
    names = [str(value.value) for value in right]
    noun = "column" if len(names) == 1 else "columns"
    if operator == "isNoneOf":
        return f"without the {noun} {_join(names, 'and')}"
    if operator in ("isAllOf", "isAnyOf", "isA", "isPartOf"):
        return f"only the columns {_join(names, 'and')}"
    return None


def _aggregate_only(operator: str, right: tuple[Value, ...]) -> str | None:
    if operator == "eq" and len(right) == 1 and right[0].value is True:
        return "only as aggregates"
    return None


def _group_size(operator: str, right: tuple[Value, ...]) -> str | None:
    if len(right) != 1:
        return None
    number = _integer(right[0])
    if number is None:
        return None
    if operator == "gteq":
        return f"over groups of at least {number} rows"
    if operator == "gt":
        return f"over groups of more than {number} rows"
    return None


def _credential(operator: str, right: tuple[Value, ...]) -> str | None:
    names = [terms.local_name(str(value.value)) for value in right]
    if operator in ("hasPart", "eq", "isAllOf"):
        return "if you hold " + _join([f"a {name}" for name in names], "and")
    if operator == "isAnyOf":
        return "if you hold " + _join([f"a {name}" for name in names], "or")
    if operator == "isNoneOf":
        return "if you hold no " + _join(names, "or")
    return None


def _recipient(operator: str, right: tuple[Value, ...]) -> str | None:
    names = [_name(str(value.value)) for value in right]
    if operator in ("eq", "isAnyOf"):
        return "only for " + _join(names, "or")
    if operator in ("neq", "isNoneOf"):
        return "not for " + _join(names, "or")
    return None


_READERS: Final = {
    terms.PURPOSE: _purpose,
    terms.SPATIAL: _place,
    terms.COMPUTE_SITE: _place,
    terms.DATE_TIME: _date_time,
    terms.COUNT: _count,
    terms.ELAPSED_TIME: _elapsed,
    terms.COLUMNS: _columns,
    terms.AGGREGATE_ONLY: _aggregate_only,
    terms.GROUP_SIZE: _group_size,
    terms.CREDENTIAL: _credential,
    terms.RECIPIENT: _recipient,
}


# ---- values ----------------------------------------------------------------------------------------
def _name(iri: str) -> str:
    """A person's name for an IRI: the label of a purpose or place we ship, else its last segment."""
    label = purposes().label(iri)
    if label is not None:
        return label[0].lower() + label[1:]
    label = places().label(iri)
    if label is not None:
        return f"the {label}" if iri in _UNIONS else label
    tail = iri.rstrip("/#").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    return tail or iri


def _values(right: tuple[Value, ...]) -> str:
    shown = [_name(str(value.value)) if value.is_iri else str(value.value) for value in right]
    return _join(shown, "or") if shown else "(no value)"


def _join(items: list[str], word: str) -> str:
    if len(items) > MAX_LISTED_VALUES:
        rest = len(items) - MAX_LISTED_VALUES + 1
        items = [*items[: MAX_LISTED_VALUES - 1], f"{rest} more"]
    if len(items) <= 1:
        return items[0] if items else ""
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


def _moment(value: Value) -> datetime | None:
    text = str(value.value)
    try:
        return parse_datetime(text).astimezone(UTC)
    except ValueMismatch:
        pass
    try:
        day = parse_date(text)
    except ValueMismatch:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _day(moment: datetime) -> str:
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"


def _instant(moment: datetime) -> str:
    clock = moment.strftime("%H:%M:%S") if moment.second or moment.microsecond else moment.strftime("%H:%M")
    return f"{clock} UTC on {_day(moment)}"


def _integer(value: Value) -> int | None:
    raw = value.value
    if isinstance(raw, bool):
        return None
    try:
        number = Decimal(str(raw))
    except ArithmeticError:
        return None
    return int(number) if number == number.to_integral_value() else None


def _reads(number: int) -> str:
    return "1 read" if number == 1 else f"{max(number, 0)} reads"


def _duration(value: Value) -> str | None:
    try:
        seconds = int(parse_duration(str(value.value)))
    except (ValueMismatch, ArithmeticError):
        return None
    if seconds <= 0:
        return None
    for unit, size in _DURATION_UNITS:
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("" if count == 1 else "s")
    return f"{seconds} seconds"
