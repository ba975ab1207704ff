"""Phase 2 of the Route 53 system: the VM DR site (service-inventory.md, "DR Option 2: Azure VM").

The deallocated VM is started (azure-mgmt-compute), the standby Azure MySQL gets the newest daily
snapshot dump while the VM boots (the seeds' `mysql -h goupangdr... < backup.sql`), and users sent to
the DR site get PetClinic from it. RTO: from the operators' first action of this phase (the VM start)
to the first request at the DR site answered with PetClinic, sustained, once the restore is done (a
site serving a half-restored database has not recovered), against the seeds' "RTO 2 min (manual
start)"; the start-and-boot and the restore are reported beside it, and the time since the Phase 1
fault. RPO: the data a user wrote before the fault and does not find on Azure,
measured with the canaries as for the CloudFront system — a daily snapshot usually predates every
canary of the drill, so the newest restored write is then the snapshot's own start, and every canary
written before the fault is counted as lost.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from pytest_bdd import given, scenarios, then, when

from drill.evidence import iso
from drill.ledger import NOTHING, Action
from steps.config_needs import missing
from steps.conftest import attach_json, dry_run_skips
from steps.runtime import DrillRun, Instant, wait_until

scenarios("goupang/phase2_vm_dr_site.feature")


@given("users get the maintenance page after Phase 1")
def maintenance_after_phase1(drill_run: DrillRun) -> None:
    drill_run.continue_phase("phase2", after="phase1.fault", sees="maintenance", left_by="Phase 1",
                            lacking=missing(drill_run.target, "phase2"))


@given("the newest snapshot dump in Blob Storage is younger than the snapshot RPO")
def newest_snapshot_recent(drill_run: DrillRun) -> None:
    # Only the dumps complete before the fault exist when the AWS side (its snapshot export included) is lost.
    target = drill_run.target
    newest, age, listed = drill_run.newest_before_fault("snapshot dump")
    fault = drill_run.instants["phase1.fault"]
    objective = target.objectives.rpo_seconds
    assert objective is not None, "the target sets no objectives.rpo_seconds"
    bound = target.scaled(objective)
    drill_run.state["restore_backup"] = newest
    attach_json("newest snapshot dump completed before the fault", {
        "name": newest.name, "taken_at": newest.started_at.isoformat(), "completed_by": newest.completed_by.isoformat(),
        "fault_at": iso(fault.t), "age_at_fault_seconds": round(age, 3), "dumps_listed_before_fault": listed,
        "bound_seconds": round(bound, 3)})
    assert age <= bound, (f"the newest snapshot dump complete before the fault, {newest.name}, was {age:.1f}s old at the "
                          f"fault, more than the RPO {bound:.1f}s: is the daily copy running?")


@when("the DR VM is started")
def start_vm(drill_run: DrillRun) -> None:
    vm = drill_run.dr_vm()
    before = vm.power_state()
    if not drill_run.dry_run:
        # Users of the DR site from before the operators' first action: the RTO's end is the first of
        # their requests that gets PetClinic, not the moment a late-started probe first asks.
        drill_run.ensure_dr_probe()
    start = Instant.now()
    drill_run.instants["phase2.start"] = start
    # Azure accepts the start and runs it as a long-running operation; the operators go on with the
    # restore meanwhile ("the DR VM's power state is running" waits for it).
    entry = vm.start(timeout=drill_run.target.scaled(900) + 60, wait=False)
    attach_json("planned change (with inverse)" if entry.planned else "change (with inverse)",
                {"change": entry.change.__dict__, "inverse": entry.inverse.__dict__, "power_state_before": before,
                 "accepted_after_seconds": round(time.monotonic() - start.mono, 3)})


@when("the newest snapshot dump is restored into Azure MySQL while the VM boots")
def restore_snapshot(drill_run: DrillRun) -> None:
    store = drill_run.backup_store()
    newest = drill_run.state["restore_backup"]
    start = Instant.now()
    drill_run.instants.setdefault("phase2.start", start)
    drill_run.state["restore_started"] = start
    drill_run.state["restored_backup"] = newest
    entry = drill_run.ledger.record(
        Action("db.restore", {"backup": newest.name}, f"restore snapshot {newest.name} into the standby Azure MySQL"),
        Action(NOTHING, {}, "nothing: the standby keeps the newer snapshot (the next daily restore replaces it)"),
    )
    if entry.planned:
        return
    with tempfile.TemporaryDirectory(prefix="dr-drill-restore-") as tmp:
        sql = store.download(newest, Path(tmp) / "snapshot.sql")
        drill_run.azure_db().restore(sql, timeout=drill_run.target.scaled(3600) + 60)
    drill_run.ledger.applied(entry)
    drill_run.ledger.settled(entry)
    done = Instant.now()
    drill_run.instants["phase2.restored"] = done
    from drivers.database import PETCLINIC_TABLES

    counts = drill_run.azure_db().row_counts(PETCLINIC_TABLES)
    attach_json("restore", {"snapshot": newest.name, "taken_at": newest.started_at.isoformat(),
                            "seconds": round(done.mono - start.mono, 3), "row_counts": counts})
    assert all(counts[t] > 0 for t in ("owners", "pets", "vets")), f"restored tables are empty: {counts}"


@then("the DR VM's power state is running")
def vm_running(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "the DR VM's power state is running"):
        return
    reached, seen = drill_run.dr_vm().wait_power("running", drill_run.target.scaled(600), poll=0.2)
    if reached:
        drill_run.instants["phase2.vm_running"] = Instant.now()
    attach_json("power state", {"states": [s for _, s in seen]})
    assert reached, f"the VM is {seen[-1][1]}, not running"


@then("the DR site serves PetClinic from Azure, on the restored data, within the VM DR site RTO")
def dr_site_within_rto(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "the DR site serves PetClinic from Azure within the VM DR site RTO"):
        return
    target = drill_run.target
    start = drill_run.instants["phase2.start"]
    restored = drill_run.instants["phase2.restored"]
    objective = target.objectives.dr_site_rto_seconds
    assert objective is not None
    bound = target.scaled(objective + target.grace_seconds)
    # Served before the restore finished is not recovered: the first sustained PetClinic after it.
    reached = wait_until(lambda: drill_run.first_sustained_dr("azure", restored.mono), bound, poll=0.2)
    fault = drill_run.instants["phase1.fault"]
    at = Instant(start.t + (reached.mono - start.mono), reached.mono) if reached else Instant.now()
    result = drill_run.record_rto("phase2", "VM DR site: VM start + restore → PetClinic at the DR site", start, at, objective,
                                  "VM start requested → first request to the DR site answered with PetClinic from Azure, "
                                  "sustained, after the restore finished")
    if reached is None:
        result.rto_seconds, result.passed = None, False
    running = drill_run.instants.get("phase2.vm_running")
    first_any = drill_run.first_sustained_dr("azure", start.mono)
    result.detail.update({
        "since_phase1_fault_seconds": None if reached is None else round(reached.mono - fault.mono, 3),
        "vm_running_seconds": None if running is None else round(running.mono - start.mono, 3),
        "vm_serving_seconds": None if first_any is None else round(first_any.mono - start.mono, 3),
        "restore_seconds": round(restored.mono - drill_run.state["restore_started"].mono, 3),
        "restore_done_seconds": round(restored.mono - start.mono, 3),
        "served_from": sorted({s.address for s in drill_run.dr_samples() if s.cls == "azure" and s.address}),
    })
    attach_json("measured vs target", result.__dict__)
    assert reached is not None, f"the DR site never served PetClinic within {bound:.1f}s"
    assert result.passed, f"VM DR site RTO {result.rto_seconds:.2f}s exceeds the target {result.rto_target_seconds:.2f}s"


@then("the measured RPO of the daily snapshot is within target")
def rpo_within_target(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "the measured RPO of the daily snapshot is within target"):
        return
    from drill.rpo import assess
    from drivers.database import newest_canary

    target = drill_run.target
    objective = target.objectives.rpo_seconds
    assert objective is not None, "the target sets no objectives.rpo_seconds"
    fault = drill_run.instants["phase1.fault"]
    backup = drill_run.state["restored_backup"]
    started = drill_run.state["restore_started"]
    schedule = [b.times() for b in drill_run.backup_store().list()]
    canary = newest_canary(drill_run.azure_db()) if _has_canaries(drill_run) else None
    rpo = assess(fault.t, backup.times(), target.scaled(objective), schedule, canary)
    marker = drill_run.state.get("drill_owner")
    with drill_run.azure_db().connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM owners WHERE last_name = %s", ((marker or {}).get("last_name", ""),))
        marker_found = cur.fetchone()[0] == 1
    drill_run.rpo = {
        **rpo,
        "rpo_target_real_seconds": objective,
        # The lab plays the daily schedule time-scaled: the loss window scales with it.
        "rpo_real_equivalent_seconds": round(rpo["rpo_seconds"] * target.time_scale, 1),
        "measured": "fault → the restored snapshot dump's consistency point (its start): writes after it are lost",
        "scenario": "the AWS side, its snapshot export included, is lost at the fault: only dumps complete before it exist",
        "fault_at": iso(fault.t), "backup": backup.name, "backup_started_at": backup.started_at.isoformat(),
        "backup_age_seconds": round(started.t - backup.started_at.timestamp(), 3),
        "newest_restored_canary_at": iso(canary), "last_canary_before_fault_at": iso(drill_run.state.get("last_canary_before_fault")),
        "marker_owner_written_before_snapshot": bool(marker and marker["written_at"] < backup.started_at.timestamp()),
        "marker_owner_found_on_azure": marker_found,
    }
    attach_json("RPO", drill_run.rpo)
    # What the canaries prove: a write after the snapshot is not on Azure, one before it is.
    if marker:
        assert marker_found == drill_run.rpo["marker_owner_written_before_snapshot"], (
            f"marker owner {marker['last_name']}: found on Azure = {marker_found}, but written "
            f"{'before' if not marker_found else 'after'} the snapshot: the wrong dump was restored")
    assert rpo["error"] is None, rpo["error"]
    assert rpo["passed"], f"RPO {rpo['rpo_seconds']:.2f}s exceeds the target {rpo['rpo_target_seconds']:.2f}s"


def _has_canaries(drill_run: DrillRun) -> bool:
    with drill_run.azure_db().connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'dr_canary'")
        return bool(cur.fetchone()[0])


@then("a user signed in on AWS is not signed in on the DR site")
def session_not_on_dr_site(drill_run: DrillRun) -> None:
    if dry_run_skips(drill_run, "a user signed in on AWS is not signed in on the DR site"):
        return
    seen = _dr_session_check(drill_run)
    drill_run.state.setdefault("sessions", {})["phase2_dr_site"] = seen
    attach_json("a signed-in user at the DR site", seen)
    assert seen["status"] == 200 and not seen["signed_in"], f"unexpected at the DR site: {seen}"


def _dr_session_check(drill_run: DrillRun) -> dict[str, Any]:
    """What a user signed in on AWS gets at the DR site. Their SESSION cookie belongs to www's host, so a
    browser does not even send it to dr.; and sent anyway, the VM's PetClinic keeps sessions in its own
    memory, not in AWS's Redis: the check sends a session id of AWS's format to make that visible."""
    from urllib.parse import urlsplit

    from drivers.dns_resolver import CachingResolver

    samples = drill_run.session_samples()
    assert drill_run.target.dr_site is not None, "the goupang system's target has dr_site (drill/config.py)"
    url = urlsplit(drill_run.target.dr_site.url)
    r = drill_run.target.probe.resolver
    address = CachingResolver(r.nameserver, honour_ttl=False).query(url.hostname or "")[0] if r else url.hostname
    port = f":{url.port}" if url.port else ""
    resp = httpx.get(f"{url.scheme}://{address}{port}/", headers={"Host": url.netloc, "Cookie": "SESSION=ZHItZHJpbGwtY2hlY2s="},
                     timeout=5)
    return {"status": resp.status_code, "signed_in": "Signed in as" in resp.text,
            "signed_in_user_kept_session_before_fault": any(s.get("session") == "kept" for s in samples),
            "what_users_experience": "signed out at the DR site: they sign in again (sessions live in AWS's Redis, "
                                     "which the VM does not reach; the cookie is www's, not dr.'s)"}
