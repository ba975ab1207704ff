"""One independent MariaDB server on 127.0.0.1, standing in for a managed MySQL (RDS / Flexible Server).

Each instance owns workdir/name: its own cnf, datadir, socket, pid file and log, so several can run
side by side without systemd. Clients always use TCP on 127.0.0.1 (like they would against a cloud
database); the root password is generated per instance and never written to logs or reprs. With a
`ServerTls` the server offers TLS with a certificate from the lab's CA (and may require it).
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from lab.ports import free_port
from lab.procs import ManagedProcess

HOST = "127.0.0.1"
MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "mariadb-install-db"
START_TIMEOUT = 20.0
# A clean InnoDB shutdown takes 1.5-2 s; give it room before ManagedProcess resorts to SIGKILL.
STOP_TIMEOUT = 30.0
# sun_path is 108 bytes; keep a margin.
MAX_SOCKET_PATH = 100

_IDENT = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_USER = re.compile(r"^[A-Za-z0-9_.\-]{1,80}$")
_BIND_FAILURE = ("Can't start server: Bind", "Address already in use")


class MariaDBError(RuntimeError):
    """A MariaDB instance could not be installed, started or scripted."""


@dataclass(frozen=True)
class ServerTls:
    """A server certificate (PEM files) for MariaDB's TLS, and whether plaintext clients are refused.

    Clients verify it with the CA that issued it, host name included (the certificate's SANs).
    """

    ca: Path
    cert: Path
    key: Path
    require_secure_transport: bool = False

    def cnf(self) -> str:
        return (f"ssl_ca={self.ca}\nssl_cert={self.cert}\nssl_key={self.key}\n"
                f"require_secure_transport={'ON' if self.require_secure_transport else 'OFF'}\n")


def issue_server_tls(ca: Any, directory: Path, names: tuple[str, ...], require_secure_transport: bool = False) -> ServerTls:
    """A server certificate for `names` (host names and IP addresses) from `ca` (a trustme.CA), as files."""
    directory.mkdir(parents=True, exist_ok=True)
    cert = ca.issue_cert(*names)
    paths = ServerTls(directory / "ca.pem", directory / "server-cert.pem", directory / "server-key.pem", require_secure_transport)
    ca.cert_pem.write_to_path(str(paths.ca))
    cert.cert_chain_pems[0].write_to_path(str(paths.cert))
    paths.key.touch(mode=0o600)
    cert.private_key_pem.write_to_path(str(paths.key))
    return paths


class MariaDB:
    """A MariaDB server under workdir/name, listening on 127.0.0.1 on a port chosen at start."""

    def __init__(self, workdir: Path, name: str, port: int | None = None, tls: ServerTls | None = None) -> None:
        """`port`: one reserved in advance (a target file names it before the server exists).
        `tls`: the server certificate to offer TLS with (and whether to require it)."""
        if not _IDENT.match(name):
            raise ValueError(f"instance name must match {_IDENT.pattern}: {name!r}")
        self.name = name
        self.basedir = Path(workdir).resolve() / name
        self.datadir = self.basedir / "data"
        self.cnf_path = self.basedir / "my.cnf"
        self.pid_path = self.basedir / "mariadbd.pid"
        self.log_path = self.basedir / "mariadbd.log"
        self.socket_path = self.basedir / "mariadbd.sock"
        self._socket_tmpdir: Path | None = None
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            self._socket_tmpdir = Path(tempfile.mkdtemp(prefix=f"mariadb-{name}-"))
            self.socket_path = self._socket_tmpdir / "mariadbd.sock"
        self.root_password: str | None = None
        self.tls = tls
        self._port: int | None = port
        self._proc: ManagedProcess | None = None
        self._installed = False  # this object ran install-db (root may still be password-less)

    def __repr__(self) -> str:
        # Deliberately no password: reprs end up in pytest and Allure step parameters.
        return f"MariaDB(name={self.name!r}, port={self._port})"

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise MariaDBError(f"{self!r} has not been started")
        return self._port

    @property
    def pid(self) -> int | None:
        """The mariadbd process id while it runs (or last ran), else None."""
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.alive()

    def start(self) -> None:
        """Install (first time only) and start the server; return once root can connect over TCP.

        A stopped instance can be started again: its data and root password are kept, and it gets
        its old port back if that port is still free.
        """
        if self.alive():
            return
        self.basedir.mkdir(parents=True, exist_ok=True)
        if self._socket_tmpdir is not None and not self._socket_tmpdir.exists():  # removed by stop()
            self._socket_tmpdir = Path(tempfile.mkdtemp(prefix=f"mariadb-{self.name}-"))
            self.socket_path = self._socket_tmpdir / "mariadbd.sock"
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        if self.datadir.exists() and self.root_password is None and not self._installed:
            raise MariaDBError(
                f"{self.datadir} already holds a database from another MariaDB object; "
                "its root password is unknown (use a fresh workdir)"
            )
        for attempt in range(3):
            # Reuse the previous port across restarts so clients configured with it reconnect.
            port = self._port if attempt == 0 and self._port and _port_free(self._port) else free_port()
            self._port = port
            self._write_cnf(port)
            if not self.datadir.exists():
                self._install_db()
                self._installed = True
            self._proc = ManagedProcess(
                f"mariadb-{self.name}",
                [MARIADBD, f"--defaults-file={self.cnf_path}"],  # must be first, or /etc/mysql is read
                self.log_path,
            ).start()
            try:
                self._wait_ready(password=self.root_password or "")
                break
            except MariaDBError:
                self._proc.stop(timeout=5)
                # Another process grabbed the port between free_port() and bind(): pick another.
                if attempt < 2 and any(m in self._proc.tail(40) for m in _BIND_FAILURE):
                    continue
                raise
        if self.root_password is None:
            self._secure_root()

    def stop(self) -> None:
        """Clean shutdown (SIGTERM, then SIGKILL after STOP_TIMEOUT), and the short socket directory
        in /tmp removed if one was needed (the lab stops parts, it never called cleanup(): one was
        left behind by every server a lab ran). Safe to call any number of times; start() again works."""
        if self._proc is not None:
            self._proc.stop(timeout=STOP_TIMEOUT)
        if self._socket_tmpdir is not None:
            shutil.rmtree(self._socket_tmpdir, ignore_errors=True)

    def cleanup(self) -> None:
        """Stop (which removes the short socket directory; the datadir is kept)."""
        self.stop()

    def __enter__(self) -> MariaDB:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- SQL ---------------------------------------------------------------------------------------

    def connect(
        self,
        database: str | None = None,
        user: str = "root",
        password: str | None = None,
        connect_timeout: float = 5.0,
    ) -> pymysql.connections.Connection:
        """A new autocommit pymysql connection over TCP (root uses the generated password)."""
        if password is None:
            if user != "root":
                raise ValueError("password is required for users other than root")
            password = self.root_password or ""
        return pymysql.connect(
            host=HOST,
            port=self.port,
            user=user,
            password=password,
            database=database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=connect_timeout,
        )

    def create_database(self, database: str, user: str, password: str) -> None:
        """Create `database` (if missing) and `user` with all privileges on it, from any host."""
        if not _IDENT.match(database):
            raise ValueError(f"database name must match {_IDENT.pattern}: {database!r}")
        if not _USER.match(user):
            raise ValueError(f"user name must match {_USER.pattern}: {user!r}")
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4")
                # skip-name-resolve: TCP clients match 127.0.0.1 or %, socket clients match localhost.
                for host in ("127.0.0.1", "localhost", "%"):
                    cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host, password))
                    cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, password))
                    cur.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO %s@%s", (user, host))
        finally:
            conn.close()

    def execute_script(self, sql: str | bytes, database: str | None = None, timeout: float = 300.0) -> None:
        """Run a multi-statement script (schema files, mysqldump output) with the mariadb client as root."""
        client = shutil.which("mariadb") or shutil.which("mysql")
        if client is None:
            raise MariaDBError("neither the mariadb nor the mysql client is installed")
        argv = [
            client,
            "--no-defaults",  # must be first; keeps /etc/mysql and ~/.my.cnf out
            "--protocol=TCP",
            f"--host={HOST}",
            f"--port={self.port}",
            "--user=root",
            "--default-character-set=utf8mb4",
            "--batch",
        ]
        if database is not None:
            argv.append(database)
        # The password goes through the environment, never argv (visible in ps) or the log.
        env = {**os.environ, "MYSQL_PWD": self.root_password or ""}
        data = sql.encode("utf-8") if isinstance(sql, str) else sql
        try:
            res = subprocess.run(argv, input=data, env=env, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise MariaDBError(f"{self!r}: script did not finish within {timeout:.0f}s") from None
        if res.returncode != 0:
            err = res.stderr.decode("utf-8", "replace").strip()[-2000:]
            raise MariaDBError(f"{self!r}: script failed (exit {res.returncode}): {err}")

    def jdbc_url(self, database: str) -> str:
        """The URL the Spring app is configured with (SPRING_DATASOURCE_URL)."""
        return f"jdbc:mysql://{HOST}:{self.port}/{database}"

    # -- internals ---------------------------------------------------------------------------------

    def _write_cnf(self, port: int) -> None:
        # Its own temporary directory: servers bootstrapping at once in a shared /tmp can collide on
        # a temporary table's name ("Unknown table 'mysql.tmp_user_sys'", install-db aborts).
        (self.basedir / "tmp").mkdir(parents=True, exist_ok=True)
        self.cnf_path.write_text(
            "[mysqld]\n"
            "user=root\n"
            f"bind-address={HOST}\n"
            f"port={port}\n"
            f"socket={self.socket_path}\n"
            f"datadir={self.datadir}\n"
            f"pid-file={self.pid_path}\n"
            f"tmpdir={self.basedir / 'tmp'}\n"
            "skip-name-resolve\n"
            "innodb_buffer_pool_size=32M\n"
            # The 96M default redo log is disk we don't need per lab instance.
            "innodb_log_file_size=16M\n"
            "performance_schema=OFF\n"
            "character-set-server=utf8mb4\n"
            "collation-server=utf8mb4_general_ci\n"
            + (self.tls.cnf() if self.tls is not None else "")
        )

    def _install_db(self) -> None:
        argv = [
            INSTALL_DB,
            f"--defaults-file={self.cnf_path}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]
        log = self.basedir / "install-db.log"
        with open(log, "wb") as out:
            res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=120)
        if res.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            shutil.rmtree(self.datadir, ignore_errors=True)  # a half-installed datadir would block retries
            raise MariaDBError(f"mariadb-install-db for {self.name} failed (exit {res.returncode}):\n{tail}")

    def _wait_ready(self, password: str | None) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self._proc.alive():
                raise MariaDBError(
                    f"mariadbd {self.name} exited with {self._proc.proc.returncode if self._proc.proc else '?'} "
                    f"during start; log tail:\n{self._proc.tail(30)}"
                )
            try:
                # read_timeout too: pymysql's connect_timeout doesn't cover the handshake, and a
                # foreign listener on a stolen port would accept and then never answer.
                pymysql.connect(
                    host=HOST, port=self.port, user="root", password=password or "",
                    connect_timeout=1, read_timeout=2, write_timeout=2,
                ).close()
                return
            except pymysql.err.MySQLError as e:
                last = e
                time.sleep(0.05)
        raise MariaDBError(
            f"mariadbd {self.name} not accepting connections on {HOST}:{self._port} after "
            f"{START_TIMEOUT:.0f}s (last error: {last}); log tail:\n{self._proc.tail(30)}"
        )

    def _secure_root(self) -> None:
        """Give root a generated password and drop the accounts install-db made that we don't use."""
        password = secrets.token_urlsafe(24)
        conn = pymysql.connect(
            host=HOST, port=self.port, user="root", password="", autocommit=True, connect_timeout=5, read_timeout=30
        )
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT user, host FROM mysql.user WHERE (user = 'root' AND host NOT IN ('localhost', '127.0.0.1'))"
                    " OR user = ''"
                )
                for user, host in cur.fetchall():
                    cur.execute("DROP USER %s@%s", (user, host))
                cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'")
                cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
                for host in ("localhost", "127.0.0.1"):
                    cur.execute("ALTER USER 'root'@%s IDENTIFIED BY %s", (host, password))
        finally:
            conn.close()
        self.root_password = password


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As mariadbd binds: with SO_REUSEADDR, so TIME_WAIT leftovers don't count as taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True
