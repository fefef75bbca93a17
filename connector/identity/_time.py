"""Timestamps as Data Integrity and VC 2.0 write them: UTC, whole seconds, ``Z`` suffix."""

from __future__ import annotations

from datetime import UTC, datetime

from connector.identity.errors import IdentityError


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_datetime(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise IdentityError("naive_datetime", "timestamps must carry a time zone")
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(value: object, field: str) -> datetime:
    """An XML Schema dateTimeStamp (time zone required), as VC 2.0 demands."""
    if not isinstance(value, str) or len(value) > 64:
        raise IdentityError("bad_datetime", f"{field} must be a date-time string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise IdentityError("bad_datetime", f"{field} is not an ISO 8601 date-time: {value!r}") from None
    if moment.tzinfo is None:
        raise IdentityError("bad_datetime", f"{field} has no time zone: {value!r}")
    return moment
