"""lab.critical_path: which part of each phase the lab modeled, from its event log."""
from __future__ import annotations

import pytest

from lab.critical_path import split
from lab.failover_stack import AKS, APPGW, MYSQL


def ev(mono: float, source: str, event: str, **kw: object) -> dict:
    return {"t": 1_800_000_000 + mono, "mono": mono, "source": source, "event": event, **kw}


# A drill as the lab logs it (fault at 10.0): drain, stack, rollout, gateway, CloudFront, failback.
EVENTS = [
    ev(10.02, "web-tier", "node draining", instance="i-a"), ev(10.02, "web-tier", "node draining", instance="i-b"),
    ev(15.10, "web-tier", "replica stopped", instance="i-a"), ev(15.10, "alb", "no routable targets"),
    ev(15.30, "web-tier", "replica stopped", instance="i-b"),
    ev(16.40, "stack", f"{MYSQL} creating"), ev(34.40, "stack", f"{MYSQL} present"),
    ev(34.41, "stack", "azurerm_mysql_flexible_server_firewall_rule.allow_aks_subnet creating"),
    ev(36.40, "stack", "apply succeeded", targets=[MYSQL]),
    ev(36.50, "azure-arm", "mysql firewall rule update started"), ev(37.50, "azure-arm", "mysql firewall rule created"),
    ev(36.55, "stack", f"{AKS} creating"), ev(36.55, "stack", f"{APPGW} creating"),
    ev(38.50, "azure-mysql", "firewall opened"),
    ev(60.50, "stack", f"{AKS} present"), ev(71.50, "stack", f"{APPGW} present"), ev(71.50, "stack", "apply succeeded", targets=[]),
    ev(72.40, "kube", "pod started"), ev(74.40, "kube", "deployment available"),
    # The rewrite rule's gateway update runs while Azure makes the load balancer; it outlasts it by 0.05 s.
    ev(74.55, "azure-arm", "gateway update started", seconds=2.0),
    ev(76.50, "kube", "load balancer assigned", seconds=4.0), ev(76.55, "azure-arm", "gateway provisioned"),
    ev(76.60, "azure-arm", "gateway update started", seconds=2.0), ev(78.60, "azure-arm", "gateway provisioned"),
    ev(78.70, "cloudfront", "distribution updated"),
    ev(99.95, "eks", "nodegroup update successful"),
    ev(100.0, "web-tier", "node booting", instance="i-c"), ev(108.0, "web-tier", "node ready", instance="i-c"),
    ev(109.0, "alb", "target healthy", instance="i-c"),
]


def test_phase1_is_the_drain_until_the_primary_stops_serving() -> None:
    got = split("phase1", EVENTS, 10.0, 15.2, 30)
    assert got["modeled_seconds"] == pytest.approx(5.1) and got["unscaled_seconds"] == pytest.approx(0.1)
    assert got["real_world_seconds"] == pytest.approx(5.1 * 30 + 0.1, abs=0.1)


def test_phase2_chain_and_the_gaps_between_its_links() -> None:
    got = split("phase2", EVENTS, 10.0, 93.9, 30)  # CloudFront: 450 s / 30 = 15 s after the update
    assert [c["what"].split(" ")[:2] for c in got["chain"]] == [
        ["EKS", "drains"], ["Terraform", "creates"], ["Terraform", "creates"], ["Terraform", "creates"],
        ["PetClinic", "on"], ["an", "App"], ["an", "App"], ["CloudFront", "deploys"]]
    # drain 5.3, MySQL 18, its dependents 2, the rest 34.95, rollout + load balancer 72.4 → 76.5,
    # what the rewrite update outlasted it by (0.05), the backend update 2, CloudFront 15.
    assert got["modeled_seconds"] == pytest.approx(5.3 + 18.0 + 2.0 + 34.95 + 4.1 + 0.05 + 2.0 + 15.0)
    assert sum(g["seconds"] for g in got["gaps"]) == pytest.approx(got["unscaled_seconds"])
    assert got["gaps"][0] == {"before": "Terraform creates MySQL Flexible Server", "seconds": pytest.approx(1.1)}
    # The load balancer's modeled 4 s started at its Service's creation (72.5), before it was assigned.
    aks = next(c for c in got["chain"] if c["what"].startswith("PetClinic"))
    assert aks["seconds"] == pytest.approx(4.1)


def test_phase2_data_ends_with_the_drills_firewall_rule_in_effect() -> None:
    data = split("phase2-data", EVENTS, 10.0, 38.8, 30)
    assert [c["what"] for c in data["chain"]][-2:] == ["the drill's firewall rule created (ARM)", "the drill's firewall rule takes effect"]
    # drain 5.3, MySQL 18, dependents 2, the rule's ARM operation 1 and its taking effect 1.
    assert data["modeled_seconds"] == pytest.approx(5.3 + 18.0 + 2.0 + 1.0 + 1.0)
    assert data["unscaled_seconds"] == pytest.approx(28.8 - 27.3)


def test_phase3_boot_then_first_health_check_and_a_lab_serving_before_it() -> None:
    # The EKS update (99.9 → 99.95), the boot (8 s), the first health check (1 s).
    assert split("phase3", EVENTS, 99.9, 109.1, 30)["modeled_seconds"] == pytest.approx(9.05)
    early = split("phase3", EVENTS, 99.9, 108.2, 30)  # users got AWS before the target was healthy
    assert early["ends_after_reached"] == ["the ALB's health check finds the new target healthy"]
    assert early["modeled_seconds"] == pytest.approx(8.25)  # clipped to what users waited for


def test_a_missing_link_makes_the_split_unknown_not_a_guess() -> None:
    no_stack = [e for e in EVENTS if e["source"] != "stack"]
    assert "MySQL" in split("phase2", no_stack, 10.0, 89.7, 30)["unknown"]
    assert "unknown" in split("phase1", [], 10.0, 15.2, 30)


def test_a_drain_that_evicts_pods_first_ends_phase1_at_the_evictions_and_phase2_waits_for_the_nodes() -> None:
    """The ALB/EKS model where a drain evicts the pods as it starts and the node terminates later."""
    events = [
        ev(10.02, "web-tier", "node draining", instance="i-a"), ev(10.02, "web-tier", "node draining", instance="i-b"),
        ev(10.40, "web-tier", "pod evicted", instance="i-a"), ev(10.45, "web-tier", "pod evicted", instance="i-b"),
        ev(11.50, "alb", "no serving targets"),
        ev(15.02, "web-tier", "node terminated", instance="i-a"), ev(15.03, "web-tier", "node terminated", instance="i-b"),
        *[e for e in EVENTS if e["source"] != "web-tier" and e["event"] != "no routable targets"],
    ]
    assert split("phase1", events, 10.0, 10.5, 30)["modeled_seconds"] == pytest.approx(0.45)
    assert split("phase2-data", events, 10.0, 35.0, 30)["chain"][0]["seconds"] == pytest.approx(5.03)


# The goupang system (Route 53 failover, the VM DR site), fault at 10.0, TTL 60 s at 30× = 2 s.
GOUPANG = [
    ev(10.02, "web-tier", "node draining", instance="i-a"), ev(10.20, "alb", "no routable targets"),
    ev(13.20, "route53", "health check unhealthy", health_check="hc"),
    ev(20.00, "azure-vm", "power state starting", vm="vm"), ev(22.00, "azure-vm", "power state running", vm="vm"),
    ev(23.50, "azure-vm", "guest serving"),
    ev(30.00, "web-tier", "node booting", instance="i-c"), ev(38.00, "web-tier", "node ready", instance="i-c"),
    ev(39.00, "alb", "target healthy", instance="i-c"), ev(41.00, "route53", "health check healthy", health_check="hc"),
]


def test_goupang_phase1_is_drain_then_health_checkers_then_the_dns_ttl() -> None:
    got = split("phase1", GOUPANG, 10.0, 14.9, 30, system="goupang")
    assert [c["what"].split(" ")[0] for c in got["chain"]] == ["EKS", "Route", "users'"]
    # 0.2 drain + 3.0 checkers + 1.7 of the 2 s TTL (users got the page before every cache expired).
    assert got["modeled_seconds"] == pytest.approx(0.2 + 3.0 + 1.7)
    assert got["ends_after_reached"] == ["users' resolvers keep the cached answer (TTL 60 s)"]
    # The CloudFront system's Phase 1 would count only the drain as modeled.
    assert split("phase1", GOUPANG, 10.0, 14.9, 30)["modeled_seconds"] == pytest.approx(0.2)


def test_goupang_phase2_is_the_vm_start_then_its_guest_boot_and_phase3_ends_with_route53_and_the_ttl() -> None:
    got = split("phase2", GOUPANG, 19.9, 23.6, 30, system="goupang")
    assert got["modeled_seconds"] == pytest.approx(3.5) and got["unscaled_seconds"] == pytest.approx(0.2)
    back = split("phase3", GOUPANG, 29.9, 43.5, 30, system="goupang")
    assert back["modeled_seconds"] == pytest.approx(8.0 + 1.0 + 2.0 + 2.0)
    assert "unknown" in split("phase2", GOUPANG, 19.9, 23.6, 30, system="nosuch")


def test_the_alias_ttl_is_the_labs() -> None:
    from lab.aws.route53 import ALIAS_TTL
    from lab.critical_path import ALIAS_TTL as PATH_TTL

    assert PATH_TTL == ALIAS_TTL
