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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

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


class Route53Config(_Strict):
    """DNS failover (the goupang system): the zone, the failover record and the primary's health check."""

    hosted_zone_id: str = Field(min_length=1)
    record_name: str = Field(pattern=r"^[A-Za-z0-9.-]+$")  # e.g. www.goupang.shop
    primary_set_identifier: str = Field(min_length=1)
    secondary_set_identifier: str = Field(min_length=1)
    health_check_id: str = Field(min_length=1)
    # An authoritative name server of the zone ("host[:port]"; Route 53: one of the zone's NS names),
    # asked directly (no cache) to see the moment Route 53 changes its answer.
    nameserver: str = Field(pattern=r"^[A-Za-z0-9.-]+(:\d+)?$")


class AwsConfig(_Strict):
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://")
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    profile: str | None = None
    eks: EksConfig
    alb: AlbConfig
    # The CloudFront system's origin group (None: a system whose drill does not touch CloudFront).
    cloudfront: CloudFrontConfig | None = None
    route53: Route53Config | None = None


class DatabaseConfig(_Strict):
    """The primary database, reached through the secret the backup job uses (Secrets Manager)."""

    secret_id: str = Field(min_length=1)
    # Canary rows (one per `canary_interval_seconds` real seconds) measure the real data-loss window.
    canary_interval_seconds: float = Field(default=1.0, gt=0)
    # CA bundle to verify the primary's TLS certificate, host name included (RDS: global-bundle.pem
    # from truststore.pki.rds.amazonaws.com). None = plain TCP: credentials in the clear (a preflight finding).
    ssl_ca: str | None = Field(default=None, min_length=1)


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
    # What tells users' Azure PetClinic from the AWS one: a response header the drill adds with a
    # rewrite rule set on the gateway's routing rules (None: every rule). The probe's `azure` rule
    # must look for it (a preflight check says so if it does not).
    served_by_header: str = Field(default="X-Served-By", pattern=r"^[A-Za-z0-9-]+$")
    served_by_value: str = Field(default="azure", min_length=1)
    rewrite_rule_set: str = Field(default="dr-drill-served-by", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
    routing_rules: list[str] | None = None


class MysqlConfig(_Strict):
    # An always-on server (the goupang system's standby Azure MySQL): its host, admin and database.
    # None: the failover stack's outputs say (the CloudFront system creates the server in the drill).
    host: str | None = Field(default=None, min_length=1)
    admin_username: str | None = Field(default=None, min_length=1)
    database: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{1,64}$")
    port: int = Field(default=3306, ge=1, le=65535)
    # The failover stack's admin password: given to Terraform as TF_VAR_<failover_stack.
    # admin_password_variable> (environment, never argv) and used by the drill to restore.
    admin_password: SecretStr
    # CA bundle to verify Azure MySQL's certificate, host name included: Flexible Server refuses
    # insecure transport by default (require_secure_transport=ON, ERROR 3159). Azure's roots:
    # DigiCert Global Root CA / G2 and Microsoft RSA Root CA 2017 in one PEM file.
    ssl_ca: str | None = Field(default=None, min_length=1)
    # The drill's own address, for the firewall rule that lets it restore (runbook 2.2 step 4,
    # `MY_IP=$(curl -s ifconfig.me)`): an IPv4 address, or a URL answering the caller's address
    # (e.g. https://ifconfig.me/ip). Flexible Server firewall rules take IPv4 only.
    client_address: str | None = None
    client_address_url: str | None = Field(default=None, pattern=r"^https?://[^/\s]+")

    @model_validator(mode="after")
    def _one_client_address(self) -> MysqlConfig:
        from drill.names import ipv4_problem

        if self.client_address is not None and self.client_address_url is not None:
            raise ValueError("give client_address or client_address_url, not both")
        if self.client_address is not None and ipv4_problem(self.client_address):
            raise ValueError(f"client_address: {ipv4_problem(self.client_address)}")
        return self


class VmConfig(_Strict):
    """The DR site's VM (the goupang system), deallocated on standby."""

    name: str = Field(min_length=1)
    resource_group: str | None = None  # None: azure.resource_group


class AzureConfig(_Strict):
    subscription_id: str = Field(min_length=1)
    resource_group: str = "rg-blue"
    vm: VmConfig | None = None
    arm_endpoint: str | None = Field(default=None, pattern=r"^https://")
    credential: AzureCredentialConfig = AzureCredentialConfig()
    storage: StorageConfig
    app_gateway: AppGatewayConfig = AppGatewayConfig()
    mysql: MysqlConfig


class KubeloginConfig(_Strict):
    """Microsoft Entra-integrated clusters: the fetched kubeconfig is converted for non-interactive use
    with `kubelogin convert-kubeconfig -l MODE` (kubelogin then gets each token itself: `spn` from
    AAD_SERVICE_PRINCIPAL_CLIENT_ID/_SECRET, `workloadidentity` from the federated token variables,
    `azurecli` from a logged-in `az`, `msi` from the machine's managed identity)."""

    mode: Literal["azurecli", "spn", "workloadidentity", "msi"]
    binary: str = Field(default="kubelogin", min_length=1)


class KubernetesConfig(_Strict):
    """Where PetClinic runs on Azure: the AKS cluster the failover stack creates.

    Its credentials are fetched from ARM after the apply (listClusterUserCredential, cluster name from
    the stack's `aks_cluster_name` output) into the run's private work directory. `kubeconfig` (a
    fixed file) is accepted only so that preflight can say why it cannot work: the cluster does not
    exist before the drill creates it.
    """

    kubeconfig: str | None = Field(default=None, min_length=1)
    context: str | None = None
    kubelogin: KubeloginConfig | None = None
    namespace: str = "petclinic"
    image: str = "springcommunity/spring-petclinic:latest"
    replicas: int = Field(default=2, ge=1)
    # How the App Gateway reaches PetClinic: an internal LoadBalancer Service (a private IP in the
    # VNet). "ClusterIP" is the runbook as written (2.3), which the gateway cannot reach: preflight refuses it.
    service_type: Literal["LoadBalancer", "ClusterIP"] = "LoadBalancer"
    # The subnet (of `virtual_network`) the internal load balancer's IP comes from; None = the cluster's own.
    internal_lb_subnet: str | None = "snet-aks"
    virtual_network: str = "vnet-blue"
    # Real-world seconds to wait for the load balancer's IP (AKS: "a minute or two").
    load_balancer_timeout_seconds: float = Field(default=600.0, gt=0)


# The data tier, applied first so the restore can start while AKS and the App Gateway come up
# (design: Stage 2). `-target` brings in what a target depends on, never what depends on it, so the
# database, the firewall rule and the server parameters are named with the server (seeds' names:
# database `petclinic`, rule `allow-aks-subnet`; TLS stays required as on Azure by default).
DATA_TIER_TARGETS = [
    "azurerm_mysql_flexible_server.main",
    "azurerm_mysql_flexible_database.petclinic",
    "azurerm_mysql_flexible_server_firewall_rule.allow_aks_subnet",
    "azurerm_mysql_flexible_server_configuration.require_secure_transport",
]
TF_VARIABLE = r"^[A-Za-z_][A-Za-z0-9_-]*$"


class FailoverStackConfig(_Strict):
    """The Terraform root module azure/2-failover, driven through the terraform (or tofu) CLI.

    Terraform gets the target's subscription (ARM_SUBSCRIPTION_ID, required by azurerm v4) and
    credentials in its environment, and its variables as TF_VAR_* (never on the command line).
    """

    terraform_binary: str = "terraform"
    chdir: str = Field(min_length=1)
    data_tier_targets: list[str] = Field(default_factory=lambda: list(DATA_TIER_TARGETS), min_length=1)
    # The stack output CloudFront's secondary origin is set to: a DNS name, never an IP address
    # (CloudFront refuses one). The App Gateway's public IP with a `domain_name_label` has the name
    # <label>.<region>.cloudapp.azure.com (azurerm_public_ip.fqdn); the stack outputs it.
    origin_output: str = Field(default="appgw_fqdn", pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    # How Terraform's azurerm provider authenticates: "client_secret" (ARM_CLIENT_ID/_SECRET/
    # _TENANT_ID from azure.credential), "oidc" (ARM_USE_OIDC, e.g. GitHub's federated token), "msi"
    # (managed identity of the runner) or "cli" (az login). None: client_secret when
    # azure.credential has a secret, else cli.
    auth: Literal["client_secret", "oidc", "msi", "cli"] | None = None
    # The input variable that takes the MySQL admin password (azure.mysql.admin_password).
    admin_password_variable: str = Field(default="mysql_admin_password", pattern=TF_VARIABLE)
    # Other input variables (not secret: they are written to the evidence), as TF_VAR_<name>.
    variables: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names(self) -> FailoverStackConfig:
        bad = [k for k in self.variables if not re.match(TF_VARIABLE, k)]
        if bad:
            raise ValueError(f"variables: {bad[0]!r} is not a Terraform variable name")
        if self.admin_password_variable in self.variables:
            raise ValueError(f"variables: {self.admin_password_variable} comes from azure.mysql.admin_password, "
                             "never from this file")
        return self


class SiteConfig(_Strict):
    url: str = Field(pattern=r"^https?://[^/\s]+")
    # How this site's answers are classed (first match wins); None: probe.rules.
    rules: list[ClassRule] | None = None


class ResolverConfig(_Strict):
    """How the probe resolves the site's name: a caching resolver asking `nameserver` and keeping each
    answer for its TTL (real-world seconds, played at the target's time scale), as users' resolvers do."""

    nameserver: str = Field(pattern=r"^[A-Za-z0-9.-]+(:\d+)?$")
    honour_ttl: bool = True


class SessionUserConfig(_Strict):
    """A signed-in user the probe runs beside the anonymous ones: whether its session survives each phase."""

    username: str = Field(default="drill-user", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    interval_seconds: float = Field(default=0.5, gt=0)


# host:port, e.g. 203.0.113.7:443, edge.example.net:443 or [2001:db8::1]:443
HOST_PORT = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):[0-9]{1,5}$"
VANTAGE_NAME = r"^[a-z0-9][a-z0-9-]{0,31}$"


class VantageConfig(_Strict):
    """One place users reach the site from: the probe runs one Locust worker per vantage, and every
    sample carries the vantage's name.

    How it reaches the site: by default as its host's DNS says (CloudFront's DNS answers with the
    edge location near the resolver); `connect_to` sends its requests to one address instead, keeping
    the site's name for Host and TLS (as `curl --connect-to` does): in the lab, an edge location's
    address; `resolver` (else probe.resolver) resolves the name through a caching resolver that keeps
    each answer for its TTL, as users' resolvers do after a DNS failover. Where its worker runs:
    `local` (the drill starts it beside the master) or `remote` (an operator starts `drill
    probe-worker --master HOST:PORT --vantage NAME` on that host: a runner in another region);
    `where` says which, for the evidence.
    """

    name: str = Field(pattern=VANTAGE_NAME)
    worker: Literal["local", "remote"] = "local"
    where: str = ""
    connect_to: str | None = Field(default=None, pattern=HOST_PORT)
    # This vantage's users' caching resolver, when it differs from probe.resolver (its users ask another
    # name server, or ignore TTL). Neither: the host's own resolver.
    resolver: ResolverConfig | None = None


class ProbeMasterConfig(_Strict):
    """Where the Locust master listens for its workers. Only local workers: loopback and a free port.
    A remote vantage needs an address its host can reach and a fixed port (its operator's command
    names them); ZeroMQ between master and workers is neither authenticated nor encrypted, so bind a
    private interface (VPN, VPC) and open the port to the workers' hosts only."""

    bind: str = Field(default="127.0.0.1", min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    # Wall-clock seconds the drill waits, before anything changes, for every remote vantage's first sample.
    join_timeout_seconds: float = Field(default=120.0, gt=0)


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
    resolver: ResolverConfig | None = None
    session_user: SessionUserConfig | None = None
    # Where users are: one vantage (this host, the site as its DNS gives it) unless the target says more.
    vantages: list[VantageConfig] = Field(default_factory=lambda: [VantageConfig(name="default")], min_length=1)
    # A phase's RTO across vantages: the worst vantage's, or a percentile (nearest rank: p90 of 10
    # vantages is the 9th best). A vantage that never got there, or whose worker was gone, counts as never.
    verdict_on: str = Field(default="worst", pattern=r"^(worst|p([1-9][0-9]?|100))$")
    master: ProbeMasterConfig | None = None

    @model_validator(mode="after")
    def _vantages(self) -> ProbeConfig:
        names = [v.name for v in self.vantages]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"vantages: the name {dup[0]!r} is used twice")
        for v in self.vantages:
            if v.connect_to is not None and (v.resolver or self.resolver) is not None:
                raise ValueError(f"vantages: {v.name!r} has connect_to and a resolver ({'its own' if v.resolver else 'probe.resolver'}): "
                                 "both choose the address its requests go to; give one")
        remote = [v.name for v in self.vantages if v.worker == "remote"]
        if remote and (self.master is None or self.master.port is None):
            raise ValueError(f"master.port: remote vantage {remote[0]!r} needs a fixed master port "
                             "(its worker is started with --master HOST:PORT)")
        if self.session_user is not None and self.distributed:
            raise ValueError("session_user: the signed-in user runs in the standalone probe only (one local vantage, "
                             "no master); with several vantages, leave it out")
        return self

    @property
    def distributed(self) -> bool:
        """Locust master and workers; else one standalone Locust process (one local vantage, today's probe)."""
        return len(self.vantages) > 1 or self.master is not None or self.vantages[0].worker == "remote"


class Objectives(_Strict):
    """Real-world objectives in seconds (design: RTO <= 15 min, RPO <= 5 min; maintenance ~3 min)."""

    maintenance_rto_seconds: float = Field(gt=0)
    data_restore_rto_seconds: float | None = Field(default=None, gt=0)
    full_service_rto_seconds: float | None = Field(default=None, gt=0)
    failback_rto_seconds: float | None = Field(default=None, gt=0)
    rpo_seconds: float | None = Field(default=None, gt=0)
    # The goupang system's VM DR site: from the operator starting it to users getting PetClinic there.
    dr_site_rto_seconds: float | None = Field(default=None, gt=0)
    # Detection (alarms.expected): fault → each expected alarm in ALARM and its notification delivered.
    detection_seconds: float | None = Field(default=None, gt=0)
    # After failback (or the end-of-run unwind): the node group restored → every such alarm OK again.
    alarm_clear_seconds: float | None = Field(default=None, gt=0)


PHASE_NAMES = ("phase1", "phase2", "phase3")


class AlarmsConfig(_Strict):
    """The team's CloudWatch alarms (design §7: CloudWatch → SNS → chat) and how the drill observes them.

    `expected`: for a phase, the alarms its fault must set off; the drill measures fault → ALARM
    (from the alarm's history) and → its notification delivered, against objectives.detection_seconds,
    and after failback → OK again, against objectives.alarm_clear_seconds; their states are part of the
    baseline. `notification_queue_url`: an SQS queue subscribed to the alarms' SNS topic beside the
    chat integration — SNS delivers to both at once, and a drill can read a queue (not Slack).
    `dr_relevant`: what readiness checks exist, have actions and are OK (default: every expected
    alarm and every stop.alarms guard).
    """

    expected: dict[Literal["phase1", "phase2", "phase3"], list[str]] = Field(default_factory=dict)
    notification_queue_url: str | None = Field(default=None, pattern=r"^https?://")
    dr_relevant: list[str] | None = None

    def watched(self) -> list[str]:
        """Every alarm some phase expects, in order, once each."""
        ordered = sorted(self.expected.items(), key=lambda kv: PHASE_NAMES.index(kv[0]))
        return list(dict.fromkeys(a for _, names in ordered for a in names))


class MonitoringConfig(_Strict):
    """Where a drill's results go besides the evidence: the team's Prometheus and tracing.

    `pushgateway_url`: a Prometheus Pushgateway the figures are pushed to (job `pushgateway_job`,
    grouped by target); `textfile_dir`: a node_exporter textfile-collector directory the same
    figures are written to (`dr_drill_<target>.prom`, atomically). `otlp_traces_endpoint`: an
    OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces) the drill's trace is exported
    to; the trace is always in the evidence as well (trace.otlp.json).
    """

    pushgateway_url: str | None = Field(default=None, pattern=r"^https?://")
    pushgateway_job: str = Field(default="dr_drill", pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    textfile_dir: str | None = Field(default=None, min_length=1)
    otlp_traces_endpoint: str | None = Field(default=None, pattern=r"^https?://")


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
    def _complete(self) -> ScratchDatabaseConfig:
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
    """What the daily readiness checks (features/cloudfront/readiness.feature) compare against.

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


class AlertmanagerStop(_Strict):
    """Firing alerts in a Prometheus Alertmanager (its v2 API) whose labels match stop the drill."""

    url: str = Field(pattern=r"^https?://[^/\s]+")
    # Label equality matchers (every one must match), e.g. {severity: critical, team: payments}.
    matchers: dict[str, str] = Field(min_length=1)


class StopConfig(_Strict):
    """Stop conditions (real-world seconds): when one fires the drill stops and unwinds."""

    # A phase running longer than this is stopped (a drill must stay time-bounded).
    max_phase_seconds: float | None = Field(default=None, gt=0)
    # Users getting errors for longer than this at a stretch stops the drill (the error budget).
    max_error_seconds: float | None = Field(default=None, gt=0)
    # The team's signals, as AWS FIS stop conditions: a CloudWatch alarm entering ALARM (its history
    # is read too, so one that fired between two looks still stops the drill)...
    alarms: list[str] = Field(default_factory=list)
    # ... or an Alertmanager alert matching these labels firing (not silenced, not inhibited).
    alertmanager: AlertmanagerStop | None = None
    # How often the signals are read (real-world seconds; CloudWatch's DescribeAlarms is rate-limited).
    poll_seconds: float = Field(default=10.0, gt=0)


class EvidenceConfig(_Strict):
    """What a drill's evidence is signed with, and how its history is judged (drill history, readiness).

    The signing key is an Ed25519 private key in PKCS#8 PEM (`drill keygen`): either the PEM itself
    in `signing_key` — normally `${env:NAME}`, so it lives in an environment variable the target
    names — or a file, `signing_key_file`. Never in evidence: it is a secret (masked everywhere).
    Without one, bundles are sealed (manifest, statement, hash chain) but unsigned.
    """

    signing_key: SecretStr | None = None
    signing_key_file: str | None = Field(default=None, min_length=1)
    # A drill must have passed at least this often (days, calendar: never scaled). Quarterly → 90.
    stale_after_days: float = Field(default=90.0, gt=0)
    # A "passing drill" for staleness ran these phases (each name, or a name it starts: phase2 covers
    # phase2-data) and passed: a Phase 1-only drill does not prove the failover.
    passing_phases: list[str] = Field(default_factory=lambda: ["phase1", "phase2", "phase3"], min_length=1)
    # Regression: a figure worse than the median of the previous `regression_window` runs by more
    # than `regression_ratio` of it AND by more than `regression_floor_seconds` (real-world seconds,
    # scaled like objectives), so jitter on small figures is not a regression (README: drill history).
    regression_ratio: float = Field(default=0.2, gt=0)
    regression_floor_seconds: float = Field(default=30.0, ge=0)
    regression_window: int = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _one_key(self) -> EvidenceConfig:
        if self.signing_key is not None and self.signing_key_file is not None:
            raise ValueError("give signing_key or signing_key_file, not both")
        return self


class ApiConfig(_Strict):
    """How long the drill's API clients (boto3, azure-mgmt-*, azure-storage-blob, kubernetes) wait, in
    wall seconds: a call with no answer after `read_timeout_seconds` counts as hung and is retried by
    the SDK's retry policy (drivers/retries.py), so a hang costs this much per attempt."""

    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=30.0, gt=0)


class LabConfig(_Strict):
    """Present only in a lab target: the drill starts the embedded lab and fills in `${lab:...}`."""

    start: bool = True
    # Which lab assembly (lab/topologies/): the system's own parts composed with the shared ones.
    topology: str = Field(default="cloudfront", pattern=r"^[a-z][a-z0-9_]*$")


class Target(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    # The system this target is (features/<system>/, steps/<system>/): a drill runs that system's
    # features only. The seeds hold two: `cloudfront` (origin-group failover, Terraform Azure stack)
    # and `goupang` (Route 53 DNS failover, Azure VM DR site).
    system: str = Field(default="cloudfront", pattern=r"^[a-z][a-z0-9_]*$")
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
    # A second site users are sent to in a DR event (the goupang system's dr.goupang.shop on the VM).
    dr_site: SiteConfig | None = None
    probe: ProbeConfig = ProbeConfig()
    objectives: Objectives
    readiness: ReadinessConfig | None = None
    evidence: EvidenceConfig = EvidenceConfig()
    api: ApiConfig = ApiConfig()
    alarms: AlarmsConfig | None = None
    monitoring: MonitoringConfig = MonitoringConfig()
    # Seconds the drill waits for a state beyond its objective before calling it failed (real-world).
    grace_seconds: float = Field(default=60.0, ge=0)

    def scaled(self, real_seconds: float) -> float:
        """A real-world duration as wall seconds on this target."""
        return real_seconds / self.time_scale

    @model_validator(mode="after")
    def _real_time_outside_the_lab(self) -> Target:
        # A target that asks for no lab is drilled in real time: a scale would loosen every
        # objective by that factor (objective / time_scale).
        if self.lab is None and self.time_scale != 1:
            raise ValueError(f"time_scale: must be 1 for a target without a `lab:` section (got {self.time_scale:g}); "
                             "only the lab plays time faster")
        return self

    @model_validator(mode="after")
    def _system_sections(self) -> Target:
        # What each system's drill drives: the sections its steps cannot do without.
        needs = {"cloudfront": ["aws.cloudfront"],
                 "goupang": ["aws.route53", "azure.vm", "dr_site", "database", "objectives.dr_site_rto_seconds"]}
        missing = []
        for path in needs.get(self.system, []):
            value: Any = self
            for part in path.split("."):
                value = getattr(value, part, None) if value is not None else None
            if value is None:
                missing.append(path)
        if missing:
            raise ValueError(f"system {self.system!r} needs {', '.join(missing)}")
        return self

    @model_validator(mode="after")
    def _combinations_that_can_work(self) -> Target:
        """Keys that are each valid but together cannot work: refused before anything starts, each
        problem naming the keys (e.g. a state that must hold longer than the objective it proves)."""
        problems: list[str] = []
        o = self.objectives
        probed = [("maintenance_rto_seconds", o.maintenance_rto_seconds), ("full_service_rto_seconds", o.full_service_rto_seconds),
                  ("failback_rto_seconds", o.failback_rto_seconds), ("dr_site_rto_seconds", o.dr_site_rto_seconds)]
        for key, objective in probed:
            if objective is not None and self.probe.sustain_seconds > self.scaled(objective):
                problems.append(
                    f"probe.sustain_seconds ({self.probe.sustain_seconds:g}s) is longer than objectives.{key} / time_scale "
                    f"({objective:g} / {self.time_scale:g} = {self.scaled(objective):g}s): users would have to see the "
                    "outcome for longer than the objective allows before the drill may count it reached")
        if self.probe.max_gap_seconds is not None and self.probe.max_gap_seconds < 1.0 / self.probe.rate_per_second:
            problems.append(
                f"probe.max_gap_seconds ({self.probe.max_gap_seconds:g}s) is shorter than the probe's interval "
                f"(1 / probe.rate_per_second = {1.0 / self.probe.rate_per_second:g}s): every request would start a gap")
        if o.rpo_seconds is not None:
            if self.database is not None and self.database.canary_interval_seconds > o.rpo_seconds:
                problems.append(
                    f"database.canary_interval_seconds ({self.database.canary_interval_seconds:g}) is longer than "
                    f"objectives.rpo_seconds ({o.rpo_seconds:g}): canaries that far apart cannot show the data-loss window")
            if self.azure is not None and self.azure.storage.backup_interval_seconds > o.rpo_seconds:
                problems.append(
                    f"azure.storage.backup_interval_seconds ({self.azure.storage.backup_interval_seconds:g}) is longer than "
                    f"objectives.rpo_seconds ({o.rpo_seconds:g}): backups that far apart can never meet the RPO")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _alarm_objectives(self) -> Target:
        # Like every objective the drill compares: required once something uses it, never defaulted.
        if self.alarms is not None and self.alarms.watched():
            lacking = [k for k in ("detection_seconds", "alarm_clear_seconds") if getattr(self.objectives, k) is None]
            if lacking:
                raise ValueError(f"alarms.expected is set: objectives.{' and objectives.'.join(lacking)} must be given")
        return self

    @property
    def wants_lab(self) -> bool:
        """The file asks for the embedded lab (a `lab:` section: start one, fill in ${lab:...}).

        Never a safety decision: whether a run is against the lab is decided by its endpoints being
        a lab's this process started or attached (drivers.safety.lab_mismatches).
        """
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

        masked = mask(self)
        assert isinstance(masked, dict)  # a model masks to a dict
        return masked



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
# Another system's phases compare other objectives (features/<system>/); the CloudFront system's are above.
SYSTEM_PHASE_OBJECTIVES: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
    "cloudfront": PHASE_OBJECTIVES,
    "goupang": {
        "phase1": PHASE_OBJECTIVES["phase1"],
        "phase2": (
            ("dr_site_rto_seconds", "Phase 2 compares the VM DR site's RTO with it"),
            ("rpo_seconds", "Phase 2 compares the RPO with it"),
        ),
        "phase3": PHASE_OBJECTIVES["phase3"],
    },
}


def require_objectives(target: Target, phases: Iterable[str]) -> None:
    """Raise ConfigError naming the first objective a selected phase compares but the target lacks.

    No objective has a default: a drill that compared a measurement with a number nobody set would
    report a pass (or a failure) that means nothing.
    """
    for phase in phases:
        for key, why in SYSTEM_PHASE_OBJECTIVES.get(target.system, PHASE_OBJECTIVES).get(phase, ()):
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


class DuplicateKey(yaml.YAMLError):
    """A mapping that names a key twice: YAML 1.2 requires keys to be unique, PyYAML keeps the last."""

    def __init__(self, key: Any, first_line: int, second_line: int) -> None:
        super().__init__(f"{key}: duplicated key (line {first_line} and line {second_line}); a later value "
                         "would silently replace the earlier one")
        self.key, self.lines = key, (first_line, second_line)


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping with a duplicated key (`time_scale: 30` then
    `time_scale: 1`, a second `guard:` block) instead of silently keeping the last value. The error
    names the key by its path in the file (`probe.sustain_seconds`) and both lines."""

    def construct_document(self, node: yaml.Node) -> Any:
        self._paths: dict[int, str] = {}
        self._walk(node, "")
        return super().construct_document(node)

    def _walk(self, node: yaml.Node, path: str) -> None:
        if id(node) in self._paths:  # an alias: seen already
            return
        self._paths[id(node)] = path
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                name = k.value if isinstance(k, yaml.ScalarNode) else "?"
                self._walk(v, f"{path}.{name}" if path else str(name))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._walk(v, f"{path}[{i}]")

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)  # merge keys (<<) may be overridden: that is what they are for
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        parent = getattr(self, "_paths", {}).get(id(node), "")
                        raise DuplicateKey(f"{parent}.{key}" if parent else key, seen[key], line)
                except TypeError:  # an unhashable key: SafeLoader's own error follows
                    continue
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_raw(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's mapping; `extends: NAME_OR_FILE` starts from that target's (mappings merged key by
    key, anything else replaced), so a variant names only what differs."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
    except DuplicateKey as e:
        raise ConfigError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a target file is a mapping of keys, got {type(raw).__name__}")
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    if not isinstance(base_name, str) or not base_name:
        raise ConfigError(f"{path}: extends: the name or file of another target, got {base_name!r}")
    # A name is a target of targets/; a file is relative to the file that extends it.
    is_file = "/" in base_name or base_name.endswith((".yaml", ".yml"))
    try:
        base_path = (path.parent / base_name) if is_file else resolve_path(base_name)
    except ConfigError as e:
        raise ConfigError(f"{path}: extends: {e}") from None
    if not base_path.exists():
        raise ConfigError(f"{path}: extends: target file not found: {base_name}")
    if base_path.resolve() in _seen + (path.resolve(),):
        raise ConfigError(f"{path}: extends: {base_name} extends this file again (a cycle)")
    return merge(read_raw(base_path, _seen + (path.resolve(),)), raw)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on `base`: mappings merged recursively, lists and scalars replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


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


def placeholder_value(key: str) -> Any:
    """A syntactically valid stand-in for a lab endpoint, to validate before the lab runs."""
    if key.endswith(("_url", "_endpoint", "_host")):
        return "https://127.0.0.1:9/"
    if key.endswith("_port"):
        return 9
    if key.endswith("_address"):
        return "127.0.0.1:9"
    if key.endswith("_arn"):
        return "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/x/0"
    return "placeholder"


def validate(raw: dict[str, Any], source: str) -> Target:
    try:
        return Target.model_validate(raw)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            # A check across keys (a model validator) has no location of its own: its message names them.
            problems.append(f"{loc}: {msg}" if loc else msg)
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_target(name_or_file: str, lab_endpoints: Mapping[str, Any] | None = None) -> Target:
    """Load and validate a target. A lab target without endpoints is checked with stand-ins."""
    path = resolve_path(name_or_file)
    raw = read_raw(path)
    lab: Any = lab_endpoints
    if lab is None and raw.get("lab") is not None:
        lab = placeholder_value
    return validate(substitute(raw, lab), str(path))
