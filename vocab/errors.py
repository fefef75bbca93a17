"""Errors raised by the vocab package.

Every error carries a machine-readable ``code`` (stable, kebab-case) next to a sentence a person
can act on, so HTTP layers can turn it into an RFC 9457 problem without parsing messages.
"""

from __future__ import annotations


class VocabError(Exception):
    """Base class of every error the vocab package raises on purpose."""

    code: str = "vocab-error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class UnknownContextError(VocabError):
    """A JSON-LD document refers to a remote context we do not ship; we never download it."""

    code = "unknown-context"

    def __init__(self, url: str, message: str | None = None) -> None:
        self.url = url
        super().__init__(
            message
            or f"JSON-LD context {url!r} is not one of the contexts Sluis ships; "
            "remote contexts are refused and never downloaded"
        )


class DocumentTooLargeError(VocabError):
    """A document is larger than the configured limit; refused before any parsing."""

    code = "document-too-large"

    def __init__(self, size: int, limit: int, what: str = "document") -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"{what} is {size} bytes, more than the limit of {limit} bytes")


class TooManyStatementsError(DocumentTooLargeError):
    """A document holds more statements than allowed; refused while parsing, at the first one over."""

    code = "too-many-statements"

    def __init__(self, limit: int) -> None:
        self.size = limit + 1
        self.limit = limit
        VocabError.__init__(self, f"the document holds more than the limit of {limit} statements")


class StatementRefusedError(VocabError):
    """One statement of a document cannot be taken; ``field`` names its property (the predicate IRI)."""

    code = "statement-refused"

    def __init__(self, field: str, reason: str, *, code: str | None = None) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}", code=code)


class LiteralTooLongError(StatementRefusedError):
    """A literal longer than the limit (checked while parsing, statement by statement)."""

    code = "literal-too-long"


class InvalidCharacterError(StatementRefusedError):
    """A term holds a character XML cannot carry (NUL and other C0 controls, U+FFFE, U+FFFF):
    accepted, it would make every RDF/XML page that includes the record ill-formed."""

    code = "invalid-character"


class DocumentTooDeepError(VocabError):
    """A document nests deeper than allowed (protects the recursive parsers and JSON-LD algorithms)."""

    code = "document-too-deep"

    def __init__(self, depth: int, limit: int, kind: str = "JSON") -> None:
        self.depth = depth
        self.limit = limit
        super().__init__(f"{kind} document nests {depth} levels or more, deeper than the limit of {limit}")


class RdfSyntaxError(VocabError):
    """Malformed RDF (Turtle, JSON, JSON-LD, RDF/XML, N-Triples), with the position when known.

    ``line`` and ``column`` are 1-based; either is ``None`` when the parser could not tell.
    """

    code = "rdf-syntax"

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        media_type: str | None = None,
    ) -> None:
        self.line = line
        self.column = column
        self.media_type = media_type
        self.reason = message
        where = ""
        if line is not None:
            where = f" at line {line}" + (f", column {column}" if column is not None else "")
        kind = f"{media_type} " if media_type else ""
        super().__init__(f"malformed {kind}document{where}: {message}")


class JsonLdError(RdfSyntaxError):
    """Well-formed JSON that is not valid JSON-LD (e.g. an ``@id`` that is a number).

    A kind of :class:`RdfSyntaxError`, so callers that handle malformed RDF handle this too; the
    JSON-LD algorithms do not track source positions, so ``line`` and ``column`` are ``None``.
    """

    code = "invalid-jsonld"

    def __init__(self, message: str) -> None:
        super().__init__(message, media_type="application/ld+json")


class UnsupportedMediaTypeError(VocabError):
    """An RDF media type or file suffix we do not parse or serialise."""

    code = "unsupported-media-type"
