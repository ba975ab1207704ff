"""Target files: where the drill runs (endpoints, names, credentials) and what it must achieve.

A target file is YAML validated strictly (unknown keys are errors) before anything is changed.
Values may refer to `${lab:KEY}` (an endpoint of the embedded lab, filled in once it runs) or
`${env:NAME}` (an environment variable, for secrets in CI). Objectives are stated in real-world
seconds; `time_scale` says how much faster than reality the target plays (1 for production,
e.g. 30 for the lab), and the drill compares measurements with `objective / time_scale`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from drill.classify import ClassRule

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGETS_DIR = REPO_ROOT / "targets"
PLACEHOLDER = re.compile(r"\$\{(lab|env):([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(ValueError):
    """A target file is unusable; the message names the file, the key and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EksConfig(_Strict):
    cluster: str = Field(min_length=1)
    web_nodegroup: str = Field(min_length=1)


class AlbConfig(_Strict):
    target_group_arn: str = Field(pattern=r"^arn:aws[a-z-]*:elasticloadbalancing:")


class CloudFrontConfig(_Strict):
    distribution_id: str = Field(min_length=1)
    primary_origin_id: str = "primary-aws"
    secondary_origin_id: str = "secondary-azure"


class AwsConfig(_Strict):
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://")
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    profile: str | None = None
    eks: EksConfig
    alb: AlbConfig
    cloudfront: CloudFrontConfig


class DatabaseConfig(_Strict):
    """The primary database, reached through the secret the backup job uses (Secrets Manager)."""

    secret_id: str = Field(min_length=1)
    # Canary rows (one per `canary_interval_seconds` real seconds) measure the real data-loss window.
    canary_interval_seconds: float = Field(default=1.0, gt=0)


class StorageConfig(_Strict):
    account_url: str = Field(pattern=r"^https?://")
    # None: Microsoft Entra credentials (azure.credential) instead of a shared key.
    account_key: SecretStr | None = None
    backup_container: str = "mysql-backups"
    backup_prefix: str = "backups/"
    # The backup job's schedule (real seconds): 300 in test, 86400 in production per the design.
    backup_interval_seconds: float = Field(default=300, gt=0)


class AzureCredentialConfig(_Strict):
    """A service principal (ClientSecretCredential); omit client_secret for DefaultAzureCredential."""

    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    authority_host: str | None = Field(default=None, pattern=r"^https://")
    # CA bundle for ARM/authority TLS (the lab's own CA); None = system trust.
    ca_bundle: str | None = None


class AppGatewayConfig(_Strict):
    name: str = "appgw-blue"
    backend_pool: str = "blob-backend-pool"
    http_settings: str = "blob-http-settings"
    probe: str = "health-probe"
    # Port the gateway's listener answers on (80 on Azure; the lab's is chosen at start).
    http_port: int = Field(default=80, ge=1, le=65535)


class MysqlConfig(_Strict):
    port: int = Field(default=3306, ge=1, le=65535)
    admin_password: SecretStr


class AzureConfig(_Strict):
    subscription_id: str = Field(min_length=1)
    resource_group: str = "rg-blue"
    arm_endpoint: str | None = Field(default=None, pattern=r"^https://")
    credential: AzureCredentialConfig = AzureCredentialConfig()
    storage: StorageConfig
    app_gateway: AppGatewayConfig = AppGatewayConfig()
    mysql: MysqlConfig


class KubernetesConfig(_Strict):
    """Where PetClinic runs on Azure: the AKS cluster the failover stack creates."""

    kubeconfig: str = Field(min_length=1)
    context: str | None = None
    namespace: str = "petclinic"
    image: str = "springcommunity/spring-petclinic:latest"
    replicas: int = Field(default=2, ge=1)


class FailoverStackConfig(_Strict):
    """The Terraform root module azure/2-failover, driven through the terraform (or tofu) CLI."""

    terraform_binary: str = "terraform"
    chdir: str = Field(min_length=1)
    # Applied first so the data restore can start while AKS and the App Gateway come up (design: Stage 2).
    data_tier_targets: list[str] = Field(default_factory=lambda: ["azurerm_mysql_flexible_server.main"])


class SiteConfig(_Strict):
    url: str = Field(pattern=r"^https?://[^/\s]+")


class ProbeConfig(_Strict):
    rate_per_second: float = Field(default=10.0, gt=0, le=200)
    users: int = Field(default=4, ge=1, le=50)
    timeout_seconds: float = Field(default=2.0, gt=0)
    # A state counts as reached once it has held this long (wall seconds) with min_samples samples.
    sustain_seconds: float = Field(default=1.0, ge=0)
    min_samples: int = Field(default=3, ge=1)
    # Longer than this between samples is a probe gap: unobserved, not counted as any state.
    # Default: the request timeout plus two intervals (drivers.probe.default_max_gap).
    max_gap_seconds: float | None = Field(default=None, gt=0)
    rules: list[ClassRule] | None = None


class Objectives(_Strict):
    """Real-world objectives in seconds (design: RTO <= 15 min, RPO <= 5 min; maintenance ~3 min)."""

    maintenance_rto_seconds: float = Field(gt=0)
    data_restore_rto_seconds: float | None = Field(default=None, gt=0)
    full_service_rto_seconds: float | None = Field(default=None, gt=0)
    failback_rto_seconds: float | None = Field(default=None, gt=0)
    rpo_seconds: float | None = Field(default=None, gt=0)


class ScratchDatabaseConfig(_Strict):
    """A database readiness may empty and fill: the newest backup is restored into it, then emptied.

    Either `secret_id` (a Secrets Manager JSON secret shaped like the RDS one: host, port, username,
    password, dbname; `database` overrides dbname) or host, user, password and database here.
    Never the primary: readiness refuses a scratch database at the primary's host, port and name.
    """

    secret_id: str | None = Field(default=None, min_length=1)
    host: str | None = Field(default=None, min_length=1)
    port: int = Field(default=3306, ge=1, le=65535)
    user: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = None
    database: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{1,64}$")
    # CA bundle to require verified TLS (Azure Flexible Server, RDS); None = plain TCP, as in the lab.
    ssl_ca: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> "ScratchDatabaseConfig":
        if self.secret_id is None:
            missing = [k for k in ("host", "user", "password", "database") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"without secret_id, {', '.join(missing)} must be given")
        return self


class NodegroupExpectation(_Strict):
    """The size a node group has in normal operation (None = not checked)."""

    desired_size: int = Field(ge=0)
    min_size: int | None = Field(default=None, ge=0)
    max_size: int | None = Field(default=None, ge=1)


class ReadinessConfig(_Strict):
    """What the daily readiness checks (features/readiness.feature) compare against.

    Durations are real-world seconds, compared as seconds / time_scale like the objectives.
    """

    # Backups. The newest backup may be older than the RPO by the time the next one takes to
    # dump and upload (the RPO is measured from the dump's start).
    backup_in_flight_seconds: float = Field(default=60.0, ge=0)
    # Spacing of backups is judged over this window; a gap longer than schedule_tolerance x the
    # backup interval is a missed backup.
    schedule_window_seconds: float = Field(default=7 * 86400.0, gt=0)
    schedule_tolerance: float = Field(default=1.5, ge=1.0)
    # The lifecycle rule that deletes backups (design: 30 days).
    lifecycle_days: int = Field(default=30, ge=1)
    scratch_database: ScratchDatabaseConfig | None = None
    # Restored tables that must equal the primary's (nobody writes them), and append-only ones
    # that may only have grown on the primary since the backup.
    reference_tables: list[str] = Field(default_factory=lambda: ["vets", "specialties", "vet_specialties", "types"])
    append_only_tables: list[str] = Field(default_factory=lambda: ["owners", "pets", "visits"])
    # CDN
    failover_status_codes: list[int] = Field(default_factory=lambda: [500, 502, 503, 504], min_length=1)
    maintenance_origin_domain: str = Field(min_length=1)
    maintenance_url: str = Field(pattern=r"^https?://[^/\s]+")
    # AWS primary
    nodegroups: dict[str, NodegroupExpectation] = Field(min_length=1)
    min_healthy_targets: int = Field(default=1, ge=1)
    # Azure always-on
    storage_account: str = Field(pattern=r"^[a-z0-9]{3,24}$")
    containers: list[str] = Field(default_factory=lambda: ["$web", "mysql-backups"])
    virtual_network: str = "vnet-blue"
    subnets: list[str] = Field(default_factory=lambda: ["snet-appgw", "snet-aks", "snet-db"])


class GuardConfig(_Strict):
    """Who may be drilled: a non-lab target runs only when the live identities are listed here."""

    aws_account_ids: list[str] = Field(default_factory=list)
    azure_subscription_ids: list[str] = Field(default_factory=list)


class StopConfig(_Strict):
    """Stop conditions (real-world seconds): when one fires the drill stops and unwinds."""

    # A phase running longer than this is stopped (a drill must stay time-bounded).
    max_phase_seconds: float | None = Field(default=None, gt=0)
    # Users getting errors for longer than this at a stretch stops the drill (the error budget).
    max_error_seconds: float | None = Field(default=None, gt=0)


class LabConfig(_Strict):
    """Present only in a lab target: the drill starts the embedded lab and fills in `${lab:...}`."""

    start: bool = True


class Target(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    time_scale: float = Field(default=1.0, gt=0)
    lab: LabConfig | None = None
    guard: GuardConfig | None = None
    stop: StopConfig = StopConfig()
    aws: AwsConfig
    database: DatabaseConfig | None = None
    azure: AzureConfig | None = None
    kubernetes: KubernetesConfig | None = None
    failover_stack: FailoverStackConfig | None = None
    site: SiteConfig
    probe: ProbeConfig = ProbeConfig()
    objectives: Objectives
    readiness: ReadinessConfig | None = None
    # Seconds the drill waits for a state beyond its objective before calling it failed (real-world).
    grace_seconds: float = Field(default=60.0, ge=0)

    def scaled(self, real_seconds: float) -> float:
        """A real-world duration as wall seconds on this target."""
        return real_seconds / self.time_scale

    @property
    def is_lab(self) -> bool:
        return self.lab is not None

    def secret_values(self) -> list[str]:
        """Every secret this target holds, for masking in logs, reports and evidence."""
        out: list[str] = []

        def walk(obj: Any) -> None:
            if isinstance(obj, SecretStr):
                v = obj.get_secret_value()
                if v:
                    out.append(v)
            elif isinstance(obj, BaseModel):
                for name in type(obj).model_fields:
                    walk(getattr(obj, name))
            elif isinstance(obj, (list, tuple)):
                for x in obj:
                    walk(x)

        walk(self)
        return out

    def masked_dict(self) -> dict[str, Any]:
        """The target as plain data with secrets replaced by '***' (for evidence)."""

        def mask(obj: Any) -> Any:
            if isinstance(obj, SecretStr):
                return "***" if obj.get_secret_value() else ""
            if isinstance(obj, BaseModel):
                return {k: mask(getattr(obj, k)) for k in type(obj).model_fields}
            if isinstance(obj, list):
                return [mask(x) for x in obj]
            return obj

        return mask(self)


# The objectives each drill phase compares its measurements with, and why: required when the phase
# runs. The end-of-run unwind is a failback (users back on AWS), so every drill compares that one.
PHASE_OBJECTIVES: dict[str, tuple[tuple[str, str], ...]] = {
    "phase1": (
        ("maintenance_rto_seconds", "Phase 1 compares the maintenance-page RTO with it"),
        ("failback_rto_seconds", "the end-of-run unwind waits that long for users to be back on AWS"),
    ),
    "phase2": (
        ("data_restore_rto_seconds", "Phase 2 compares the data-restore RTO with it"),
        ("full_service_rto_seconds", "Phase 2 compares the full-service RTO with it"),
        ("rpo_seconds", "Phase 2 compares the RPO with it"),
    ),
    "phase3": (("failback_rto_seconds", "Phase 3 compares the failback RTO with it"),),
}


def require_objectives(target: Target, phases: Iterable[str]) -> None:
    """Raise ConfigError naming the first objective a selected phase compares but the target lacks.

    No objective has a default: a drill that compared a measurement with a number nobody set would
    report a pass (or a failure) that means nothing.
    """
    for phase in phases:
        for key, why in PHASE_OBJECTIVES.get(phase, ()):
            if getattr(target.objectives, key) is None:
                raise ConfigError(f"objectives.{key} is required when {phase} runs: {why}")


def resolve_path(name_or_file: str) -> Path:
    """`lab` → targets/lab.yaml; anything with a slash or suffix is a file path."""
    p = Path(name_or_file)
    if p.suffix in (".yaml", ".yml") or "/" in name_or_file:
        if not p.exists():
            raise ConfigError(f"target file not found: {name_or_file}")
        return p
    for suffix in (".yaml", ".yml"):
        cand = TARGETS_DIR / f"{name_or_file}{suffix}"
        if cand.exists():
            return cand
    known = sorted(x.stem for x in TARGETS_DIR.glob("*.y*ml"))
    raise ConfigError(f"no target named {name_or_file!r} (known: {', '.join(known)}; or pass a file path)")


def read_raw(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a target file is a mapping of keys, got {type(raw).__name__}")
    return raw


def substitute(raw: Any, lab: Mapping[str, Any] | Callable[[str], Any] | None, env: Mapping[str, str] | None = None) -> Any:
    """Replace `${lab:KEY}` and `${env:NAME}` everywhere in `raw`."""
    env = os.environ if env is None else env
    lookup = lab if callable(lab) else (lambda k: (lab or {})[k])

    def one(s: str, where: str) -> Any:
        whole = PLACEHOLDER.fullmatch(s)

        def value(kind: str, key: str) -> Any:
            if kind == "env":
                if key not in env:
                    raise ConfigError(f"{where}: environment variable {key} is not set")
                return env[key]
            if lab is None:
                raise ConfigError(f"{where}: ${{lab:{key}}} used but this target has no `lab:` section")
            try:
                return lookup(key)
            except KeyError:
                raise ConfigError(f"{where}: the lab has no endpoint named {key!r}") from None

        if whole:  # keep the type (ports are ints)
            return value(whole.group(1), whole.group(2))
        return PLACEHOLDER.sub(lambda m: str(value(m.group(1), m.group(2))), s)

    def walk(obj: Any, where: str) -> Any:
        if isinstance(obj, dict):
            return {k: walk(v, f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
        if isinstance(obj, list):
            return [walk(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, str):
            return one(obj, where)
        return obj

    return walk(raw, "")


def _placeholder_value(key: str) -> Any:
    """A syntactically valid stand-in for a lab endpoint, to validate before the lab runs."""
    if key.endswith(("_url", "_endpoint", "_host")):
        return "https://127.0.0.1:9/"
    if key.endswith("_port"):
        return 9
    if key.endswith("_arn"):
        return "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/x/0"
    return "placeholder"


def validate(raw: dict[str, Any], source: str) -> Target:
    try:
        return Target.model_validate(raw)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{loc}: {msg}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_target(name_or_file: str, lab_endpoints: Mapping[str, Any] | None = None) -> Target:
    """Load and validate a target. A lab target without endpoints is checked with stand-ins."""
    path = resolve_path(name_or_file)
    raw = read_raw(path)
    lab: Any = lab_endpoints
    if lab is None and raw.get("lab") is not None:
        lab = _placeholder_value
    return validate(substitute(raw, lab), str(path))


def needs_lab(name_or_file: str) -> tuple[bool, float]:
    """Whether this target is the embedded lab, and its time scale (validated first)."""
    t = load_target(name_or_file)
    return t.is_lab, t.time_scale
