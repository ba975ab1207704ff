"""The lab's ARM emulator and Entra authority, pinned against the real azure-identity and
azure-mgmt-network clients (no emulator exists to compare with, so the SDK is the referee).

Each test that changes a gateway works on its own gateway (created in-process from the seed), so
the seeded appgw-blue stays as Terraform left it for the read-only tests.
"""
from __future__ import annotations

import ssl
import time
from collections.abc import Iterator

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network import models as M

from lab.azure.arm_server import ArmEmulator
from lab.azure.arm_state import ArmError, ArmTimings, seed_app_gateway
from lab.events import EventLog

pytestmark = pytest.mark.lab

SCALE = 60.0
# Real-world seconds; at SCALE 60 an update takes 2 s, so the SDK polls at least twice (Retry-After 1).
TIMINGS = ArmTimings(gateway_create_seconds=120, gateway_update_seconds=120, gateway_delete_seconds=120,
                     backend_health_seconds=30)
ARM_SCOPE = "https://management.azure.com/.default"
API = "2024-05-01"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmEmulator]:
    work = tmp_path_factory.mktemp("arm")
    em = ArmEmulator(work, EventLog(work / "events.jsonl"), time_scale=SCALE, timings=TIMINGS).start()
    em.seed()
    yield em
    em.stop()


@pytest.fixture(scope="module")
def cred(emu: ArmEmulator) -> ClientSecretCredential:
    return ClientSecretCredential(
        emu.tenant_id, emu.client_id, emu.client_secret, authority=emu.url,
        disable_instance_discovery=True, connection_verify=str(emu.ca_path),
    )


@pytest.fixture(scope="module")
def client(emu: ArmEmulator, cred: ClientSecretCredential) -> NetworkManagementClient:
    return NetworkManagementClient(cred, emu.subscription_id, base_url=emu.url, connection_verify=str(emu.ca_path))


def fresh_gateway(emu: ArmEmulator, name: str) -> None:
    emu.state.create_app_gateway("rg-blue", name, seed_app_gateway("rg-blue", name, subscription_id=emu.subscription_id))


def op_polls(emu: ArmEmulator, since: int) -> list[tuple[str, str, int]]:
    return [r for r in list(emu.requests)[since:] if "/operations/" in r[1] or "/operationResults/" in r[1]]


# -- the authority ---------------------------------------------------------------------------------
def test_token_from_fake_authority(emu: ArmEmulator, cred: ClientSecretCredential) -> None:
    tok = cred.get_token(ARM_SCOPE)
    assert tok.token and len(tok.token) > 20
    assert 3500 < tok.expires_on - time.time() <= 3600
    assert emu.client_secret not in repr(emu)
    issued = [e for e in emu.events.events("token issued")]
    assert issued and issued[-1].detail["audience"] == "https://management.azure.com/"


def test_wrong_secret_and_unknown_client_are_refused(emu: ArmEmulator) -> None:
    common = dict(authority=emu.url, disable_instance_discovery=True, connection_verify=str(emu.ca_path))
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        ClientSecretCredential(emu.tenant_id, emu.client_id, "not-the-secret", **common).get_token(ARM_SCOPE)
    with pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        ClientSecretCredential(emu.tenant_id, "11111111-2222-3333-4444-555555555555", emu.client_secret,
                               **common).get_token(ARM_SCOPE)


def test_unauthenticated_and_bad_tokens_get_401(emu: ArmEmulator, cred: ClientSecretCredential) -> None:
    url = f"{emu.url}/subscriptions/{emu.subscription_id}/resourceGroups/rg-blue?api-version={API}"
    with httpx.Client(verify=ssl.create_default_context(cafile=str(emu.ca_path))) as h:
        r = h.get(url)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "AuthenticationFailed"
        assert r.headers["WWW-Authenticate"].startswith("Bearer ")
        r = h.get(url, headers={"Authorization": "Bearer made-up"})
        assert (r.status_code, r.json()["error"]["code"]) == (401, "InvalidAuthenticationToken")
        storage = cred.get_token("https://storage.azure.com/.default").token
        r = h.get(url, headers={"Authorization": f"Bearer {storage}"})
        assert (r.status_code, r.json()["error"]["code"]) == (401, "InvalidAuthenticationTokenAudience")
        good = cred.get_token(ARM_SCOPE).token
        assert h.get(url, headers={"Authorization": f"Bearer {good}"}).status_code == 200
        r = h.get(url.split("?")[0], headers={"Authorization": f"Bearer {good}"})
        assert (r.status_code, r.json()["error"]["code"]) == (400, "MissingApiVersionParameter")


def test_plain_tls_client_without_the_ca_is_refused(emu: ArmEmulator) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{emu.url}/{emu.tenant_id}/v2.0/.well-known/openid-configuration", timeout=5)


# -- reads -----------------------------------------------------------------------------------------------
def test_get_seeded_gateway_typed(emu: ArmEmulator, client: NetworkManagementClient) -> None:
    gw = client.application_gateways.get("rg-blue", "appgw-blue")
    gid = f"/subscriptions/{emu.subscription_id}/resourceGroups/rg-blue/providers/Microsoft.Network/applicationGateways/appgw-blue"
    assert (gw.id, gw.name, gw.type, gw.location) == (gid, "appgw-blue", "Microsoft.Network/applicationGateways", "koreacentral")
    assert gw.etag.startswith('W/"')
    assert gw.provisioning_state == "Succeeded" and gw.operational_state == "Running"
    assert (gw.sku.name, gw.sku.tier) == ("Standard_v2", "Standard_v2")
    [pool] = gw.backend_address_pools
    assert pool.name == "blob-backend-pool" and pool.id == f"{gid}/backendAddressPools/blob-backend-pool"
    assert pool.type == "Microsoft.Network/applicationGateways/backendAddressPools" and pool.etag == gw.etag
    assert [a.fqdn for a in pool.backend_addresses] == ["bloberry01.z12.web.core.windows.net"]
    [hs] = gw.backend_http_settings_collection
    assert (hs.name, hs.port, hs.protocol, hs.pick_host_name_from_backend_address) == ("blob-http-settings", 443, "Https", True)
    assert hs.probe.id == f"{gid}/probes/health-probe"
    [probe] = gw.probes
    assert (probe.protocol, probe.path, probe.interval, probe.timeout, probe.unhealthy_threshold) == ("Https", "/", 30, 30, 3)
    assert probe.pick_host_name_from_backend_http_settings is True and probe.match.status_codes == ["200-399"]
    [listener] = gw.http_listeners
    assert listener.frontend_port.id == f"{gid}/frontendPorts/http-port" and listener.protocol == "Http"
    assert gw.frontend_ports[0].port == 80
    assert gw.frontend_ip_configurations[0].public_ip_address.id.endswith("/publicIPAddresses/pip-appgw-blue")
    assert gw.gateway_ip_configurations[0].subnet.id.endswith("/virtualNetworks/vnet-blue/subnets/snet-appgw")
    [rule] = gw.request_routing_rules
    assert (rule.rule_type, rule.priority) == ("Basic", 100)
    assert rule.backend_address_pool.id == pool.id and rule.backend_http_settings.id == hs.id
    assert rule.http_listener.id == listener.id
    # Nothing in the seeds' stack marks Azure's responses: the drill adds that itself.
    assert rule.rewrite_rule_set is None and not gw.rewrite_rule_sets


def test_missing_gateway_and_resource_group(client: NetworkManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError) as e:
        client.application_gateways.get("rg-blue", "appgw-nope")
    assert e.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as e:
        client.application_gateways.get("rg-nope", "appgw-blue")
    assert e.value.error.code == "ResourceGroupNotFound"


def test_list_gateways(emu: ArmEmulator, client: NetworkManagementClient) -> None:
    fresh_gateway(emu, "appgw-list")
    assert {"appgw-blue", "appgw-list"} <= {g.name for g in client.application_gateways.list("rg-blue")}
    assert "appgw-blue" in {g.name for g in client.application_gateways.list_all()}
    assert emu.state.delete_app_gateway("rg-blue", "appgw-list") is None


def test_vnet_and_subnets(client: NetworkManagementClient) -> None:
    vnet = client.virtual_networks.get("rg-blue", "vnet-blue")
    assert vnet.address_space.address_prefixes == ["172.16.0.0/16"]
    assert {s.name for s in client.subnets.list("rg-blue", "vnet-blue")} >= {"snet-aks", "snet-appgw"}
    assert client.subnets.get("rg-blue", "vnet-blue", "snet-aks").address_prefix == "172.16.11.0/24"
    with pytest.raises(ResourceNotFoundError):
        client.subnets.get("rg-blue", "vnet-blue", "snet-nope")


def test_public_ip_with_a_dns_label_has_an_azure_fqdn(emu: ArmEmulator, client: NetworkManagementClient) -> None:
    # A public IP's domain_name_label gives it <label>.<region>.cloudapp.azure.com: the name a
    # CloudFront origin can use while the address exists (it goes with the address).
    emu.state.create_public_ip("rg-blue", "pip-test", "20.41.0.12", "appgw-test-dr")
    try:
        pip = client.public_ip_addresses.get("rg-blue", "pip-test")
        assert (pip.ip_address, pip.public_ip_address_version, pip.public_ip_allocation_method) == ("20.41.0.12", "IPv4", "Static")
        assert (pip.dns_settings.domain_name_label, pip.dns_settings.fqdn) == (
            "appgw-test-dr", "appgw-test-dr.koreacentral.cloudapp.azure.com")
        assert "pip-test" in {p.name for p in client.public_ip_addresses.list("rg-blue")}
        assert emu.state.public_ip_by_fqdn("APPGW-TEST-DR.koreacentral.cloudapp.azure.com.")["name"] == "pip-test"
        with pytest.raises(ArmError, match="InvalidDomainNameLabel"):
            emu.state.create_public_ip("rg-blue", "pip-bad", "20.41.0.13", "Not_A_Label")
    finally:
        assert emu.state.delete_public_ip("rg-blue", "pip-test")
    assert emu.state.public_ip_by_fqdn("appgw-test-dr.koreacentral.cloudapp.azure.com") is None
    with pytest.raises(ResourceNotFoundError):
        client.public_ip_addresses.get("rg-blue", "pip-test")


# -- changes -----------------------------------------------------------------------------------------------
def test_create_or_update_is_long_running(emu: ArmEmulator, client: NetworkManagementClient) -> None:
    fresh_gateway(emu, "appgw-lro")
    gw = client.application_gateways.get("rg-blue", "appgw-lro")
    gw.backend_address_pools[0].backend_addresses = [M.ApplicationGatewayBackendAddress(ip_address="10.0.0.10")]
    mark = len(emu.requests)
    t0 = time.monotonic()
    poller = client.application_gateways.begin_create_or_update("rg-blue", "appgw-lro", gw)
    assert poller.status() == "InProgress"
    # While provisioning, GET shows the new configuration Updating; the data plane still has the old one.
    during = client.application_gateways.get("rg-blue", "appgw-lro")
    assert during.provisioning_state == "Updating"
    assert emu.state.active_app_gateway("rg-blue", "appgw-lro")["properties"]["backendAddressPools"][0][
        "properties"]["backendAddresses"] == [{"fqdn": "bloberry01.z12.web.core.windows.net"}]
    result = poller.result()
    took = time.monotonic() - t0
    assert poller.status() == "Succeeded" and result.provisioning_state == "Succeeded"
    assert [a.ip_address for a in result.backend_address_pools[0].backend_addresses] == ["10.0.0.10"]
    assert took >= TIMINGS.gateway_update_seconds / SCALE
    polls = op_polls(emu, mark)
    assert len(polls) >= 2, polls  # at least one InProgress answer before Succeeded
    assert took < 10, "Retry-After must keep azure-core off its 30 s default poll interval"


def test_created_gateway_returns_201_and_provisions(emu: ArmEmulator, client: NetworkManagementClient) -> None:
    body = seed_app_gateway("rg-blue", "appgw-new", subscription_id=emu.subscription_id)
    t0 = time.monotonic()
    gw = client.application_gateways.begin_create_or_update(  # type: ignore[call-overload]  # a raw ARM JSON body
        "rg-blue", "appgw-new", body).result()
    assert time.monotonic() - t0 >= TIMINGS.gateway_create_seconds / SCALE
    assert gw.provisioning_state == "Succeeded" and gw.operational_state == "Running"
    assert ("PUT", f"/subscriptions/{emu.subscription_id}/resourceGroups/rg-blue/providers/Microsoft.Network/"
            f"applicationGateways/appgw-new", 201) in emu.requests
    emu.state.delete_app_gateway("rg-blue", "appgw-new")


def test_invalid_reference_is_rejected(emu: ArmEmulator, client: NetworkManagementClient) -> None:
    gw = client.application_gateways.get("rg-blue", "appgw-blue")
    gw.request_routing_rules[0].backend_address_pool = M.SubResource(id=f"{gw.id}/backendAddressPools/missing-pool")
    with pytest.raises(HttpResponseError) as e:
        client.application_gateways.begin_create_or_update("rg-blue", "appgw-blue", gw)
    assert e.value.status_code == 400 and e.value.error.code == "InvalidResourceReference"
    assert "backendAddressPools/missing-pool referenced by resource" in e.value.error.message
    gw = client.application_gateways.get("rg-blue", "appgw-blue")
    gw.request_routing_rules[0].priority = None
    with pytest.raises(HttpResponseError) as e:
        client.application_gateways.begin_create_or_update("rg-blue", "appgw-blue", gw)
    assert e.value.error.code == "ApplicationGatewayRequestRoutingRulePriorityCannotBeEmpty"
    after = client.application_gateways.get("rg-blue", "appgw-blue")
    assert after.provisioning_state == "Succeeded" and after.request_routing_rules[0].priority == 100


def test_second_change_while_updating_is_refused(emu: ArmEmulator, client: NetworkManagementClient) -> None:
    fresh_gateway(emu, "appgw-busy")
    gw = client.application_gateways.get("rg-blue", "appgw-busy")
    poller = client.application_gateways.begin_create_or_update("rg-blue", "appgw-busy", gw)
    with pytest.raises(HttpResponseError) as e:
        client.application_gateways.begin_create_or_update("rg-blue", "appgw-busy", gw)
    assert (e.value.status_code, e.value.error.code) == (409, "AnotherOperationInProgress")
    poller.result()
    emu.state.delete_app_gateway("rg-blue", "appgw-busy")


def test_failed_provisioning_surfaces_and_keeps_old_config(emu: ArmEmulator, client: NetworkManagementClient) -> None:
    fresh_gateway(emu, "appgw-fail")
    emu.state.fail_next_update("rg-blue", "appgw-fail", "InternalServerError", "injected by the lab")
    gw = client.application_gateways.get("rg-blue", "appgw-fail")
    gw.backend_address_pools[0].backend_addresses = [M.ApplicationGatewayBackendAddress(ip_address="10.0.0.99")]
    with pytest.raises(HttpResponseError):
        client.application_gateways.begin_create_or_update("rg-blue", "appgw-fail", gw).result()
    assert client.application_gateways.get("rg-blue", "appgw-fail").provisioning_state == "Failed"
    active = emu.state.active_app_gateway("rg-blue", "appgw-fail")
    assert active["properties"]["backendAddressPools"][0]["properties"]["backendAddresses"][0].get("fqdn")
    emu.state.delete_app_gateway("rg-blue", "appgw-fail")


def test_delete_is_long_running(emu: ArmEmulator, client: NetworkManagementClient) -> None:
    fresh_gateway(emu, "appgw-del")
    t0 = time.monotonic()
    poller = client.application_gateways.begin_delete("rg-blue", "appgw-del")
    assert client.application_gateways.get("rg-blue", "appgw-del").provisioning_state == "Deleting"
    poller.result()
    assert time.monotonic() - t0 >= TIMINGS.gateway_delete_seconds / SCALE
    with pytest.raises(ResourceNotFoundError):
        client.application_gateways.get("rg-blue", "appgw-del")
    client.application_gateways.begin_delete("rg-blue", "appgw-del").result()  # already gone: 204, no error


def test_backend_health(emu: ArmEmulator, client: NetworkManagementClient) -> None:
    # Without a data plane every server is Unknown; with one, its report is what ARM returns.
    h = client.application_gateways.begin_backend_health("rg-blue", "appgw-blue").result()
    [srv] = h.backend_address_pools[0].backend_http_settings_collection[0].servers
    assert (srv.address, srv.health) == ("bloberry01.z12.web.core.windows.net", "Unknown")
    gw = emu.state.get_app_gateway("rg-blue", "appgw-blue")
    pool_id = gw["properties"]["backendAddressPools"][0]["id"]
    hs_id = gw["properties"]["backendHttpSettingsCollection"][0]["id"]
    emu.state.register_backend_health("rg-blue", "appgw-blue", lambda: [{
        "backendAddressPool": {"id": pool_id},
        "backendHttpSettingsCollection": [{"backendHttpSettings": {"id": hs_id}, "servers": [
            {"address": "bloberry01.z12.web.core.windows.net", "health": "Up", "healthProbeLog": "Success. Received 200 status code"}]}],
    }])
    try:
        t0 = time.monotonic()
        h = client.application_gateways.begin_backend_health("rg-blue", "appgw-blue").result()
        assert time.monotonic() - t0 >= TIMINGS.backend_health_seconds / SCALE
    finally:
        emu.state.unregister_backend_health("rg-blue", "appgw-blue")
    pool = h.backend_address_pools[0]
    assert pool.backend_address_pool.id == pool_id
    [srv] = pool.backend_http_settings_collection[0].servers
    assert (srv.health, srv.health_probe_log) == ("Up", "Success. Received 200 status code")
    with pytest.raises(ResourceNotFoundError):
        client.application_gateways.begin_backend_health("rg-blue", "appgw-nope").result()
