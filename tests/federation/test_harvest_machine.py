"""The harvest run machine: total, and no incomplete listing ever reaches the sweep."""

from __future__ import annotations

from catalogue.harvest import RunEvent, RunState, step
from catalogue.harvest._machine import TERMINAL, IllegalTransition, Transition


def test_every_state_and_event_gives_a_value_never_an_exception() -> None:
    for state in RunState:
        for event in RunEvent:
            assert isinstance(step(state, event), Transition | IllegalTransition)


def test_terminal_states_take_no_event() -> None:
    for state in TERMINAL:
        for event in RunEvent:
            moved = step(state, event)
            assert isinstance(moved, IllegalTransition)
            assert str(state) in moved.reason


def test_only_a_complete_listing_sweeps() -> None:
    sweepers = {
        (state, event)
        for state in RunState
        for event in RunEvent
        if isinstance(moved := step(state, event), Transition) and moved.after is RunState.SWEEPING
    }
    assert sweepers == {(RunState.LISTING, RunEvent.LAST_PAGE_STORED)}


def test_an_interrupted_run_resumes_listing() -> None:
    moved = step(RunState.LISTING, RunEvent.INTERRUPT)
    assert isinstance(moved, Transition)
    assert moved.after is RunState.INTERRUPTED
    resumed = step(RunState.INTERRUPTED, RunEvent.RESUME)
    assert isinstance(resumed, Transition)
    assert resumed.after is RunState.LISTING
