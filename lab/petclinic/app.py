"""A PetClinic-compatible web app for the lab: `python -m lab.petclinic.app`.

Configured like the real Spring Boot container in Kubernetes, from the environment:
  SERVER_PORT (8080), SERVER_ADDRESS (127.0.0.1),
  SPRING_DATASOURCE_URL (jdbc:mysql://HOST[:PORT]/DB), SPRING_DATASOURCE_USERNAME, SPRING_DATASOURCE_PASSWORD,
  SPRING_SQL_INIT_MODE ("never" here; "always" runs schema.sql + data.sql at start as the real mysql
  profile does, and then, like Spring, the app fails to start when the database is unreachable).

It serves the pages and JSON the drills look at (welcome, find/list/show/add owners, vets, actuator
health) with the real app's status codes: 302 after a single search hit or a create, 404/500 error
pages, and 503 DOWN from /actuator/health when the database does not answer.
"""
from __future__ import annotations

import html
import json
import os
import queue
import re
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors

TITLE = "PetClinic :: a Spring Framework demonstration"
HTML_TYPE = "text/html;charset=UTF-8"
JSON_TYPE = "application/json"
# What Spring Boot Actuator answers with; clients parse it as JSON.
ACTUATOR_TYPE = "application/vnd.spring-boot.actuator.v3+json"
# A dead or black-holed database must turn into a 500/503 quickly, never a hung request.
DB_CONNECT_TIMEOUT = 2.0
DB_IO_TIMEOUT = 5.0
# Pooled connections idle longer than this are pinged before use (the server may have restarted).
DB_IDLE_CHECK = 1.0
DB_POOL_MAX_IDLE = 16
MAX_BODY = 1 << 20
SQL_DIR = Path(__file__).resolve().parent


def log(msg: str) -> None:
    print(f"petclinic: {msg}", file=sys.stderr, flush=True)


# -- configuration ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    address: str
    port: int
    db_host: str
    db_port: int
    database: str
    db_user: str
    db_password: str = field(repr=False)
    sql_init_mode: str = "never"


def parse_jdbc_url(url: str) -> tuple[str, int, str]:
    """(host, port, database) from jdbc:mysql://HOST[:PORT]/DB[?params] (jdbc:mariadb:// too)."""
    m = re.match(r"^jdbc:(mysql|mariadb)://([^/?#]+)/([^?#;]*)", url.strip())
    if not m:
        raise ValueError(f"unsupported datasource URL (want jdbc:mysql://HOST:PORT/DB): {url!r}")
    hostport, database = m.group(2), urllib.parse.unquote(m.group(3))
    if "," in hostport or "@" in hostport:
        raise ValueError(f"multi-host or credential-bearing JDBC URLs are not supported: {url!r}")
    split = urllib.parse.urlsplit(f"//{hostport}")
    if not split.hostname or not database:
        raise ValueError(f"datasource URL needs a host and a database: {url!r}")
    return split.hostname, split.port or 3306, database


def config_from_env(env: Mapping[str, str]) -> Config:
    # Defaults are those of the real app's mysql profile.
    host, port, database = parse_jdbc_url(env.get("SPRING_DATASOURCE_URL", "jdbc:mysql://localhost/petclinic"))
    mode = env.get("SPRING_SQL_INIT_MODE", "never").strip().lower()
    if mode not in ("never", "always", "embedded"):
        raise ValueError(f"SPRING_SQL_INIT_MODE must be never, always or embedded: {mode!r}")
    return Config(
        address=env.get("SERVER_ADDRESS", "127.0.0.1"),
        port=int(env.get("SERVER_PORT", "8080")),
        db_host=host,
        db_port=port,
        database=database,
        db_user=env.get("SPRING_DATASOURCE_USERNAME", "petclinic"),
        db_password=env.get("SPRING_DATASOURCE_PASSWORD", "petclinic"),
        sql_init_mode=mode,
    )


# -- database ---------------------------------------------------------------------------------------

_CONN_ERRORS = (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError)


class Database:
    """A small connection pool: each connection is used by one thread at a time (pymysql isn't
    thread-safe) and outlives the HTTP connection that borrowed it (HikariCP does the same)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._idle: queue.LifoQueue[tuple[pymysql.connections.Connection, float]] = queue.LifoQueue()

    def _connect(self) -> pymysql.connections.Connection:
        return pymysql.connect(
            host=self.cfg.db_host,
            port=self.cfg.db_port,
            user=self.cfg.db_user,
            password=self.cfg.db_password,
            database=self.cfg.database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=DB_CONNECT_TIMEOUT,
            read_timeout=DB_IO_TIMEOUT,
            write_timeout=DB_IO_TIMEOUT,
            cursorclass=pymysql.cursors.DictCursor,
        )

    def _acquire(self) -> pymysql.connections.Connection:
        while True:
            try:
                conn, since = self._idle.get_nowait()
            except queue.Empty:
                return self._connect()
            if time.monotonic() - since < DB_IDLE_CHECK:
                return conn
            try:
                conn.ping(reconnect=False)
                return conn
            except _CONN_ERRORS:
                _close_quietly(conn)

    def _release(self, conn: pymysql.connections.Connection) -> None:
        if conn.open and self._idle.qsize() < DB_POOL_MAX_IDLE:
            self._idle.put((conn, time.monotonic()))
        else:
            _close_quietly(conn)

    def _run(self, fn: Callable[[Any], Any], retry: bool) -> Any:
        for attempt in (0, 1):
            conn = self._acquire()
            try:
                with conn.cursor() as cur:
                    result = fn(cur)
            except _CONN_ERRORS:
                _close_quietly(conn)
                # Retry reads once on a fresh connection; the pooled one may have been cut.
                if retry and attempt == 0:
                    continue
                raise
            except BaseException:
                _close_quietly(conn)
                raise
            self._release(conn)
            return result
        raise AssertionError("unreachable")

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self._run(lambda cur: (cur.execute(sql, args), list(cur.fetchall()))[1], retry=True)

    def insert(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self._run(lambda cur: (cur.execute(sql, args), cur.lastrowid)[1], retry=False)

    def healthy(self) -> bool:
        try:
            return self.query("SELECT 1 AS ok")[0]["ok"] == 1
        except Exception:  # noqa: BLE001 — a health check is yes or no: any failure to answer is unhealthy
            return False

    def run_script(self, sql: str) -> None:
        def run(cur: Any) -> None:
            for stmt in split_statements(sql):
                cur.execute(stmt)

        self._run(run, retry=False)

    def close(self) -> None:
        while True:
            try:
                conn, _ = self._idle.get_nowait()
            except queue.Empty:
                return
            _close_quietly(conn)


def _close_quietly(conn: pymysql.connections.Connection) -> None:
    try:
        conn.close()
    except pymysql.err.Error:  # PyMySQL's close() raises only 'Already closed'
        pass


def split_statements(sql: str) -> list[str]:
    """Statements of our own schema/data files (no ';' inside literals, '--' comments only)."""
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


# -- pages ------------------------------------------------------------------------------------------


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def layout(body: str, active: str = "") -> str:
    def nav(href: str, key: str, label: str) -> str:
        cls = ' class="active"' if key == active else ""
        return f'<li{cls}><a href="{href}" title="{e(label)}">{e(label)}</a></li>'

    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta charset="utf-8">\n'
        f"<title>{e(TITLE)}</title>\n"
        "</head>\n<body>\n"
        '<nav class="navbar"><ul class="nav">'
        + nav("/", "home", "Home")
        + nav("/owners/find", "owners", "Find owners")
        + nav("/vets.html", "vets", "Veterinarians")
        + nav("/oups", "error", "Error")
        + "</ul></nav>\n"
        f'<div class="container xd-container">\n{body}\n</div>\n'
        "</body>\n</html>\n"
    )


def welcome_page() -> str:
    return layout("<h2>Welcome</h2>", "home")


def error_page(message: str) -> str:
    return layout(f"<h2>Something happened...</h2>\n<p>{e(message)}</p>", "error")


def find_owners_page(last_name: str = "", not_found: bool = False) -> str:
    err = '<span class="help-inline"><div><p>has not been found</p></div></span>' if not_found else ""
    return layout(
        "<h2>Find Owners</h2>\n"
        '<form action="/owners" method="get" id="search-owner-form">\n'
        '<label for="lastName">Last name </label>'
        f'<input id="lastName" name="lastName" size="30" maxlength="80" value="{e(last_name)}"/>{err}\n'
        '<button type="submit">Find Owner</button>\n'
        "</form>\n"
        '<a href="/owners/new">Add Owner</a>',
        "owners",
    )


OWNER_FIELDS = (
    ("firstName", "First Name"),
    ("lastName", "Last Name"),
    ("address", "Address"),
    ("city", "City"),
    ("telephone", "Telephone"),
)


def owner_form_page(values: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None) -> str:
    values, errors = values or {}, errors or {}
    rows = []
    for name, label in OWNER_FIELDS:
        err = f'<span class="help-inline">{e(errors[name])}</span>' if name in errors else ""
        rows.append(
            f'<div class="form-group"><label for="{name}">{e(label)}</label>'
            f'<input id="{name}" name="{name}" value="{e(values.get(name, ""))}"/>{err}</div>'
        )
    return layout(
        "<h2>Owner</h2>\n"
        '<form method="post" action="/owners/new" id="add-owner-form">\n'
        + "\n".join(rows)
        + '\n<button type="submit">Add Owner</button>\n</form>',
        "owners",
    )


def owners_list_page(owners: list[dict[str, Any]], pets: Mapping[int, list[str]]) -> str:
    rows = "\n".join(
        "<tr>"
        f'<td><a href="/owners/{o["id"]}">{e(o["first_name"])} {e(o["last_name"])}</a></td>'
        f'<td>{e(o["address"])}</td><td>{e(o["city"])}</td><td>{e(o["telephone"])}</td>'
        f'<td>{e(", ".join(pets.get(o["id"], [])))}</td>'
        "</tr>"
        for o in owners
    )
    return layout(
        "<h2>Owners</h2>\n"
        '<table id="owners" class="table table-striped">\n'
        "<thead><tr><th>Name</th><th>Address</th><th>City</th><th>Telephone</th><th>Pets</th></tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody>\n</table>",
        "owners",
    )


def owner_details_page(owner: dict[str, Any], pets: list[dict[str, Any]], visits: Mapping[int, list[dict[str, Any]]]) -> str:
    pet_rows = []
    for p in pets:
        vrows = "".join(
            f'<tr><td>{e(v["visit_date"])}</td><td>{e(v["description"])}</td></tr>' for v in visits.get(p["id"], [])
        )
        pet_rows.append(
            "<tr>"
            f'<td valign="top"><dl class="dl-horizontal"><dt>Name</dt><dd>{e(p["name"])}</dd>'
            f'<dt>Birth Date</dt><dd>{e(p["birth_date"])}</dd><dt>Type</dt><dd>{e(p["type"])}</dd></dl></td>'
            '<td valign="top"><table class="table-condensed"><thead><tr><th>Visit Date</th><th>Description</th></tr></thead>'
            f"{vrows}</table></td>"
            "</tr>"
        )
    return layout(
        "<h2>Owner Information</h2>\n"
        '<table class="table table-striped">\n'
        f'<tr><th>Name</th><td><b>{e(owner["first_name"])} {e(owner["last_name"])}</b></td></tr>\n'
        f'<tr><th>Address</th><td>{e(owner["address"])}</td></tr>\n'
        f'<tr><th>City</th><td>{e(owner["city"])}</td></tr>\n'
        f'<tr><th>Telephone</th><td>{e(owner["telephone"])}</td></tr>\n'
        "</table>\n"
        "<h2>Pets and Visits</h2>\n"
        f'<table class="table table-striped">\n{"".join(pet_rows)}\n</table>',
        "owners",
    )


def vets_page(vets: list[dict[str, Any]]) -> str:
    def specialties(v: dict[str, Any]) -> str:
        return " ".join(f"<span>{e(s['name'])} </span>" for s in v["specialties"]) or "<span>none</span>"

    rows = "\n".join(
        f'<tr><td>{e(v["firstName"])} {e(v["lastName"])}</td><td>{specialties(v)}</td></tr>' for v in vets
    )
    return layout(
        "<h2>Veterinarians</h2>\n"
        '<table id="vets" class="table table-striped">\n'
        "<thead><tr><th>Name</th><th>Specialties</th></tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody>\n</table>",
        "vets",
    )


# -- the app ----------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = HTML_TYPE
    headers: dict[str, str] = field(default_factory=dict)


def html_response(page: str, status: int = 200) -> Response:
    return Response(status, page.encode("utf-8"))


def json_response(obj: Any, status: int = 200, content_type: str = JSON_TYPE) -> Response:
    return Response(status, json.dumps(obj, separators=(",", ":")).encode("utf-8"), content_type)


def redirect(location: str) -> Response:
    return Response(302, b"", HTML_TYPE, {"Location": location})


class PetClinic:
    """The routes; each returns a Response. DB errors propagate and become the 500 page."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.get_routes: list[tuple[re.Pattern[str], Callable[..., Response]]] = [
            (re.compile(r"^/$"), self.welcome),
            (re.compile(r"^/owners/find$"), self.find_owners),
            (re.compile(r"^/owners$"), self.list_owners),
            (re.compile(r"^/owners/new$"), self.new_owner_form),
            (re.compile(r"^/owners/(\d{1,9})$"), self.show_owner),
            (re.compile(r"^/vets\.html$"), self.vets_html),
            (re.compile(r"^/vets$"), self.vets_json),
            (re.compile(r"^/actuator/health$"), self.health),
            (re.compile(r"^/actuator/health/(liveness|readiness)$"), self.probe),
            (re.compile(r"^/oups$"), self.oups),
        ]
        self.post_routes: list[tuple[re.Pattern[str], Callable[..., Response]]] = [
            (re.compile(r"^/owners/new$"), self.create_owner),
        ]

    # GET

    def welcome(self, q: Mapping[str, str]) -> Response:
        # Static like the real welcome page: it stays 200 while the database is down.
        return html_response(welcome_page())

    def find_owners(self, q: Mapping[str, str]) -> Response:
        return html_response(find_owners_page())

    def new_owner_form(self, q: Mapping[str, str]) -> Response:
        return html_response(owner_form_page())

    def list_owners(self, q: Mapping[str, str]) -> Response:
        last_name = q.get("lastName", "")
        like = last_name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        owners = self.db.query(
            "SELECT id, first_name, last_name, address, city, telephone FROM owners"
            " WHERE last_name LIKE %s ORDER BY id",
            (like,),
        )
        if not owners:
            return html_response(find_owners_page(last_name, not_found=True))
        if len(owners) == 1:
            return redirect(f"/owners/{owners[0]['id']}")
        ids = [o["id"] for o in owners]
        pets: dict[int, list[str]] = {}
        marks = ",".join(["%s"] * len(ids))
        for p in self.db.query(f"SELECT owner_id, name FROM pets WHERE owner_id IN ({marks}) ORDER BY name", ids):
            pets.setdefault(p["owner_id"], []).append(p["name"])
        return html_response(owners_list_page(owners, pets))

    def show_owner(self, q: Mapping[str, str], owner_id: str) -> Response:
        rows = self.db.query(
            "SELECT id, first_name, last_name, address, city, telephone FROM owners WHERE id = %s", (int(owner_id),)
        )
        if not rows:
            return html_response(error_page(f"Owner not found with id: {owner_id}"), 404)
        pets = self.db.query(
            "SELECT p.id, p.name, p.birth_date, t.name AS type FROM pets p JOIN types t ON t.id = p.type_id"
            " WHERE p.owner_id = %s ORDER BY p.name",
            (int(owner_id),),
        )
        visits: dict[int, list[dict[str, Any]]] = {}
        if pets:
            marks = ",".join(["%s"] * len(pets))
            for v in self.db.query(
                f"SELECT pet_id, visit_date, description FROM visits WHERE pet_id IN ({marks}) ORDER BY visit_date",
                [p["id"] for p in pets],
            ):
                visits.setdefault(v["pet_id"], []).append(v)
        return html_response(owner_details_page(rows[0], pets, visits))

    def _vets(self) -> list[dict[str, Any]]:
        vets = self.db.query("SELECT id, first_name, last_name FROM vets ORDER BY id")
        specs: dict[int, list[dict[str, Any]]] = {}
        for s in self.db.query(
            "SELECT vs.vet_id, s.id, s.name FROM vet_specialties vs JOIN specialties s ON s.id = vs.specialty_id"
            " ORDER BY s.name"
        ):
            specs.setdefault(s["vet_id"], []).append({"id": s["id"], "name": s["name"], "new": False})
        # The shape Jackson gives the real Vet entity.
        return [
            {
                "id": v["id"],
                "firstName": v["first_name"],
                "lastName": v["last_name"],
                "specialties": specs.get(v["id"], []),
                "nrOfSpecialties": len(specs.get(v["id"], [])),
                "new": False,
            }
            for v in vets
        ]

    def vets_html(self, q: Mapping[str, str]) -> Response:
        return html_response(vets_page(self._vets()))

    def vets_json(self, q: Mapping[str, str]) -> Response:
        return json_response({"vetList": self._vets()})

    def health(self, q: Mapping[str, str]) -> Response:
        up = self.db.healthy()
        status = "UP" if up else "DOWN"
        body = {"status": status, "components": {"db": {"status": status}, "ping": {"status": "UP"}}}
        return json_response(body, 200 if up else 503, ACTUATOR_TYPE)

    def probe(self, q: Mapping[str, str], kind: str) -> Response:
        # Spring's liveness/readiness groups don't include the database by default.
        return json_response({"status": "UP"}, 200, ACTUATOR_TYPE)

    def oups(self, q: Mapping[str, str]) -> Response:
        raise RuntimeError("Expected: controller used to showcase what happens when an exception is thrown")

    # POST

    def create_owner(self, form: Mapping[str, str]) -> Response:
        values = {name: form.get(name, "").strip() for name, _ in OWNER_FIELDS}
        errors = {name: "must not be blank" for name, v in values.items() if not v}
        if values["telephone"] and not re.fullmatch(r"\d{10}", values["telephone"]):
            errors["telephone"] = "Telephone must be a 10-digit number"
        if errors:
            # The real app re-renders the form (200) with the field errors.
            return html_response(owner_form_page(values, errors))
        new_id = self.db.insert(
            "INSERT INTO owners (first_name, last_name, address, city, telephone) VALUES (%s, %s, %s, %s, %s)",
            (values["firstName"], values["lastName"], values["address"], values["city"], values["telephone"]),
        )
        return redirect(f"/owners/{new_id}")

    def dispatch(self, method: str, path: str, params: Mapping[str, str]) -> Response:
        routes = self.post_routes if method == "POST" else self.get_routes
        for pattern, handler in routes:
            m = pattern.match(path)
            if m:
                return handler(params, *m.groups())
        other = self.get_routes if method == "POST" else self.post_routes
        if any(p.match(path) for p, _ in other):
            return html_response(error_page("Request method not supported"), 405)
        return html_response(error_page("No static resource " + path.lstrip("/") + "."), 404)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without this every response waits on delayed ACKs: ~44 ms per request.
    disable_nagle_algorithm = True
    # Idle keep-alive connections give their thread back eventually.
    timeout = 60
    server_version = "PetClinic"
    sys_version = ""
    app: PetClinic  # set on the subclass made in serve()
    tracker: InFlight
    sessions: Any = None  # lab.petclinic.sessions.SessionStore, set on the subclass made in serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is noise in the lab logs

    def log_error(self, format: str, *args: Any) -> None:
        log(format % args)

    def do_GET(self) -> None:
        self._handle("GET", send_body=True)

    def do_HEAD(self) -> None:
        self._handle("GET", send_body=False)

    def do_POST(self) -> None:
        self._handle("POST", send_body=True)

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return None
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            return None
        if n < 0 or n > MAX_BODY:
            return None
        return self.rfile.read(n)

    def _handle(self, method: str, send_body: bool) -> None:
        with self.tracker:
            url = urllib.parse.urlsplit(self.path)
            body = self._read_body()
            if body is None:
                self.close_connection = True
                self._send(html_response(error_page("Bad request body"), 400), send_body)
                return
            params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            if method == "POST" and body:
                params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            try:
                if url.path == "/login":
                    resp = self._login(method, params)
                else:
                    resp = self._with_session(self.app.dispatch(method, url.path, params))
            except Exception as exc:  # noqa: BLE001 — the real app's error page, status 500
                log(f"{method} {url.path} failed: {type(exc).__name__}: {exc}")
                resp = html_response(error_page(str(exc) if url.path == "/oups" else "Internal Server Error"), 500)
            self._send(resp, send_body)

    def _login(self, method: str, params: Mapping[str, str]) -> Response:
        """A user signs in (GET: the form; POST username=...): a new session holding the user, its cookie."""
        from lab.petclinic import sessions

        if method != "POST":
            return html_response(layout('<h2>Sign in</h2><form method="post" action="/login">'
                                        '<input name="username"/><button type="submit">Sign in</button></form>'))
        user = (params.get("username") or "").strip()
        if not user:
            return html_response(error_page("username is required"), 400)
        sid = sessions.new_session_id()
        self.sessions.save(sid, {sessions.USER_ATTR: user})
        return Response(302, b"", HTML_TYPE, {"Location": "/", "Set-Cookie": sessions.set_cookie(sid, self.sessions.timeout)})

    def _with_session(self, resp: Response) -> Response:
        """A signed-in user's pages say so: `Signed in as NAME` (the session found in the store), else nothing."""
        from lab.petclinic import sessions

        sid = sessions.session_id_from_cookie(self.headers.get("Cookie"))
        if sid is None or not resp.content_type.startswith("text/html"):
            return resp
        attrs = self.sessions.load(sid)
        if not attrs or sessions.USER_ATTR not in attrs:
            return resp
        mark = f'<p id="session-user">Signed in as {e(attrs[sessions.USER_ATTR])}</p></body>'.encode()
        return Response(resp.status, resp.body.replace(b"</body>", mark, 1), resp.content_type, resp.headers)

    def _send(self, resp: Response, send_body: bool) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if send_body and resp.body:
            self.wfile.write(resp.body)


class InFlight:
    """Counts requests being handled so shutdown can let them finish (Spring's graceful shutdown)."""

    def __init__(self) -> None:
        self._n = 0
        self._cond = threading.Condition()

    def __enter__(self) -> None:
        with self._cond:
            self._n += 1

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._n -= 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._n == 0, timeout)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    tracker: InFlight

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # clients hanging up mid-response are routine under load tests
        log(f"error serving {client_address}: {type(exc).__name__}: {exc}")


def make_server(cfg: Config, db: Database, env: Mapping[str, str] | None = None) -> Server:
    from lab.petclinic.sessions import store_from_env

    tracker = InFlight()
    handler = type("PetClinicHandler", (Handler,), {"app": PetClinic(db), "tracker": tracker,
                                                     "sessions": store_from_env(os.environ if env is None else env)})
    server = Server((cfg.address, cfg.port), handler)
    server.tracker = tracker
    return server


def init_schema(db: Database) -> None:
    for name in ("schema.sql", "data.sql"):
        db.run_script((SQL_DIR / name).read_text())


def main(env: Mapping[str, str] | None = None) -> int:
    try:
        cfg = config_from_env(os.environ if env is None else env)
    except ValueError as exc:
        log(f"bad configuration: {exc}")
        return 2
    db = Database(cfg)
    log(f"datasource {cfg.db_host}:{cfg.db_port}/{cfg.database} as {cfg.db_user}, sql init {cfg.sql_init_mode}")
    if cfg.sql_init_mode == "always":
        try:
            init_schema(db)
        except Exception as exc:  # noqa: BLE001 — Spring refuses to start when the init scripts can't run
            log(f"database initialisation failed: {type(exc).__name__}: {exc}")
            return 1
    try:
        server = make_server(cfg, db, os.environ if env is None else env)
    except OSError as exc:
        log(f"cannot listen on {cfg.address}:{cfg.port}: {exc}")
        return 1

    def on_signal(signum: int, frame: Any) -> None:
        # shutdown() blocks until serve_forever() returns, which runs in this (the main) thread.
        threading.Thread(target=server.shutdown, name="shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host, port = str(server.server_address[0]), int(server.server_address[1])  # TCP: (host, port, ...)
    log(f"started on {host}:{port}")
    print(f"petclinic listening on {host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if not server.tracker.wait_idle(10.0):
            log("shutdown: requests still in flight after 10s")
        db.close()
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
