"""The MySQL backups in Azure Blob Storage (container mysql-backups, backups/backup-YYYYMMDD-HHMMSS.sql.gz).

Which backup is newest is decided by the timestamp in its name (the dump's start, UTC, as the
backup job names them), not by Last-Modified: Azurite reports Last-Modified to the second, a
re-upload or copy changes it, and uploads need not finish in dump order. Where the job also
stored `dump_started_at` metadata (the lab's job does), that sub-second time refines ties and gaps.
"""
from __future__ import annotations

import builtins
import gzip
import itertools
import os
import re
import tempfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient, ContainerClient

from drill.rpo import BackupTimes

DEFAULT_CONTAINER = "mysql-backups"
DEFAULT_PREFIX = "backups/"
NAME_TIME = re.compile(r"backup-(\d{8})-(\d{6})")
# mysqldump's last line (with comments on, the default): without it the dump was cut short. A
# `mysqldump | gzip` pipeline whose dump died still yields a *valid* gzip, so gzip alone can't tell.
DUMP_TRAILER = b"-- Dump completed"
CHUNK = 1 << 20
# Names carry whole seconds: spacing measured from them is uncertain by up to this much.
NAME_RESOLUTION_SECONDS = 1.0
# Blob's Last-Modified is an RFC 1123 date, whole seconds: an upload finished within this after it.
LAST_MODIFIED_RESOLUTION_SECONDS = 1.0


class BackupError(RuntimeError):
    """A backup is missing, unreadable or incomplete."""


class NoBackupError(BackupError):
    pass


def parse_name_time(name: str) -> datetime | None:
    """The UTC time in `backup-YYYYMMDD-HHMMSS`, or None if the name doesn't carry one."""
    m = NAME_TIME.search(name.rsplit("/", 1)[-1])
    if not m:
        return None
    try:
        return datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _parse_iso(s: str | None) -> datetime | None:
    if not s:
        return None
    try:
        d = datetime.fromisoformat(s)
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Backup:
    name: str
    last_modified: datetime
    size: int
    taken_at: datetime  # from the name (dump start, UTC, whole seconds); else last_modified
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def started_at(self) -> datetime:
        """The dump's start as precisely as known: `dump_started_at` metadata, else taken_at."""
        return self._metadata_start() or self.taken_at

    @property
    def precise(self) -> bool:
        """True when started_at comes from sub-second metadata rather than the name."""
        return self._metadata_start() is not None

    def _metadata_start(self) -> datetime | None:
        t = _parse_iso(self.metadata.get("dump_started_at"))
        # Trust the metadata only if it agrees with the name (a renamed or copied blob keeps stale metadata).
        if t is not None and abs((t - self.taken_at).total_seconds()) < 2 * NAME_RESOLUTION_SECONDS:
            return t
        return None

    @property
    def name_has_time(self) -> bool:
        return parse_name_time(self.name) is not None

    @property
    def completed_by(self) -> datetime:
        """The upload had finished by then (Last-Modified is truncated to the second)."""
        return self.last_modified + timedelta(seconds=LAST_MODIFIED_RESOLUTION_SECONDS)

    def times(self) -> BackupTimes:
        """Start (consistency point) and completion, as drill.rpo reasons about them."""
        return BackupTimes(self.name, self.started_at.timestamp(), self.completed_by.timestamp())


class BackupStore:
    """The backup container, read-only except for what tests upload themselves."""

    def __init__(self, container_client: ContainerClient, prefix: str = DEFAULT_PREFIX) -> None:
        self.container = container_client
        self.prefix = prefix

    def __repr__(self) -> str:
        # The client's URL holds no key (shared keys live in its credential); a SAS would: leave it out.
        return f"BackupStore(container={self.container.container_name!r}, prefix={self.prefix!r})"

    @classmethod
    def from_connection_string(
        cls, connection_string: str, container: str = DEFAULT_CONTAINER, prefix: str = DEFAULT_PREFIX
    ) -> BackupStore:
        return cls(ContainerClient.from_connection_string(connection_string, container), prefix)

    @classmethod
    def from_account(
        cls, account_url: str, credential: Any, container: str = DEFAULT_CONTAINER, prefix: str = DEFAULT_PREFIX
    ) -> BackupStore:
        """`credential`: an account key, {"account_name", "account_key"}, a SAS or a TokenCredential."""
        return cls(BlobServiceClient(account_url, credential=credential).get_container_client(container), prefix)

    def list(self, prefix: str | None = None) -> list[Backup]:
        """Backups under `prefix` (default: the store's), oldest to newest by name timestamp."""
        out = []
        for b in self.container.list_blobs(name_starts_with=self.prefix if prefix is None else prefix, include=["metadata"]):
            if b.name.endswith("/"):  # folder placeholder (HNS accounts)
                continue
            lm = b.last_modified if b.last_modified.tzinfo else b.last_modified.replace(tzinfo=UTC)
            out.append(Backup(b.name, lm, int(b.size or 0), parse_name_time(b.name) or lm, dict(b.metadata or {})))
        out.sort(key=_order)
        return out

    def latest(self, prefix: str | None = None) -> Backup:
        backups = self.list(prefix)
        if not backups:
            where = f"{self.container.container_name}/{self.prefix if prefix is None else prefix}"
            raise NoBackupError(f"no backups under {where!r}: the backup job has not uploaded any (or they expired)")
        return backups[-1]

    def download(self, backup: Backup, dest: Path, require_complete: bool = True) -> Path:
        """Download and decompress to `dest` (a .sql file); raise BackupError if it is corrupt.

        Checks gzip integrity (CRC and length: a truncated upload fails here) and, unless
        `require_complete=False`, mysqldump's completion trailer. `dest` appears only when valid.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".backup-", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w+b") as raw:
                self.container.download_blob(backup.name).readinto(raw)
                raw.seek(0)
                magic = raw.read(2)
                raw.seek(0)
                is_gzip = magic == b"\x1f\x8b"
                if backup.name.endswith(".gz") and not is_gzip:
                    raise BackupError(f"{backup.name} is not gzip data (starts {magic!r})")
                with open(str(tmp) + ".sql", "wb") as out:
                    tail = _decompress(raw, out, backup.name) if is_gzip else _copy(raw, out)
            if require_complete and DUMP_TRAILER not in tail:
                raise BackupError(f"{backup.name} is a truncated dump: no {DUMP_TRAILER.decode()!r} trailer")
            os.replace(str(tmp) + ".sql", dest)
            return dest
        finally:
            tmp.unlink(missing_ok=True)
            Path(str(tmp) + ".sql").unlink(missing_ok=True)

    def gaps(self, interval_seconds: float, prefix: str | None = None) -> builtins.list[tuple[Backup, Backup, float]]:
        """Consecutive backups further apart than 1.5 x the interval: (earlier, later, seconds apart).

        Spacing comes from the dump start times; when a pair has only whole-second names, one
        second of slack is added so a 1 s schedule isn't flagged for rounding.
        """
        backups = [b for b in self.list(prefix) if b.name_has_time or b.precise]
        out = []
        for a, b in itertools.pairwise(backups):
            dt = (b.started_at - a.started_at).total_seconds()
            slack = 0.0 if (a.precise and b.precise) else NAME_RESOLUTION_SECONDS
            if dt > interval_seconds * 1.5 + slack:
                out.append((a, b, dt))
        return out


def _order(b: Backup) -> tuple[datetime, datetime, str]:
    return (b.taken_at, b.started_at, b.name)


def _decompress(src: Any, out: Any, name: str) -> bytes:
    """Stream-decompress, returning the last bytes (for the trailer check)."""
    tail = b""
    try:
        with gzip.GzipFile(fileobj=src, mode="rb") as gz:
            while chunk := gz.read(CHUNK):
                out.write(chunk)
                tail = (tail + chunk)[-4096:]
    except (EOFError, OSError, zlib.error) as e:  # EOFError: truncated; BadGzipFile (OSError): CRC/length
        raise BackupError(f"{name} is corrupt: {type(e).__name__}: {e}") from None
    return tail


def _copy(src: Any, out: Any) -> bytes:
    tail = b""
    while chunk := src.read(CHUNK):
        out.write(chunk)
        tail = (tail + chunk)[-4096:]
    return tail
