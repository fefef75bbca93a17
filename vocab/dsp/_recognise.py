"""Read an incoming DSP message: the fast path for the known compact form, JSON-LD otherwise.

Most peers send exactly the compact form the DSP 2025-1 context produces (``"@context":
[DSP context]``, plain terms, no prefixes). For those, full JSON-LD expansion (~1.7 ms per
message with pyld) is wasted work: checking the document against our schema for its ``@type``
is enough and gives the same meaning. Anything else - other contexts, prefixed or expanded
terms - goes through the offline JSON-LD processor and is compacted back to that same form
before the same schema check, so the rest of the connector only ever sees one shape.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import fastjsonschema

from vocab.contexts import SLUIS_CONTEXT
from vocab.dsp._schemas import ARRAY_MEMBERS, DSP_CONTEXT_URL, MESSAGE_SCHEMAS, fast_check_for, validator_for
from vocab.errors import VocabError

#: Deepest nesting accepted in a DSP message; real messages (policies with logical
#: constraints included) stay under 12 levels, and the recursive checks must stay bounded.
MAX_MESSAGE_DEPTH = 32

_IRI_SCHEMES = ("http://", "https://", "urn:", "did:")
#: Base for relative IRIs when the caller has none; expansion and compaction use the same one,
#: so a relative value (``"format": "HttpData-PULL"``) comes back unchanged.
_DEFAULT_BASE = "https://dsp.invalid/"


class DspMessageError(VocabError):
    """A DSP message that is not one we can accept; names the member at fault and why."""

    code = "invalid-dsp-message"

    def __init__(self, field: str, reason: str, *, code: str | None = None) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}", code=code)


@dataclass(frozen=True)
class DspMessage:
    """A checked message in the known compact form; ``fast_path`` says whether JSON-LD was skipped."""

    type: str
    body: dict[str, Any]
    fast_path: bool


def _depth_ok(value: object, depth: int = 0) -> bool:
    if depth > MAX_MESSAGE_DEPTH:
        return False
    if isinstance(value, dict):
        return all(_depth_ok(item, depth + 1) for item in value.values())
    if isinstance(value, list):
        return all(_depth_ok(item, depth + 1) for item in value)
    return True


def _plain_keys(value: object) -> bool:
    """No prefixed terms and no nested contexts anywhere: the document is in plain compact form."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "@context" or (":" in key and not key.startswith(_IRI_SCHEMES)):
                return False
            if not _plain_keys(item):
                return False
        return True
    if isinstance(value, list):
        return all(_plain_keys(item) for item in value)
    return True


#: The contexts of the known compact form: the DSP context alone, or followed by ours (whose
#: only term in DSP messages is ``proof``, on a signed agreement; other Sluis members are IRIs).
KNOWN_CONTEXTS = ([DSP_CONTEXT_URL], [DSP_CONTEXT_URL, SLUIS_CONTEXT])


def is_known_compact_form(doc: Mapping[str, Any]) -> bool:
    """True when ``doc`` can skip JSON-LD: the known contexts, a known ``@type``, plain terms."""
    context = doc.get("@context")
    if context not in KNOWN_CONTEXTS:
        return False
    type_name = doc.get("@type")
    if not isinstance(type_name, str) or type_name not in MESSAGE_SCHEMAS:
        return False
    return _plain_keys({key: value for key, value in doc.items() if key != "@context"})


def check_message(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Our schema check of one compact-form message: ``[(field, reason), ...]``, empty when valid."""
    type_name = doc.get("@type")
    if not isinstance(type_name, str) or type_name not in MESSAGE_SCHEMAS:
        return [("@type", f"{type_name!r} is not a DSP 2025-1 message type")]
    try:
        fast_check_for(type_name)(doc)
        return []
    except fastjsonschema.JsonSchemaException:
        pass  # explained below by the interpreting validator, which names the failing member
    problems = []
    for error in sorted(validator_for(type_name).iter_errors(doc), key=lambda e: list(e.path)):
        path = "/".join(str(part) for part in error.absolute_path) or "(message)"
        problems.append((path, error.message))
    return problems


def _as_arrays(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: ([_as_arrays(v) for v in item] if isinstance(item, list) else [_as_arrays(item)])
            if key in ARRAY_MEMBERS
            else _as_arrays(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_as_arrays(item) for item in value]
    return value


def to_compact_form(doc: Mapping[str, Any], base: str) -> dict[str, Any]:
    """Full JSON-LD processing: expand with the offline loader, compact with the DSP context."""
    from vocab import jsonld  # imported here: only the slow path needs pyld

    expanded = jsonld.expand(dict(doc), base=base)
    if len(expanded) != 1:
        raise DspMessageError("(message)", f"expected one JSON-LD node, found {len(expanded)}")
    compacted = jsonld.compact(expanded, jsonld.DSP_CONTEXT, base=base)
    compacted.pop("@context", None)
    body: dict[str, Any] = {"@context": [DSP_CONTEXT_URL], **_as_arrays(compacted)}
    # ``dataset`` is an array in a catalog but a single IRI in a DatasetRequestMessage
    dataset = body.get("dataset")
    if body.get("@type") == "DatasetRequestMessage" and isinstance(dataset, list) and len(dataset) == 1:
        body["dataset"] = dataset[0]
    return body


def _relative_again(value: Any) -> Any:
    """Undo the placeholder base: a value JSON-LD resolved against it was a relative reference.

    ``leftOperand: "purpose"`` or ``format: "HttpData-PULL"`` are relative IRIs to JSON-LD
    (the DSP context does not define them), so expansion resolves them against the base; with
    no base given that is the placeholder, and the name the sender wrote is what the fast
    reader keeps and ``policies`` understands (``purpose`` is ``odrl:purpose``).
    """
    if isinstance(value, str):
        return value[len(_DEFAULT_BASE) :] if value.startswith(_DEFAULT_BASE) else value
    if isinstance(value, list):
        return [_relative_again(item) for item in value]
    if isinstance(value, dict):
        return {key: _relative_again(item) for key, item in value.items()}
    return value


def _ensure_object(doc: object) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise DspMessageError("(message)", "a DSP message is a JSON object")
    if not _depth_ok(doc):
        raise DspMessageError("(message)", f"nests deeper than {MAX_MESSAGE_DEPTH} levels", code="too-deep")
    return doc


def _finish(body: dict[str, Any], expected: Collection[str] | None, fast: bool) -> DspMessage:
    type_name = body.get("@type")
    if not isinstance(type_name, str):
        raise DspMessageError("@type", f"a DSP message has exactly one message type, not {type_name!r}")
    if expected is not None and type_name not in expected:
        raise DspMessageError("@type", f"expected {' or '.join(sorted(expected))}, got {type_name!r}")
    problems = check_message(body)
    if problems:
        field, reason = problems[0]
        raise DspMessageError(field, reason)
    return DspMessage(str(type_name), body, fast)


def read_message(doc: object, expected: Collection[str] | None = None, base: str = "") -> DspMessage:
    """Check an incoming message and return it in the known compact form.

    The fast path when :func:`is_known_compact_form` holds; full JSON-LD processing otherwise.
    Raises :class:`DspMessageError` naming the field and the reason.
    """
    mapping = _ensure_object(doc)
    if is_known_compact_form(mapping):
        return _finish(dict(mapping), expected, fast=True)
    if "@type" not in mapping:
        raise DspMessageError("@type", "a DSP message names its message type in @type")
    type_name = mapping.get("@type")
    if not isinstance(type_name, str | list) or (
        isinstance(type_name, list) and not all(isinstance(t, str) for t in type_name)
    ):
        raise DspMessageError("@type", "@type must be a string (the message type)")
    compact_type = isinstance(type_name, str) and ":" not in type_name
    if expected is not None and compact_type and type_name not in expected:
        raise DspMessageError("@type", f"expected {' or '.join(sorted(expected))}, got {type_name!r}")
    return read_message_naive(mapping, expected, base)


def read_message_naive(doc: object, expected: Collection[str] | None = None, base: str = "") -> DspMessage:
    """Always through JSON-LD (the reference path; the benchmark compares it with the fast one)."""
    mapping = _ensure_object(doc)
    try:
        body = to_compact_form(mapping, base or _DEFAULT_BASE)
        if not base:
            body = _relative_again(body)
    except DspMessageError:
        raise
    except VocabError as error:
        raise DspMessageError("@context", str(error), code=error.code) from error
    except Exception as error:  # pyld raises its own error types for malformed JSON-LD
        raise DspMessageError("(message)", f"not valid JSON-LD: {error}") from error
    return _finish(body, expected, fast=False)
