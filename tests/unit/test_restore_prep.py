"""steps/restore_prep.py: the backup and the egress address fetched while the server is created."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from steps.restore_prep import RestorePrep


@dataclass
class _Backup:
    name: str = "backups/backup-20261201-000000.sql.gz"


class _Store:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail, self.release = fail, threading.Event()

    def download(self, backup: _Backup, dest: Path) -> Path:
        assert self.release.wait(5), "the test never let the download finish"
        if self.fail:
            raise self.fail
        dest.write_text("-- Dump completed\n")
        return dest


def test_the_backup_and_address_arrive_in_the_background_and_the_dump_is_removed_after() -> None:
    store = _Store()
    prep = RestorePrep(store, _Backup(), lambda: "203.0.113.7").start()
    prep._thread.join(0.2)
    assert prep._thread.is_alive()
    store.release.set()
    assert prep.address() == "203.0.113.7"
    sql = prep.sql()
    assert sql.read_text() == "-- Dump completed\n" and prep.download_seconds is not None
    prep.close()
    assert not sql.exists() and not sql.parent.exists()


def test_each_failure_is_raised_where_its_result_is_used() -> None:
    store = _Store(fail=RuntimeError("ServerBusy"))
    store.release.set()

    def no_echo() -> str:
        raise ConnectionError("no echo")

    prep = RestorePrep(store, _Backup(), no_echo).start()
    try:
        with pytest.raises(ConnectionError, match="no echo"):
            prep.address()
        with pytest.raises(RuntimeError, match="ServerBusy"):
            prep.sql()
    finally:
        prep.close()


def test_a_fetch_that_outlasts_its_wait_is_named() -> None:
    store = _Store()
    prep = RestorePrep(store, _Backup(), lambda: "203.0.113.7").start()
    try:
        with pytest.raises(TimeoutError, match=r"fetching the backup backups/backup-20261201-000000\.sql\.gz"):
            prep.sql(timeout=0.2)
    finally:
        store.release.set()
        prep.close()
