"""Target files: strict validation with clear errors, placeholders, scaling, secret masking."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from drill.config import ConfigError, load_target, read_raw, resolve_path, substitute

LAB_ENDPOINTS: dict[str, Any] = {
    "aws_endpoint": "http://127.0.0.1:5555",
    "aws_access_key_id": "AKIAEXAMPLEEXAMPLE",
    "aws_secret_access_key": "s3cr3t-value-for-tests",
    "target_group_arn": "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/blue-web-tg/1",
    "cloudfront_distribution_id": "E123",
    "site_url": "http://127.0.0.1:8080/",
    "azure_subscription_id": "00000000-0000-0000-0000-000000000001",
    "arm_endpoint": "https://127.0.0.1:5556",
    "azure_tenant_id": "tenant",
    "azure_client_id": "client",
    "azure_client_secret": "azure-client-secret-for-tests",
    "azure_authority_host": "https://127.0.0.1:5556",
    "azure_ca_bundle": "/tmp/ca.pem",
    "blob_endpoint": "http://127.0.0.1:10000/bloberry01",
    "storage_account_key": "storage-key-for-tests==",
    "appgw_http_port": 18080,
    "azure_mysql_port": 13306,
    "azure_mysql_password": "mysql-admin-password-for-tests",
    "azure_mysql_ca_bundle": "/tmp/db-ca.pem",
    "rds_ca_bundle": "/tmp/db-ca.pem",
    "egress_echo_url": "http://127.0.0.1:18081/",
    "aks_kubeconfig": "/tmp/kubeconfig",
    "terraform_binary": "/tmp/terraform",
    "failover_stack_dir": "/tmp/stack",
    "blob_web_url": "http://127.0.0.1:10001/",
    "scratch_db_host": "127.0.0.1",
    "scratch_db_port": 13307,
    "scratch_db_user": "scratch",
    "scratch_db_password": "scratch-password-for-tests",
    "scratch_db_database": "scratch",
    "edge_icn54_p1_address": "127.0.0.1:8080",
    "edge_nrt57_p3_address": "127.0.0.11:8081",
    "edge_sin2_p1_address": "127.0.0.12:8082",
    "alarm_receipts_queue_url": "http://127.0.0.1:5000/123456789012/dr-drill-alarm-receipts",
}


def write(tmp_path: Path, raw: dict) -> str:
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return str(p)


def lab_raw() -> dict:
    return read_raw(resolve_path("lab"))


def test_lab_target_resolves_placeholders_and_scales_objectives() -> None:
    t = load_target("lab", LAB_ENDPOINTS)
    assert t.wants_lab and t.time_scale == 30
    assert t.aws.endpoint_url == "http://127.0.0.1:5555"
    assert t.site.url == "http://127.0.0.1:8080/"
    assert t.scaled(t.objectives.maintenance_rto_seconds) == pytest.approx(6.0)


def test_lab_target_validates_before_the_lab_runs() -> None:
    t = load_target("lab")  # stand-ins for ${lab:...}
    assert t.aws.eks.web_nodegroup == "blue-web-ng"


def test_production_example_is_valid_and_real_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILL_SIGNING_KEY", "-----BEGIN PRIVATE KEY-----")  # a secret it names, from the environment
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "placeholder-client-secret")
    monkeypatch.setenv("AZURE_MYSQL_ADMIN_PASSWORD", "placeholder-admin-password")
    t = load_target("targets/production.example.yaml")
    assert t.time_scale == 1 and not t.wants_lab
    assert t.evidence.signing_key is not None and t.masked_dict()["evidence"]["signing_key"] == "***"
    assert [r.name for r in t.probe.rules] == ["azure", "aws", "maintenance"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r.pop("objectives"), "objectives: Field required"),
        (lambda r: r.update(surprise=1), "surprise: unknown key"),
        (lambda r: r["aws"].update(regoin="x"), "aws.regoin: unknown key"),
        (lambda r: r.update(time_scale=-1), "time_scale"),
        (lambda r: r["objectives"].update(maintenance_rto_seconds=0), "objectives.maintenance_rto_seconds"),
        (lambda r: r["objectives"].update(maintenance_rto_seconds="soon"), "objectives.maintenance_rto_seconds"),
        (lambda r: r["site"].update(url="blueisthenewblack.store"), "site.url"),
        (lambda r: r["aws"].update(region="Seoul"), "aws.region"),
        (lambda r: r["aws"]["alb"].update(target_group_arn="tg-1"), "aws.alb.target_group_arn"),
        (lambda r: r["probe"].update(rate_per_second=0), "probe.rate_per_second"),
        (lambda r: r["probe"].update(rules=[{"name": "aws", "body_regex": "("}]), "invalid regex"),
        (lambda r: r["probe"].update(rules=[{"name": "other"}]), "probe.rules.0.name"),
    ],
)
def test_bad_targets_name_the_key_and_problem(tmp_path: Path, mutate, expected: str) -> None:
    raw = lab_raw()
    mutate(raw)
    with pytest.raises(ConfigError) as e:
        load_target(write(tmp_path, raw), LAB_ENDPOINTS)
    assert expected in str(e.value)
    assert "\n" not in str(e.value)  # one line, for operators


def test_unknown_target_name_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"known: .*lab"):
        resolve_path("nonexistent")


def test_missing_target_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        resolve_path("missing/target.yaml")


def test_not_a_mapping(tmp_path: Path) -> None:
    p = tmp_path / "list.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_target(str(p))


def test_env_placeholders(tmp_path: Path) -> None:
    raw = {"a": "${env:DRILL_TEST_X}", "b": "pre-${env:DRILL_TEST_X}-post", "c": ["${lab:port}"]}
    out = substitute(raw, {"port": 3306}, env={"DRILL_TEST_X": "v"})
    assert out == {"a": "v", "b": "pre-v-post", "c": [3306]}
    with pytest.raises(ConfigError, match="DRILL_TEST_Y is not set"):
        substitute({"a": "${env:DRILL_TEST_Y}"}, None, env={})
    with pytest.raises(ConfigError, match="no `lab:` section"):
        substitute({"a": "${lab:x}"}, None, env={})
    with pytest.raises(ConfigError, match="no endpoint named 'nope'"):
        substitute({"a": "${lab:nope}"}, {"x": 1}, env={})


def test_secrets_are_masked_everywhere_they_leave() -> None:
    t = load_target("lab", LAB_ENDPOINTS)
    assert {"s3cr3t-value-for-tests", "azure-client-secret-for-tests", "storage-key-for-tests==",
            "mysql-admin-password-for-tests"} <= set(t.secret_values())
    assert "s3cr3t-value-for-tests" not in repr(t)
    assert "s3cr3t-value-for-tests" not in str(t.masked_dict())
    assert t.masked_dict()["aws"]["secret_access_key"] == "***"


def test_only_a_lab_target_may_play_time_faster(tmp_path: Path) -> None:
    raw = substitute(lab_raw(), LAB_ENDPOINTS)
    raw.pop("lab")
    with pytest.raises(ConfigError) as e:
        load_target(write(tmp_path, raw))
    assert "time_scale: must be 1 for a target without a `lab:` section (got 30)" in str(e.value)
    assert "\n" not in str(e.value)
    raw["time_scale"] = 1
    assert load_target(write(tmp_path, raw)).time_scale == 1


# -- probe vantages -------------------------------------------------------------------------------
def test_one_local_vantage_is_the_default_and_todays_probe() -> None:
    t = load_target("lab", LAB_ENDPOINTS)
    [v] = t.probe.vantages
    assert (v.name, v.worker, v.connect_to) == ("default", "local", None)
    assert t.probe.verdict_on == "worst" and not t.probe.distributed and t.probe.master is None


def test_the_three_vantage_lab_target_extends_the_lab_one() -> None:
    t = load_target("lab-vantages", LAB_ENDPOINTS)
    base = load_target("lab", LAB_ENDPOINTS)
    assert t.name == "lab-vantages" and t.probe.distributed
    assert [(v.name, v.connect_to) for v in t.probe.vantages] == [
        ("seoul", "127.0.0.1:8080"), ("tokyo", "127.0.0.11:8081"), ("singapore", "127.0.0.12:8082")]
    # Everything else is the lab target's (mappings merged, the probe's rules kept).
    assert t.probe.rules == base.probe.rules and t.objectives == base.objectives and t.aws == base.aws
    assert load_target("lab-vantages").probe.vantages[1].connect_to == "127.0.0.1:9"  # validated before the lab runs


def test_extends_names_a_target_or_a_file_and_refuses_a_cycle(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(substitute(lab_raw(), LAB_ENDPOINTS) | {"name": "base"}))
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nname: child\nprobe: {rate_per_second: 5}\n")
    t = load_target(str(child))
    assert (t.name, t.probe.rate_per_second, t.probe.users) == ("child", 5.0, 4)
    base.write_text("extends: child.yaml\nname: base\n")
    with pytest.raises(ConfigError, match="a cycle"):
        load_target(str(child))
    child.write_text("extends: no-such-target\n")
    with pytest.raises(ConfigError, match="extends: no target named 'no-such-target'"):
        load_target(str(child))


@pytest.mark.parametrize(
    "vantages, extra, expected",
    [
        ([{"name": "a"}, {"name": "a"}], {}, "the name 'a' is used twice"),
        ([{"name": "Seoul"}], {}, "probe.vantages.0.name"),
        ([{"name": "a", "connect_to": "edge.example.net"}], {}, "probe.vantages.0.connect_to"),
        ([{"name": "a", "worker": "elsewhere"}], {}, "probe.vantages.0.worker"),
        ([{"name": "a"}, {"name": "b", "worker": "remote"}], {}, "master.port: remote vantage 'b' needs a fixed master port"),
        ([{"name": "a"}], {"verdict_on": "median"}, "probe.verdict_on"),
        ([{"name": "a"}], {"verdict_on": "p0"}, "probe.verdict_on"),
        ([], {}, "probe.vantages"),
        # A vantage's address comes from connect_to or from a resolver (its own, or probe.resolver): not both.
        ([{"name": "a", "connect_to": "127.0.0.11:80", "resolver": {"nameserver": "127.0.0.1:53"}}], {},
         "'a' has connect_to and a resolver (its own)"),
        ([{"name": "a", "connect_to": "127.0.0.11:80"}], {"resolver": {"nameserver": "127.0.0.1:53"}},
         "'a' has connect_to and a resolver (probe.resolver)"),
        # The signed-in user runs in the standalone probe only.
        ([{"name": "a"}, {"name": "b"}], {"session_user": {"username": "u"}}, "session_user: the signed-in user runs in the standalone"),
    ],
)
def test_bad_vantages_name_the_key(tmp_path: Path, vantages: list, extra: dict, expected: str) -> None:
    raw = lab_raw()
    raw["probe"].update(vantages=vantages, **extra)
    with pytest.raises(ConfigError) as e:
        load_target(write(tmp_path, raw), LAB_ENDPOINTS)
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_remote_vantages_with_a_master_port_and_a_percentile_verdict(tmp_path: Path) -> None:
    raw = lab_raw()
    raw["probe"].update(verdict_on="p90", master={"bind": "10.0.1.5", "port": 5557}, vantages=[
        {"name": "seoul"}, {"name": "tokyo", "worker": "remote", "where": "runner in ap-northeast-1"},
        {"name": "ipv6", "worker": "remote", "connect_to": "[2600:9000::1]:443"}])
    t = load_target(write(tmp_path, raw), LAB_ENDPOINTS)
    assert t.probe.distributed and t.probe.master is not None and t.probe.master.port == 5557
    assert [v.worker for v in t.probe.vantages] == ["local", "remote", "remote"]


def test_a_vantage_may_resolve_through_its_own_caching_resolver(tmp_path: Path) -> None:
    raw = lab_raw()
    raw["probe"].update(resolver={"nameserver": "127.0.0.1:5353"}, vantages=[
        {"name": "seoul"}, {"name": "no-ttl", "resolver": {"nameserver": "127.0.0.1:5353", "honour_ttl": False}}])
    t = load_target(write(tmp_path, raw), LAB_ENDPOINTS)
    seoul, no_ttl = t.probe.vantages
    assert seoul.resolver is None and t.probe.resolver is not None and t.probe.resolver.honour_ttl
    assert no_ttl.resolver is not None and not no_ttl.resolver.honour_ttl
