"""Rollback ledger: persisted before each change, unwound newest first, past failures, idempotent."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from drill.ledger import Action, Ledger


def change(n: int) -> tuple[Action, Action]:
    return Action("t.set", {"n": n}, f"set {n}"), Action("t.set", {"n": -n}, f"unset {n}")


def test_entry_is_on_disk_before_the_change_is_made(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    ledger = Ledger(path)
    entry = ledger.record(*change(1))
    on_disk = json.loads(path.read_text())["entries"]
    assert on_disk[0]["state"] == "pending" and on_disk[0]["inverse"]["params"] == {"n": -1}
    ledger.applied(entry)
    assert json.loads(path.read_text())["entries"][0]["state"] == "applied"


def test_unwind_newest_first_and_keeps_going_past_a_failure(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.json")
    for n in (1, 2, 3):
        ledger.applied(ledger.record(*change(n)))
    done: list[int] = []

    def execute(a: Action) -> None:
        if a.params["n"] == -2:
            raise RuntimeError("API said no")
        done.append(a.params["n"])

    failures = ledger.unwind(execute)
    assert done == [-3, -1]
    assert [(e.id, err) for e, err in failures] == [(2, "RuntimeError: API said no")]
    assert [e.state for e in ledger.entries] == ["undone", "undo_failed", "undone"]
    # A second unwind retries only what failed: idempotent for what succeeded.
    done.clear()
    assert ledger.unwind(lambda a: done.append(a.params["n"])) == []
    assert done == [-2]
    assert ledger.outstanding() == []


def test_pending_entries_are_unwound_too(tmp_path: Path) -> None:
    """A drill killed mid-call left a pending entry: its inverse still runs."""
    ledger = Ledger(tmp_path / "l.json")
    ledger.record(*change(7))
    done: list[int] = []
    ledger.unwind(lambda a: done.append(a.params["n"]))
    assert done == [-7]


def test_settled_entries_are_not_unwound(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.json")
    e = ledger.record(*change(1))
    ledger.applied(e)
    ledger.settled(e)
    assert ledger.unwind(lambda a: pytest.fail("must not run")) == []


def test_load_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    ledger = Ledger(path)
    ledger.applied(ledger.record(*change(1)))
    ledger.record(*change(2))
    again = Ledger.load(path)
    assert [(e.id, e.state, e.inverse) for e in again.entries] == [(e.id, e.state, e.inverse) for e in ledger.entries]
    assert len(again.outstanding()) == 2


def test_a_dry_run_ledger_plans_every_change_and_has_nothing_to_unwind(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    ledger = Ledger(path, dry_run=True)
    first = ledger.record(*change(1))
    second = ledger.record(*change(2))
    assert first.planned and second.planned
    ledger.applied(first)  # a caller that forgets to check cannot turn a plan into a made change
    ledger.settled(second)
    assert [e.state for e in ledger.entries] == ["planned", "planned"]
    assert json.loads(path.read_text())["entries"][0]["state"] == "planned"
    assert ledger.outstanding() == [] and [e.id for e in ledger.in_effect()] == [1, 2]
    assert ledger.plan() == [
        {"id": 1, "change": "set 1", "op": "t.set", "inverse": "unset 1"},
        {"id": 2, "change": "set 2", "op": "t.set", "inverse": "unset 2"},
    ]
    executed: list[Action] = []
    assert ledger.unwind(executed.append) == [] and executed == []


def test_a_real_ledger_has_no_plan() -> None:
    ledger = Ledger()
    ledger.applied(ledger.record(*change(1)))
    assert ledger.plan() == [] and not ledger.entries[0].planned


def stack_ledger(tmp_path: Path) -> tuple[Ledger, list[int]]:
    """#1 outside, #2 the stack, #3-#4 inside the stack, #5 outside again."""
    ledger = Ledger(tmp_path / "l.json")
    ledger.applied(ledger.record(*change(1)))
    stack = ledger.record(*change(2))
    ledger.applied(stack)
    with ledger.inside(stack):
        ledger.applied(ledger.record(*change(3)))
        ledger.applied(ledger.record(*change(4)))
    ledger.applied(ledger.record(*change(5)))
    return ledger, [e.id for e in ledger.entries]


def test_changes_inside_a_destroyed_container_need_no_inverse_of_their_own(tmp_path: Path) -> None:
    ledger, _ = stack_ledger(tmp_path)
    assert [e.within for e in ledger.entries] == [None, None, 2, 2, None]
    ledger.settled(ledger.entries[1])  # the drill destroyed the stack, then was interrupted
    done: list[int] = []
    assert ledger.unwind(lambda a: done.append(a.params["n"])) == []
    assert done == [-5, -1]  # nothing was tried against the stack that is gone
    assert all(e.state == "undone" for e in ledger.entries)
    assert ledger.entries[2].note == "removed with #2 (set 2)"
    reloaded = Ledger.load(tmp_path / "l.json")
    assert reloaded.entries[3].within == 2 and reloaded.entries[3].note == "removed with #2 (set 2)"


def test_an_inside_inverse_that_fails_is_settled_by_its_containers_inverse(tmp_path: Path) -> None:
    ledger, _ = stack_ledger(tmp_path)

    def execute(a: Action) -> None:
        if a.params["n"] in (-3, -4):
            raise ConnectionError("the cluster is half gone")

    assert ledger.unwind(execute) == []
    inner = ledger.entries[2]
    assert inner.state == "undone" and inner.error is None
    assert inner.note is not None and "removed with #2" in inner.note and "half gone" in inner.note


def test_when_the_container_cannot_be_undone_every_failure_is_reported(tmp_path: Path) -> None:
    ledger, _ = stack_ledger(tmp_path)

    def execute(a: Action) -> None:
        if a.params["n"] in (-2, -3):
            raise RuntimeError(f"no {a.params['n']}")

    failures = ledger.unwind(execute)
    assert sorted(e.id for e, _ in failures) == [2, 3]
    assert [e.state for e in ledger.entries] == ["undone", "undo_failed", "undo_failed", "undone", "undone"]
    # A later unwind (e.g. `drill unwind` once the API is back) finishes the job.
    assert ledger.unwind(lambda a: None) == [] and all(e.state == "undone" for e in ledger.entries)
