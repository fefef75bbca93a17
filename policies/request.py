"""What is asked (``Request``) and what is known about the world (``World``) at decision time.

The engine never reads a clock, a database or the network: the caller states the time, the
collections parties and assets belong to, the state of duties and how often a rule has been
exercised. Context keys may be full IRIs or short names (``purpose``, ``odrl:purpose``,
``sluis:credential``); both are normalised to IRIs once, when the request is made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from policies import terms
from policies.errors import PolicyError

DUTY_STATES: Final = frozenset({"fulfilled", "violated"})
MAX_PART_OF_DEPTH: Final = 64  # partOf chains longer than this are a modelling error


@dataclass(frozen=True)
class Request:
    """A party asks to exercise an action on a target, with facts about the use (``context``)."""

    assignee: str
    action: str
    target: str
    context: Mapping[str, object] = field(default_factory=dict)
    action_iri: str = field(init=False, repr=False, compare=False)
    operands: Mapping[str, object] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "action_iri", terms.canonical_action(terms.expand_term(self.action)))
        object.__setattr__(
            self, "operands", {terms.expand_term(str(key)): value for key, value in self.context.items()}
        )


@dataclass(frozen=True)
class World:
    """The state of the world: the time, collection membership, duty states, use counts."""

    now: datetime | None = None
    part_of: Mapping[str, Sequence[str]] = field(default_factory=dict)
    duties: Mapping[str, str] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    _closure: dict[str, frozenset[str]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.now is not None and self.now.tzinfo is None:
            object.__setattr__(self, "now", self.now.replace(tzinfo=UTC))
        for duty, state in self.duties.items():
            if state not in DUTY_STATES:
                raise PolicyError(
                    "invalid-duty-state",
                    f"duty {duty!r} has state {state!r}; use fulfilled or violated",
                    f"$.duties[{duty!r}]",
                )

    def collections_of(self, iri: str) -> frozenset[str]:
        """Every collection ``iri`` belongs to through ``partOf``, transitively (not itself)."""
        cached = self._closure.get(iri)
        if cached is not None:
            return cached
        seen: set[str] = set()
        stack = [(iri, 0)]
        while stack:
            current, depth = stack.pop()
            if depth > MAX_PART_OF_DEPTH:
                break
            for parent in self.part_of.get(current, ()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append((parent, depth + 1))
        result = frozenset(seen - {iri})
        self._closure[iri] = result
        return result

    def duty_state(self, uid: str) -> str | None:
        return self.duties.get(uid)
