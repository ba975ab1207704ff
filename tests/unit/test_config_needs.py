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
from config_reads import Analyzer, Code, dotted, is_field, iter_parts, longest_nullable_prefix, nullable
from pydantic import BaseModel, SecretStr

from drill.config import PLACEHOLDER, Target, load_target, substitute, validate
from drivers.terraform_stack import DATA_TIER_OUTPUTS, STACK_OUTPUTS
from steps.config_needs import DRILL_PHASES, NEEDS, missing

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "targets" / "production.example.yaml"


@pytest.fixture(scope="module")
def reads() -> dict[str, Any]:
    code = Code()
    analyzer = Analyzer(code)
    return {part: analyzer.reads(funcs) for part, funcs in iter_parts(code)}


def _listed(part: str) -> set[str]:
    return {*NEEDS[part].needs, *NEEDS[part].optional}


def _earlier(part: str) -> list[str]:
    """A phase runs after the phases before it in the same drill: what they read, it may need."""
    return list(DRILL_PHASES[: DRILL_PHASES.index(part) + 1]) if part in DRILL_PHASES else [part]


@pytest.mark.parametrize("part", list(NEEDS))
def test_every_key_the_code_reads_that_may_be_absent_is_in_the_table(reads: dict[str, Any], part: str) -> None:
    read = {dotted(p) for p in (longest_nullable_prefix(x) for x in reads[part].paths) if p}
    unlisted = sorted(read - _listed(part))
    assert not unlisted, f"{part} reads {unlisted}, which a target may leave out: list them in steps/config_needs.py"


@pytest.mark.parametrize("part", list(NEEDS))
def test_every_key_in_the_table_is_read(reads: dict[str, Any], part: str) -> None:
    read = {dotted(p) for earlier in _earlier(part) for p in reads[earlier].paths}
    stale = sorted(k for k in _listed(part) if k not in read)
    assert not stale, f"steps/config_needs.py lists {stale} for {part}, but no code of it reads them"


@pytest.mark.parametrize("part", list(NEEDS))
def test_the_stack_outputs_in_the_table_are_the_ones_read(reads: dict[str, Any], part: str) -> None:
    assert set(NEEDS[part].outputs) == reads[part].outputs


def test_the_outputs_checked_after_each_apply_are_the_ones_the_phases_read(reads: dict[str, Any]) -> None:
    assert set(STACK_OUTPUTS) == reads["phase2"].outputs | reads["phase3"].outputs
    # The restore (after the data tier's apply) reaches Azure MySQL through these (its firewall rule
    # through the server's name); Phase 3 reads Azure MySQL again, with no new output.
    assert set(NEEDS["phase3"].outputs) <= set(DATA_TIER_OUTPUTS) <= set(STACK_OUTPUTS)


def test_every_entry_is_a_key_a_target_may_leave_out() -> None:
    for part, n in NEEDS.items():
        for key in (*n.needs, *n.optional):
            path = tuple(key.split("."))
            assert is_field(path), f"{part}: {key} is not a key of a target"
            assert nullable(path), f"{part}: {key} cannot be absent: the schema requires it already"
        assert not set(n.needs) & set(n.optional), f"{part}: a key is both needed and optional"


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

def _example_env() -> dict[str, str]:
    names = {m.group(2) for m in PLACEHOLDER.finditer(EXAMPLE.read_text()) if m.group(1) == "env"}
    return {n: f"placeholder-{n.lower()}" for n in names}


def _example(mutate: Any = None) -> Target:
    raw = yaml.safe_load(EXAMPLE.read_text())
    if mutate is not None:
        mutate(raw)
    return validate(substitute(raw, None, env=_example_env()), str(EXAMPLE))


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
    from steps.runtime import DrillRun

    target = _example(remove)
    begun: list[str] = []
    run: Any = SimpleNamespace(target=target, begin_phase=begun.append, instants={}, dry_run=False,  # a DrillRun's stand-in
                               current_class=lambda: None)
    run.continue_phase = lambda *a, **k: DrillRun.continue_phase(run, *a, **k)
    first = p2.maintenance_after_phase1 if phase == "phase2" else p3.azure_after_phase2
    with pytest.raises(AssertionError) as e:
        first.__wrapped__(run) if hasattr(first, "__wrapped__") else first(run)
    assert f"does not set {named}" in str(e.value) and begun == [phase]
