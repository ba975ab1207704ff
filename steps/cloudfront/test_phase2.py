"""Phase 2: a long outage. Azure is brought up from the newest backup and serves PetClinic.

Overlap, as the design's stages allow: the data tier is applied first, then the newest backup is
restored into Azure MySQL while Terraform brings up AKS and the App Gateway (RTO is the outcome).
"""
from __future__ import annotations

import copy
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from pytest_bdd import given, scenarios, then, when

from drill.classify import classify, parse_rules
from drill.config import ReadinessConfig
from drill.evidence import iso
from drivers.backups import NAME_RESOLUTION_SECONDS
from steps.config_needs import missing
from steps.conftest import attach_json, dry_run_skips, observe_site_write
from steps.restore_prep import RestorePrep
from steps.runtime import DrillRun, Instant, need, wait_until

# What a dry run cannot know before `terraform apply` has run, shown as Terraform shows it.
AFTER_APPLY = "(known after apply)"

scenarios("cloudfront/phase2_failover_to_azure.feature")


def _need(drill_run: DrillRun, key: str, what: str) -> Any:
    if key not in drill_run.state:
        raise AssertionError(f"{what} is missing: this step continues an earlier step of this run")
    return drill_run.state[key]


@given("the site serves the maintenance page after Phase 1")
def maintenance_after_phase1(drill_run: DrillRun) -> None:
    drill_run.continue_phase("phase2", after="phase1.fault", sees="maintenance", left_by="Phase 1",
                            lacking=missing(drill_run.target, "phase2"))


@given("the newest backup completed before the fault is on the backup schedule")
def backup_before_fault(drill_run: DrillRun) -> None:
    # Whether the loss window meets the RPO is the RPO step's question; here: is there a backup to
    # restore, and was the schedule alive (else provisioning is pointless)?
    target = drill_run.target
    newest, age, listed = drill_run.newest_before_fault("backup")
    fault = drill_run.instants["phase1.fault"]
    # On schedule: the next backup, due an interval after this one started, had not yet had the time
    # one takes to dump and upload (readiness.backup_in_flight_seconds, the readiness check's own
    # allowance) when the fault came. Else one was missed: backups had stopped.
    interval = target.scaled(need(target.azure, "azure").storage.backup_interval_seconds)
    in_flight = target.scaled((target.readiness or ReadinessConfig.model_construct()).backup_in_flight_seconds)
    bound = interval + in_flight
    rpo = target.scaled(need(target.objectives.rpo_seconds, "objectives.rpo_seconds"))
    drill_run.state["restore_backup"] = newest
    attach_json("newest backup completed before the fault", {
        "name": newest.name, "started_at": newest.started_at.isoformat(), "completed_by": newest.completed_by.isoformat(),
        "fault_at": iso(fault.t), "age_at_fault_seconds": round(age, 3), "backups_listed_before_fault": listed,
        "schedule_bound_seconds": round(bound, 3),
        "why": "only backups complete before the fault exist when the AWS side is lost at the fault",
    })
    assert age <= bound, (
        f"the newest backup completed before the fault, {newest.name}, was {age:.1f}s old at the fault, more than the "
        f"{interval:.1f}s backup interval + {in_flight:.1f}s for a backup in flight: backups had stopped"
        + (f" (this disaster loses more than the RPO, {rpo:.1f}s)" if age > rpo else ""))


@when("the data tier of the Azure failover stack is provisioned")
def provision_data_tier(drill_run: DrillRun) -> None:
    from drivers.terraform_stack import DATA_TIER_OUTPUTS, require_outputs

    # `terraform init`, the check that the stack is absent and the data-tier targets were validated
    # (plan -target) before the drill's first change: conftest.py, drivers/terraform_stack.preflight.
    tf = drill_run.terraform()
    if drill_run.dry_run:
        _plan_stack(drill_run)
        return
    drill_run.record_stack_destroy()
    prep = _start_restore_prep(drill_run)
    t0 = time.monotonic()
    try:
        outputs = tf.apply(targets=need(drill_run.target.failover_stack, "failover_stack").data_tier_targets)
    except BaseException:
        drill_run.state.pop("restore_prep", None)
        prep.close()
        raise
    drill_run.state["stack_outputs"] = outputs
    attach_json("terraform outputs (data tier)", {**tf.shown(outputs), "seconds": round(time.monotonic() - t0, 2)})
    require_outputs(outputs, DATA_TIER_OUTPUTS, "terraform apply of the data tier")


def _start_restore_prep(drill_run: DrillRun) -> RestorePrep:
    """The egress address and the newest backup, fetched while Terraform creates the server."""
    newest = _need(drill_run, "restore_backup", "the newest backup completed before the fault")
    prep = RestorePrep(drill_run.backup_store(), newest, lambda: _egress_address(drill_run))
    drill_run.state["restore_prep"] = prep.start()
    return prep


def _egress_address(drill_run: DrillRun) -> str:
    """The drill's egress address (validated IPv4), as the MySQL firewall rule must name it."""
    from drivers.mysql_firewall import egress_address

    mysql = need(drill_run.target.azure, "azure").mysql
    return egress_address(mysql.client_address, mysql.client_address_url, timeout=drill_run.target.probe.timeout_seconds * 5)


def _plan_stack(drill_run: DrillRun) -> None:
    """A dry run: the pre-start plans (full, and -target of the data tier) stand in for the apply."""
    found = drill_run.state.get("stack_preflight")
    assert found is not None, "the failover stack was not planned before the first change"
    drill_run.record_stack_destroy(plan=found.plan)
    drill_run.state["stack_outputs"] = {}
    attach_json("terraform plan (dry run)", {"summary": found.plan, "creations": found.creations,
                                             "data_tier_targets": need(drill_run.target.failover_stack, "failover_stack").data_tier_targets,
                                             "data_tier_plan": found.data_tier})


@when("the newest backup is restored into Azure MySQL while the rest of the stack is provisioned")
def restore_while_stack_comes_up(drill_run: DrillRun) -> None:
    if drill_run.dry_run:
        _plan_restore(drill_run)
        return
    tf = drill_run.terraform()
    result: dict[str, Any] = {}

    def apply_rest() -> None:
        try:
            result["outputs"] = tf.apply()
        except Exception as e:  # noqa: BLE001 — reported by the step that needs the stack
            result["error"] = e

    prep: RestorePrep = _need(drill_run, "restore_prep", "the backup fetched while the data tier was applied")
    del drill_run.state["restore_prep"]
    applying = threading.Thread(target=apply_rest, name="terraform-apply", daemon=True)
    applying.start()
    drill_run.state["stack_apply"] = (applying, result)
    try:
        _allow_drill_client(drill_run, prep.address())
        started = Instant.now()
        newest = _need(drill_run, "restore_backup", "the newest backup completed before the fault")
        _runbook_2_2_backup(drill_run, newest.name)
        azure_db = drill_run.azure_db()
        azure_db.restore(prep.sql())
        done = Instant.now()
    finally:
        prep.close()
    with azure_db.connect() as conn, conn.cursor() as cur:
        ids = {}
        for table in ("owners", "pets", "visits"):
            cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM `{table}`")
            ids[table] = int(cur.fetchone()[0])
    drill_run.state["restored_max_ids"] = ids
    drill_run.instants["phase2.restored"] = done
    drill_run.state["restored_backup"] = newest
    drill_run.state["restore_started"] = started
    attach_json("restore", {"backup": newest.name, "taken_at": newest.started_at.isoformat(),
                            "seconds": round(done.mono - started.mono, 3),
                            "downloaded_while_the_data_tier_was_applied_seconds": prep.download_seconds})


def _runbook_2_2_backup(drill_run: DrillRun, backup: str) -> None:
    """Where runbook 2.2 would not find or could not restore the backup the design's job writes."""
    st = need(drill_run.target.azure, "azure").storage
    design = "multicloud-infra-design.md: the backup job writes mysql-backups/backups/backup-YYYYMMDD-HHMMSS.sql.gz"
    if st.backup_container != "backups" or not st.backup_prefix.startswith("petclinic-"):
        drill_run.runbook_deviation(
            "2.2", "lists the newest backup with `az storage blob list --container-name backups --prefix petclinic-`",
            f"finds none: the backup job writes `{st.backup_container}/{st.backup_prefix}backup-YYYYMMDD-HHMMSS.sql.gz`, "
            f"so there is no container `backups` (ContainerNotFound) and no blob named `petclinic-*`",
            f"listed `{st.backup_container}/{st.backup_prefix}` (azure.storage.backup_container and backup_prefix) "
            f"and took the newest by the time in its name ({backup})", design,
        )
    if backup.endswith(".gz"):
        drill_run.runbook_deviation(
            "2.2", "downloads the backup to /tmp/petclinic-backup.sql and pipes it into `mysql` as it is",
            "fails: the backups are gzip-compressed (`mysqldump | gzip`, .sql.gz) and the mysql client reads SQL text, "
            "not gzip data",
            "decompressed the dump, checking its gzip CRC and mysqldump's completion trailer, before restoring it", design,
        )


def _allow_drill_client(drill_run: DrillRun, address: str | None = None) -> None:
    """Runbook 2.2 step 4: a firewall rule for the drill's own address, then wait until it lets us in.

    Flexible Server with public access refuses every address no rule allows, and a rule "might take as
    much as five minutes" to take effect (Public Network Access for Flexible Server). The rule lives
    in the server: the stack's destroy removes it with the server.
    """
    from drivers.mysql_firewall import wait_for_access

    address, firewall = _drill_firewall(drill_run, address)
    rule = f"dr-drill-{drill_run.run_id}"
    t0 = time.monotonic()
    with drill_run.ledger.inside(drill_run.stack_entry()):
        entry = firewall.allow(rule, address)
    created = time.monotonic() - t0
    # Short connection attempts while waiting: a firewall that drops packets makes a long one sit
    # out its SYN retransmissions even after the rule is in effect.
    probe = copy.copy(drill_run.azure_db())
    probe.connect_timeout = min(5.0, max(0.5, drill_run.target.scaled(5)))
    bound = drill_run.target.scaled(300) + 10
    try:
        waited = wait_for_access(probe.connect, bound, poll=min(1.0, max(0.1, drill_run.target.scaled(5))))
    except Exception as e:  # noqa: BLE001 — any failure to get in becomes the step's assertion, naming it
        raise AssertionError(f"Azure MySQL did not let the drill ({address}) in within {bound:.0f}s of firewall rule "
                             f"{rule}: {type(e).__name__}: {e}") from None
    attach_json("firewall rule for the drill (with inverse)", {
        "change": entry.change.__dict__, "inverse": entry.inverse.__dict__,
        "created_seconds": round(created, 2), "in_effect_after_seconds": round(waited, 2)})


def _drill_firewall(drill_run: DrillRun, address: str | None = None) -> tuple[str, Any]:
    """The drill's egress address (validated IPv4; looked up unless given) and the firewall of the
    stack's MySQL server."""
    from drivers.actions import azure_auth
    from drivers.mysql_firewall import MysqlFirewall, make_mysql_client

    az = need(drill_run.target.azure, "azure")
    if address is None:
        address = _egress_address(drill_run)
    outputs = drill_run.state.get("stack_outputs") or {}
    server = _mysql_server_name(outputs) if outputs else f"the stack's MySQL server {AFTER_APPLY}"
    return address, MysqlFirewall(make_mysql_client(azure_auth(drill_run.target)), az.resource_group, server, drill_run.ledger)


def _mysql_server_name(outputs: dict[str, Any]) -> str:
    """The flexible server's name, for its firewall rules (a required output of the data tier)."""
    return str(outputs["mysql_server_name"])


def _plan_restore(drill_run: DrillRun) -> None:
    """A dry run fetches the backup a drill would restore (a read: it must exist and download) and plans its restore."""
    from drill.ledger import NOTHING, Action

    store = drill_run.backup_store()
    newest = _need(drill_run, "restore_backup", "the newest backup completed before the fault")
    _runbook_2_2_backup(drill_run, newest.name)
    with tempfile.TemporaryDirectory(prefix="dr-drill-dry-run-") as tmp:
        sql = store.download(newest, Path(tmp) / "backup.sql")
        size = sql.stat().st_size
    assert size > 0, f"the newest backup {newest.name} is empty"
    destroy = drill_run.stack_entry()
    address, firewall = _drill_firewall(drill_run)  # learning the address is a read
    with drill_run.ledger.inside(destroy):
        firewall.allow(f"dr-drill-{drill_run.run_id}", address)
    drill_run.ledger.record(
        Action("db.restore", {"backup": newest.name}, f"restore backup {newest.name} into Azure MySQL {AFTER_APPLY}"),
        Action(NOTHING, {}, f"nothing of its own: Azure MySQL goes with the failover stack (#{destroy.id})"),
    )
    drill_run.state["restored_backup"] = newest
    attach_json("restore (dry run)", {"backup": newest.name, "taken_at": newest.started_at.isoformat(), "sql_bytes": size})


@then("owners written before the backup are found in Azure MySQL")
def owners_found_in_azure(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "owners written before the backup are found in Azure MySQL"):
        return
    from drivers.database import PETCLINIC_TABLES, newest_canary

    azure = drill_run.azure_db()
    counts = azure.row_counts(PETCLINIC_TABLES)
    marker = _need(drill_run, "drill_owner", "the drill's marker owner")
    backup = _need(drill_run, "restored_backup", "the restored backup")
    # The dump's snapshot is taken between its start and the end of its upload: a marker committed
    # before the start must be there, one whose INSERT began after the upload had finished must
    # not; in between nobody can tell, and nothing is asserted (the attachment says so).
    begins = backup.started_at.timestamp()
    if not backup.precise:  # a start read from the name is truncated to the second
        begins -= NAME_RESOLUTION_SECONDS
    expected = ("present" if marker["committed_at"] < begins
                else "absent" if marker["written_at"] > backup.completed_by.timestamp() else "either")
    with azure.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM owners WHERE last_name = %s", (marker["last_name"],))
        found = cur.fetchone()[0] == 1
    canary = newest_canary(azure)
    attach_json("Azure MySQL after restore", {
        "row_counts": counts, "backup": backup.name, "marker_owner": marker["last_name"],
        "marker_written_at": iso(marker["written_at"]), "marker_committed_at": iso(marker["committed_at"]),
        "backup_started_at": backup.started_at.isoformat(), "backup_completed_by": backup.completed_by.isoformat(),
        "marker_expected": expected, "marker_found": found, "newest_restored_canary_at": iso(canary),
    })
    assert all(counts[t] > 0 for t in ("owners", "pets", "vets", "types")), f"restored tables are empty: {counts}"
    if expected == "present":
        assert found, f"owner {marker['last_name']} was committed before backup {backup.name} began but is missing on Azure"
    elif expected == "absent":
        assert not found, (f"owner {marker['last_name']} was written after backup {backup.name} had completed, yet is on "
                           "Azure: this is not that backup's data")
    assert canary is None or canary <= backup.completed_by.timestamp(), (
        f"a canary written at {iso(canary)} is on Azure, after backup {backup.name} had completed: not that backup's data")
    drill_run.state["newest_restored_canary"] = canary
    drill_run.instants["phase2.verified"] = Instant.now()  # the data-restore RTO ends here


@then("Azure MySQL holds the restored data within the data-restore RTO")
def data_restore_rto(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "Azure MySQL holds the restored data within the data-restore RTO"):
        return
    objective = drill_run.target.objectives.data_restore_rto_seconds
    assert objective is not None, "the target sets no objectives.data_restore_rto_seconds"
    verified = drill_run.instants.get("phase2.verified")
    assert verified is not None, "the restored data was not verified: this step continues the verification step"
    result = drill_run.record_rto(
        "phase2-data", "Azure MySQL restored from the newest pre-fault backup", drill_run.instants["phase1.fault"],
        verified, objective, "fault → the newest pre-fault backup restored on Azure MySQL and its data verified",
    )
    attach_json("measured vs target", result.__dict__)
    assert result.passed, f"data restored {result.rto_seconds:.2f}s after the fault, target {result.rto_target_seconds:.2f}s"


@then("the team was alerted of the web tier's failure: each alarm it set off fired and was notified within the detection objective")
def team_alerted(drill_run: DrillRun) -> None:
    """Phase 1's fault → each alarm of `alarms.expected.phase1` in ALARM and its notification delivered,
    against objectives.detection_seconds (measured in the background since Phase 1, judged here)."""
    if dry_run_skips(drill_run, "the team was alerted of the web tier's failure"):
        return
    if "phase1" not in drill_run.detections and not drill_run.detecting("phase1"):
        drill_run.notes.append("alarms: no alarm of Phase 1 was watched (alarms.expected.phase1): detection not judged")
        attach_json("alarms", {"note": "detection not judged: no alarm of Phase 1 was watched"})
        return
    found = drill_run.detection_result("phase1")
    attach_json("alarms: fault → ALARM → notified", [d.as_dict() for d in found])
    from drill.detection import sentence

    missed = [sentence(d) for d in found if not d.passed]
    assert not missed, "the team was not alerted in time: " + "; ".join(missed)


# Runbook corrections of 2.3 and 2.4: the App Gateway must reach PetClinic at an address of its VNet.
RUNBOOK_23 = dict(
    step="2.3",
    as_written="step 5 creates the PetClinic Service with `type: ClusterIP`",
    refused_because=("exposes PetClinic only on a ClusterIP, a virtual address that kube-proxy translates on the "
                     "cluster's own nodes: the App Gateway in its own subnet cannot reach it (backend Unhealthy, users get 502)"),
    source="AKS: Use an internal load balancer with AKS; Kubernetes: Virtual IPs and Service Proxies",
)
RUNBOOK_24 = dict(
    step="2.4",
    as_written="`--servers $PETCLINIC_IP` and the probe's `--host $PETCLINIC_IP`, PETCLINIC_IP being `.spec.clusterIP`",
    refused_because=("points the App Gateway's backend pool and probe at the ClusterIP, which nothing in the virtual "
                     "network answers: backend health Unhealthy, users get 502"),
    source="AKS: Use an internal load balancer with AKS (status.loadBalancer.ingress[0].ip)",
)


def _record_service_correction(drill_run: DrillRun) -> None:
    k8s = need(drill_run.target.kubernetes, "kubernetes")
    if k8s.service_type != "LoadBalancer":
        return  # the runbook as written: preflight names it (aks.backend_reachable)
    subnet = f" from subnet {k8s.internal_lb_subnet}" if k8s.internal_lb_subnet else " from the cluster's subnet"
    drill_run.runbook_deviation(**RUNBOOK_23, drill_did=(
        "deployed it as `type: LoadBalancer` with `service.beta.kubernetes.io/azure-load-balancer-internal: \"true\"`: "
        f"an Azure internal load balancer with a private IP{subnet} of {k8s.virtual_network}, which the gateway reaches"))


def _manifests(drill_run: DrillRun) -> tuple[dict[str, Any], dict[str, Any]]:
    from drivers.kube import petclinic_manifests

    k8s = need(drill_run.target.kubernetes, "kubernetes")
    return petclinic_manifests(k8s.image, k8s.replicas, k8s.namespace, k8s.service_type,
                               k8s.internal_lb_subnet if k8s.service_type == "LoadBalancer" else None)


@when("PetClinic is deployed on AKS")
def deploy_petclinic(drill_run: DrillRun) -> None:
    if drill_run.dry_run:
        _plan_deploy(drill_run)
        return
    applying, result = _need(drill_run, "stack_apply", "the failover stack apply")
    applying.join(timeout=drill_run.target.scaled(3600) + 60)
    assert not applying.is_alive(), "terraform apply of the failover stack did not finish"
    if "error" in result:
        raise AssertionError(f"terraform apply of the failover stack failed: {result['error']}")
    outputs = result["outputs"]
    drill_run.state["stack_outputs"] = outputs
    from drivers.terraform_stack import STACK_OUTPUTS, require_outputs

    attach_json("terraform outputs (stack)", drill_run.terraform().shown(outputs))
    require_outputs(outputs, STACK_OUTPUTS, "terraform apply of the failover stack")
    k8s = need(drill_run.target.kubernetes, "kubernetes")
    azure = need(drill_run.target.azure, "azure")
    # Runbook 2.3 step 1 (`az aks get-credentials`): the cluster exists only now.
    t0 = time.monotonic()
    kubeconfig = drill_run.fetch_kubeconfig(outputs)
    attach_json("AKS credentials", {"cluster": drill_run.state["aks_cluster"], "kubeconfig": str(kubeconfig), "mode": "0600",
                                    "kubelogin": k8s.kubelogin.mode if k8s.kubelogin else None,
                                    "seconds": round(time.monotonic() - t0, 2)})
    kube = drill_run.kube()
    deployment, service = _manifests(drill_run)
    _record_service_correction(drill_run)

    # The cluster is part of the failover stack: destroying the stack removes all of this too.
    with drill_run.ledger.inside(drill_run.stack_entry()):
        kube.ensure_namespace(k8s.namespace, drill_run.ledger)
        kube.apply_configmap(k8s.namespace, "petclinic-config", {
            "MYSQL_HOST": outputs["mysql_fqdn"], "MYSQL_PORT": str(azure.mysql.port),
            "MYSQL_DATABASE": outputs["mysql_database_name"],
        }, drill_run.ledger)
        kube.apply_secret(k8s.namespace, "petclinic-secret", {
            "MYSQL_USER": outputs["mysql_admin_username"], "MYSQL_PASSWORD": azure.mysql.admin_password.get_secret_value(),
        }, drill_run.ledger)
        kube.apply_deployment(k8s.namespace, deployment, drill_run.ledger)
        kube.apply_service(k8s.namespace, service, drill_run.ledger)
    waited = kube.wait_rollout(k8s.namespace, "petclinic", timeout=drill_run.target.scaled(900) + 30)
    attach_json("rollout", {"namespace": k8s.namespace, "replicas": k8s.replicas, "seconds": round(waited, 2),
                            "service_type": k8s.service_type})


def _plan_deploy(drill_run: DrillRun) -> None:
    """A dry run: the cluster is made by the apply, so nothing there can be read; plan creations."""
    from drivers.kube import plan_on_new_cluster

    k8s = need(drill_run.target.kubernetes, "kubernetes")
    deployment, service = _manifests(drill_run)
    _record_service_correction(drill_run)
    kubeconfig = drill_run.kubeconfig_path()
    with drill_run.ledger.inside(drill_run.stack_entry()):
        entries = plan_on_new_cluster(kubeconfig, k8s.context, k8s.namespace, [
            ("ConfigMap", "petclinic-config", {"keys": ["MYSQL_DATABASE", "MYSQL_HOST", "MYSQL_PORT"]}),
            ("Secret", "petclinic-secret", {"keys": ["MYSQL_PASSWORD", "MYSQL_USER"]}),
            ("Deployment", deployment["metadata"]["name"], {"manifest": deployment}),
            ("Service", service["metadata"]["name"], {"manifest": service}),
        ], drill_run.ledger)
    attach_json("planned changes on AKS (dry run)", {
        "credentials": f"fetched from ARM after the apply (listClusterUserCredential of the stack's aks_cluster_name "
                       f"{AFTER_APPLY}) into {kubeconfig} (0600)",
        "changes": [e.change.description for e in entries]})


@when("the App Gateway's backend pool is pointed at the PetClinic service")
def point_app_gateway(drill_run: DrillRun) -> None:
    if drill_run.dry_run:
        _plan_app_gateway(drill_run)
        return
    k8s = need(drill_run.target.kubernetes, "kubernetes")
    gw = need(drill_run.target.azure, "azure").app_gateway
    kube = drill_run.kube()
    if k8s.service_type == "LoadBalancer":
        # The internal load balancer's private IP, once Azure has made it ("a minute or two").
        address, waited = kube.wait_load_balancer_ip(
            k8s.namespace, "petclinic", timeout=drill_run.target.scaled(k8s.load_balancer_timeout_seconds) + 10)
        drill_run.runbook_deviation(**RUNBOOK_24, drill_did=(
            f"pointed the backend pool and the probe's host at the internal load balancer's private IP {address} "
            "(`status.loadBalancer.ingress[0].ip`), in one App Gateway update"))
    else:  # the runbook as written; preflight refuses it before a real drill (aks.backend_reachable)
        address, waited = kube.service_cluster_ip(k8s.namespace, "petclinic"), 0.0
    with drill_run.ledger.inside(drill_run.stack_entry()):  # the gateway is part of the failover stack
        entry = drill_run.app_gateway().point_at(
            gw.backend_pool, address, gw.http_settings, 80, "Http", gw.probe, probe_host=address, probe_path="/",
        )
    attach_json("change (with inverse)", {"change": entry.change.__dict__, "inverse": entry.inverse.__dict__,
                                          "backend_address": address, "waited_for_address_seconds": round(waited, 2)})


def _plan_app_gateway(drill_run: DrillRun) -> None:
    """A dry run reads the gateway if it exists (its current backend is the inverse), else plans
    the change on the gateway the apply will create."""
    from azure.core.exceptions import ResourceNotFoundError

    from drill.ledger import NOTHING, Action
    from drivers.azure_network import OP_CONFIGURE_BACKEND

    k8s = need(drill_run.target.kubernetes, "kubernetes")
    gw = need(drill_run.target.azure, "azure").app_gateway
    if k8s.service_type == "LoadBalancer":
        address = f"PetClinic's internal load balancer IP {AFTER_APPLY}"
        drill_run.runbook_deviation(**RUNBOOK_24, drill_did=(
            "will point the backend pool and the probe's host at the internal load balancer's private IP "
            "(`status.loadBalancer.ingress[0].ip`, known once Azure has made it), in one App Gateway update"))
    else:
        address = f"PetClinic's ClusterIP {AFTER_APPLY}"
    try:
        entry = drill_run.app_gateway().point_at(gw.backend_pool, address, gw.http_settings, 80, "Http", gw.probe,
                                                 probe_host=address, probe_path="/")
    except ResourceNotFoundError:
        destroy = drill_run.stack_entry()
        entry = drill_run.ledger.record(
            Action(OP_CONFIGURE_BACKEND, {"gateway": gw.name, "pool": gw.backend_pool},
                   f"point {gw.name}/{gw.backend_pool} at {address} (the gateway is created by the apply)"),
            Action(NOTHING, {}, f"nothing of its own: the gateway goes with the failover stack (#{destroy.id})"),
        )
    attach_json("planned change (with inverse)", {"change": entry.change.__dict__, "inverse": entry.inverse.__dict__})


@when("the App Gateway marks its responses as served from Azure")
def mark_served_from_azure(drill_run: DrillRun) -> None:
    """What tells users' Azure PetClinic apart: a response header added by a rewrite rule set.

    Nothing in the seeds adds one, and the same PetClinic answers on both clouds, so the drill adds
    it, inside the failover stack (the gateway goes with the stack's destroy).
    """
    from azure.core.exceptions import ResourceNotFoundError

    from drill.ledger import NOTHING, Action
    from drivers.azure_network import OP_SET_RESPONSE_HEADER, ResponseHeaderRewrite

    gw = need(drill_run.target.azure, "azure").app_gateway
    with drill_run.ledger.inside(drill_run.stack_entry()):
        try:
            entry = ResponseHeaderRewrite(drill_run.app_gateway()).add(
                gw.rewrite_rule_set, gw.served_by_header, gw.served_by_value, gw.routing_rules)
        except ResourceNotFoundError:
            if not drill_run.dry_run:
                raise
            destroy = drill_run.stack_entry()  # a dry run: the gateway is created by the apply
            entry = drill_run.ledger.record(
                Action(OP_SET_RESPONSE_HEADER, {"gateway": gw.name, "rule_set": gw.rewrite_rule_set},
                       f"add response header {gw.served_by_header}: {gw.served_by_value} on {gw.name} "
                       f"(rewrite rule set {gw.rewrite_rule_set}; the gateway is created by the apply)"),
                Action(NOTHING, {}, f"nothing of its own: the gateway goes with the failover stack (#{destroy.id})"),
            )
    attach_json("planned change (with inverse)" if entry.planned else "change (with inverse)",
                {"change": entry.change.__dict__, "inverse": entry.inverse.__dict__})


@then("the App Gateway serves PetClinic from Azure")
def app_gateway_serves_petclinic(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "the App Gateway serves PetClinic from Azure"):
        return
    outputs = drill_run.state["stack_outputs"]
    http_port = need(drill_run.target.azure, "azure").app_gateway.http_port
    url = f"http://{outputs['appgw_public_ip']}:{http_port}/"
    rules = parse_rules(drill_run.target.probe.rules)
    last: dict[str, Any] = {}

    def check() -> bool:
        try:
            r = httpx.get(url, timeout=drill_run.target.probe.timeout_seconds)
        except httpx.HTTPError as e:
            last.update(status=0, error=str(e))
            return False
        last.update(status=r.status_code, cls=classify(r.status_code, r.headers, r.text, rules))
        return last["cls"] == "azure"

    # App Gateway marks a backend healthy only after its probe passes (interval 30 s).
    ok = wait_until(check, drill_run.target.scaled(300) + 10, poll=0.5)
    attach_json("App Gateway", {"url": url, **last})
    assert ok, f"the App Gateway does not serve PetClinic from Azure: {last}"


@when("CloudFront's secondary origin is switched to the App Gateway")
def switch_secondary_origin(drill_run: DrillRun) -> None:
    cf = drill_run.target.aws.cloudfront
    assert cf is not None, "the CloudFront system's target has aws.cloudfront (drill/config.py)"
    output = need(drill_run.target.failover_stack, "failover_stack").origin_output
    if drill_run.dry_run:
        address = f"the App Gateway's DNS name (output {output}) {AFTER_APPLY}"
    else:
        address = _origin_domain(drill_run.state["stack_outputs"], output)
    # Runbook 2.6 sets the origin to the gateway's public IP, which CloudFront refuses.
    drill_run.runbook_deviation(
        "2.6", "sets the secondary origin's DomainName to `terraform output -raw appgw_public_ip`",
        "is refused by CloudFront (400 InvalidArgument: the origin name cannot be an IP address; an origin "
        "domain must be a publicly resolvable DNS name)",
        f"set it to the stack's `{output}` output, the DNS name of the gateway's public IP ({address})",
        "CloudFront Developer Guide, Origin settings: Origin domain",
    )
    entry = drill_run.cloudfront.set_origin(
        cf.distribution_id, cf.secondary_origin_id, address, "http-only",
        http_port=need(drill_run.target.azure, "azure").app_gateway.http_port,
    )
    drill_run.instants["phase2.origin_switched"] = Instant.now()
    attach_json("planned change (with inverse)" if entry.planned else "change (with inverse)",
                {"change": entry.change.__dict__, "inverse": entry.inverse.__dict__})


def _origin_domain(outputs: dict[str, Any], output: str) -> str:
    """The stack output CloudFront's origin is set to, checked to be a DNS name before CloudFront is called."""
    from drill.names import origin_domain_problem

    if output not in outputs:
        raise AssertionError(f"the failover stack has no output {output!r} (failover_stack.origin_output); "
                             f"its outputs: {sorted(outputs)}")
    problem = origin_domain_problem(outputs[output])
    if problem:
        raise AssertionError(f"the failover stack's output {output!r} cannot be CloudFront's origin: {problem}; "
                             f"output the DNS name of the App Gateway's public IP (domain_name_label -> fqdn)")
    return str(outputs[output]).rstrip(".")


@when("the CloudFront change is deployed and the cache invalidated")
def cloudfront_deployed(drill_run: DrillRun) -> None:
    cf = drill_run.target.aws.cloudfront
    assert cf is not None, "the CloudFront system's target has aws.cloudfront (drill/config.py)"
    dist = cf.distribution_id
    deployed = drill_run.cloudfront.wait_deployed(dist, timeout=drill_run.target.scaled(1200) + 30)
    if drill_run.dry_run:
        from drill.ledger import NOTHING, Action

        drill_run.ledger.record(
            Action("aws.cloudfront.invalidate", {"distribution_id": dist, "paths": ["/*"]}, f"invalidate /* on {dist}"),
            Action(NOTHING, {}, "nothing: an invalidation only empties the edge caches"),
        )
        attach_json("CloudFront (dry run)", {"status": "Deployed", "read_after_seconds": round(deployed, 2)})
        return
    inv = drill_run.cloudfront.invalidate(dist, ["/*"])
    done = wait_until(lambda: drill_run.cloudfront.invalidation_status(dist, inv) == "Completed",
                      drill_run.target.scaled(900) + 30, poll=0.5)
    attach_json("CloudFront", {"deployed_after_seconds": round(deployed, 2), "invalidation": inv, "completed": bool(done)})
    assert done, f"invalidation {inv} did not complete"


@then("the site serves PetClinic from Azure within the full-service RTO")
def azure_within_rto(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "the site serves PetClinic from Azure within the full-service RTO"):
        observe_site_write(drill_run, "phase2")  # planned only
        return
    objective = drill_run.target.objectives.full_service_rto_seconds
    assert objective is not None, "the target sets no objectives.full_service_rto_seconds"
    result = drill_run.measure_rto(
        "phase2", "long outage → PetClinic served from Azure", drill_run.instants["phase1.fault"], "azure", objective,
    )
    attach_json("measured vs target", result.__dict__)
    # Observed, not judged: Azure serves the pages, but writes still take the primary's behaviors.
    observe_site_write(drill_run, "phase2")
    assert result.rto_seconds is not None, "users never got PetClinic from Azure"
    assert result.passed, f"full-service RTO {result.rto_seconds:.2f}s exceeds the target {result.rto_target_seconds:.2f}s"


@then("the measured RPO is within target")
def rpo_within_target(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "the measured RPO is within target"):
        return
    from drill.rpo import assess

    target = drill_run.target
    objective = target.objectives.rpo_seconds
    assert objective is not None, "the target sets no objectives.rpo_seconds"
    fault = drill_run.instants["phase1.fault"]
    backup = _need(drill_run, "restored_backup", "the restored backup")
    started = _need(drill_run, "restore_started", "the restore's start")
    # The schedule's worst case, from the backups there are now (a property of the schedule, not
    # of the restore, so backups after the fault count here), over the readiness window if set.
    schedule = [b.times() for b in drill_run.backup_store().list()]
    if target.readiness is not None:
        since = fault.t - target.scaled(target.readiness.schedule_window_seconds)
        schedule = [b for b in schedule if b.started >= since]
    rpo = assess(fault.t, backup.times(), target.scaled(objective), schedule, drill_run.state.get("newest_restored_canary"))
    interval = target.scaled(need(target.azure, "azure").storage.backup_interval_seconds)
    drill_run.rpo = {
        **rpo,
        "rpo_target_real_seconds": objective,
        # The lab plays the backup schedule time-scaled: the loss window scales with it.
        "rpo_real_equivalent_seconds": round(rpo["rpo_seconds"] * target.time_scale, 1),
        "measured": "fault → the restored backup's consistency point (its dump's start): writes after it are lost",
        "scenario": "the AWS side, its backup job included, is lost at the fault: only backups completed before it are eligible",
        "fault_at": iso(fault.t),
        "backup": backup.name,
        "backup_started_at": backup.started_at.isoformat(),
        "backup_completed_by": backup.completed_by.isoformat(),
        "backup_age_seconds": round(started.t - backup.started_at.timestamp(), 3),
        "backups_after_fault_not_eligible": sum(1 for b in schedule if b.started > fault.t),
        "backup_interval_seconds": round(interval, 3),
        "worst_case_note": ("a fault just before a backup completes loses everything since the previous one started: "
                            "interval + dump and upload time (an upper bound: Blob's Last-Modified has 1 s resolution)"),
        "newest_restored_canary_at": iso(drill_run.state.get("newest_restored_canary")),
        "last_canary_before_fault_at": iso(drill_run.state.get("last_canary_before_fault")),
    }
    if rpo["worst_case_within_target"] is False:
        drill_run.notes.append(
            f"RPO: the backup schedule cannot guarantee the target: a fault just before a backup completes loses up to "
            f"{rpo['worst_case_seconds']:.2f}s (interval {interval:.2f}s + dump and upload) > target "
            f"{rpo['rpo_target_seconds']:.2f}s; this run's fault lost {rpo['rpo_seconds']:.2f}s")
    attach_json("RPO", drill_run.rpo)
    assert rpo["error"] is None, rpo["error"]
    assert rpo["passed"], (f"RPO {rpo['rpo_seconds']:.2f}s exceeds the target {rpo['rpo_target_seconds']:.2f}s: the fault "
                           "came after the next backup was due but before it had completed (the schedule's worst case)")
