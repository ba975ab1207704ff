"""What each part of a drill reads from the target: the production contract, declared next to the code
that reads it.

Only keys a valid target may leave out are listed (a section that may be omitted, a value that
may be null); the schema (drill/config.py) already requires the rest. `needs`: what the part
cannot run without — targets/production.example.yaml must set them all, and a phase's first step
refuses, naming them, when they are missing. `optional`: what it reads when set and does without
otherwise. Phases build on each other (Phase 2 runs after Phase 1 in the same run), so a later
phase may need what an earlier one reads: Phase 2's RPO needs the canary rows Phase 1 writes into
the primary (`database`). `outputs`: what the part reads of the failover stack's Terraform outputs.

Each system has its own table (`SYSTEM_NEEDS`, by the target's `system:`): its phases are its own
features and steps. The drill run itself (`run`) is shared, so is its line.

tests/unit/test_config_needs.py keeps this honest both ways, for every system: every key the code
reads (found from its syntax, following calls from the step definitions each of its features binds)
is listed here, every key listed here is read, and the system's production example sets every need.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivers.terraform_stack import STACK_OUTPUTS


@dataclass(frozen=True)
class Needs:
    needs: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


# Azure credentials: a service principal's, or DefaultAzureCredential / Terraform's OIDC, MSI or CLI.
AZURE_AUTH = (
    "azure.arm_endpoint", "azure.credential.tenant_id", "azure.credential.client_id", "azure.credential.client_secret",
    "azure.credential.authority_host", "azure.credential.ca_bundle",
)
# AWS credentials: a profile or keys (the lab's); unset in production, where the default chain
# (the runner's role, or OIDC in CI) applies.
AWS_AUTH = ("aws.profile", "aws.access_key_id", "aws.secret_access_key")
# How users' experience is judged and when a drill stops itself (defaults when unset).
PROBE = ("probe.rules", "probe.max_gap_seconds", "probe.master", "probe.master.port")
STOP = ("stop.max_phase_seconds", "stop.max_error_seconds", "stop.alertmanager")
# The team's alarms (detection, the baseline's alarm states).
ALARMS = ("alarms", "alarms.dr_relevant", "alarms.notification_queue_url")
# The parts above are the CloudFront system's phases (features/cloudfront/). The drill run they share
# with the goupang system reads that system's sections when a target sets them (Route 53, the DR VM,
# the probe's resolver and signed-in user), and an always-on Azure MySQL's connection when it names one.
OTHER_SYSTEMS = ("aws.route53", "azure.vm", "azure.vm.resource_group", "probe.resolver", "probe.session_user")
ALWAYS_ON_MYSQL = ("azure.mysql.host", "azure.mysql.admin_username", "azure.mysql.database")

# The run itself, whatever its phases and system: the guard (production), the failover stack's check
# before the first change, the drill lock, the baseline and the end-of-run unwind.
RUN = Needs(
        needs=("guard",),
        # `kubernetes`: an unwind of what was made on the new cluster fetches its credentials again.
        # `database.ssl_ca`: without it the primary is reached in plain TCP (preflight names that).
        optional=(*AWS_AUTH, "database", "database.ssl_ca", "azure", "azure.storage.account_key", *AZURE_AUTH, "failover_stack",
                  "kubernetes", "kubernetes.kubelogin",
                  "objectives.failback_rto_seconds", *PROBE, *STOP, *ALARMS, "objectives.detection_seconds",
                  "objectives.alarm_clear_seconds", "monitoring.otlp_traces_endpoint",
                  # What one system has and another does not (drill/config.py: Target._system_sections):
                  # the end of the run checks CloudFront when there is one; it reads the goupang
                  # system's zone, VM, DR site and resolver when they are set.
                  "aws.cloudfront", "dr_site", *OTHER_SYSTEMS),
)

# The CloudFront system (features/cloudfront/, targets/production.example.yaml).
NEEDS: dict[str, Needs] = {
    "run": RUN,
    # The web tier down, users on the maintenance page. The canary writer and the marker owner need
    # the primary (`database`); the baseline snapshot includes the failover stack when there is one.
    # The backups listed just before the fault (Phase 2 restores only those) are read from Blob.
    "phase1": Needs(
        needs=("aws.cloudfront",),
        optional=("database", "database.ssl_ca", "azure", "azure.storage.account_key", *AZURE_AUTH, "failover_stack",
                  *PROBE, *STOP, *ALARMS, "objectives.detection_seconds", *OTHER_SYSTEMS),
    ),
    # Azure from the newest backup. `kubernetes.kubeconfig` is optional: without it the cluster's
    # credentials come from ARM after the apply (issue #12). `readiness` lends its backup-in-flight
    # allowance to the backup gate.
    "phase2": Needs(
        # `azure.mysql.ssl_ca`: Azure MySQL refuses insecure transport; the drill's address for its
        # firewall rule is client_address or client_address_url (preflight: one of them).
        needs=("aws.cloudfront", "database", "azure", "azure.mysql.ssl_ca", "kubernetes", "failover_stack",
               "objectives.data_restore_rto_seconds", "objectives.full_service_rto_seconds", "objectives.rpo_seconds"),
        optional=(*OTHER_SYSTEMS, *ALWAYS_ON_MYSQL, "azure.storage.account_key", *AZURE_AUTH, "kubernetes.kubeconfig", "kubernetes.context",
                  "kubernetes.kubelogin", "kubernetes.internal_lb_subnet", "readiness",
                  "database.ssl_ca", "azure.mysql.client_address", "azure.mysql.client_address_url",
                  "azure.app_gateway.routing_rules",
                  *PROBE, *STOP, "alarms", "objectives.detection_seconds"),
        outputs=STACK_OUTPUTS,
    ),
    # Failback: the node group restored, the origin reverted, the stack destroyed. A user's write
    # after failback is looked up in the primary (`database`) when there is one.
    "phase3": Needs(
        needs=("aws.cloudfront", "objectives.failback_rto_seconds"),
        optional=(*OTHER_SYSTEMS, *ALWAYS_ON_MYSQL, "database", "database.ssl_ca", "azure", "azure.mysql.ssl_ca", *AZURE_AUTH,
                  "failover_stack", *PROBE, *STOP, "alarms", "alarms.notification_queue_url", "objectives.alarm_clear_seconds"),
        outputs=("mysql_fqdn", "mysql_admin_username", "mysql_database_name"),
    ),
    # `pytest -m readiness`: read-only checks of everything above, and a restore into a scratch database.
    "readiness": Needs(
        needs=("aws.cloudfront", "readiness", "readiness.scratch_database", "database", "azure", "failover_stack",
               "objectives.rpo_seconds"),
        optional=(*AWS_AUTH, "database.ssl_ca", "azure.storage.account_key", *AZURE_AUTH, "readiness.scratch_database.secret_id",
                  "readiness.scratch_database.host", "readiness.scratch_database.user",
                  "readiness.scratch_database.password", "readiness.scratch_database.database",
                  "readiness.scratch_database.ssl_ca", "probe.rules", "alarms", "alarms.dr_relevant"),
    ),
}

# The goupang system (features/goupang/, targets/production-goupang.example.yaml): Route 53 failover
# records and their health check, the DR VM and the always-on Azure MySQL it serves from.
GOUPANG_NEEDS: dict[str, Needs] = {
    "run": RUN,
    # The web tier down, Route 53 failing the primary over. The canaries go into the primary
    # (`database`: Phase 2's RPO is measured with them); the snapshot dumps listed just before the
    # fault (the only ones Phase 2 may restore) are read from Blob (`azure`). The resolver and the
    # signed-in user are optional: without a resolver the probe resolves as its host does.
    "phase1": Needs(
        needs=("aws.route53", "database", "azure"),
        optional=("database.ssl_ca", "azure.storage.account_key", *AZURE_AUTH, "azure.vm", "azure.vm.resource_group",
                  "probe.resolver", "probe.session_user", *PROBE, *STOP, "alarms", "alarms.dr_relevant",
                  # Shared with the CloudFront system (the baseline, the site write), read when set.
                  "aws.cloudfront", "failover_stack"),
    ),
    # The VM DR site: the VM started, the newest snapshot restored into the always-on Azure MySQL (its
    # host, admin and database named in the target: there is no failover stack to output them), users
    # of the DR site measured against its own objective, the RPO against the snapshot's.
    "phase2": Needs(
        needs=("aws.route53", "database", "azure", "azure.vm", *ALWAYS_ON_MYSQL, "azure.mysql.ssl_ca", "dr_site",
               "objectives.dr_site_rto_seconds", "objectives.rpo_seconds"),
        optional=("azure.storage.account_key", *AZURE_AUTH, "azure.vm.resource_group", "dr_site.rules",
                  "probe.resolver", "probe.session_user", *PROBE, *STOP),
        # Read by the shared restore (DrillRun.azure_db) only when azure.mysql.host is unset: a server a
        # failover stack makes. The goupang system's is always on, named by ALWAYS_ON_MYSQL above.
        outputs=("mysql_fqdn", "mysql_admin_username", "mysql_database_name"),
    ),
    # Failback: Route 53 back on the primary by itself, the VM deallocated. The last step reports the
    # signed-in user's session per phase, so it needs one (`probe.session_user`).
    "phase3": Needs(
        needs=("aws.route53", "azure.vm", "objectives.failback_rto_seconds", "probe.session_user"),
        optional=("azure", *AZURE_AUTH, "azure.vm.resource_group", "probe.resolver", *PROBE, *STOP),
    ),
    # `pytest -m readiness`: the daily snapshot's age and schedule, the record of drills, preflight.
    "readiness": Needs(
        needs=("readiness", "azure", "objectives.rpo_seconds"),
        optional=(*AWS_AUTH, "azure.storage.account_key", *AZURE_AUTH, "readiness.scratch_database",
                  "readiness.scratch_database.secret_id", "readiness.scratch_database.host",
                  "readiness.scratch_database.user", "readiness.scratch_database.password",
                  "readiness.scratch_database.database", "readiness.scratch_database.ssl_ca"),
    ),
}
SYSTEM_NEEDS: dict[str, dict[str, Needs]] = {"cloudfront": NEEDS, "goupang": GOUPANG_NEEDS}
DRILL_PHASES = ("phase1", "phase2", "phase3")


def value_at(target: Any, path: str) -> Any:
    """The target's value at a dotted path (None where a section on the way is absent)."""
    value = target
    for attr in path.split("."):
        value = getattr(value, attr, None)
        if value is None:
            return None
    return value


def needs_of(system: str) -> dict[str, Needs]:
    """A system's table (a system without one has no production contract yet: a clear error)."""
    if system not in SYSTEM_NEEDS:
        raise KeyError(f"system {system!r} has no table in steps/config_needs.py (it has: {', '.join(SYSTEM_NEEDS)})")
    return SYSTEM_NEEDS[system]


def missing(target: Any, part: str) -> list[str]:
    """The needs of `part`, in the target's system's table, that the target leaves unset."""
    return [p for p in needs_of(getattr(target, "system", "cloudfront"))[part].needs if value_at(target, p) is None]
