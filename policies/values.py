"""Typed values: reading xsd literals and comparing a resolved value with a right operand.

ODRL compares values by their datatype: ``dateTime lt "2026-01-01"^^xsd:date`` is a date
comparison, ``elapsedTime lteq "P30D"^^xsd:duration`` a duration comparison, ``count lteq
10`` a numeric one. This module turns lexical forms into Python values and raises
``ValueMismatch`` (never a bare ``ValueError``) when a value cannot be read as the kind the
left operand needs, so the evaluator can say why a constraint does not hold.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final

from policies import terms
from policies.model import Value

XSD = terms.XSD_NS
_NUMERIC_TYPES: Final = frozenset(
    XSD + name
    for name in (
        "integer",
        "decimal",
        "double",
        "float",
        "int",
        "long",
        "short",
        "byte",
        "nonNegativeInteger",
        "positiveInteger",
        "nonPositiveInteger",
        "negativeInteger",
        "unsignedInt",
        "unsignedLong",
    )
)
_DATETIME_RE: Final = re.compile(
    r"^(-?\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$"
)
_DATE_RE: Final = re.compile(r"^(-?\d{4,})-(\d{2})-(\d{2})(Z|[+-]\d{2}:\d{2})?$")
_DURATION_RE: Final = re.compile(
    r"^(-)?P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
# xsd:duration months and years have no fixed length; for ordering we use these (documented).
_DAYS_PER_MONTH: Final = 30
_DAYS_PER_YEAR: Final = 365


class Kind(StrEnum):
    """What a left operand's values are, which decides how they compare."""

    DATETIME = "dateTime"
    DURATION = "duration"
    NUMBER = "number"
    IRI = "iri"
    TEXT = "text"
    BOOLEAN = "boolean"


class ValueMismatch(Exception):
    """A value cannot be read as the kind a comparison needs."""


_TEXT_TYPES: Final = frozenset(
    {
        XSD + "string",
        XSD + "anyURI",
        XSD + "normalizedString",
        XSD + "token",
        XSD + "language",
        terms.RDF_NS + "langString",
    }
)
# The datatypes a value of each kind may declare. Any other datatype - an unknown one
# (``ex:money``) or one of another kind (``"2026-01-01"^^xsd:string`` for a date-time) - is
# not understood, so the constraint is undecidable and fails closed rather than being read
# as something it may not mean.
_DATATYPES_OF_KIND: Final[dict[Kind, frozenset[str]]] = {
    Kind.DATETIME: frozenset({XSD + "dateTime", XSD + "date", XSD + "dateTimeStamp"}),
    Kind.DURATION: frozenset({XSD + "duration", XSD + "dayTimeDuration", XSD + "yearMonthDuration"}),
    Kind.NUMBER: _NUMERIC_TYPES,
    Kind.BOOLEAN: frozenset({XSD + "boolean"}),
    Kind.IRI: _TEXT_TYPES,
    Kind.TEXT: _TEXT_TYPES,
}


def unsupported_datatype(datatype: str | None, kind: Kind) -> str | None:
    """Why ``datatype`` cannot be a value of ``kind`` (None when it can or none is declared)."""
    if datatype is None or datatype in _DATATYPES_OF_KIND[kind]:
        return None
    return f"the datatype {terms.compact_term(datatype)} is not supported for a {kind.value} value"


def parse_datetime(text: str) -> datetime:
    """An ``xsd:dateTime`` (seconds optional, as in DSP examples); no zone means UTC."""
    match = _DATETIME_RE.match(text.strip())
    if not match:
        raise ValueMismatch(f"{text!r} is not an xsd:dateTime")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        micro = round(float(fraction) * 1_000_000) if fraction else 0
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), min(micro, 999_999)
        )
    except ValueError as error:
        raise ValueMismatch(f"{text!r} is not a valid xsd:dateTime: {error}") from None
    return moment.replace(tzinfo=_zone(zone))


def parse_date(text: str) -> date:
    match = _DATE_RE.match(text.strip())
    if not match:
        raise ValueMismatch(f"{text!r} is not an xsd:date")
    year, month, day, _ = match.groups()
    try:
        return date(int(year), int(month), int(day))
    except ValueError as error:
        raise ValueMismatch(f"{text!r} is not a valid xsd:date: {error}") from None


def _zone(zone: str | None) -> tzinfo:
    if zone is None or zone == "Z":
        return UTC
    sign = -1 if zone[0] == "-" else 1
    hours, minutes = zone[1:].split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


def parse_duration(text: str) -> Decimal:
    """An ``xsd:duration`` in seconds (a month counts 30 days, a year 365)."""
    if len(text) > MAX_DURATION_CHARS:
        raise ValueMismatch(
            f"{text[:40]!r}... is longer than {MAX_DURATION_CHARS} characters: not a duration we read"
        )
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise ValueMismatch(f"{text!r} is not an xsd:duration")
    negative, years, months, weeks, days, hours, minutes, seconds = match.groups()
    total_days = (
        int(years or 0) * _DAYS_PER_YEAR
        + int(months or 0) * _DAYS_PER_MONTH
        + int(weeks or 0) * 7
        + int(days or 0)
    )
    total = Decimal(total_days * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60) + Decimal(
        seconds or 0
    )
    return _bounded(-total if negative else total, text)


def format_duration(seconds: Decimal) -> str:
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    text = f"{sign}P{int(days)}D" if days else f"{sign}P"
    if rest or not days:
        text += f"T{rest.normalize():f}S"
    return text


# A number in a policy or a request is a price, a count, a size: these bounds are far beyond
# any of them, and keep a hostile ``1e999999999`` or a million-digit value from costing time or
# memory when it is compared or written into an explanation.
MAX_NUMBER_DIGITS: Final = 100
MAX_NUMBER_EXPONENT: Final = 1000
MAX_DURATION_CHARS: Final = 64  # "P1000Y..." with every field is far shorter


def to_number(raw: object) -> Decimal:
    if isinstance(raw, bool):
        raise ValueMismatch(f"{raw!r} is a boolean, not a number")
    if isinstance(raw, int):
        if raw.bit_length() > 4 * MAX_NUMBER_DIGITS:
            raise ValueMismatch(f"a number of more than {MAX_NUMBER_DIGITS} digits is out of range")
        return _bounded(Decimal(raw), raw)
    if isinstance(raw, Decimal):
        return _bounded(raw, raw)
    if isinstance(raw, float):
        return _bounded(Decimal(repr(raw)), raw)
    if isinstance(raw, str):
        try:
            number = Decimal(raw.strip())
        except InvalidOperation:
            raise ValueMismatch(f"{raw[:40]!r} is not a number") from None
        return _bounded(number, raw)
    raise ValueMismatch(f"{raw!r} is not a number")


def _bounded(number: Decimal, raw: object) -> Decimal:
    shown = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:40] + "..."
    if not number.is_finite():
        raise ValueMismatch(f"{shown} is not a finite number")
    if len(number.as_tuple().digits) > MAX_NUMBER_DIGITS or (
        number and abs(number.adjusted()) > MAX_NUMBER_EXPONENT
    ):
        raise ValueMismatch(
            f"{shown} is out of range (at most {MAX_NUMBER_DIGITS} digits, |exponent| <= 1000)"
        )
    return number


def to_boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in {"true", "1", "false", "0"}:
        return raw.strip().lower() in {"true", "1"}
    raise ValueMismatch(f"{raw!r} is not a boolean")


def to_datetime(raw: object) -> datetime:
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    if isinstance(raw, str):
        return parse_datetime(raw)
    raise ValueMismatch(f"{raw!r} is not a date-time")


def to_duration(raw: object) -> Decimal:
    if isinstance(raw, timedelta):
        return Decimal(repr(raw.total_seconds()))
    if isinstance(raw, int | float | Decimal) and not isinstance(raw, bool):
        return to_number(raw)
    if isinstance(raw, str):
        return parse_duration(raw)
    raise ValueMismatch(f"{raw!r} is not a duration")


Comparable = datetime | date | Decimal | str | bool


def coerce_right(value: Value, kind: Kind) -> Comparable:
    """A right-operand value as a Python value of the left operand's kind."""
    datatype = value.datatype
    raw = value.value
    if kind is Kind.DATETIME:
        if datatype == XSD + "date" or (isinstance(raw, str) and _DATE_RE.match(raw) and "T" not in raw):
            return parse_date(str(raw))
        return to_datetime(raw)
    if kind is Kind.DURATION:
        return to_duration(raw)
    if kind is Kind.NUMBER:
        return to_number(raw)
    if kind is Kind.BOOLEAN:
        return to_boolean(raw)
    return str(raw)


def coerce_left(raw: object, kind: Kind) -> Comparable:
    """A resolved left-operand value (from the request or the world) as a comparable value."""
    if kind is Kind.DATETIME:
        return to_datetime(raw)
    if kind is Kind.DURATION:
        return to_duration(raw)
    if kind is Kind.NUMBER:
        return to_number(raw)
    if kind is Kind.BOOLEAN:
        return to_boolean(raw)
    if isinstance(raw, dict) and "@id" in raw:
        return str(raw["@id"])
    if isinstance(raw, dict) and "@value" in raw:
        return str(raw["@value"])
    if isinstance(raw, str | int | float | Decimal) and not isinstance(raw, bool):
        return str(raw)
    raise ValueMismatch(f"{raw!r} is not a text or IRI value")


def kind_from_right(values: tuple[Value, ...]) -> Kind:
    """Guess the kind of an operand we know only by name from its right operand's type."""
    for value in values:
        if value.is_iri:
            return Kind.IRI
        if value.datatype == XSD + "dateTime" or value.datatype == XSD + "date":
            return Kind.DATETIME
        if value.datatype in (XSD + "duration", XSD + "dayTimeDuration", XSD + "yearMonthDuration"):
            return Kind.DURATION
        if value.datatype in _NUMERIC_TYPES or (
            isinstance(value.value, int | float) and not isinstance(value.value, bool)
        ):
            return Kind.NUMBER
        if value.datatype == XSD + "boolean" or isinstance(value.value, bool):
            return Kind.BOOLEAN
    return Kind.TEXT


def order(left: Comparable, right: Comparable) -> int:
    """-1, 0 or 1; a date-time against a date compares calendar days (in the date-time's zone)."""
    if isinstance(left, datetime) and not isinstance(right, datetime) and isinstance(right, date):
        left = left.date()
    elif isinstance(right, datetime) and not isinstance(left, datetime) and isinstance(left, date):
        right = right.date()
    if isinstance(left, bool) or isinstance(right, bool):
        if left == right:
            return 0
        raise ValueMismatch("booleans have no order")
    if isinstance(left, str) != isinstance(right, str):
        raise ValueMismatch(f"cannot compare {left!r} with {right!r}")
    try:
        if left < right:  # type: ignore[operator]
            return -1
        if left > right:  # type: ignore[operator]
            return 1
    except TypeError:
        raise ValueMismatch(f"cannot compare {left!r} with {right!r}") from None
    return 0


def display(value: object) -> object:
    """A JSON-friendly rendering of a resolved value for explanations."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | tuple | frozenset | set):
        items = [display(item) for item in value]
        return sorted(items, key=str) if isinstance(value, frozenset | set) else items
    return value
