"""The lab's Azure MySQL flexible server, pinned with the clients users have: pymysql, the mariadb/mysql
command-line client (through drivers.database), and azure-mgmt-mysqlflexibleservers against the ARM
emulator.

What Azure does and the lab must do too:
- require_secure_transport=ON: a plaintext client gets ERROR 3159 (HY000) "Connections using insecure
  transport are prohibited while --require_secure_transport=ON." (Connect to Flexible Server with
  encrypted connections); a client verifying the server with the right CA gets in, a wrong CA or a
  name the certificate does not carry is refused by the client;
- public access: a client whose address no firewall rule allows gets no answer (the connection
  attempt times out: pymysql's OperationalError 2003), until a rule covering it has taken effect.
"""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
import trustme
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.mysqlflexibleservers import MySQLManagementClient
from azure.mgmt.mysqlflexibleservers.models import FirewallRule

from drill.ledger import Ledger
from drivers.azure_network import AzureAuth
from drivers.database import Database
from drivers.mysql_firewall import (
    EgressError,
    MysqlFirewall,
    egress_address,
    execute_mysql_action,
    make_mysql_client,
    wait_for_access,
)
from lab.azure.arm_server import ArmEmulator
from lab.azure.arm_state import ArmTimings
from lab.azure.mysql_dataplane import ER_SECURE_TRANSPORT_REQUIRED, INSECURE_MESSAGE, FlexibleServerEndpoint
from lab.egress import EgressEcho
from lab.events import EventLog
from lab.mariadb import MariaDB, issue_server_tls
from lab.ports import free_port

pytestmark = pytest.mark.lab

USER, PASSWORD, DB = "mysqladmin", "admin-password-for-tests", "petclinic"
AZURE_NAME = "mysql-dr-blue.mysql.database.azure.com"


SCALE = 60.0
# Real-world seconds; at SCALE 60 the rule's ARM operation takes 0.5 s, its taking effect 2 s more.
TIMINGS = ArmTimings(mysql_firewall_rule_seconds=30, mysql_firewall_propagation_seconds=120)
RG, SERVER = "rg-blue", "mysql-dr-blue"


@pytest.fixture(scope="module")
def arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmEmulator]:
    work = tmp_path_factory.mktemp("arm")
    em = ArmEmulator(work, EventLog(work / "events.jsonl"), time_scale=SCALE, timings=TIMINGS).start()
    em.seed()
    em.state.create_mysql_flexible_server(RG, SERVER, AZURE_NAME, USER)
    yield em
    em.stop()


@pytest.fixture(scope="module")
def mgmt(arm: ArmEmulator) -> MySQLManagementClient:
    return make_mysql_client(AzureAuth(arm.subscription_id, arm.tenant_id, arm.client_id, arm.client_secret,
                                       authority_host=arm.url, resource_manager_url=arm.url, ca_bundle=str(arm.ca_path)))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, arm: ArmEmulator) -> Iterator[tuple[FlexibleServerEndpoint, Path]]:
    work = tmp_path_factory.mktemp("azure-mysql")
    ca = trustme.CA(organization_name="test databases")
    tls = issue_server_tls(ca, work / "tls", ("127.0.0.1", AZURE_NAME), require_secure_transport=True)
    db = MariaDB(work, "azmysql", tls=tls)
    db.start()
    db.create_database(DB, USER, PASSWORD)
    endpoint = FlexibleServerEndpoint(free_port(), db.port, lambda a: arm.state.mysql_client_allowed(RG, SERVER, a)).start()
    try:
        yield endpoint, tls.ca
    finally:
        endpoint.stop()
        db.cleanup()


@pytest.fixture()
def allowed(arm: ArmEmulator, server: tuple[FlexibleServerEndpoint, Path]) -> Iterator[None]:
    """A rule for 127.0.0.1 in effect (made in-process), removed afterwards."""
    op = arm.state.put_firewall_rule(RG, SERVER, "test-allow", {"properties": {"startIpAddress": "127.0.0.1",
                                                                              "endIpAddress": "127.0.0.1"}})
    deadline = time.monotonic() + 10
    while not arm.state.mysql_client_allowed(RG, SERVER, "127.0.0.1"):
        assert time.monotonic() < deadline, f"the rule never took effect ({op.status})"
        time.sleep(0.1)
    time.sleep(0.2)  # the endpoint notices within a tick
    yield
    arm.state.delete_firewall_rule(RG, SERVER, "test-allow")
    deadline = time.monotonic() + 10
    while arm.state.mysql_client_allowed(RG, SERVER, "127.0.0.1"):
        assert time.monotonic() < deadline, "the rule's deletion never took effect"
        time.sleep(0.1)
    time.sleep(0.2)


def connect(port: int, **kw: Any) -> pymysql.connections.Connection:
    return pymysql.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD, database=DB,
                           connect_timeout=2, read_timeout=5, **kw)


def test_plaintext_is_refused_with_mysql_error_3159(server: tuple[FlexibleServerEndpoint, Path], allowed: None) -> None:
    endpoint, _ = server
    with pytest.raises(pymysql.err.OperationalError) as ei:
        connect(endpoint.port, ssl_disabled=True)
    assert ei.value.args == (ER_SECURE_TRANSPORT_REQUIRED, INSECURE_MESSAGE)
    # The mysql/mariadb client says the same (ERROR 3159 (HY000)), not MariaDB's own 1045.
    out = subprocess.run(["mariadb", "--no-defaults", "--protocol=TCP", "--host=127.0.0.1", f"--port={endpoint.port}",
                          f"--user={USER}", "--skip-ssl", "-e", "SELECT 1"],
                         env={"MYSQL_PWD": PASSWORD, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "ERROR 3159 (HY000)" in out.stderr and "insecure transport" in out.stderr


def test_verified_tls_gets_in_and_a_wrong_ca_or_name_does_not(server: tuple[FlexibleServerEndpoint, Path],
                                                              allowed: None, tmp_path: Path) -> None:
    endpoint, ca = server
    with connect(endpoint.port, ssl={"ca": str(ca)}) as conn, conn.cursor() as cur:
        cur.execute("SHOW STATUS LIKE 'Ssl_version'")
        assert cur.fetchone()[1].startswith("TLSv1.")
    # The drill's client (pymysql and the command-line client it restores with) verifies the server.
    azure = Database("127.0.0.1", endpoint.port, USER, PASSWORD, DB, ssl_ca=str(ca))
    sql = tmp_path / "restore.sql"
    sql.write_text("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2);\n")
    azure.restore(sql)
    assert azure.row_counts(["t"]) == {"t": 2}
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with pytest.raises(pymysql.err.OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
        connect(endpoint.port, ssl={"ca": str(other)})
    with pytest.raises(pymysql.err.OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
        pymysql.connect(host="localhost", port=endpoint.port, user=USER, password=PASSWORD, connect_timeout=2,
                        ssl={"ca": str(ca)})  # "localhost" is not one of the certificate's names
    with pytest.raises(Exception, match="restore"):
        Database("127.0.0.1", endpoint.port, USER, PASSWORD, DB, ssl_ca=str(other)).restore(sql)


def test_a_client_no_firewall_rule_allows_gets_no_answer_until_the_drills_rule_takes_effect(
    server: tuple[FlexibleServerEndpoint, Path], arm: ArmEmulator, mgmt: MySQLManagementClient,
) -> None:
    endpoint, ca = server
    assert not arm.state.list_firewall_rules(RG, SERVER)  # public access, no rule: nobody gets in
    t0 = time.monotonic()
    with pytest.raises(pymysql.err.OperationalError) as ei:
        connect(endpoint.port, ssl={"ca": str(ca)})
    assert ei.value.args[0] == 2003 and "timed out" in ei.value.args[1]
    assert time.monotonic() - t0 >= 1.5  # dropped, not refused: the client waits out its timeout

    # Runbook 2.2 step 4 through ARM, ledgered: the rule exists once the long-running PUT is done ...
    ledger = Ledger()
    fw = MysqlFirewall(mgmt, RG, SERVER, ledger)
    entry = fw.allow("dr-drill-test", "127.0.0.1")
    assert entry.state == "applied" and entry.inverse.op == "azure.mysql.delete_firewall_rule"
    assert fw.rules() == [{"name": "dr-drill-test", "start": "127.0.0.1", "end": "127.0.0.1"}]
    rule = mgmt.firewall_rules.get(RG, SERVER, "dr-drill-test")
    assert (rule.type, rule.start_ip_address) == ("Microsoft.DBforMySQL/flexibleServers/firewallRules", "127.0.0.1")
    # ... and lets the client in only once it has taken effect.
    with pytest.raises(pymysql.err.OperationalError):
        connect(endpoint.port, ssl={"ca": str(ca)})
    probe = Database("127.0.0.1", endpoint.port, USER, PASSWORD, DB, ssl_ca=str(ca), connect_timeout=0.5)
    waited = wait_for_access(probe.connect, timeout=10, poll=0.1)
    assert 0.0 < waited < 5.0
    # The inverse, from the ledger's data alone: the rule goes, and so does the client's access.
    failures = ledger.unwind(lambda a: execute_mysql_action(a, lambda: mgmt))
    assert failures == [] and fw.rules() == []
    deadline = time.monotonic() + 10
    while arm.state.mysql_client_allowed(RG, SERVER, "127.0.0.1"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.2)
    with pytest.raises(pymysql.err.OperationalError) as ei:
        connect(endpoint.port, ssl={"ca": str(ca)})
    assert ei.value.args[0] == 2003


def test_firewall_rules_are_ipv4_for_an_existing_server(mgmt: MySQLManagementClient) -> None:
    with pytest.raises(HttpResponseError) as ei:
        mgmt.firewall_rules.begin_create_or_update(
            RG, SERVER, "v6", FirewallRule(start_ip_address="2001:db8::1", end_ip_address="2001:db8::1")).result()
    assert ei.value.status_code == 400 and "IPv4" in str(ei.value)
    with pytest.raises(ResourceNotFoundError):
        mgmt.firewall_rules.begin_create_or_update(
            RG, "mysql-nope", "r", FirewallRule(start_ip_address="10.0.0.1", end_ip_address="10.0.0.1")).result()
    server = mgmt.servers.get(RG, SERVER)
    assert (server.fully_qualified_domain_name, server.network.public_network_access) == (AZURE_NAME, "Enabled")
    assert [s.name for s in mgmt.servers.list_by_resource_group(RG)] == [SERVER]
    with pytest.raises(ValueError, match="IPv6"):
        MysqlFirewall(mgmt, RG, SERVER, Ledger()).allow("v6", "2001:db8::1")


def test_the_drill_learns_its_egress_address_from_an_echo_url() -> None:
    echo = EgressEcho().start()
    try:
        assert egress_address(url=echo.url) == "127.0.0.1"
        assert egress_address(address="203.0.113.7") == "203.0.113.7"
        with pytest.raises(EgressError, match="did not tell"):
            egress_address(url=f"http://127.0.0.1:{free_port()}/")
        with pytest.raises(EgressError, match="IPv6"):
            egress_address(address="2001:db8::1")
    finally:
        echo.stop()
