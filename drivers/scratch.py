"""The scratch database readiness restores the newest backup into, and table fingerprints to compare.

Only readiness writes here, and only into its scratch database: `empty` drops every table and view
in it (before a restore, and again when the run ends). Fingerprints compare a restored table with
the primary's: CHECKSUM TABLE when both servers are the same kind and version (the checksum depends
on row format and type encoding), otherwise a SHA-256 over the rows read in primary-key order.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from drivers.database import Database

_IDENT = re.compile(r"^[A-Za-z0-9_$]{1,64}$")


def _q(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return f"`{name}`"


def same_database(a: Database, b: Database) -> bool:
    """Whether two handles name the same database on the same server (as far as the address tells)."""
    loopback = {"127.0.0.1", "localhost", "::1"}
    host_a, host_b = a.host.lower(), b.host.lower()
    same_host = host_a == host_b or (host_a in loopback and host_b in loopback)
    return same_host and a.port == b.port and a.database == b.database


def empty(db: Database) -> list[str]:
    """Drop every table and view of `db` (foreign keys off for the session); return what was dropped."""
    dropped = []
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION FOREIGN_KEY_CHECKS = 0")
            cur.execute(
                "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = DATABASE()"
            )
            for name, kind in cur.fetchall():
                cur.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} IF EXISTS {_q(name)}")
                dropped.append(name)
    finally:
        conn.close()
    return sorted(dropped)


def server_version(db: Database) -> str:
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            row = cur.fetchone()
            if row is None:
                raise RuntimeError("SELECT VERSION() returned no row")
            return str(row[0])
    finally:
        conn.close()


def row_digests(db: Database, tables: Iterable[str]) -> dict[str, str]:
    """SHA-256 of each table's rows, read ordered by every column (stable across servers and versions)."""
    out = {}
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            for t in tables:
                cur.execute(f"SELECT * FROM {_q(t)} LIMIT 0")
                ncols = len(cur.description or ())
                order = ", ".join(str(i) for i in range(1, ncols + 1))
                cur.execute(f"SELECT * FROM {_q(t)} ORDER BY {order}")
                h = hashlib.sha256()
                for row in cur.fetchall():
                    h.update(repr(tuple(row)).encode("utf-8"))
                    h.update(b"\n")
                out[t] = h.hexdigest()
    finally:
        conn.close()
    return out


def fingerprints(primary: Database, restored: Database, tables: list[str]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(method, primary's, restored's) fingerprints of `tables`: CHECKSUM TABLE if the servers match."""
    if server_version(primary) == server_version(restored):
        return "CHECKSUM TABLE", dict(primary.checksum(tables)), dict(restored.checksum(tables))
    return "sha256 of rows", row_digests(primary, tables), row_digests(restored, tables)
