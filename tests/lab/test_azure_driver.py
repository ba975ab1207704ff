"""drivers.azure_network against the lab's ARM emulator: runbook 2.4 as one ledgered PUT, and its
unwind from the persisted ledger alone (as `drill unwind` would, in a fresh process).
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from drill.ledger import Action, Entry, Ledger
from drivers.azure_network import (
    OP_CONFIGURE_BACKEND,
    OP_SET_RESPONSE_HEADER,
    AppGateway,
    AzureAuth,
    ResponseHeaderRewrite,
    execute_azure_action,
    make_client,
    make_credential,
)
from lab.azure.appgw_dataplane import AppGatewayDataPlane
from lab.azure.arm_server import ArmEmulator
from lab.azure.arm_state import ArmTimings, seed_app_gateway
from lab.events import EventLog
from lab.httpfwd import Response, Server
from lab.ports import free_port

pytestmark = pytest.mark.lab

SCALE = 60.0
CLUSTER_IP = "10.0.0.10"
BLOB = "bloberry01.z12.web.core.windows.net"
TIMINGS = ArmTimings(gateway_update_seconds=60)  # 1 s at SCALE


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmEmulator]:
    work = tmp_path_factory.mktemp("azdrv")
    em = ArmEmulator(work, EventLog(work / "events.jsonl"), time_scale=SCALE, timings=TIMINGS).start()
    em.seed()
    yield em
    em.stop()


@pytest.fixture(scope="module")
def auth(emu: ArmEmulator) -> AzureAuth:
    return AzureAuth(
        subscription_id=emu.subscription_id, tenant_id=emu.tenant_id, client_id=emu.client_id,
        client_secret=emu.client_secret, authority_host=emu.url, resource_manager_url=emu.url,
        ca_bundle=str(emu.ca_path),
    )


@pytest.fixture
def gateway(emu: ArmEmulator) -> Iterator[str]:
    """A gateway as Terraform leaves it, fresh for each test."""
    name = f"appgw-drv-{time.monotonic_ns()}"
    emu.state.create_app_gateway("rg-blue", name, seed_app_gateway("rg-blue", name, subscription_id=emu.subscription_id))
    yield name
    emu.state.delete_app_gateway("rg-blue", name)


def children(emu: ArmEmulator, name: str) -> dict[str, Any]:
    """Pool, settings and probe as ARM stores them, minus what changes on every PUT."""
    props = emu.state.get_app_gateway("rg-blue", name)["properties"]
    strip = lambda c: {k: v for k, v in c["properties"].items() if k != "provisioningState"}  # noqa: E731
    return {
        "pool": strip(props["backendAddressPools"][0]),
        "settings": strip(props["backendHttpSettingsCollection"][0]),
        "probe": strip(props["probes"][0]),
    }


class SpyLedger(Ledger):
    """Records, at the moment each change is noted, what the gateway and the ledger file looked like."""

    def __init__(self, path: Path, emu: ArmEmulator, gateway: str) -> None:
        super().__init__(path)
        self.emu, self.gateway = emu, gateway
        self.at_record: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def record(self, change: Action, inverse: Action) -> Entry:
        entry = super().record(change, inverse)
        self.at_record.append((children(self.emu, self.gateway), json.loads(self.path.read_text())))
        return entry


def test_point_at_ledgers_inverse_first_and_unwind_restores_exactly(
    emu: ArmEmulator, auth: AzureAuth, gateway: str, tmp_path: Path
) -> None:
    original = children(emu, gateway)
    ledger = SpyLedger(tmp_path / "ledger.json", emu, gateway)
    gw = AppGateway(make_client(auth), "rg-blue", gateway, ledger)
    assert gw.backend_pool("blob-backend-pool") == [BLOB]

    entry = gw.point_at("blob-backend-pool", CLUSTER_IP, "blob-http-settings", 80, "Http", "health-probe", CLUSTER_IP)

    # The inverse was on disk, pending, while the gateway was still untouched.
    [(seen, on_disk)] = ledger.at_record
    assert seen == original
    [persisted] = on_disk["entries"]
    assert persisted["state"] == "pending" and persisted["inverse"]["op"] == OP_CONFIGURE_BACKEND
    assert persisted["inverse"]["params"]["pool"]["backendAddresses"] == [{"fqdn": BLOB}]
    assert entry.state == "applied"

    # The gateway really changed (runbook 2.4: pool, settings, probe), and it was one PUT.
    assert gw.backend_pool("blob-backend-pool") == [CLUSTER_IP]
    now = children(emu, gateway)
    assert now["pool"]["backendAddresses"] == [{"ipAddress": CLUSTER_IP}]
    assert (now["settings"]["port"], now["settings"]["protocol"]) == (80, "Http")
    assert now["settings"]["probe"]["id"].endswith("/probes/health-probe")
    assert (now["probe"]["protocol"], now["probe"]["path"], now["probe"]["host"]) == ("Http", "/", CLUSTER_IP)
    assert now["probe"]["pickHostNameFromBackendHttpSettings"] is False
    puts = [r for r in emu.requests if r[0] == "PUT" and r[1].endswith(f"/applicationGateways/{gateway}")]
    assert len(puts) == 1

    # A later process unwinds from the file alone, with a fresh client.
    later = Ledger.load(tmp_path / "ledger.json")
    failures = later.unwind(lambda a: execute_azure_action(a, lambda: make_client(auth)))
    assert failures == []
    assert children(emu, gateway) == original
    assert [e.state for e in Ledger.load(tmp_path / "ledger.json").entries] == ["undone"]
    assert later.unwind(lambda a: execute_azure_action(a, lambda: make_client(auth))) == []  # nothing left


def test_response_header_rewrite_is_ledgered_applied_by_the_data_plane_and_unwound(
    emu: ArmEmulator, auth: AzureAuth, gateway: str, tmp_path: Path
) -> None:
    # What tells users' Azure PetClinic apart: a rewrite rule set the drill adds on the routing rule.
    backend = Server(free_port(), lambda r: Response(200, [("Content-Type", "text/plain")], b"petclinic")).start()
    plane = AppGatewayDataPlane(emu.state, "rg-blue", gateway,
                                lambda a, p: [("127.0.0.1", backend.port)] if a.lower() == BLOB else [], SCALE).start()
    try:
        assert "X-Served-By" not in httpx.get(plane.url + "/", timeout=5).headers  # as the seeds' stack has it
        ledger = Ledger(tmp_path / "ledger.json")
        entry = ResponseHeaderRewrite(AppGateway(make_client(auth), "rg-blue", gateway, ledger)).add(
            "dr-drill-served-by", "X-Served-By", "azure")
        assert entry.state == "applied" and entry.inverse.op == OP_SET_RESPONSE_HEADER
        gw = make_client(auth).application_gateways.get("rg-blue", gateway)
        [rule] = gw.request_routing_rules
        assert rule.rewrite_rule_set.id == f"{gw.id}/rewriteRuleSets/dr-drill-served-by"
        [hdr] = gw.rewrite_rule_sets[0].rewrite_rules[0].action_set.response_header_configurations
        assert (hdr.header_name, hdr.header_value) == ("X-Served-By", "azure")
        assert httpx.get(plane.url + "/", timeout=5).headers["X-Served-By"] == "azure"

        failures = Ledger.load(tmp_path / "ledger.json").unwind(lambda a: execute_azure_action(a, lambda: make_client(auth)))
        assert failures == []
        gw = make_client(auth).application_gateways.get("rg-blue", gateway)
        assert gw.request_routing_rules[0].rewrite_rule_set is None and not gw.rewrite_rule_sets
        assert "X-Served-By" not in httpx.get(plane.url + "/", timeout=5).headers
        with pytest.raises(KeyError, match="no request routing rule"):
            ResponseHeaderRewrite(AppGateway(make_client(auth), "rg-blue", gateway, Ledger())).add(
                "x", "X-Served-By", "azure", ["no-such-rule"])
    finally:
        plane.stop()
        backend.stop()


def test_secrets_absent_from_ledger_and_reprs(emu: ArmEmulator, auth: AzureAuth, gateway: str, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.json")
    gw = AppGateway(make_client(auth), "rg-blue", gateway, ledger)
    gw.point_at("blob-backend-pool", CLUSTER_IP, "blob-http-settings", 80, "Http", "health-probe", CLUSTER_IP)
    text = (tmp_path / "ledger.json").read_text()
    token = make_credential(auth).get_token("https://management.azure.com/.default").token
    for secret in (emu.client_secret, token):
        assert secret not in text
        assert secret not in repr(auth) and secret not in repr(gw) and secret not in repr(emu)
    ledger.unwind(lambda a: execute_azure_action(a, lambda: make_client(auth)))


def test_backend_health_and_refusals(emu: ArmEmulator, auth: AzureAuth, gateway: str) -> None:
    client = make_client(auth)
    servers = AppGateway(client, "rg-blue", gateway).backend_health()
    assert servers == [{"pool": "blob-backend-pool", "http_settings": "blob-http-settings", "address": BLOB,
                        "health": "Unknown", "log": "The gateway's data plane is not running."}]
    with pytest.raises(RuntimeError, match="ledger"):
        AppGateway(client, "rg-blue", gateway).point_at("blob-backend-pool", CLUSTER_IP, "blob-http-settings", 80,
                                                        "Http", "health-probe", CLUSTER_IP)
    ledger = Ledger()
    with pytest.raises(KeyError, match="no-such-pool"):
        AppGateway(client, "rg-blue", gateway, ledger).point_at("no-such-pool", CLUSTER_IP, "blob-http-settings", 80,
                                                                "Http", "health-probe", CLUSTER_IP)
    assert ledger.entries == []  # nothing recorded for a change that could not be made
    with pytest.raises(ValueError, match="no executor"):
        execute_azure_action(Action("azure.nope", {}, ""), lambda: client)


def test_default_credential_path_without_client_secret(emu: ArmEmulator, auth: AzureAuth,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # No secret in the target: DefaultAzureCredential (here its EnvironmentCredential) against the same authority.
    monkeypatch.setenv("AZURE_TENANT_ID", emu.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", emu.client_id)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", emu.client_secret)
    no_secret = AzureAuth(subscription_id=emu.subscription_id, authority_host=emu.url,
                          resource_manager_url=emu.url, ca_bundle=str(emu.ca_path))
    cred = make_credential(no_secret)
    assert type(cred).__name__ == "DefaultAzureCredential"
    gw = make_client(no_secret, cred).application_gateways.get("rg-blue", "appgw-blue")
    assert gw.provisioning_state == "Succeeded"


def test_inverse_replays_against_a_client_built_from_config(emu: ArmEmulator, auth: AzureAuth, gateway: str) -> None:
    # The inverse is plain data: replaying it twice is harmless (idempotent), and it needs no state.
    before = children(emu, gateway)
    ledger = Ledger()
    entry = AppGateway(make_client(auth), "rg-blue", gateway, ledger).point_at(
        "blob-backend-pool", "10.0.0.11", "blob-http-settings", 8080, "Http", "health-probe", None, "/health")
    now = children(emu, gateway)
    assert now["probe"]["pickHostNameFromBackendHttpSettings"] is True and now["probe"].get("host") is None
    assert now["probe"]["path"] == "/health" and now["settings"]["port"] == 8080
    roundtrip = Action(**json.loads(json.dumps(entry.inverse.__dict__)))
    for _ in range(2):
        execute_azure_action(roundtrip, lambda: make_client(auth))
    assert children(emu, gateway) == before
