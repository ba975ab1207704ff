"""The production contract: steps/config_needs.py is what the code reads, and the example sets it all.

Both directions are checked against the code itself (tests/unit/config_reads.py reads its syntax,
following calls from each feature's step definitions): a key a step starts reading without a line
in the table fails here, and so does a line no code reads any more. Then
targets/production.example.yaml, with placeholder environment values, must validate and set every
need of every part, keep secrets as ${env:...} only, and state objectives the README argues for.
"""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from config_reads import SYSTEMS, Analyzer, Code, dotted, is_field, iter_parts, longest_nullable_prefix, nullable
from pydantic import BaseModel, SecretStr

from drill.config import PLACEHOLDER, Target, load_target, substitute, validate
from drivers.terraform_stack import DATA_TIER_OUTPUTS, STACK_OUTPUTS
from steps.config_needs import DRILL_PHASES, NEEDS, SYSTEM_NEEDS, missing

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "targets" / "production.example.yaml"


# Every (system, part) of every system's table.
PARTS = [(system, part) for system in SYSTEMS for part in SYSTEM_NEEDS[system]]


@pytest.fixture(scope="module")
def all_reads() -> dict[tuple[str, str], Any]:
    code = Code()
    analyzer = Analyzer(code)
    return {(system, part): analyzer.reads(funcs) for system in SYSTEMS for part, funcs in iter_parts(code, system)}


@pytest.fixture(scope="module")
def reads(all_reads: dict[tuple[str, str], Any]) -> dict[str, Any]:
    """The CloudFront system's parts."""
    return {part: r for (system, part), r in all_reads.items() if system == "cloudfront"}


def _listed(system: str, part: str) -> set[str]:
    n = SYSTEM_NEEDS[system][part]
    return {*n.needs, *n.optional}


def _earlier(part: str) -> list[str]:
    """A phase runs after the phases before it in the same drill: what they read, it may need."""
    return list(DRILL_PHASES[: DRILL_PHASES.index(part) + 1]) if part in DRILL_PHASES else [part]


def test_every_system_has_a_table_and_the_analysis_follows_each() -> None:
    assert set(SYSTEM_NEEDS) == set(SYSTEMS)
    assert SYSTEM_NEEDS["cloudfront"] is NEEDS and SYSTEM_NEEDS["goupang"]["run"] is NEEDS["run"]  # the run is shared


@pytest.mark.parametrize(("system", "part"), PARTS)
def test_every_key_the_code_reads_that_may_be_absent_is_in_the_table(all_reads: dict[tuple[str, str], Any], system: str,
                                                                     part: str) -> None:
    read = {dotted(p) for p in (longest_nullable_prefix(x) for x in all_reads[(system, part)].paths) if p}
    unlisted = sorted(read - _listed(system, part))
    assert not unlisted, (f"{system} {part} reads {unlisted}, which a target may leave out: list them in "
                          "steps/config_needs.py")


@pytest.mark.parametrize(("system", "part"), PARTS)
def test_every_key_in_the_table_is_read(all_reads: dict[tuple[str, str], Any], system: str, part: str) -> None:
    read = {dotted(p) for earlier in _earlier(part) for p in all_reads[(system, earlier)].paths}
    stale = sorted(k for k in _listed(system, part) if k not in read)
    assert not stale, f"steps/config_needs.py lists {stale} for {system} {part}, but no code of it reads them"


@pytest.mark.parametrize(("system", "part"), PARTS)
def test_the_stack_outputs_in_the_table_are_the_ones_read(all_reads: dict[tuple[str, str], Any], system: str, part: str) -> None:
    assert set(SYSTEM_NEEDS[system][part].outputs) == all_reads[(system, part)].outputs


def test_the_outputs_checked_after_each_apply_are_the_ones_the_phases_read(reads: dict[str, Any]) -> None:
    assert set(STACK_OUTPUTS) == reads["phase2"].outputs | reads["phase3"].outputs
    # The restore (after the data tier's apply) reaches Azure MySQL through these (its firewall rule
    # through the server's name); Phase 3 reads Azure MySQL again, with no new output.
    assert set(NEEDS["phase3"].outputs) <= set(DATA_TIER_OUTPUTS) <= set(STACK_OUTPUTS)


def test_every_entry_is_a_key_a_target_may_leave_out() -> None:
    for system, table in SYSTEM_NEEDS.items():
        for part, n in table.items():
            for key in (*n.needs, *n.optional):
                path = tuple(key.split("."))
                assert is_field(path), f"{system} {part}: {key} is not a key of a target"
                assert nullable(path), f"{system} {part}: {key} cannot be absent: the schema requires it already"
            assert not set(n.needs) & set(n.optional), f"{system} {part}: a key is both needed and optional"


def test_the_analysis_follows_the_goupang_systems_own_steps(all_reads: dict[tuple[str, str], Any]) -> None:
    """Its phases are bound from steps/goupang/ (so a read there that the table misses fails above)."""
    p1 = {dotted(p) for p in all_reads[("goupang", "phase1")].paths}
    assert "aws.route53.health_check_id" in p1  # _route53(drill_run).health_check_id in steps/goupang/test_phase1.py
    p2 = {dotted(p) for p in all_reads[("goupang", "phase2")].paths}
    assert {"objectives.dr_site_rto_seconds", "azure.vm.name", "dr_site.url"} <= p2  # DrillRun.dr_vm(), the DR site check
    assert "kubernetes.namespace" not in p2  # the CloudFront system's Phase 2 is not followed for it


def test_the_analysis_sees_reads_through_aliases_calls_and_properties(reads: dict[str, Any]) -> None:
    """Spot checks that the analysis follows what it claims to (so an empty result cannot pass)."""
    p2 = {dotted(p) for p in reads["phase2"].paths}
    assert "kubernetes.namespace" in p2  # k8s = drill_run.target.kubernetes; k8s.namespace
    assert "azure.mysql.admin_password" in p2  # DrillRun.azure_db(), and terraform_env() via stack_terraform()
    assert "failover_stack.data_tier_targets" in p2
    assert "azure.credential.client_secret" in p2  # azure_auth(target) in drivers/actions.py
    ready = {dotted(p) for p in reads["readiness"].paths}
    assert "readiness.lifecycle_days" in ready  # self.cfg, a property
    assert "azure.storage.backup_container" in ready  # self._section("azure").storage
    assert "guard.aws_account_ids" in {dotted(p) for p in reads["run"].paths}  # check_production_guard(target)


# -- the production example ------------------------------------------------------------------------------

def _example_env(path: Path = EXAMPLE) -> dict[str, str]:
    names = {m.group(2) for m in PLACEHOLDER.finditer(path.read_text()) if m.group(1) == "env"}
    return {n: f"placeholder-{n.lower()}" for n in names}


def _example(mutate: Any = None, path: Path = EXAMPLE) -> Target:
    """A production example file, validated with placeholders for its environment references."""
    raw = yaml.safe_load(path.read_text())
    if mutate is not None:
        mutate(raw)
    return validate(substitute(raw, None, env=_example_env(path)), str(path))


def _stand_in(target: Target) -> Any:
    """A DrillRun's stand-in whose continue_phase is the real method (anything else it touches fails)."""
    from steps.runtime import DrillRun

    begun: list[str] = []
    run: Any = SimpleNamespace(target=target, begin_phase=begun.append, instants={}, dry_run=False,
                               current_class=lambda: None, begun=begun)
    run.continue_phase = lambda *a, **k: DrillRun.continue_phase(run, *a, **k)
    return run


def test_the_production_example_validates_and_sets_everything_each_part_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _example_env().items():
        monkeypatch.setenv(name, value)
    target = load_target(str(EXAMPLE))
    assert target.time_scale == 1 and not target.wants_lab
    for part in NEEDS:
        assert missing(target, part) == [], f"{EXAMPLE.name} lacks {missing(target, part)}, which {part} needs"
    assert target.azure.subscription_id in target.guard.azure_subscription_ids  # what Terraform applies to
    assert target.aws.endpoint_url is None and target.azure.arm_endpoint is None  # the real clouds


def test_the_production_examples_secrets_are_environment_references_only() -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())

    def walk(model: Any, data: Any, where: str) -> list[str]:
        out: list[str] = []
        if not isinstance(data, dict) or not (isinstance(model, type) and issubclass(model, BaseModel)):
            return out
        for key, value in data.items():
            field = model.model_fields.get(key)
            if field is None:
                continue
            ann = field.annotation
            if SecretStr in (ann, *getattr(ann, "__args__", ())) and not (
                    isinstance(value, str) and re.fullmatch(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*\}", value)):
                out.append(f"{where}{key}")
            inner = [a for a in (*getattr(ann, "__args__", ()), ann) if isinstance(a, type) and issubclass(a, BaseModel)]
            if inner:
                out += walk(inner[0], value, f"{where}{key}.")
        return out

    assert walk(Target, raw, "") == []
    secrets = [k for k in ("client_secret", "admin_password") if k in EXAMPLE.read_text()]
    assert secrets == ["client_secret", "admin_password"]  # the walk above saw the secrets it must


def test_the_production_examples_objectives_follow_the_readme() -> None:
    o = _example().objectives
    # Stage 2 alone is the design's "RTO <= 15 min"; full service adds Stage 3 and CloudFront: 30-45 min.
    assert o.data_restore_rto_seconds == 900
    assert 1800 <= o.full_service_rto_seconds <= 2700
    assert o.rpo_seconds == 300 and o.maintenance_rto_seconds == 180


@pytest.mark.parametrize(("phase", "remove", "named"), [
    ("phase2", lambda r: r.pop("kubernetes"), "kubernetes"),
    ("phase2", lambda r: r.pop("failover_stack"), "failover_stack"),
    ("phase2", lambda r: r["objectives"].pop("full_service_rto_seconds"), "objectives.full_service_rto_seconds"),
    ("phase3", lambda r: r["objectives"].pop("failback_rto_seconds"), "objectives.failback_rto_seconds"),
])
def test_a_phase_without_a_need_fails_at_its_first_step_naming_it(phase: str, remove: Any, named: str) -> None:
    import steps.cloudfront.test_phase2 as p2
    import steps.cloudfront.test_phase3 as p3

    run = _stand_in(_example(remove))
    first = p2.maintenance_after_phase1 if phase == "phase2" else p3.azure_after_phase2
    with pytest.raises(AssertionError) as e:
        first.__wrapped__(run) if hasattr(first, "__wrapped__") else first(run)
    assert f"does not set {named}" in str(e.value) and run.begun == [phase]


# -- the goupang system's production example -------------------------------------------------------------
GOUPANG_EXAMPLE = REPO / "targets" / "production-goupang.example.yaml"


def _goupang(mutate: Any = None) -> Target:
    return _example(mutate, GOUPANG_EXAMPLE)


def test_the_goupang_production_example_validates_and_sets_everything_each_part_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _example_env(GOUPANG_EXAMPLE).items():
        monkeypatch.setenv(name, value)
    target = load_target(str(GOUPANG_EXAMPLE))
    assert target.system == "goupang" and target.time_scale == 1 and not target.wants_lab
    for part in SYSTEM_NEEDS["goupang"]:
        assert missing(target, part) == [], f"{GOUPANG_EXAMPLE.name} lacks {missing(target, part)}, which goupang {part} needs"
    assert target.azure is not None and target.guard is not None
    assert target.azure.subscription_id in target.guard.azure_subscription_ids
    assert target.aws.endpoint_url is None and target.azure.arm_endpoint is None  # the real clouds
    assert target.aws.cloudfront is None and target.failover_stack is None and target.kubernetes is None  # not this system's
    # The seeds' names where they state them (service-inventory.md).
    assert target.aws.route53 is not None and target.aws.route53.record_name == "www.goupang.shop"
    assert target.azure.mysql.host == "goupangdr.mysql.database.azure.com" and target.azure.storage.backup_container == "db-backups"


def test_the_goupang_examples_secrets_are_environment_references_only() -> None:
    text = GOUPANG_EXAMPLE.read_text()
    raw = yaml.safe_load(text)
    secrets = {"client_secret": raw["azure"]["credential"]["client_secret"], "admin_password": raw["azure"]["mysql"]["admin_password"],
               "signing_key": raw["evidence"]["signing_key"]}
    for key, value in secrets.items():
        assert re.fullmatch(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*\}", value), f"{key} is not an ${{env:...}} reference"
    target = _goupang()
    # Every secret the target holds came from the environment (these three, and no other).
    assert len(target.secret_values()) == len(secrets) and set(target.secret_values()) <= set(_example_env(GOUPANG_EXAMPLE).values())


def test_the_goupang_examples_objectives_are_the_seeds_claims() -> None:
    o = _goupang().objectives
    # service-inventory.md, "DR 시나리오": Blob DR RTO 3 min; VM DR RTO 2 min, RPO 24 h.
    assert (o.maintenance_rto_seconds, o.dr_site_rto_seconds, o.rpo_seconds) == (180, 120, 86400)
    assert o.failback_rto_seconds is not None and o.data_restore_rto_seconds is None and o.full_service_rto_seconds is None


@pytest.mark.parametrize(("phase", "remove", "named"), [
    ("phase2", lambda r: r["azure"]["mysql"].pop("host"), "azure.mysql.host"),
    ("phase2", lambda r: r["azure"]["mysql"].pop("ssl_ca"), "azure.mysql.ssl_ca"),
    ("phase2", lambda r: r["objectives"].pop("rpo_seconds"), "objectives.rpo_seconds"),
    ("phase3", lambda r: r["probe"].pop("session_user"), "probe.session_user"),
    ("phase3", lambda r: r["objectives"].pop("failback_rto_seconds"), "objectives.failback_rto_seconds"),
])
def test_a_goupang_phase_without_a_need_fails_at_its_first_step_naming_it(phase: str, remove: Any, named: str) -> None:
    import steps.goupang.test_phase2 as p2
    import steps.goupang.test_phase3 as p3

    run = _stand_in(_goupang(remove))
    first = p2.maintenance_after_phase1 if phase == "phase2" else p3.after_phase2
    with pytest.raises(AssertionError) as e:
        first.__wrapped__(run) if hasattr(first, "__wrapped__") else first(run)
    assert f"does not set {named}, which {phase.replace('phase', 'Phase ')} needs" in str(e.value) and run.begun == [phase]


@pytest.mark.parametrize("system", ["cloudfront", "goupang"])
def test_phase1s_first_step_refuses_a_target_lacking_what_phase1_needs(system: str) -> None:
    """Every system's Phase 1 starts with the shared step; the schema requires its needs of a valid
    target, so a target changed after validation stands in for one that lacks them."""
    from steps.conftest import petclinic_served_from_aws

    target = (_goupang() if system == "goupang" else _example()).model_copy(update={"database": None})
    if system == "cloudfront":
        target = target.model_copy(update={"aws": target.aws.model_copy(update={"cloudfront": None})})
    run = _stand_in(target)
    with pytest.raises(AssertionError) as e:
        fn = petclinic_served_from_aws
        fn.__wrapped__(run) if hasattr(fn, "__wrapped__") else fn(run)  # before the probe: the stand-in has none
    assert "which Phase 1 needs" in str(e.value) and run.begun == ["phase1"]
    assert ("does not set database" in str(e.value)) if system == "goupang" else ("does not set aws.cloudfront" in str(e.value))
