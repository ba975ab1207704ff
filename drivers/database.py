"""MySQL through pymysql and the mysql/mariadb client: row counts, checksums, restores, canary rows.

The same code talks to the lab's MariaDB and to a real MySQL (RDS, Azure Flexible Server): TCP
only, the password in MYSQL_PWD for the command-line client (never argv, which `ps` shows), and
never in a repr or an error message (reprs land in pytest output and Allure step parameters).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pymysql

PETCLINIC_TABLES = ("owners", "pets", "types", "visits", "vets", "specialties", "vet_specialties")
CANARY_TABLE = "dr_canary"

# MariaDB dumps (10.5.25+/10.11.8+) start with a sandbox-mode line, `/*!999999\- ... */` in the first
# releases and `/*M!999999\- ... */ ` (trailing space) since; MySQL clients reject it ("Unknown command '\-'").
SANDBOX_LINE = re.compile(rb"^/\*M?!999999\\- enable the sandbox mode \*/\s*$")
_IDENT = re.compile(r"^[A-Za-z0-9_$]{1,64}$")
ER_NO_SUCH_TABLE = 1146


class DatabaseError(RuntimeError):
    """A restore or query failed; the message never carries the password."""


def _ident(name: str) -> str:
    """A quoted identifier; names are validated, never interpolated raw."""
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return f"`{name}`"


class Database:
    """One MySQL database reached over TCP.

    `ssl_ca`: a CA bundle to require verified TLS (Azure Flexible Server enforces TLS by default;
    the MariaDB client does not use TLS unless asked). None = plain TCP, as in the lab.
    """

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        database: str,
        *,
        ssl_ca: str | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = int(port)
        self.user = user
        self.password = password
        self.database = database
        self.ssl_ca = ssl_ca
        self.connect_timeout = connect_timeout

    def __repr__(self) -> str:
        # No password: reprs end up in logs, pytest output and Allure step parameters.
        return f"Database(host={self.host!r}, port={self.port}, user={self.user!r}, database={self.database!r})"

    def connect(self, read_timeout: float | None = 60.0) -> pymysql.connections.Connection:
        """A new autocommit connection to the database."""
        kw: dict[str, Any] = {}
        if self.ssl_ca:
            kw["ssl"] = {"ca": self.ssl_ca}  # with a CA pymysql verifies the certificate and host name
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=self.connect_timeout,
            read_timeout=read_timeout,
            write_timeout=read_timeout,
            **kw,
        )

    def tables(self) -> list[str]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW TABLES")
                return sorted(r[0] for r in cur.fetchall())
        finally:
            conn.close()

    def row_counts(self, tables: Iterable[str] = PETCLINIC_TABLES) -> dict[str, int]:
        """Exact row counts (COUNT(*); information_schema's are estimates for InnoDB)."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                out = {}
                for t in tables:
                    cur.execute(f"SELECT COUNT(*) FROM {_ident(t)}")
                    row = cur.fetchone()
                    if row is None:
                        raise RuntimeError(f"SELECT COUNT(*) FROM {t} returned no row")
                    out[t] = int(row[0])
                return out
        finally:
            conn.close()

    def checksum(self, tables: Iterable[str] = PETCLINIC_TABLES) -> dict[str, int | None]:
        """CHECKSUM TABLE per table; None for a missing table.

        Comparable only between servers of the same kind and version (row format and type
        encoding feed the checksum): use it lab-to-lab or MySQL-to-MySQL, row counts otherwise.
        """
        names = list(tables)
        if not names:
            return {}
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("CHECKSUM TABLE " + ", ".join(_ident(t) for t in names))
                rows = cur.fetchall()
        finally:
            conn.close()
        # Rows come back as ("db.table", checksum) in the order asked.
        by_name = {str(r[0]).split(".", 1)[-1]: (None if r[1] is None else int(r[1])) for r in rows}
        return {t: by_name.get(t) for t in names}

    def restore(self, sql_path: Path, timeout: float = 3600.0) -> None:
        """Load a mysqldump file into this database with the mysql/mariadb client.

        The dump must be table-level (no CREATE DATABASE/USE), so it lands in `self.database`
        whatever the source database was called.
        """
        client = shutil.which("mariadb") or shutil.which("mysql")
        if client is None:
            raise DatabaseError("neither the mariadb nor the mysql client is installed")
        argv = [
            client,
            "--no-defaults",  # must be first: keeps /etc/mysql and ~/.my.cnf out
            "--protocol=TCP",
            f"--host={self.host}",
            f"--port={self.port}",
            f"--user={self.user}",
            "--default-character-set=utf8mb4",
            "--batch",
        ]
        if self.ssl_ca:
            argv += [f"--ssl-ca={self.ssl_ca}", *_verify_flags(client)]
        argv.append(self.database)
        env = {**os.environ, "MYSQL_PWD": self.password}
        with open(sql_path, "rb", buffering=0) as f:
            head = f.read(256)
            first = head.split(b"\n", 1)[0] + b"\n" if b"\n" in head else head
            # Skip MariaDB's sandbox line by offset: the client reads the file itself (no copy in
            # memory). os.lseek, not f.seek: the child shares the OS file position, not Python's buffer.
            os.lseek(f.fileno(), len(first) if SANDBOX_LINE.match(first) else 0, os.SEEK_SET)
            try:
                res = subprocess.run(argv, stdin=f, env=env, capture_output=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise DatabaseError(f"restore into {self!r} did not finish within {timeout:.0f}s") from None
        if res.returncode != 0:
            err = res.stderr.decode("utf-8", "replace").strip()
            if self.password:
                err = err.replace(self.password, "***")
            raise DatabaseError(f"restore of {Path(sql_path).name} into {self!r} failed (exit {res.returncode}): {err[-2000:]}")


def _verify_flags(client: str) -> list[str]:
    """Certificate verification flags differ: MariaDB's client vs Oracle's mysql."""
    try:
        version = subprocess.run([client, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        version = ""
    return ["--ssl-verify-server-cert"] if "MariaDB" in version else ["--ssl-mode=VERIFY_IDENTITY"]


def ensure_canary_table(db: Database, table: str = CANARY_TABLE) -> None:
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {_ident(table)} ("
                " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
                " written_at DOUBLE NOT NULL,"  # wall clock (time.time()): comparable with backup times
                " mono DOUBLE NOT NULL,"  # writer's monotonic clock: spacing without NTP steps
                " note VARCHAR(255) NULL"
                ") ENGINE=InnoDB"
            )
    finally:
        conn.close()


def newest_canary(db: Database, table: str = CANARY_TABLE) -> float | None:
    """The newest canary's written_at in `db`; None when the table is missing or empty."""
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            try:
                cur.execute(f"SELECT MAX(written_at) FROM {_ident(table)}")
            except pymysql.err.ProgrammingError as e:
                if e.args and e.args[0] == ER_NO_SUCH_TABLE:
                    return None
                raise
            row = cur.fetchone()
            return None if row is None or row[0] is None else float(row[0])
    finally:
        conn.close()


class CanaryWriter:
    """Writes one row per interval into the primary, so a restore shows exactly which writes it lost.

    Fixed-rate schedule (missed slots are skipped, not bunched up); a failed write (the primary is
    down during a drill) is counted and retried on the next slot over a fresh connection.
    `last_written()` is the written_at of the last insert the server acknowledged.
    """

    def __init__(self, db: Database, interval_seconds: float, table: str = CANARY_TABLE, note: str = "dr-drill canary") -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be > 0")
        _ident(table)
        self.db = db
        self.interval = float(interval_seconds)
        self.table = table
        self.note = note
        self.writes = 0
        self.failures = 0
        self.last_error: str | None = None
        self._last: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: pymysql.connections.Connection | None = None

    def __repr__(self) -> str:
        return f"CanaryWriter(db={self.db!r}, interval={self.interval}, table={self.table!r}, writes={self.writes})"

    def start(self) -> CanaryWriter:
        """Create the table if needed (errors surface here, not in the thread) and start writing."""
        if self._thread is not None:
            return self
        ensure_canary_table(self.db, self.table)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="canary-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop writing and wait for an in-flight insert to finish. Idempotent."""
        self._stop.set()
        t = self._thread
        if t is not None:
            t.join(timeout if timeout is not None else max(10.0, 2 * self.interval + self.db.connect_timeout))
        self._close()

    def last_written(self) -> float | None:
        with self._lock:
            return self._last

    def write_once(self) -> float:
        """Insert one canary row now; return its written_at."""
        if self._conn is None:
            self._conn = self.db.connect(read_timeout=max(2.0, 2 * self.interval))
        t, mono = time.time(), time.monotonic()
        with self._conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {_ident(self.table)} (written_at, mono, note) VALUES (%s, %s, %s)",
                (t, mono, self.note),
            )
        with self._lock:
            self._last = t
            self.writes += 1
        return t

    def _run(self) -> None:
        next_due = time.monotonic()
        while not self._stop.is_set():
            try:
                self.write_once()
            except Exception as e:  # noqa: BLE001 — the primary may be down: count it, reconnect next slot
                self.failures += 1
                self.last_error = f"{type(e).__name__}: {e}"
                self._close()
            next_due += self.interval
            now = time.monotonic()
            if next_due <= now:  # fell behind (slow connect): skip the missed slots
                next_due += ((now - next_due) // self.interval + 1) * self.interval
            self._stop.wait(next_due - now)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except pymysql.err.Error:  # PyMySQL's close() raises only 'Already closed'
                pass
