"""Azure Database for MySQL flexible servers and their firewall rules (Microsoft.DBforMySQL) in the
lab's ARM model.

The failover stack creates the server in-process (as Terraform would through ARM); clients manage its
firewall rules through ARM like `az mysql flexible-server firewall-rule create` and the
azure-mgmt-mysqlflexibleservers SDK do: PUT/DELETE .../flexibleServers/{s}/firewallRules/{r} are
long-running (202 + Azure-AsyncOperation + Location; the SDK reads the final rule from Location).

What the data plane (mysql_dataplane.py) asks: is a client address allowed? Only an address inside
a rule's [startIpAddress, endIpAddress] (IPv4 only) is, and only once the change has taken effect:
"There might be as much as a five-minute delay for changes to the Azure Database for MySQL Flexible
Server firewall configuration to take effect" (Public Network Access for Flexible Server) — the lab
plays `mysql_firewall_propagation_seconds` of it, after the ARM operation completes.
"""
from __future__ import annotations

import copy
import ipaddress
import re
import time
from dataclasses import dataclass
from typing import Any

from lab.azure.arm_base import ArmBase, ArmError, Operation, _key

MYSQL = "Microsoft.DBforMySQL"
SERVER_TYPE = "Microsoft.DBforMySQL/flexibleServers"
RULE_TYPE = "Microsoft.DBforMySQL/flexibleServers/firewallRules"
RULE_NAME = re.compile(r"^[-\w._]{1,128}$")
FIREWALL_OPERATIONS = ("mysql.firewall.put", "mysql.firewall.delete")


@dataclass
class _Rule:
    resource: dict[str, Any]
    start: ipaddress.IPv4Address
    end: ipaddress.IPv4Address
    effective_at: float  # monotonic: when the data plane honours it
    removed_at: float | None = None  # monotonic: when its deletion takes effect


class MysqlFlexibleServers(ArmBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mysql_servers: dict[tuple[str, str], dict[str, Any]] = {}
        self._firewall: dict[tuple[str, str], dict[str, _Rule]] = {}  # (rg, server) -> rule name (lower) -> rule

    def mysql_server_id(self, rg: str, name: str) -> str:
        return f"{self.rg_id(rg)}/providers/{SERVER_TYPE}/{name}"

    # -- servers (created and deleted in-process by the lab's failover stack) -----------------------
    def create_mysql_flexible_server(self, rg: str, name: str, fqdn: str, administrator_login: str,
                                     version: str = "8.0.21", location: str | None = None) -> dict[str, Any]:
        """A server with public access (allowed IP addresses) as ARM's GET shows it; no firewall rule yet."""
        with self._lock:
            rg = self._require_rg(rg)
            server = {
                "id": self.mysql_server_id(rg, name), "name": name, "type": SERVER_TYPE,
                "location": location or self.location, "tags": {},
                "sku": {"name": "Standard_B2s", "tier": "Burstable"},
                "properties": {
                    "administratorLogin": administrator_login, "version": version, "state": "Ready",
                    "fullyQualifiedDomainName": fqdn, "availabilityZone": "1", "replicationRole": "None",
                    "network": {"publicNetworkAccess": "Enabled"},
                    "storage": {"storageSizeGB": 20, "iops": 360, "autoGrow": "Enabled"},
                    "backup": {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"},
                    "highAvailability": {"mode": "Disabled"},
                },
            }
            key = _key(rg, name)
            self._mysql_servers[key] = server
            self._firewall[key] = {}
            self._record("mysql server created", server=name)
            return copy.deepcopy(server)

    def delete_mysql_flexible_server(self, rg: str, name: str) -> bool:
        """Delete a server and, with it, its firewall rules; False if it was not there."""
        with self._lock:
            key = _key(rg, name)
            gone = self._mysql_servers.pop(key, None) is not None
            self._firewall.pop(key, None)
            if gone:
                self._record("mysql server deleted", server=name)
            return gone

    def get_mysql_flexible_server(self, rg: str, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._server(rg, name))

    def list_mysql_flexible_servers(self, rg: str) -> list[dict[str, Any]]:
        with self._lock:
            rg = self._require_rg(rg)
            return [copy.deepcopy(v) for k, v in self._mysql_servers.items() if k[0] == rg.lower()]

    def _server(self, rg: str, name: str) -> dict[str, Any]:
        rg = self._require_rg(rg)
        server = self._mysql_servers.get(_key(rg, name))
        if server is None:
            raise self._not_found(SERVER_TYPE, name, rg)
        return server

    # -- firewall rules --------------------------------------------------------------------------------
    def list_firewall_rules(self, rg: str, server: str) -> list[dict[str, Any]]:
        with self._lock:
            s = self._server(rg, server)
            rules = self._firewall.get(_key(rg, s["name"]), {})
            return [copy.deepcopy(r.resource) for r in rules.values() if r.removed_at is None]

    def get_firewall_rule(self, rg: str, server: str, rule: str) -> dict[str, Any]:
        with self._lock:
            s = self._server(rg, server)
            found = self._firewall.get(_key(rg, s["name"]), {}).get(rule.lower())
            if found is None or found.removed_at is not None:
                raise self._not_found(f"{SERVER_TYPE}/{s['name']}/firewallRules", rule, rg)
            return copy.deepcopy(found.resource)

    def put_firewall_rule(self, rg: str, server: str, rule: str, body: dict[str, Any]) -> Operation:
        """Start creating or replacing a rule; it exists once the operation completes."""
        self._settle()
        with self._lock:
            s = self._server(rg, server)
            if not RULE_NAME.match(rule):
                raise ArmError(400, "InvalidParameterValue", f"Invalid value given for parameter FirewallRuleName: '{rule}'.")
            props = (body or {}).get("properties") or {}
            start = _ipv4(props.get("startIpAddress"), "StartIpAddress")
            end = _ipv4(props.get("endIpAddress"), "EndIpAddress")
            if start > end:
                raise ArmError(400, "InvalidParameterValue",
                               "The StartIpAddress must be less than or equal to the EndIpAddress.")
            resource = {
                "id": f"{s['id']}/firewallRules/{rule}", "name": rule, "type": RULE_TYPE,
                "properties": {"startIpAddress": str(start), "endIpAddress": str(end)},
            }
            op = self._new_op("mysql.firewall.put", self._require_rg(rg), s["name"], self.timings.mysql_firewall_rule_seconds)
            op.namespace, op.result = MYSQL, resource
            self._schedule(op)
            self._record("mysql firewall rule update started", server=s["name"], rule=rule,
                         start=str(start), end=str(end))
            return op

    def delete_firewall_rule(self, rg: str, server: str, rule: str) -> Operation | None:
        """Start deleting a rule; None if there is no such rule (ARM answers 204)."""
        self._settle()
        with self._lock:
            s = self._server(rg, server)
            found = self._firewall.get(_key(rg, s["name"]), {}).get(rule.lower())
            if found is None or found.removed_at is not None:
                return None
            op = self._new_op("mysql.firewall.delete", self._require_rg(rg), s["name"], self.timings.mysql_firewall_rule_seconds)
            op.namespace, op.target = MYSQL, rule
            self._schedule(op)
            self._record("mysql firewall rule delete started", server=s["name"], rule=rule)
            return op

    def _complete(self, op: Operation) -> None:
        if op.kind not in FIREWALL_OPERATIONS:
            return super()._complete(op)
        rules = self._firewall.get(_key(op.rg, op.name))
        now = time.monotonic()
        effective = now + self.timings.mysql_firewall_propagation_seconds
        if rules is None:  # the server went meanwhile
            op.status, op.error = "Failed", self._not_found(SERVER_TYPE, op.name, op.rg)
            return
        if op.kind == "mysql.firewall.put":
            props = op.result["properties"]
            old = rules.get(op.result["name"].lower())
            start, end = ipaddress.IPv4Address(props["startIpAddress"]), ipaddress.IPv4Address(props["endIpAddress"])
            unchanged = old is not None and old.removed_at is None and (old.start, old.end) == (start, end)
            rules[op.result["name"].lower()] = _Rule(op.result, start, end,
                                                      old.effective_at if old is not None and unchanged else effective)
            self._record("mysql firewall rule created", server=op.name, rule=op.result["name"],
                         effective_in=round(0.0 if unchanged else effective - now, 3))
        else:
            rule = rules.get(str(op.target).lower())
            if rule is not None:
                rule.removed_at = effective
            self._record("mysql firewall rule deleted", server=op.name, rule=op.target)
        op.status = "Succeeded"

    def mysql_client_allowed(self, rg: str, server: str, address: str) -> bool:
        """Whether the server's public endpoint lets `address` in now (a rule covers it and has taken effect)."""
        try:
            addr = ipaddress.ip_address(address)
        except ValueError:
            return False
        now = time.monotonic()
        with self._lock:
            rules = self._firewall.get(_key(rg, server))
            if rules is None:
                return False
            for name, rule in list(rules.items()):
                if rule.removed_at is not None and rule.removed_at <= now:
                    del rules[name]  # its deletion has taken effect
                    continue
                if addr.version == 4 and rule.start <= addr <= rule.end and rule.effective_at <= now:
                    return True
            return False


def _ipv4(value: Any, parameter: str) -> ipaddress.IPv4Address:
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        address = None
    if not isinstance(address, ipaddress.IPv4Address):  # Flexible Server firewall rules are IPv4 only
        raise ArmError(400, "InvalidParameterValue",
                       f"Invalid value given for parameter {parameter}. Specify a valid IPv4 address.")
    return address
