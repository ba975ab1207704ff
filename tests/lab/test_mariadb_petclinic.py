"""Integration tests: a real MariaDB loaded with the PetClinic schema, and the lab PetClinic app over HTTP."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lab.mariadb import MariaDB
from lab.ports import free_port
from lab.procs import ManagedProcess

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SQL_DIR = REPO / "lab" / "petclinic"
DB, DB_USER, DB_PASSWORD = "petclinic", "petclinic", "pc-lab-secret-7f3a"
TITLE = "<title>PetClinic :: a Spring Framework demonstration</title>"
OWNER_LINK = re.compile(r'href="/owners/\d+"')


def _load_petclinic(db: MariaDB) -> None:
    db.create_database(DB, DB_USER, DB_PASSWORD)
    db.execute_script((SQL_DIR / "schema.sql").read_text(), DB)
    db.execute_script((SQL_DIR / "data.sql").read_text(), DB)


def _start_app(db: MariaDB, log_path: Path, timeout: float = 10.0) -> tuple[ManagedProcess, str]:
    port = free_port()
    env = {
        **os.environ,
        "SERVER_PORT": str(port),
        "SPRING_DATASOURCE_URL": db.jdbc_url(DB),
        "SPRING_DATASOURCE_USERNAME": DB_USER,
        "SPRING_DATASOURCE_PASSWORD": DB_PASSWORD,
    }
    proc = ManagedProcess("petclinic", [sys.executable, "-m", "lab.petclinic.app"], log_path, env=env, cwd=REPO).start()
    deadline = time.monotonic() + timeout
    while f"petclinic listening on 127.0.0.1:{port}" not in proc.tail(50):
        if not proc.alive() or time.monotonic() > deadline:
            proc.stop()
            pytest.fail(f"petclinic app did not come up; log:\n{proc.tail(30)}")
        time.sleep(0.02)
    return proc, f"http://127.0.0.1:{port}"


def _mariadbd_pids_for(db: MariaDB) -> list[int]:
    """Processes whose command line names this instance's cnf (i.e. its mariadbd)."""
    needle = str(db.cnf_path).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    db = MariaDB(tmp_path_factory.mktemp("mariadb"), "primary")
    db.start()
    try:
        _load_petclinic(db)
        yield db
    finally:
        db.cleanup()


@pytest.fixture(scope="module")
def app_url(mariadb: MariaDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = _start_app(mariadb, tmp_path_factory.mktemp("app") / "petclinic.log")
    yield url
    proc.stop()


@pytest.fixture
def http(app_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app_url, timeout=5.0, follow_redirects=False) as client:
        yield client


# -- MariaDB --------------------------------------------------------------------------------------


def test_sample_data_loaded(mariadb: MariaDB) -> None:
    conn = mariadb.connect(DB, DB_USER, DB_PASSWORD)
    try:
        with conn.cursor() as cur:
            counts = {}
            for table in ("owners", "pets", "vets", "specialties", "types", "visits"):
                cur.execute(f"SELECT COUNT(*) FROM {table}")
                counts[table] = cur.fetchone()[0]
    finally:
        conn.close()
    assert counts == {"owners": 10, "pets": 13, "vets": 6, "specialties": 3, "types": 6, "visits": 4}


def test_data_script_is_idempotent(mariadb: MariaDB) -> None:
    mariadb.execute_script((SQL_DIR / "schema.sql").read_text(), DB)
    mariadb.execute_script((SQL_DIR / "data.sql").read_text(), DB)
    with mariadb.connect(DB) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM vets")
        assert cur.fetchone()[0] == 6


def test_root_password_is_generated_and_not_in_repr(mariadb: MariaDB) -> None:
    assert mariadb.root_password and len(mariadb.root_password) >= 20
    assert mariadb.root_password not in repr(mariadb)
    assert repr(mariadb) == f"MariaDB(name='primary', port={mariadb.port})"
    assert mariadb.root_password not in mariadb.log_path.read_text(errors="replace")
    # Root without the password is refused: the generated one really is in force.
    with pytest.raises(Exception, match="Access denied"):
        mariadb.connect(password="")


def test_execute_script_restores_mysqldump_output(mariadb: MariaDB) -> None:
    dump = subprocess.run(
        ["mysqldump", "--no-defaults", "--protocol=TCP", f"--host={mariadb.host}", f"--port={mariadb.port}",
         "--user=root", "--single-transaction", DB],
        env={**os.environ, "MYSQL_PWD": mariadb.root_password or ""},
        capture_output=True, check=True, timeout=30,
    ).stdout
    assert dump.startswith(b"/*M!999999") or b"sandbox" in dump[:200]  # MariaDB's sandbox-mode first line
    mariadb.create_database("restored", "restorer", "restorer-pw")
    mariadb.execute_script(dump, "restored")
    with mariadb.connect("restored", "restorer", "restorer-pw") as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM owners")
        assert cur.fetchone()[0] >= 10


def test_execute_script_reports_errors(mariadb: MariaDB) -> None:
    with pytest.raises(RuntimeError, match="doesn't exist"):
        mariadb.execute_script("SELECT * FROM no_such_table;", DB)


# -- the app over HTTP ------------------------------------------------------------------------------


def test_home_page(http: httpx.Client) -> None:
    r = http.get("/")
    assert r.status_code == 200
    assert TITLE in r.text and "Welcome" in r.text
    for link in ('href="/"', 'href="/owners/find"', 'href="/vets.html"'):
        assert link in r.text


def test_find_owners_by_last_name_lists_both_davises(http: httpx.Client) -> None:
    assert "Find Owner" in http.get("/owners/find").text
    r = http.get("/owners", params={"lastName": "Davis"})
    assert r.status_code == 200
    assert len(OWNER_LINK.findall(r.text)) == 2
    assert "Betty Davis" in r.text and "Harold Davis" in r.text


def test_single_match_redirects_to_owner(http: httpx.Client) -> None:
    r = http.get("/owners", params={"lastName": "Franklin"})
    assert r.status_code == 302
    assert r.headers["location"] == "/owners/1"
    page = http.get(r.headers["location"])
    assert page.status_code == 200
    assert "George Franklin" in page.text and "Leo" in page.text


def test_empty_last_name_lists_all_owners(http: httpx.Client) -> None:
    r = http.get("/owners", params={"lastName": ""})
    assert r.status_code == 200
    assert len(OWNER_LINK.findall(r.text)) >= 10


def test_owner_with_visits_and_missing_owner(http: httpx.Client) -> None:
    r = http.get("/owners/6")
    assert "Jean Coleman" in r.text and "Samantha" in r.text and "rabies shot" in r.text
    assert http.get("/owners/99999").status_code == 404


def test_vets_html_and_json(http: httpx.Client) -> None:
    page = http.get("/vets.html")
    assert page.status_code == 200 and "James Carter" in page.text and "radiology" in page.text
    r = http.get("/vets")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    vets = r.json()["vetList"]
    assert len(vets) == 6
    douglas = next(v for v in vets if v["lastName"] == "Douglas")
    assert douglas["firstName"] == "Linda"
    assert [s["name"] for s in douglas["specialties"]] == ["dentistry", "surgery"]


def test_create_owner(http: httpx.Client) -> None:
    form = {
        "firstName": "Ada",
        "lastName": "Lovelace<script>",
        "address": "12 St James's Sq.",
        "city": "London",
        "telephone": "0123456789",
    }
    r = http.post("/owners/new", data=form)
    assert r.status_code == 302
    location = r.headers["location"]
    assert location.startswith("/owners/")
    page = http.get(location)
    assert "Ada Lovelace&lt;script&gt;" in page.text and "<script>" not in page.text
    listed = http.get("/owners", params={"lastName": "Lovelace"})
    assert listed.status_code == 302 and listed.headers["location"] == location


def test_create_owner_validation(http: httpx.Client) -> None:
    r = http.post("/owners/new", data={"firstName": "", "lastName": "X", "address": "a", "city": "b", "telephone": "12"})
    assert r.status_code == 200
    assert "must not be blank" in r.text and "10-digit" in r.text


def test_health_up(http: httpx.Client) -> None:
    r = http.get("/actuator/health")
    assert r.status_code == 200 and r.json()["status"] == "UP"


def test_head_and_unknown_paths(http: httpx.Client) -> None:
    get, head = http.get("/vets.html"), http.head("/vets.html")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert http.head("/actuator/health").status_code == 200
    r = http.get("/no/such/page")
    assert r.status_code == 404 and TITLE in r.text
    assert http.post("/vets.html").status_code == 405


def test_keep_alive_requests_are_fast(http: httpx.Client) -> None:
    http.get("/owners/1")
    start = time.monotonic()
    for _ in range(50):
        assert http.get("/owners/1").status_code == 200
    # ~1 ms each; Nagle + delayed ACK would make it ~44 ms each.
    assert (time.monotonic() - start) / 50 < 0.02


def test_app_exits_zero_on_sigterm(mariadb: MariaDB, tmp_path: Path) -> None:
    proc, url = _start_app(mariadb, tmp_path / "petclinic.log")
    assert httpx.get(url + "/actuator/health", timeout=5).status_code == 200
    assert proc.proc is not None
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(timeout=5) == 0
    log = proc.tail(50)
    assert "stopped" in log and DB_PASSWORD not in log


# -- outage: its own MariaDB so the shared one stays up ---------------------------------------------


def test_database_outage_and_recovery(tmp_path: Path) -> None:
    # A workdir as deep as pytest's for the lab's own tests: the socket needs a short /tmp directory.
    db = MariaDB(tmp_path / ("deep-" * 8), "outage")
    db.start()
    app: ManagedProcess | None = None
    try:
        _load_petclinic(db)
        app, url = _start_app(db, tmp_path / "petclinic.log")
        with httpx.Client(base_url=url, timeout=10.0) as http:
            assert http.get("/actuator/health").status_code == 200
            assert http.get("/owners/1").status_code == 200  # leaves a pooled DB connection behind

            pid = db.pid
            assert pid is not None and _mariadbd_pids_for(db) == [pid]
            socket_dir = db.socket_path.parent
            db.stop()
            db.stop()  # idempotent
            assert not db.alive()
            # A socket path too long for AF_UNIX lives in a short /tmp directory: stop() removes it (the
            # lab only ever stops its servers; every run used to leave one behind per server).
            assert not socket_dir.is_relative_to(tmp_path) and not socket_dir.exists(), socket_dir
            assert _mariadbd_pids_for(db) == []
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)

            # Each must fail fast (refused, or the app's 2 s connect timeout), never hang.
            r = http.get("/actuator/health")
            assert r.status_code == 503 and r.json()["status"] == "DOWN"
            assert r.elapsed.total_seconds() < 4.0
            r = http.get("/owners", params={"lastName": ""})
            assert r.status_code == 500 and TITLE in r.text
            assert r.elapsed.total_seconds() < 4.0
            r = http.get("/owners/1")
            assert r.status_code == 500 and r.elapsed.total_seconds() < 4.0
            # Like the real app, the welcome page doesn't touch the database.
            assert http.get("/").status_code == 200

            # Same port after a restart, so the app recovers without reconfiguration.
            port = db.port
            db.start()
            assert db.port == port
            r = http.get("/actuator/health")
            assert r.status_code == 200 and r.json()["status"] == "UP"
            assert "Leo" in http.get("/owners/1").text
    finally:
        if app is not None:
            app.stop()
        db.cleanup()
    assert _mariadbd_pids_for(db) == []
