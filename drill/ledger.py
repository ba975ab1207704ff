"""The rollback ledger: every change a drill makes, with its inverse, persisted as it grows.

A change is written to the ledger *before* it is made, so a drill killed in the middle of a call
still knows what to undo. Inverses are data (an operation name and its parameters), not closures,
so a later process (`drill unwind`) can carry them out from the file alone. Unwinding goes newest
first, keeps going past a failing inverse, reports every failure, and is idempotent.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Action:
    op: str  # e.g. "aws.eks.set_scaling"; resolved by the executor that carries it out
    params: dict[str, Any]
    description: str


@dataclass
class Entry:
    id: int
    change: Action
    inverse: Action
    state: str = "pending"  # pending -> applied | planned (dry run); -> undone | undo_failed
    recorded_at: float = field(default_factory=time.time)
    applied_at: float | None = None
    undone_at: float | None = None
    error: str | None = None
    # The entry whose inverse removes this change too (e.g. a Deployment on the AKS cluster that
    # `terraform destroy` of the failover stack deletes): when that one is undone, so is this.
    within: int | None = None
    note: str | None = None

    @property
    def planned(self) -> bool:
        return self.state == "planned"


Executor = Callable[[Action], None]


# A no-op inverse: for planned changes whose way back is another change's (e.g. a restore into a
# database that `terraform destroy` removes) or that need none (a cache invalidation).
NOTHING = "none"


class Ledger:
    def __init__(self, path: Path | None = None, dry_run: bool = False) -> None:
        self.path = path
        self.dry_run = dry_run  # a dry run plans: every entry is born "planned" and never made
        self.entries: list[Entry] = []
        self._lock = threading.RLock()
        self._within: int | None = None

    def record(self, change: Action, inverse: Action) -> Entry:
        """Note a change about to be made; call `applied(entry)` once it has been.

        In a dry run the entry is "planned": the caller must check `entry.planned` and not make it.
        """
        with self._lock:
            entry = Entry(len(self.entries) + 1, change, inverse, state="planned" if self.dry_run else "pending",
                          within=self._within)
            self.entries.append(entry)
            self._persist()
            return entry

    @contextmanager
    def inside(self, container: Entry) -> Iterator[None]:
        """Changes recorded in this block live inside `container`'s change (e.g. the failover stack)."""
        with self._lock:
            previous, self._within = self._within, container.id
        try:
            yield
        finally:
            with self._lock:
                self._within = previous

    def applied(self, entry: Entry) -> None:
        with self._lock:
            if entry.state == "planned":
                return
            entry.state, entry.applied_at = "applied", time.time()
            self._persist()

    def settled(self, entry: Entry) -> None:
        """The drill itself carried out the inverse (e.g. Phase 3 restored the node group)."""
        with self._lock:
            if entry.state == "planned":
                return
            entry.state, entry.undone_at = "undone", time.time()
            self._persist()

    def outstanding(self) -> list[Entry]:
        """Changes made (or perhaps made) and not undone: what an unwind carries out."""
        with self._lock:
            return [e for e in self.entries if e.state in ("pending", "applied", "undo_failed")]

    def in_effect(self) -> list[Entry]:
        """Outstanding changes, and in a dry run the planned ones: what later steps build on."""
        with self._lock:
            return [e for e in self.entries if e.state in ("pending", "applied", "undo_failed", "planned")]

    def plan(self) -> list[dict[str, Any]]:
        """The planned changes in order, each with its inverse (a dry run's output)."""
        with self._lock:
            return [
                {"id": e.id, "change": e.change.description, "op": e.change.op, "inverse": e.inverse.description}
                for e in self.entries if e.state == "planned"
            ]

    def unwind(self, execute: Executor) -> list[tuple[Entry, str]]:
        """Carry out outstanding inverses newest first; return (entry, error) for each failure.

        A change inside another (`within`) needs no inverse of its own once its container is undone
        (the stack, and the cluster in it, are gone); and when its own inverse fails because the
        container is already half gone, the container's inverse, which runs later, settles it.
        """
        failures: list[tuple[Entry, str]] = []
        waiting: dict[int, list[Entry]] = {}  # container id -> entries its inverse will settle
        by_id = {e.id: e for e in self.entries}
        for entry in reversed(self.outstanding()):
            container = by_id.get(entry.within) if entry.within is not None else None
            if container is not None and container.state == "undone":
                self._undone(entry, f"removed with #{container.id} ({container.change.description})")
                continue
            try:
                execute(entry.inverse)
            except Exception as e:  # noqa: BLE001 — one failing inverse must not strand the others
                with self._lock:
                    entry.state, entry.error = "undo_failed", f"{type(e).__name__}: {e}"
                    self._persist()
                if container is not None and container.state in ("pending", "applied", "undo_failed"):
                    waiting.setdefault(container.id, []).append(entry)
                else:
                    failures.append((entry, entry.error))
                continue
            self._undone(entry)
            for inner in waiting.pop(entry.id, []):
                self._undone(inner, f"removed with #{entry.id} ({entry.change.description}); "
                                    f"its own inverse had failed: {inner.error}")
        for inner_entries in waiting.values():  # their container's inverse failed too
            failures.extend((e, str(e.error)) for e in inner_entries)
        return failures

    def _undone(self, entry: Entry, note: str | None = None) -> None:
        with self._lock:
            entry.state, entry.undone_at, entry.error, entry.note = "undone", time.time(), None, note
            self._persist()

    def to_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(e) for e in self.entries]

    def _persist(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "entries": self.to_list()}, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)

    @classmethod
    def load(cls, path: Path) -> Ledger:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        ledger = cls(path)
        for d in data.get("entries", []):
            ledger.entries.append(
                Entry(
                    id=d["id"], change=Action(**d["change"]), inverse=Action(**d["inverse"]), state=d["state"],
                    recorded_at=d["recorded_at"], applied_at=d.get("applied_at"),
                    undone_at=d.get("undone_at"), error=d.get("error"), within=d.get("within"), note=d.get("note"),
                )
            )
        return ledger
