"""What restoring the newest backup needs that does not need the database server, done while
Terraform creates the server.

Azure MySQL takes minutes to create (runbook: 8-10 min) and the data-restore RTO runs from the fault,
so nothing the restore can do without the server should wait for it: the drill's egress address (for
the server's firewall rule) and the backup itself (download from Blob, gunzip, integrity checks) are
fetched in the background while the data tier is applied. The lab's dump is small (it downloads in
≈ 0.01 s): most of what this moved off the lab's path was the egress lookup; a production-sized dump's
download and gunzip (seconds to minutes) would otherwise sit on the data-restore RTO's critical path.
"""
from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any


class RestorePrep:
    """A background fetch of the egress address and the backup; each result re-raises its own error
    where it is used, in the step that needs it (as if fetched there)."""

    def __init__(self, backup_store: Any, backup: Any, egress: Any) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="dr-drill-restore-", ignore_cleanup_errors=True)
        self._store, self._backup, self._egress = backup_store, backup, egress
        self._results: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, name="restore-prep", daemon=True)

    def start(self) -> RestorePrep:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._results["address"] = self._egress()
        except Exception as e:  # noqa: BLE001 - re-raised by address()
            self._results["address_error"] = e
        t0 = time.monotonic()
        try:
            self._results["sql"] = self._store.download(self._backup, Path(self._tmp.name) / "backup.sql")
            self._results["download_seconds"] = round(time.monotonic() - t0, 3)
        except Exception as e:  # noqa: BLE001 - re-raised by sql()
            self._results["sql_error"] = e

    def _joined(self, timeout: float) -> dict[str, Any]:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"fetching the backup {self._backup.name} and the egress address took over {timeout:.0f}s")
        return self._results

    def address(self, timeout: float = 600.0) -> str:
        r = self._joined(timeout)
        if "address_error" in r:
            raise r["address_error"]
        return str(r["address"])

    def sql(self, timeout: float = 600.0) -> Path:
        """The decompressed, checked dump (in a directory close() removes)."""
        r = self._joined(timeout)
        if "sql_error" in r:
            raise r["sql_error"]
        return Path(r["sql"])

    @property
    def download_seconds(self) -> float | None:
        return self._results.get("download_seconds")

    def close(self) -> None:
        """Remove the dump: after the restore, or when the drill fails before it."""
        self._thread.join(60.0)
        self._tmp.cleanup()
