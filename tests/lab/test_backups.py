"""The lab's backup job and the drill's backup/database drivers, against a real MariaDB and Azurite."""
from __future__ import annotations

import gzip
import itertools
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

import lab.backups as lab_backups
from drivers.backups import BackupError, BackupStore, NoBackupError, parse_name_time
from drivers.database import PETCLINIC_TABLES, CanaryWriter, Database, ensure_canary_table, newest_canary
from lab.azurite import Azurite
from lab.backups import BackupJob
from lab.events import EventLog
from lab.mariadb import MariaDB

pytestmark = pytest.mark.lab

SQL_DIR = Path(__file__).resolve().parents[2] / "lab" / "petclinic"
ACCOUNT = "bloberry01"
DB, DB_USER, DB_PASSWORD = "petclinic", "petclinic", "pc-backup-test-Pw-41c9"
NAME = re.compile(r"backups/backup-\d{8}-\d{6}\.sql\.gz")
SANDBOX = b"/*!999999\\- enable the sandbox mode */"  # the older form; 10.11.19 writes /*M!999999\- ... */
_seq = itertools.count(1)


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    db = MariaDB(tmp_path_factory.mktemp("mariadb"), "primary")
    db.start()
    try:
        db.create_database(DB, DB_USER, DB_PASSWORD)
        for f in ("schema.sql", "data.sql"):
            db.execute_script((SQL_DIR / f).read_text(), DB)
        yield db
    finally:
        db.cleanup()


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    az = Azurite(tmp_path_factory.mktemp("azurite"), ACCOUNT)
    az.start()
    try:
        yield az
    finally:
        az.stop()


@pytest.fixture
def container(azurite: Azurite) -> Iterator[ContainerClient]:
    """A fresh backup container per test (named like the seeds' one, plus a suffix)."""
    svc = BlobServiceClient.from_connection_string(azurite.connection_string)
    cc = svc.create_container(f"mysql-backups-{next(_seq)}")
    try:
        yield cc
    finally:
        cc.delete_container()


@pytest.fixture
def events(tmp_path: Path) -> Iterator[EventLog]:
    log = EventLog(tmp_path / "events.jsonl")
    yield log
    log.close()


@pytest.fixture
def source(mariadb: MariaDB) -> Database:
    return Database("127.0.0.1", mariadb.port, DB_USER, DB_PASSWORD, DB)


def new_database(mariadb: MariaDB, prefix: str, schema: bool = False) -> Database:
    """An empty database (the Azure MySQL stand-in) with its own user."""
    name = f"{prefix}_{next(_seq)}"
    password = f"pw-{name}-x9"
    mariadb.create_database(name, name, password)
    if schema:
        mariadb.execute_script((SQL_DIR / "schema.sql").read_text(), name)
    return Database("127.0.0.1", mariadb.port, name, password, name)


def job_for(db: Database, azurite: Azurite, container: ContainerClient, events: EventLog | None, interval: float = 300) -> BackupJob:
    return BackupJob(
        db.host, db.port, db.user, db.password, db.database,
        azurite.connection_string, container.container_name, interval, events,
    )


def store_for(azurite: Azurite, container: ContainerClient) -> BackupStore:
    return BackupStore.from_connection_string(azurite.connection_string, container.container_name)


def fake_dump(body: str = "INSERT INTO t VALUES (1);\n") -> bytes:
    return f"-- MariaDB dump\n{body}-- Dump completed on 2025-12-27  3:00:00\n".encode()


def upload(cc: ContainerClient, name: str, data: bytes, **kw: Any) -> None:
    cc.upload_blob(name, data, overwrite=True, **kw)


def test_run_once_uploads_a_named_gzip_that_restores(
    mariadb: MariaDB, azurite: Azurite, container: ContainerClient, events: EventLog, source: Database,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    argvs: list[list[str]] = []
    envs: list[dict[str, str]] = []
    real_popen = subprocess.Popen

    def spy(argv: list[str], *a: Any, **kw: Any) -> Any:
        argvs.append(list(argv))
        envs.append(dict(kw.get("env") or {}))
        return real_popen(argv, *a, **kw)

    monkeypatch.setattr(lab_backups.subprocess, "Popen", spy)
    job = job_for(source, azurite, container, events)
    before = time.time()
    name = job.run_once()
    after = time.time()
    monkeypatch.undo()

    # Named after the dump's start (UTC, whole seconds), as the seeds name them.
    assert NAME.fullmatch(name), name
    taken = parse_name_time(name)
    assert taken is not None and int(before) <= taken.timestamp() <= after
    md = container.get_blob_client(name).get_blob_properties().metadata
    started = datetime.fromisoformat(md["dump_started_at"]).timestamp()
    finished = datetime.fromisoformat(md["dump_finished_at"]).timestamp()
    assert before <= started <= finished <= after and int(started) == taken.timestamp()
    assert md["database"] == DB

    # The password travels in MYSQL_PWD, never in argv; the dump options are the design's.
    assert len(argvs) == 1 and not any(DB_PASSWORD in a for a in argvs[0])
    assert envs[0]["MYSQL_PWD"] == DB_PASSWORD
    assert {"--single-transaction", "--routines", "--triggers", "--protocol=TCP"} <= set(argvs[0])
    assert DB_PASSWORD not in repr(job) and azurite.key not in repr(job)

    data = container.download_blob(name).readall()
    assert data[:2] == b"\x1f\x8b"
    sql = gzip.decompress(data)
    assert b"CREATE TABLE `owners`" in sql and b"CREATE DATABASE" not in sql  # table-level: restores anywhere
    assert re.match(rb"/\*M?!999999\\- enable the sandbox mode \*/", sql)  # MariaDB's quirk that restore strips
    (ev,) = events.events("backup uploaded")
    assert ev.detail["blob"] == name and ev.detail["bytes"] == len(data)
    assert ev.detail["started"] == pytest.approx(started, abs=1e-5)

    store = store_for(azurite, container)
    latest = store.latest()
    assert latest.name == name and latest.size == len(data) and latest.precise
    sql_path = store.download(latest, tmp_path / "restore" / "petclinic.sql")
    assert sql_path.read_bytes() == sql

    target = new_database(mariadb, "azure_restore")
    target.restore(sql_path)
    counts = source.row_counts()
    assert set(counts) == set(PETCLINIC_TABLES) and all(n > 0 for n in counts.values())
    assert target.row_counts() == counts
    sums = source.checksum()
    assert all(v is not None for v in sums.values())
    assert target.checksum() == sums


def test_restore_failure_reports_client_stderr_without_password(mariadb: MariaDB, tmp_path: Path) -> None:
    target = new_database(mariadb, "broken_restore")
    bad = tmp_path / "bad.sql"
    bad.write_bytes(SANDBOX + b"\nCREATE TABLE x (id INT);\nTHIS IS NOT SQL;\n")
    with pytest.raises(Exception) as ei:
        target.restore(bad)
    msg = str(ei.value)
    assert "ERROR" in msg and "exit 1" in msg and target.password not in msg
    assert target.password not in repr(target)
    assert target.checksum(["x", "nope"]) == {"x": 0, "nope": None}


def test_restore_strips_the_sandbox_line_and_keeps_the_password_off_argv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a MySQL (not MariaDB) client would be fed, via a fake client that records its input."""
    import json
    import sys

    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "client.json"
    fake = bindir / "mariadb"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'pwd': os.environ.get('MYSQL_PWD'), 'stdin': sys.stdin.read()}}, open({str(record)!r}, 'w'))\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    for first in (b"/*M!999999\\- enable the sandbox mode */ \n", SANDBOX + b"\n", b""):
        dump = tmp_path / "dump.sql"
        dump.write_bytes(first + b"-- MariaDB dump\nCREATE TABLE t (id INT);\n")
        Database("db.example", 3306, "admin", "S3cret-pw", "petclinic").restore(dump)
        got = json.loads(record.read_text())
        assert got["stdin"] == "-- MariaDB dump\nCREATE TABLE t (id INT);\n"
        assert got["pwd"] == "S3cret-pw" and not any("S3cret-pw" in a for a in got["argv"])
        assert got["argv"][0] == "--no-defaults" and got["argv"][-1] == "petclinic"


def test_periodic_job_produces_backups_without_gaps(
    azurite: Azurite, container: ContainerClient, events: EventLog, source: Database
) -> None:
    # 1 s: names have whole seconds, so the job never runs two dumps in one second (see lab/backups.py).
    interval = 1.0
    job = job_for(source, azurite, container, events, interval)
    job.start()
    assert len(job.uploaded) == 1  # the first backup is taken before start() returns
    time.sleep(4.4)
    job.stop()
    job.stop()  # idempotent
    backups = store_for(azurite, container).list()
    names = [b.name for b in backups]
    assert len(backups) >= 5, names
    assert names == sorted(names) and len(set(names)) == len(names)
    assert names == job.uploaded
    assert store_for(azurite, container).gaps(interval) == []
    assert len(events.events("backup uploaded")) == len(backups) and not events.events("backup failed")
    # After the first (taken at start), on cron's grid: at the multiples of the interval, one interval apart.
    starts = [b.started_at.timestamp() for b in backups]
    assert all(abs(t - round(t / interval) * interval) < 0.3 for t in starts[1:]), starts
    spacing = [b - a for a, b in itertools.pairwise(starts[1:])]  # on the grid: from the second on
    assert all(0.7 < s < 1.3 for s in spacing), spacing
    assert 0 < starts[1] - starts[0] <= interval + 0.3


def test_the_first_backup_can_stand_for_the_last_slot_before_start(
    azurite: Azurite, container: ContainerClient, events: EventLog, source: Database
) -> None:
    """The lab's history: the first backup is stamped for the schedule's last slot (the database was
    unchanged since), and says when it was really dumped."""
    job = job_for(source, azurite, container, events, interval=10.0)
    now = time.time()
    slot = job.last_slot(now)
    assert slot <= now < slot + 10.0 and slot % 10.0 == 0
    job.start(first_as_of=slot)
    job.stop()
    (b,) = store_for(azurite, container).list()
    assert b.started_at.timestamp() == pytest.approx(slot) and b.precise
    assert datetime.fromisoformat(b.metadata["lab_dumped_at"]).timestamp() >= now
    (ev,) = events.events("backup uploaded")
    assert ev.detail["started"] == pytest.approx(slot) and ev.detail["dumped_at"] >= now


def test_failed_dump_is_recorded_and_retried_next_interval(
    mariadb: MariaDB, azurite: Azurite, container: ContainerClient, events: EventLog
) -> None:
    db = new_database(mariadb, "retry", schema=True)
    bot = Database(db.host, db.port, f"bot{next(_seq)}", "bot-pw-Secret-77", db.database)
    root = mariadb.connect()
    try:
        with root.cursor() as cur:
            cur.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (bot.user, bot.password))
        job = job_for(bot, azurite, container, events, interval=0.5)
        with pytest.raises(lab_backups.BackupError) as ei:
            job.start()  # a lab must not come up without its first backup
        assert "exited" in str(ei.value) and bot.password not in str(ei.value)
        failed = events.events("backup failed")
        assert len(failed) == 1 and bot.password not in str(failed[0].detail)

        job.start(require_first=False)
        time.sleep(0.8)
        assert len(events.events("backup failed")) >= 2 and not job.uploaded
        with root.cursor() as cur:
            cur.execute(f"GRANT ALL PRIVILEGES ON `{db.database}`.* TO %s@'127.0.0.1'", (bot.user,))
        deadline = time.monotonic() + 5
        while not job.uploaded and time.monotonic() < deadline:
            time.sleep(0.05)
        job.stop()
        assert job.uploaded, "no backup after the privilege was granted"
        assert store_for(azurite, container).latest().name == job.uploaded[-1]
    finally:
        root.close()


def test_latest_is_chosen_by_name_timestamp_not_upload_order(azurite: Azurite, container: ContainerClient) -> None:
    store = store_for(azurite, container)
    with pytest.raises(NoBackupError, match="no backups under"):
        store.latest()
    gz = gzip.compress(fake_dump())
    # Newest name uploaded first, oldest last: Last-Modified says the opposite of the names.
    upload(container, "backups/backup-20251227-030500.sql.gz", gz)
    upload(container, "backups/backup-20251227-030000.sql.gz", gz)
    time.sleep(1.1)  # Azurite's Last-Modified has 1 s resolution
    upload(container, "backups/backup-20251227-025500.sql.gz", gz)
    upload(container, "elsewhere/backup-20251228-000000.sql.gz", gz)  # outside the prefix
    backups = store.list()
    assert [b.name[-22:-7] for b in backups] == ["20251227-025500", "20251227-030000", "20251227-030500"]
    by_name = {b.name: b for b in backups}
    assert by_name["backups/backup-20251227-025500.sql.gz"].last_modified > by_name["backups/backup-20251227-030500.sql.gz"].last_modified
    latest = store.latest()
    assert latest.name == "backups/backup-20251227-030500.sql.gz"
    assert latest.taken_at == datetime(2025, 12, 27, 3, 5, tzinfo=UTC)
    assert not latest.precise  # no metadata, as the seeds' EC2 job uploads them

    # A name without a timestamp falls back to Last-Modified.
    upload(container, "backups/manual-copy.sql.gz", gz)
    manual = next(b for b in store.list() if b.name.endswith("manual-copy.sql.gz"))
    assert manual.taken_at == manual.last_modified


def test_corrupt_backups_are_refused(azurite: Azurite, container: ContainerClient, tmp_path: Path) -> None:
    store = store_for(azurite, container)
    good = gzip.compress(fake_dump("INSERT INTO t VALUES (1);\n" * 2000))
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    cases = {
        "backups/backup-20251227-030000.sql.gz": good[: len(good) // 2],  # truncated upload
        "backups/backup-20251227-030500.sql.gz": bytes(flipped),  # bit rot
        "backups/backup-20251227-031000.sql.gz": b"-- plain text, not gzip\n",
        "backups/backup-20251227-031500.sql.gz": gzip.compress(b"-- MariaDB dump\nINSERT INTO t VALUES (1);\n"),  # dump cut short
    }
    for name, data in cases.items():
        upload(container, name, data)
    by_name = {b.name: b for b in store.list()}
    for name in cases:
        dest = tmp_path / f"{name.rsplit('/', 1)[-1]}.sql"
        with pytest.raises(BackupError):
            store.download(by_name[name], dest)
        assert not dest.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".backup-")]  # no temp files left
    # The cut-short dump is valid gzip: accepted only when the caller opts out of the trailer check.
    out = store.download(by_name["backups/backup-20251227-031500.sql.gz"], tmp_path / "partial.sql", require_complete=False)
    assert out.read_bytes().startswith(b"-- MariaDB dump")
    upload(container, "backups/backup-20251227-032000.sql.gz", good)
    assert store.download(store.latest(), tmp_path / "ok.sql").read_bytes() == fake_dump("INSERT INTO t VALUES (1);\n" * 2000)


def test_gaps_finds_a_missing_interval(azurite: Azurite, container: ContainerClient) -> None:
    gz = gzip.compress(fake_dump())
    t0 = datetime(2025, 12, 27, 3, 0, tzinfo=UTC)
    for k in range(7):
        if k == 3:  # 03:15 never happened
            continue
        upload(container, f"backups/backup-{t0 + timedelta(minutes=5 * k):%Y%m%d-%H%M%S}.sql.gz", gz)
    store = store_for(azurite, container)
    (gap,) = store.gaps(300)
    a, b, seconds = gap
    assert (a.name, b.name, seconds) == ("backups/backup-20251227-031000.sql.gz", "backups/backup-20251227-032000.sql.gz", 600.0)
    assert store.gaps(600) == []


def test_canary_rows_measure_what_a_restore_loses(
    mariadb: MariaDB, azurite: Azurite, container: ContainerClient, events: EventLog, tmp_path: Path
) -> None:
    primary = new_database(mariadb, "canary_src")
    assert newest_canary(primary) is None  # no table yet
    ensure_canary_table(primary)
    assert newest_canary(primary) is None  # empty

    interval = 0.2
    writer = CanaryWriter(primary, interval)
    t0 = time.monotonic()
    writer.start()
    try:
        time.sleep(1.0)
        name = job_for(primary, azurite, container, events).run_once()
        time.sleep(0.6)
    finally:
        writer.stop()
        elapsed = time.monotonic() - t0
    writer.stop()  # idempotent
    store = store_for(azurite, container)
    backup = store.latest()
    assert backup.name == name
    started = backup.started_at.timestamp()

    conn = primary.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT written_at, mono FROM dr_canary ORDER BY id")
            rows = cur.fetchall()
            cur.execute("SELECT MAX(written_at) FROM dr_canary WHERE written_at <= %s", (started,))
            last_before = float(cur.fetchone()[0])
    finally:
        conn.close()
    # One row per interval, each acknowledged write counted.
    assert len(rows) == writer.writes and writer.failures == 0
    assert abs(writer.writes - (elapsed / interval + 1)) <= 2, (writer.writes, elapsed)
    spacing = [b[1] - a[1] for a, b in itertools.pairwise(rows)]
    # Fixed-rate: a late write is followed by an early one, so the mean holds even on a busy machine.
    assert sum(spacing) / len(spacing) == pytest.approx(interval, rel=0.25) and max(spacing) < 2.5 * interval, spacing
    assert writer.last_written() == pytest.approx(float(rows[-1][0]))

    restored = new_database(mariadb, "canary_restore")
    restored.restore(store.download(backup, tmp_path / "canary.sql"))
    newest = newest_canary(restored)
    assert newest is not None
    # The snapshot is taken just after the dump starts: it holds every canary written before the
    # start, and at most one more from the moment between process start and snapshot.
    assert last_before <= newest <= started + interval
    assert newest < writer.last_written()  # writes after the dump are what a restore loses
