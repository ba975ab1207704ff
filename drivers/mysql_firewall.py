"""Azure MySQL flexible server firewall rules through azure-mgmt-mysqlflexibleservers: runbook 2.2 step 4.

The runbook lets its own machine through with `MY_IP=$(curl -s ifconfig.me)` and `az mysql
flexible-server firewall-rule create --start-ip-address $MY_IP --end-ip-address $MY_IP`. The drill does
the same through ARM: the address comes from the target (an explicit IPv4 address, or a URL that
echoes the caller's address, like ifconfig.me/ip), and the rule is a ledgered change whose inverse
deletes it. Flexible Server firewall rules are IPv4 only, and a change "might take as much as five
minutes" to take effect (Public Network Access for Flexible Server): `wait_for_access` retries the
connection until the server lets the drill in.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from azure.core.credentials import TokenCredential
from azure.mgmt.mysqlflexibleservers import MySQLManagementClient
from azure.mgmt.mysqlflexibleservers.models import FirewallRule

from drill.ledger import Action, Entry, Ledger
from drill.names import ipv4_problem

OP_ALLOW = "azure.mysql.create_firewall_rule"
OP_REMOVE = "azure.mysql.delete_firewall_rule"
CR_CONN_HOST_ERROR = 2003  # pymysql/libmysql: can't connect (what a firewall that drops packets gives)


class EgressError(RuntimeError):
    """The drill's own public address could not be learned, or is not one a firewall rule can hold."""


def make_mysql_client(cfg: Any, credential: TokenCredential | None = None) -> MySQLManagementClient:
    """MySQLManagementClient for `cfg.subscription_id` (an AzureAuth-shaped object), like make_client."""
    from drivers.azure_network import client_kwargs, make_credential

    kw: dict[str, Any] = client_kwargs(cfg)
    return MySQLManagementClient(
        credential or make_credential(cfg), cfg.subscription_id,
        base_url=getattr(cfg, "resource_manager_url", None) or "https://management.azure.com", **kw,
    )


def egress_address(address: str | None = None, url: str | None = None, timeout: float = 10.0,
                   verify: bool | str = True) -> str:
    """The IPv4 address the drill connects from: `address` as given, else what `url` echoes."""
    if address is None and url is None:
        raise EgressError("neither an address nor an echo URL is configured (azure.mysql.client_address[_url])")
    if address is None:
        try:
            r = httpx.get(str(url), timeout=timeout, verify=verify, follow_redirects=True)
            r.raise_for_status()
        except httpx.HTTPError as e:
            raise EgressError(f"{url} did not tell the drill its address: {type(e).__name__}: {e}") from None
        address = r.text.strip().splitlines()[0].strip() if r.text.strip() else ""
    problem = ipv4_problem(address)
    if problem:
        raise EgressError(f"the drill's egress address {problem}" + (f" (from {url})" if url else ""))
    return str(address).strip()


class MysqlFirewall:
    """The firewall rules of one flexible server."""

    def __init__(self, client: MySQLManagementClient, resource_group: str, server: str, ledger: Ledger | None = None) -> None:
        self.client = client
        self.resource_group = resource_group
        self.server = server
        self.ledger = ledger

    def __repr__(self) -> str:
        return f"MysqlFirewall({self.resource_group}/{self.server})"

    def rules(self) -> list[dict[str, str | None]]:
        return [{"name": r.name, "start": r.start_ip_address, "end": r.end_ip_address}
                for r in self.client.firewall_rules.list_by_server(self.resource_group, self.server)]

    def allow(self, rule: str, address: str) -> Entry:
        """Create `rule` for one address (runbook 2.2 step 4), recording its deletion first."""
        if self.ledger is None:
            raise RuntimeError("a change needs a rollback ledger")
        problem = ipv4_problem(address)
        if problem:
            raise ValueError(problem)
        where = {"resource_group": self.resource_group, "server": self.server, "rule": rule}
        entry = self.ledger.record(
            Action(OP_ALLOW, {**where, "start": address, "end": address},
                   f"allow {address} through the firewall of {self.server} (rule {rule})"),
            Action(OP_REMOVE, where, f"delete firewall rule {rule} of {self.server}"),
        )
        if not entry.planned:
            self.client.firewall_rules.begin_create_or_update(
                self.resource_group, self.server, rule, FirewallRule(start_ip_address=address, end_ip_address=address),
            ).result()
            self.ledger.applied(entry)
        return entry

    def remove(self, rule: str) -> None:
        self.client.firewall_rules.begin_delete(self.resource_group, self.server, rule).result()


def wait_for_access(connect: Callable[[], Any], timeout: float, poll: float = 0.5) -> float:
    """Connect until the firewall lets the drill in (a change takes a while to take effect); seconds waited.

    A firewall that drops packets holds each attempt until its connect timeout, so attempts overlap: a
    new one starts every `poll` seconds, whatever the earlier ones are waiting for, and the first to get
    in ends the wait (one attempt at a time found the rule in effect up to a whole connect timeout
    late: in the lab, 0.5 s of the data-restore RTO's 30 s). Only "cannot connect" (2003) is retried:
    a TLS, password or 3159 (insecure transport) refusal will not go away by waiting and is raised at once.
    """
    import pymysql

    t0 = time.monotonic()
    done = threading.Event()
    lock = threading.Lock()
    outcome: dict[str, Any] = {}

    def attempt() -> None:
        try:
            conn = connect()
        except Exception as e:  # noqa: BLE001 - anything but a dropped connection is the waiter's to raise
            if isinstance(e, pymysql.err.OperationalError) and e.args and e.args[0] == CR_CONN_HOST_ERROR and "SSL" not in str(e):
                outcome["last"] = e
                return
            with lock:
                outcome.setdefault("error", e)
            done.set()
            return
        with lock:
            first = not outcome.keys() & {"conn", "error", "gave_up"}
            if first:
                outcome["conn"], outcome["at"] = conn, time.monotonic()
        if not first:
            conn.close()  # a later attempt that also got in, or one after the waiter gave up
        done.set()

    while not done.is_set():
        if time.monotonic() - t0 > timeout:
            with lock:
                outcome["gave_up"] = True
            last = outcome.get("last")
            raise pymysql.err.OperationalError(CR_CONN_HOST_ERROR, f"no connection within {timeout:g}s"
                                               + (f" (last attempt: {last.args[1]})" if last and len(last.args) > 1 else ""))
        threading.Thread(target=attempt, name="mysql-access-attempt", daemon=True).start()
        done.wait(poll)
    with lock:
        if "error" in outcome:
            raise outcome["error"]
        outcome["conn"].close()
        return float(outcome["at"] - t0)


def execute_mysql_action(action: Action, client_factory: Callable[[], MySQLManagementClient]) -> None:
    """Carry out an Azure MySQL ledger action (an inverse, usually) from its data alone."""
    p = action.params
    fw = MysqlFirewall(client_factory(), p["resource_group"], p["server"])
    if action.op == OP_REMOVE:
        fw.remove(p["rule"])
    elif action.op == OP_ALLOW:
        fw.client.firewall_rules.begin_create_or_update(
            p["resource_group"], p["server"], p["rule"], FirewallRule(start_ip_address=p["start"], end_ip_address=p["end"]),
        ).result()
    else:
        raise ValueError(f"no executor for operation {action.op!r}")
