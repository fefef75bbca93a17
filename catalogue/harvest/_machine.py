"""The life of one harvest run as a table and a pure step function.

Like :mod:`connector.protocol._machine`, this module does not know how pages travel or where
records go: :func:`step` looks ``(state, event)`` up in :data:`TRANSITIONS` and answers with a
:class:`Transition` or, for an event the state does not allow, an :class:`IllegalTransition`
value naming both. The harvester (:mod:`catalogue.harvest._run`) feeds it the events its I/O
produced and persists the state it gets back; nothing else sets a run's state.

A run lists a source page by page. Only a listing that reached the last page *completely* may
sweep (retract what the source no longer lists): a run stopped by a cap, a page loop, a bad
page or an interruption never deletes anything, because it cannot know what it did not see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class RunState(StrEnum):
    PENDING = "pending"  # created, nothing fetched yet
    LISTING = "listing"  # pages are being fetched and stored; the cursor names the next page
    SWEEPING = "sweeping"  # the whole listing was seen: records it no longer holds are retracted
    DONE = "done"  # complete (possibly with per-record rejections)
    UNCHANGED = "unchanged"  # the source said nothing changed (304): nothing to do
    CAPPED = "capped"  # stopped by a cap (pages, records, bytes, time) or a page loop: partial, kept
    FAILED = "failed"  # a page could not be fetched or read: what was stored before it stays
    INTERRUPTED = "interrupted"  # the process stopped mid-run; the next run resumes at the cursor


class RunEvent(StrEnum):
    START = "start"
    NOT_MODIFIED = "not-modified"  # first page answered 304
    PAGE_STORED = "page-stored"  # a page's records were stored; there is a next page
    LAST_PAGE_STORED = "last-page-stored"  # ...and it was the last one (complete listing)
    LAST_PAGE_NO_SWEEP = "last-page-no-sweep"  # last page of an incremental or partial listing
    SWEPT = "swept"
    CAP_REACHED = "cap-reached"
    PAGE_FAILED = "page-failed"
    INTERRUPT = "interrupt"
    RESUME = "resume"


TERMINAL: frozenset[RunState] = frozenset(
    {RunState.DONE, RunState.UNCHANGED, RunState.CAPPED, RunState.FAILED}
)

#: current state -> event -> next state
TRANSITIONS: Mapping[RunState, Mapping[RunEvent, RunState]] = {
    RunState.PENDING: {
        RunEvent.START: RunState.LISTING,
    },
    RunState.LISTING: {
        RunEvent.NOT_MODIFIED: RunState.UNCHANGED,
        RunEvent.PAGE_STORED: RunState.LISTING,
        RunEvent.LAST_PAGE_STORED: RunState.SWEEPING,
        RunEvent.LAST_PAGE_NO_SWEEP: RunState.DONE,
        RunEvent.CAP_REACHED: RunState.CAPPED,
        RunEvent.PAGE_FAILED: RunState.FAILED,
        RunEvent.INTERRUPT: RunState.INTERRUPTED,
    },
    RunState.SWEEPING: {
        RunEvent.SWEPT: RunState.DONE,
        RunEvent.INTERRUPT: RunState.INTERRUPTED,
        RunEvent.PAGE_FAILED: RunState.FAILED,
    },
    RunState.INTERRUPTED: {
        RunEvent.RESUME: RunState.LISTING,
    },
}


@dataclass(frozen=True)
class Transition:
    before: RunState
    event: RunEvent
    after: RunState


@dataclass(frozen=True)
class IllegalTransition:
    """An event the state does not allow: a value, so the caller decides what it means."""

    state: RunState
    event: RunEvent

    @property
    def reason(self) -> str:
        allowed = ", ".join(TRANSITIONS.get(self.state, {})) or "nothing (terminal)"
        return f"a run in state {self.state} cannot take {self.event}; it allows {allowed}"


def step(state: RunState, event: RunEvent) -> Transition | IllegalTransition:
    """The next state of a run after ``event``; total over every (state, event) pair."""
    after = TRANSITIONS.get(state, {}).get(event)
    if after is None:
        return IllegalTransition(state, event)
    return Transition(state, event, after)
