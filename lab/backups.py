"""The seeds' backup job (an EC2 cron in the design) in the lab: mysqldump | gzip -> Azure Blob.

Every interval (300 s in the design's test setting, divided by the lab's time scale) it dumps the
primary database over TCP, gzips it and uploads `backups/backup-YYYYMMDD-HHMMSS.sql.gz` to the
backup container, named after the dump's START in UTC like the seeds' files. Each upload and each
failure is a lab event: the ground truth the drill's RPO measurement is checked against.

The schedule is cron's, as the design has it (`*/5 * * * *`, multicloud-infra-design.md): runs at
the multiples of the interval on the wall clock, not at "lab start + k intervals". So a drill
started at any moment meets the backup cycle at any phase, as it would in production, instead of
always a few seconds after a backup the lab took at start. For the same reason the lab's first
backup, taken at start so that the lab always has one, stands for the last scheduled backup
before the lab started (`start(first_as_of=...)`): the database then was the seed, unchanged until
the lab started, so that dump is what the backup of that slot held; its metadata and event say
when it was really dumped (`lab_dumped_at`).

Names have whole seconds, so the job never starts two dumps in the same UTC second: a dump that
would collide waits for the next second (an interval under 1 s is therefore effectively 1 s).
Uploads never overwrite, so an existing blob of the same name (another job) fails loudly instead.
"""
from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from typing import IO

from azure.core.exceptions import AzureError
from azure.storage.blob import ContainerClient, ContentSettings

from lab.events import EventLog

PREFIX = "backups/"
DUMP_TRAILER = b"-- Dump completed"
CHUNK = 1 << 16
DUMP_TIMEOUT = 600.0


class BackupError(RuntimeError):
    """A dump or upload failed (the message carries mysqldump's stderr, never the password)."""


def blob_name(started: float, prefix: str = PREFIX) -> str:
    return f"{prefix}backup-{datetime.fromtimestamp(started, UTC):%Y%m%d-%H%M%S}.sql.gz"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")


def mysqldump_executable() -> str:
    found = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    if not found:
        raise BackupError("neither mariadb-dump nor mysqldump is installed")
    return found


class BackupJob:
    def __init__(
        self,
        mysql_host: str,
        mysql_port: int,
        user: str,
        password: str,
        database: str,
        connection_string: str,
        container: str,
        interval_seconds: float,
        events: EventLog | None,
        prefix: str = PREFIX,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be > 0")
        self.mysql_host = mysql_host
        self.mysql_port = int(mysql_port)
        self.user = user
        self.database = database
        self.container_name = container
        self.interval = float(interval_seconds)
        self.events = events
        self.prefix = prefix
        self._password = password
        self._container = ContainerClient.from_connection_string(connection_string, container)
        self._run_lock = threading.Lock()  # one dump at a time (the thread and a manual run_once)
        self._last_second: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.uploaded: list[str] = []
        self.failures = 0

    def __repr__(self) -> str:
        # No password or connection string (it holds the account key): reprs reach logs and reports.
        return (
            f"BackupJob(mysql={self.mysql_host}:{self.mysql_port}, user={self.user!r}, database={self.database!r}, "
            f"container={self.container_name!r}, interval={self.interval})"
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, require_first: bool = True, first_as_of: float | None = None) -> BackupJob:
        """Take a first backup now (so the lab always has one), then one per slot of the schedule.

        `require_first`: raise if that first backup fails (a lab without a backup can't drill a
        restore); otherwise the failure is recorded and retried on the schedule.
        `first_as_of`: the past slot (epoch seconds) the first backup stands for, when the database
        has not changed since then (the lab at start: see the module docstring).
        """
        if self._thread is not None:
            return self
        try:
            self.run_once(as_of=first_as_of)
        except BackupError:
            if require_first:
                raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="backup-job", daemon=True)
        self._thread.start()
        return self

    def last_slot(self, now: float | None = None) -> float:
        """The schedule's latest slot at or before `now` (a multiple of the interval on the wall clock)."""
        now = time.time() if now is None else now
        return (now // self.interval) * self.interval

    def stop(self, timeout: float | None = None) -> None:
        """Stop the schedule and wait for a dump in progress to finish. Idempotent."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout if timeout is not None else DUMP_TIMEOUT + 60)
        self._thread = None

    def _loop(self) -> None:
        slot = self.last_slot() + self.interval
        while not self._stop.wait(max(0.0, slot - time.time())):
            if time.time() < slot:  # woke a hair early (the wait runs on another clock): not yet
                continue
            try:
                self.run_once()
            except BackupError:
                pass  # recorded by run_once; the next slot is the retry
            except Exception as e:  # noqa: BLE001 — never let the schedule die silently: any failure is recorded
                self._record_failure(None, f"{type(e).__name__}: {e}")
            # A dump that overran the next slots skips them (as an overlap-guarded cron job does);
            # the slots never drift.
            slot = max(slot + self.interval, self.last_slot() + self.interval)

    # -- one backup --------------------------------------------------------------------------------

    def run_once(self, as_of: float | None = None) -> str:
        """Dump, gzip and upload one backup now; return its blob name. Raises BackupError (recorded).

        `as_of`: name and stamp the backup for that earlier instant (the database has not changed
        since); the real dump time is kept as `lab_dumped_at`.
        """
        with self._run_lock:
            dumped = self._claim_second()
            started = dumped if as_of is None else min(as_of, dumped)
            try:
                with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
                    raw_bytes = self._dump_gzipped(spool)
                    finished = time.time()
                    size = spool.tell()
                    spool.seek(0)
                    name = blob_name(started, self.prefix)
                    self._container.upload_blob(
                        name,
                        spool,
                        length=size,
                        overwrite=False,
                        metadata={
                            "dump_started_at": _iso(started),
                            "dump_finished_at": _iso(finished),
                            "database": self.database,
                            "uncompressed_bytes": str(raw_bytes),
                            **({} if started == dumped else {"lab_dumped_at": _iso(dumped)}),
                        },
                        content_settings=ContentSettings(content_type="application/gzip"),
                    )
            except BackupError as e:
                self._record_failure(started, str(e))
                raise
            except AzureError as e:
                msg = f"upload failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                self._record_failure(started, msg)
                raise BackupError(msg) from None
            self.uploaded.append(name)
            if self.events is not None:
                self.events.record(
                    "backup", "backup uploaded", blob=name, started=started, finished=finished, bytes=size,
                    uncompressed_bytes=raw_bytes, database=self.database,
                    **({} if started == dumped else {"dumped_at": dumped}),
                )
            return name

    def _claim_second(self) -> float:
        """The dump's start time, in a UTC second no earlier dump of this job used (names are per second)."""
        now = time.time()
        if self._last_second is not None and int(now) <= self._last_second:
            time.sleep(self._last_second + 1 - now)
            now = max(time.time(), float(self._last_second + 1))
        self._last_second = int(now)
        return now

    def _dump_gzipped(self, out: IO[bytes]) -> int:
        """mysqldump into gzip(out); return the uncompressed size. Raises BackupError on any failure."""
        argv = [
            mysqldump_executable(),
            "--no-defaults",  # must be first: keeps /etc/mysql and ~/.my.cnf out
            "--protocol=TCP",
            f"--host={self.mysql_host}",
            f"--port={self.mysql_port}",
            f"--user={self.user}",
            "--single-transaction",  # consistent InnoDB snapshot without locking the app out
            "--routines",
            "--triggers",
            # MySQL 8.0.21+ needs PROCESS for tablespace info; an app user lacks it. Harmless on MariaDB.
            "--no-tablespaces",
            "--default-character-set=utf8mb4",
            # No --databases: a table-level dump restores into whatever the target database is called.
            self.database,
        ]
        env = {**os.environ, "MYSQL_PWD": self._password}  # never argv: `ps` shows argv to everyone
        raw = 0
        tail = b""
        with tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env)
            except OSError as e:
                raise BackupError(f"mysqldump could not start: {e}") from None
            assert proc.stdout is not None
            # A hung dump (server stalled mid-stream) must not stall the schedule forever.
            watchdog = threading.Timer(DUMP_TIMEOUT, proc.kill)
            watchdog.daemon = True
            watchdog.start()
            try:
                with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as gz:
                    while chunk := proc.stdout.read(CHUNK):
                        gz.write(chunk)
                        raw += len(chunk)
                        tail = (tail + chunk)[-256:]
                rc = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            finally:
                watchdog.cancel()
                proc.stdout.close()
            err.seek(0)
            stderr = err.read().decode("utf-8", "replace").strip()
        if self._password:
            stderr = stderr.replace(self._password, "***")
        if rc != 0:
            raise BackupError(f"mysqldump exited {rc}: {stderr[-1000:]}")
        if DUMP_TRAILER not in tail:  # exit 0 but cut short would be a silent bad backup
            raise BackupError(f"mysqldump output has no completion trailer: {stderr[-1000:]}")
        return raw

    def _record_failure(self, started: float | None, error: str) -> None:
        self.failures += 1
        if self.events is not None:
            self.events.record("backup", "backup failed", started=started, error=error, database=self.database)
