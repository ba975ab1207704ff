"""One readiness run: read-only checks of what a DR drill (and a real failover) relies on today.

A ReadinessRun builds the same drivers a drill does from the target, but without a rollback ledger,
a probe or canary writes: nothing on the target changes. The one exception is the scratch database
(`readiness.scratch_database`), which the restore check empties, fills from the newest backup and
empties again; it is refused if it is the primary.

Each `check_*` method measures one thing and returns a drill.readiness.Verdict (also kept in
`verdicts`); a measurement that raises becomes a failed verdict naming the error, never a pass.
At the end `finish()` writes reports/evidence/<run-id>/readiness.json and readiness.md (secrets
masked), target.json, environment.json, seals them (manifest and statement, signed when the target
has a key), and points `readiness-latest` at the run.
No pytest imports here: the step module attaches the verdicts to Allure and fails the scenarios.
"""
from __future__ import annotations

import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drill import __version__
from drill.config import ReadinessConfig, Target
from drill.evidence import EvidenceDir, Masker, iso, new_run_id
from drill.readiness import (
    READINESS_SCHEMA_VERSION,
    BackupTime,
    Verdict,
    backup_spacing,
    compare_restore,
    lifecycle_delete_days,
    overall,
    parse_plan,
    render_markdown,
    sentence,
)
from drivers.aws import Aws, CloudFront, LoadBalancing, NodeGroups, error_code
from drivers.retries import api_settings
from steps.runtime import git_revision, operator

LATEST_LINK = "readiness-latest"


class ReadinessRun:
    def __init__(self, target: Target, reports_dir: Path, masker: Masker) -> None:
        self.target = target
        self.started = time.time()
        self._t0 = time.monotonic()
        self.run_id = new_run_id(self.started)
        self.evidence = EvidenceDir(reports_dir / "evidence", self.run_id, masker)
        self.work = reports_dir / "work" / self.run_id
        self.work.mkdir(parents=True, exist_ok=True)
        self.verdicts: list[Verdict] = []
        self._cache: dict[str, Any] = {}
        self._scratch_used = False

    def __repr__(self) -> str:  # Allure shows fixture reprs as step parameters: no secrets
        return f"ReadinessRun({self.run_id}, target={self.target.name})"

    # -- AWS drivers, built on first use: a missing profile fails the checks that need it, by name ------
    @property
    def aws(self) -> Aws:
        if "aws" not in self._cache:
            self._cache["aws"] = Aws(self.target.aws, api_settings(self.target))
        return self._cache["aws"]

    # No ledger: these drivers refuse to change anything.
    @property
    def nodegroups(self) -> NodeGroups:
        return NodeGroups(self.aws)

    @property
    def elb(self) -> LoadBalancing:
        return LoadBalancing(self.aws)

    @property
    def cloudfront(self) -> CloudFront:
        return CloudFront(self.aws)

    # -- configuration -------------------------------------------------------------------------------
    @property
    def cfg(self) -> ReadinessConfig:
        if self.target.readiness is None:
            raise LookupError(f"target {self.target.name!r} has no `readiness:` section (thresholds to check against)")
        return self.target.readiness

    def _section(self, name: str) -> Any:
        value = getattr(self.target, name)
        if value is None:
            raise LookupError(f"target {self.target.name!r} has no `{name}:` section")
        return value

    def scaled(self, real_seconds: float) -> float:
        return self.target.scaled(real_seconds)

    # -- recording -------------------------------------------------------------------------------------
    def measure(self, check: str, fn: Callable[[], Verdict]) -> Verdict:
        """Run one check; an exception is a failed verdict that names it (never a silent pass)."""
        at, t0 = time.time(), time.monotonic()
        try:
            v = fn()
        except Exception as e:  # noqa: BLE001 — a check that cannot measure is a check that fails
            v = Verdict(check, False, None, None, sentence(check, f"could not be measured: {_describe(e)}"))
        v.at, v.seconds = iso(at), round(time.monotonic() - t0, 3)
        v.detail = self.evidence.mask(v.detail)
        self.verdicts.append(v)
        return v

    # -- drivers ----------------------------------------------------------------------------------------
    def azure_auth(self) -> Any:
        from drivers.actions import azure_auth

        return azure_auth(self.target)

    def azure_credential(self) -> Any:
        if "azure_credential" not in self._cache:
            from drivers.azure_network import make_credential

            self._cache["azure_credential"] = make_credential(self.azure_auth())
        return self._cache["azure_credential"]

    def network_client(self) -> Any:
        from drivers.azure_network import make_client

        return make_client(self.azure_auth(), self.azure_credential())

    def storage_account(self) -> Any:
        from drivers.azure_storage import StorageAccount, make_storage_client

        az = self._section("azure")
        return StorageAccount(make_storage_client(self.azure_auth(), self.azure_credential()), az.resource_group,
                              self.cfg.storage_account)

    def blob_service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        st = self._section("azure").storage
        if st.account_key:
            name = _account_name(st.account_url)
            return BlobServiceClient(st.account_url, credential={"account_name": name, "account_key": st.account_key.get_secret_value()})
        return BlobServiceClient(st.account_url, credential=self.azure_credential())

    def backup_store(self) -> Any:
        from drivers.backups import BackupStore

        st = self._section("azure").storage
        return BackupStore(self.blob_service().get_container_client(st.backup_container), st.backup_prefix)

    def _db_from_secret(self, secret_id: str, database: str | None = None, ssl_ca: str | None = None) -> Any:
        from drivers.aws import Secrets
        from drivers.database import Database

        s = Secrets(self.aws).json(secret_id)
        self.evidence.mask.add([str(s.get("password", ""))])
        return Database(str(s["host"]), int(s["port"]), str(s["username"]), str(s["password"]),
                        database or str(s["dbname"]), ssl_ca=ssl_ca)

    def primary_db(self) -> Any:
        """The primary, from the Secrets Manager secret the backup job uses (as the drill reaches it)."""
        if "primary" not in self._cache:
            db = self._section("database")
            self._cache["primary"] = self._db_from_secret(db.secret_id, ssl_ca=db.ssl_ca)
        return self._cache["primary"]

    def scratch_db(self) -> Any:
        from drivers.database import Database

        if "scratch" not in self._cache:
            sc = self.cfg.scratch_database
            if sc is None:
                raise LookupError("readiness.scratch_database is not configured: there is nowhere to restore a backup to")
            if sc.secret_id:
                db = self._db_from_secret(sc.secret_id, sc.database, sc.ssl_ca)
            else:
                assert sc.password is not None  # the config requires one without secret_id
                db = Database(str(sc.host), sc.port, str(sc.user), sc.password.get_secret_value(),
                              str(sc.database), ssl_ca=sc.ssl_ca)
            self._cache["scratch"] = db
        return self._cache["scratch"]

    def terraform(self) -> Any:
        """The failover stack's Terraform with the target's subscription, credentials and variables."""
        from drivers.terraform_stack import stack_terraform

        self._section("failover_stack")
        return stack_terraform(self.target, log=self._log, timeout=self.scaled(1800) + 120, on_secret=self.evidence.mask.add)

    def _log(self, line: str) -> None:
        with open(self.work / "drivers.log", "a", encoding="utf-8") as f:
            f.write(self.evidence.mask(line.rstrip("\n")) + "\n")

    # -- backups -------------------------------------------------------------------------------------
    def backup_listing(self) -> tuple[list[Any], float]:
        """The backups, listed once per run: freshness, schedule and restore judge the same listing."""
        if "listing" not in self._cache:
            backups = self.backup_store().list()
            self._cache["listing"] = (backups, time.time())
        return self._cache["listing"]

    def check_backup_freshness(self) -> Verdict:
        check = "backups.freshness"

        def run() -> Verdict:
            rpo = self.target.objectives.rpo_seconds
            if rpo is None:
                return Verdict(check, False, None, None, sentence(check, "the target states no RPO (objectives.rpo_seconds)"))
            backups, now = self.backup_listing()
            threshold = self.scaled(rpo + self.cfg.backup_in_flight_seconds)
            if not backups:
                return Verdict(check, False, None, round(threshold, 2), sentence(check, f"no backups under {self._backup_where()}"), "s")
            newest = backups[-1]
            age = now - newest.started_at.timestamp()
            ok = age <= threshold
            how_old = f"is {age:.1f}s old" if age >= 0 else f"is dated {-age:.1f}s in the future (clock skew?)"
            return Verdict(
                check, ok, round(age, 2), round(threshold, 2),
                sentence(check, f"newest backup {newest.name} {how_old}, {'within' if ok else 'more than'} the RPO "
                         f"{self.scaled(rpo):.1f}s + {self.scaled(self.cfg.backup_in_flight_seconds):.1f}s for a backup in flight"
                         f"{self._real(age, rpo + self.cfg.backup_in_flight_seconds)}"),
                "s", data={"newest": newest.name, "taken_at": newest.started_at.isoformat(), "backups": len(backups)},
            )

        return self.measure(check, run)

    def check_backup_schedule(self) -> Verdict:
        check = "backups.schedule"

        def run() -> Verdict:
            st = self._section("azure").storage
            backups, now = self.backup_listing()
            interval = self.scaled(st.backup_interval_seconds)
            window = self.scaled(self.cfg.schedule_window_seconds)
            tolerance = self.cfg.schedule_tolerance
            threshold = round(tolerance * interval, 2)
            times = [BackupTime(b.name, b.started_at.timestamp(), b.precise) for b in backups if b.name_has_time or b.precise]
            judged, gaps, largest = backup_spacing(times, now, window, interval, tolerance)
            inside = [b for b in judged if b.started >= now - window]
            data = {"window_seconds": round(window, 2), "interval_seconds": round(interval, 2), "backups_in_window": len(inside),
                    "gaps": [g.__dict__ for g in gaps]}
            if not inside:
                return Verdict(check, False, None, threshold, sentence(
                    check, f"no backup in the last {window:.0f}s under {self._backup_where()} (one is due every {interval:.1f}s)"),
                    "s", data=data)
            if gaps:
                worst = max(gaps, key=lambda g: g.seconds)
                return Verdict(check, False, round(worst.seconds, 2), threshold, sentence(
                    check, f"{len(gaps)} gap(s) longer than {tolerance:g} x the {interval:.1f}s interval in the last {window:.0f}s; "
                    f"the longest is {worst.seconds:.1f}s between {worst.earlier} and {worst.later}"), "s", data=data)
            if largest is None:
                text = f"1 backup in the last {window:.0f}s and none before it: no spacing to judge yet"
            else:
                text = f"{len(inside)} backups in the last {window:.0f}s, at most {largest:.1f}s apart (interval {interval:.1f}s)"
            return Verdict(check, True, None if largest is None else round(largest, 2), threshold, sentence(check, text), "s", data=data)

        return self.measure(check, run)

    def check_restore(self) -> Verdict:
        """Download the newest backup (gzip and dump trailer verified) and restore it into the scratch database."""
        check = "backups.restorable"

        def run() -> Verdict:
            from drivers import scratch
            from drivers.backups import BackupError
            from drivers.database import DatabaseError

            backups, _ = self.backup_listing()
            if not backups:
                return Verdict(check, False, "no backup", "restored", sentence(check, f"no backups under {self._backup_where()}"))
            newest = backups[-1]
            target_db, primary = self.scratch_db(), self.primary_db()
            if scratch.same_database(target_db, primary):
                return Verdict(check, False, "refused", "restored", sentence(
                    check, f"refused: the scratch database {target_db!r} is the primary {primary!r}"))
            store = self.backup_store()
            t0 = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="restore-", dir=self.work) as tmp:
                try:
                    sql = store.download(newest, Path(tmp) / "backup.sql")
                except BackupError as e:
                    return Verdict(check, False, "corrupt", "restored", sentence(check, str(e)),
                                   data={"backup": newest.name, "bytes": newest.size})
                size = sql.stat().st_size
                self._scratch_used = True
                dropped = scratch.empty(target_db)
                try:
                    target_db.restore(sql, timeout=self.scaled(3600) + 300)
                except DatabaseError as e:
                    return Verdict(check, False, "restore failed", "restored", sentence(check, str(e)),
                                   data={"backup": newest.name})
            seconds = time.monotonic() - t0
            self._cache["restored"] = newest
            return Verdict(
                check, True, "restored", "restored",
                sentence(check, f"{newest.name} ({newest.size} bytes, {size} uncompressed) restored into {target_db!r} in {seconds:.2f}s"),
                data={"backup": newest.name, "taken_at": newest.started_at.isoformat(), "restore_seconds": round(seconds, 3),
                      "dropped_before_restore": dropped},
            )

        return self.measure(check, run)

    def _restored(self) -> Any:
        if "restored" not in self._cache:
            raise LookupError("no backup was restored in this run (see backups.restorable)")
        return self._cache["restored"]

    def check_restored_tables(self) -> Verdict:
        check = "backups.restored_tables"

        def run() -> Verdict:
            backup = self._restored()
            want = sorted({*self.cfg.reference_tables, *self.cfg.append_only_tables})
            have = self.scratch_db().tables()
            missing = [t for t in want if t not in have]
            text = (f"{backup.name} restored every table: {', '.join(want)}" if not missing
                    else f"{backup.name} lacks {', '.join(missing)} (restored: {', '.join(have) or 'nothing'})")
            return Verdict(check, not missing, len(want) - len(missing), len(want), sentence(check, text), "tables",
                           data={"restored_tables": have, "missing": missing})

        return self.measure(check, run)

    def _comparison(self) -> dict[str, Any]:
        """Row counts and fingerprints of the restored tables and the primary's (read once per run)."""
        if "comparison" not in self._cache:
            from drivers import scratch

            backup = self._restored()
            ref, app = list(self.cfg.reference_tables), list(self.cfg.append_only_tables)
            primary, restored = self.primary_db(), self.scratch_db()
            pc, rc = primary.row_counts(ref + app), restored.row_counts(ref + app)
            method, pf, rf = scratch.fingerprints(primary, restored, ref)
            self._cache["comparison"] = {"backup": backup.name, "fingerprint": method, "primary_rows": pc,
                                         "restored_rows": rc, "primary_fingerprints": pf, "restored_fingerprints": rf}
        return self._cache["comparison"]

    def check_restored_reference(self) -> Verdict:
        """vets/specialties/vet_specialties/types are reference data nobody writes: whenever the backup
        was taken, the restore must equal the primary in rows and contents."""
        check = "backups.restored_reference"

        def run() -> Verdict:
            c, ref = self._comparison(), list(self.cfg.reference_tables)
            problems = compare_restore(c["primary_rows"], c["restored_rows"], c["primary_fingerprints"],
                                       c["restored_fingerprints"], ref, [])
            measured = {t: c["restored_rows"].get(t) for t in ref}
            text = "; ".join(problems) or (f"{', '.join(ref)} restored from {c['backup']} equal the primary "
                                           f"({c['fingerprint']}, rows {measured})")
            return Verdict(check, not problems, measured, {t: c["primary_rows"].get(t) for t in ref},
                           sentence(check, text), data=c)

        return self.measure(check, run)

    def check_restored_append_only(self) -> Verdict:
        """owners/pets/visits only grow (PetClinic deletes nothing): rows added since the backup make
        the primary larger, never the restore. A larger restore means the backup is of another
        database, or the primary lost rows."""
        check = "backups.restored_append_only"

        def run() -> Verdict:
            c, app = self._comparison(), list(self.cfg.append_only_tables)
            pc, rc = c["primary_rows"], c["restored_rows"]
            problems = compare_restore(pc, rc, {}, {}, [], app)
            measured = {t: rc.get(t) for t in app}
            grown = {t: pc[t] - rc[t] for t in app if t in pc and t in rc and pc[t] != rc[t]}
            text = "; ".join(problems) or (
                f"{', '.join(app)} restored with {measured} rows, no more than the primary's "
                + (f"(written since the backup: {grown})" if grown else "(nothing written since the backup)"))
            return Verdict(check, not problems, measured, {t: f"≤{pc.get(t)}" for t in app}, sentence(check, text), data=c)

        return self.measure(check, run)

    def check_lifecycle(self) -> Verdict:
        check = "backups.lifecycle"

        def run() -> Verdict:
            st = self._section("azure").storage
            days = self.cfg.lifecycle_days
            policy = self.storage_account().management_policy()
            where = f"{st.backup_container}/{st.backup_prefix}"
            if policy is None:
                return Verdict(check, False, None, days, sentence(
                    check, f"storage account {self.cfg.storage_account} has no lifecycle management policy: backups never expire"),
                    "days")
            rules = lifecycle_delete_days(policy, st.backup_container, st.backup_prefix)
            if not rules:
                return Verdict(check, False, None, days, sentence(
                    check, f"no enabled lifecycle rule of {self.cfg.storage_account} deletes blobs under {where}"), "days",
                    data={"policy": policy})
            soonest = min(d for _, d in rules)
            ok = soonest == days
            names = ", ".join(f"{n} ({d:g} days)" for n, d in rules)
            return Verdict(check, ok, soonest, days, sentence(
                check, f"backups under {where} are deleted {soonest:g} days after they were written "
                f"({'as designed' if ok else f'the design says {days}'}; rules: {names})"), "days", data={"policy": policy})

        return self.measure(check, run)

    def _backup_where(self) -> str:
        st = self._section("azure").storage
        return f"{st.backup_container}/{st.backup_prefix}"

    def _real(self, measured_wall: float, objective_real: float) -> str:
        if self.target.time_scale == 1:
            return ""
        return f" (real-world {measured_wall * self.target.time_scale:.0f}s vs {objective_real:g}s)"

    # -- CDN -------------------------------------------------------------------------------------------
    def check_failover_criteria(self) -> Verdict:
        check = "cdn.failover_criteria"

        def run() -> Verdict:
            cf = self.target.aws.cloudfront
            assert cf is not None, "the CloudFront system's target has aws.cloudfront (drill/config.py)"
            want_members = [cf.primary_origin_id, cf.secondary_origin_id]
            want_codes = sorted(self.cfg.failover_status_codes)
            group = self.cloudfront.origin_group(cf.distribution_id)
            threshold = {"members": want_members, "status_codes": want_codes}
            if group is None:
                return Verdict(check, False, None, threshold, sentence(
                    check, f"the default cache behaviour of {cf.distribution_id} targets no origin group: nothing fails over"))
            members = [m["OriginId"] for m in group["Members"]["Items"]]
            codes = sorted(int(c) for c in group["FailoverCriteria"]["StatusCodes"]["Items"])
            problems = []
            if members != want_members:
                problems.append(f"origin group {group['Id']} has members {members}, expected {want_members}")
            if codes != want_codes:
                problems.append(f"fails over on {codes}, expected {want_codes}")
            measured = {"members": members, "status_codes": codes}
            text = "; ".join(problems) or f"origin group {group['Id']} fails over from {members[0]} to {members[1]} on {codes}"
            return Verdict(check, not problems, measured, threshold, sentence(check, text),
                           data={"status": self.cloudfront.status(cf.distribution_id)})

        return self.measure(check, run)

    def check_secondary_origin(self) -> Verdict:
        check = "cdn.secondary_origin"

        def run() -> Verdict:
            cf = self.target.aws.cloudfront
            assert cf is not None, "the CloudFront system's target has aws.cloudfront (drill/config.py)"
            want = self.cfg.maintenance_origin_domain
            origin = self.cloudfront.origin(cf.distribution_id, cf.secondary_origin_id)
            got = origin["DomainName"]
            ok = got.lower() == want.lower()
            text = (f"secondary origin {cf.secondary_origin_id} is the Blob maintenance site {got}" if ok
                    else f"secondary origin {cf.secondary_origin_id} points at {got}, not the Blob maintenance site {want}")
            return Verdict(check, ok, got, want, sentence(check, text), data={"origin": origin})

        return self.measure(check, run)

    def _fetch(self, url: str, attempts: int = 1) -> list[dict[str, Any]]:
        import httpx

        from drill.classify import classify, parse_rules

        rules = parse_rules(self.target.probe.rules)
        out = []
        for i in range(attempts):
            try:
                r = httpx.get(url, timeout=self.target.probe.timeout_seconds * 2, follow_redirects=True)
                out.append({"status": r.status_code, "class": classify(r.status_code, r.headers, r.text, rules),
                            "bytes": len(r.content)})
            except httpx.HTTPError as e:
                out.append({"status": 0, "class": "error", "error": type(e).__name__})
            if i + 1 < attempts:
                time.sleep(0.2)
        return out

    def check_maintenance_page(self) -> Verdict:
        check = "cdn.maintenance_page"

        def run() -> Verdict:
            url = self.cfg.maintenance_url
            r = self._fetch(url)[0]
            ok = r["status"] == 200 and r["class"] == "maintenance"
            text = (f"{url} answers 200 with the maintenance page" if ok
                    else f"{url} answers {r['status'] or r.get('error')} and reads as {r['class']!r}, not the maintenance page")
            return Verdict(check, ok, {"status": r["status"], "class": r["class"]}, {"status": 200, "class": "maintenance"},
                           sentence(check, text), data=r)

        return self.measure(check, run)

    # -- AWS primary -------------------------------------------------------------------------------------
    def check_nodegroups(self) -> Verdict:
        check = "aws.nodegroups"

        def run() -> Verdict:
            cluster = self.target.aws.eks.cluster
            measured, threshold, problems = {}, {}, []
            for name, want in self.cfg.nodegroups.items():
                ng = self.nodegroups.describe(cluster, name)
                sc = ng["scalingConfig"]
                measured[name] = f"{ng['status']} {sc['minSize']}/{sc['desiredSize']}/{sc['maxSize']}"
                threshold[name] = f"ACTIVE {_opt(want.min_size)}/{want.desired_size}/{_opt(want.max_size)}"
                if ng["status"] != "ACTIVE":
                    problems.append(f"{name} is {ng['status']}")
                for key, api in (("desired_size", "desiredSize"), ("min_size", "minSize"), ("max_size", "maxSize")):
                    expected = getattr(want, key)
                    if expected is not None and int(sc[api]) != expected:
                        problems.append(f"{name} has {api} {sc[api]}, expected {expected}")
            text = "; ".join(problems) or f"{', '.join(measured)} are ACTIVE at their expected sizes (min/desired/max)"
            return Verdict(check, not problems, measured, threshold, sentence(check, text))

        return self.measure(check, run)

    def check_alb_targets(self) -> Verdict:
        check = "aws.alb_targets"

        def run() -> Verdict:
            health = self.elb.target_health(self.target.aws.alb.target_group_arn)
            healthy = sum(1 for t in health if t.state == "healthy")
            want = self.cfg.min_healthy_targets
            states = {t.target_id: t.state for t in health}
            ok = healthy >= want
            return Verdict(check, ok, healthy, want, sentence(
                check, f"{healthy} of {len(health)} ALB targets healthy ({'at least' if ok else 'fewer than'} {want}): {states}"),
                "targets", data={"targets": [t.__dict__ for t in health]})

        return self.measure(check, run)

    def check_alarms(self) -> Verdict:
        """The team's DR-relevant CloudWatch alarms (design §7: CloudWatch → SNS → chat) exist, will
        notify someone (actions enabled, an ALARM action) and are OK today. An alarm already in ALARM
        cannot tell anyone about the next outage, and a drill with it as a stop condition would not start."""
        check = "aws.alarms"

        def run() -> Verdict:
            from drivers.cloudwatch import Alarms
            from steps.runtime import dr_relevant_alarms

            names = dr_relevant_alarms(self.target)
            if not names:
                return Verdict(check, False, None, "alarms exist, have actions, OK", sentence(
                    check, "the target names no DR-relevant alarm (alarms.expected, alarms.dr_relevant or stop.alarms): "
                           "nothing shows that an outage would be noticed"))
            states = Alarms(self.aws).describe(names)
            measured: dict[str, str] = {}
            problems: list[str] = []
            for n in names:
                a = states.get(n)
                if a is None:
                    measured[n] = "(absent)"
                    problems.append(f"{n} does not exist")
                    continue
                measured[n] = a.state
                if not a.actions_enabled:
                    problems.append(f"{n} has its actions disabled: it notifies no one")
                elif not a.alarm_actions:
                    problems.append(f"{n} has no ALARM action: it notifies no one")
                if a.state != "OK":
                    problems.append(f"{n} is {a.state} since {iso(a.updated_at) if a.updated_at else '?'}: {a.reason}")
            text = "; ".join(problems) or f"{', '.join(names)} exist, notify on ALARM and are OK"
            return Verdict(check, not problems, measured, {n: "OK, with an ALARM action" for n in names}, sentence(check, text),
                           data={n: {"state": a.state, "reason": a.reason, "actions_enabled": a.actions_enabled,
                                     "alarm_actions": a.alarm_actions, "ok_actions": a.ok_actions} for n, a in states.items()})

        return self.measure(check, run)

    def check_site(self) -> Verdict:
        check = "aws.site"

        def run() -> Verdict:
            url = self.target.site.url
            seen = self._fetch(url, attempts=3)
            classes = [s["class"] for s in seen]
            ok = all(c == "aws" for c in classes)
            text = (f"{url} serves PetClinic from AWS through CloudFront ({len(seen)} of {len(seen)} requests)" if ok
                    else f"{url} answered {[s['status'] for s in seen]} read as {classes}, not PetClinic from AWS")
            return Verdict(check, ok, classes, ["aws"] * len(seen), sentence(check, text), data={"requests": seen})

        return self.measure(check, run)

    # -- Azure always-on ----------------------------------------------------------------------------------
    def check_storage_account(self) -> Verdict:
        check = "azure.storage_account"

        def run() -> Verdict:
            from azure.core.exceptions import ResourceNotFoundError

            az = self._section("azure")
            name = self.cfg.storage_account
            try:
                props = self.storage_account().properties()
            except ResourceNotFoundError:
                return Verdict(check, False, "absent", "Succeeded", sentence(
                    check, f"storage account {name} is not in resource group {az.resource_group}"))
            state = (props.get("properties") or {}).get("provisioningState")
            ok = state == "Succeeded"
            return Verdict(check, ok, state, "Succeeded", sentence(
                check, f"storage account {name} in {az.resource_group} is {state}"),
                data={"kind": props.get("kind"), "location": props.get("location"),
                      "endpoints": (props.get("properties") or {}).get("primaryEndpoints")})

        return self.measure(check, run)

    def check_containers(self) -> Verdict:
        check = "azure.containers"

        def run() -> Verdict:
            from drivers.azure_storage import container_names

            have = container_names(self.blob_service())
            want = list(self.cfg.containers)
            missing = [c for c in want if c not in have]
            text = (f"containers {', '.join(want)} are present" if not missing
                    else f"container(s) {', '.join(missing)} missing from {self.cfg.storage_account} "
                         f"(present: {', '.join(have) or 'none'})")
            return Verdict(check, not missing, have, want, sentence(check, text))

        return self.measure(check, run)

    def check_network(self) -> Verdict:
        check = "azure.network"

        def run() -> Verdict:
            from azure.core.exceptions import ResourceNotFoundError

            az = self._section("azure")
            vnet_name = self.cfg.virtual_network
            want = list(self.cfg.subnets)
            try:
                vnet = self.network_client().virtual_networks.get(az.resource_group, vnet_name)
            except ResourceNotFoundError:
                return Verdict(check, False, None, want, sentence(
                    check, f"virtual network {vnet_name} is not in resource group {az.resource_group}"))
            have = {s.name: s.address_prefix for s in vnet.subnets or []}
            missing = [s for s in want if s not in have]
            state = getattr(vnet.provisioning_state, "value", vnet.provisioning_state)
            problems = [f"subnet(s) {', '.join(missing)} missing from {vnet_name}"] if missing else []
            if state != "Succeeded":
                problems.append(f"{vnet_name} is {state}")
            text = "; ".join(problems) or f"{vnet_name} ({state}) has {', '.join(f'{k} {have[k]}' for k in want)}"
            return Verdict(check, not problems, sorted(have), want, sentence(check, text), data={"subnets": have})

        return self.measure(check, run)

    def check_failover_plan(self) -> Verdict:
        """`terraform plan` of the failover stack: clean = nothing to change, or only creations.

        The stack is normally destroyed, so a plan that would create it is the expected state; an
        update, a replacement or a destroy means something that exists has drifted from the code.
        """
        check = "azure.failover_plan"

        def run() -> Verdict:
            tf = self.terraform()
            tf.init()
            plan = tf.plan()
            summary = parse_plan(plan.stdout)
            self.evidence.write_text("terraform-plan.txt", plan.stdout + "\n")
            counts = summary.counts or ({} if not summary.no_changes else {"add": 0, "change": 0, "destroy": 0})
            measured = {"exit_code": plan.exit_code, **counts}
            threshold = {"change": 0, "destroy": 0}
            if plan.exit_code == 2 and not summary.counts and not summary.actions:
                return Verdict(check, False, measured, threshold, sentence(
                    check, "terraform plan proposed changes but printed none that could be read (see terraform-plan.txt)"))
            if not summary.clean:
                drift = ", ".join(f"{a} ({act})" for a, act in summary.drift) or str(counts)
                return Verdict(check, False, measured, threshold, sentence(
                    check, f"terraform plan would change what exists: {drift}"),
                    data={"actions": summary.actions, "outside_terraform": summary.outside})
            text = ("terraform plan: no changes (the failover stack is up and matches its code)" if not summary.creations
                    else f"terraform plan proposes only creating the (normally destroyed) stack: {', '.join(summary.creations)}")
            return Verdict(check, True, measured, threshold, sentence(check, text),
                           data={"actions": summary.actions, "outside_terraform": summary.outside})

        return self.measure(check, run)

    # -- credentials ---------------------------------------------------------------------------------------
    def check_credentials(self) -> list[Verdict]:
        """One read-only call per API the drill uses, each its own verdict naming the API and error code."""
        aws = self.target.aws
        probes: list[tuple[str, str, Callable[[], str]]] = [
            ("credentials.aws.sts", "sts:GetCallerIdentity",
             lambda: "as " + str(self.aws.client("sts").get_caller_identity()["Arn"])),
            ("credentials.aws.eks", f"eks:DescribeCluster {aws.eks.cluster}",
             lambda: str(self.aws.client("eks").describe_cluster(name=aws.eks.cluster)["cluster"]["status"])),
            # The drill counts the web node group's nodes in its Auto Scaling group (drivers.aws.NodeGroups).
            ("credentials.aws.autoscaling", f"autoscaling:DescribeAutoScalingGroups of {aws.eks.web_nodegroup}",
             lambda: f"{len(self.nodegroups.instances(aws.eks.cluster, aws.eks.web_nodegroup).lifecycle)} instances"),
            ("credentials.aws.elbv2", "elasticloadbalancing:DescribeTargetHealth",
             lambda: f"{len(self.elb.target_health(aws.alb.target_group_arn))} targets"),
        ]
        cf = aws.cloudfront
        if cf is not None:
            dist = cf.distribution_id
            probes.append(("credentials.aws.cloudfront", f"cloudfront:GetDistribution {dist}",
                           lambda: self.cloudfront.status(dist)))
        if self.target.database is not None:
            sid = self.target.database.secret_id
            probes += [
                ("credentials.aws.secretsmanager", f"secretsmanager:DescribeSecret {sid}",
                 lambda: str(self.aws.client("secretsmanager").describe_secret(SecretId=sid)["Name"])),
                ("credentials.database.primary", "MySQL SELECT 1 on the primary (credentials from Secrets Manager)",
                 lambda: _select_one(self.primary_db())),
            ]
        if self.target.azure is not None:
            az = self.target.azure
            probes += [
                ("credentials.azure.token", "Microsoft Entra token for Azure Resource Manager",
                 lambda: _token_ok(self.azure_credential())),
                ("credentials.azure.network", f"Microsoft.Network/virtualNetworks/read in {az.resource_group}",
                 lambda: f"{len(list(self.network_client().virtual_networks.list(az.resource_group)))} vnets"),
                ("credentials.azure.app_gateways", f"Microsoft.Network/applicationGateways/read in {az.resource_group}",
                 lambda: f"{len(list(self.network_client().application_gateways.list(az.resource_group)))} gateways"),
                ("credentials.azure.mysql", f"Microsoft.DBforMySQL/flexibleServers/read in {az.resource_group}",
                 lambda: f"{len(list(self._mysql_client().servers.list_by_resource_group(az.resource_group)))} servers"),
                ("credentials.azure.storage_management", "Microsoft.Storage/storageAccounts/read",
                 lambda: str(self.storage_account().properties().get("name"))),
                ("credentials.azure.blob", "Blob: list containers",
                 lambda: f"{len(list(self.blob_service().list_containers()))} containers"),
            ]
        if self.target.failover_stack is not None:
            probes.append(("credentials.terraform", "terraform version", lambda: self.terraform().version()))
        out = []
        for check, api, call in probes:
            def run(check: str = check, api: str = api, call: Callable[[], str] = call) -> Verdict:
                try:
                    answer = call()
                except Exception as e:  # noqa: BLE001 — any failure of the call is this check's failed verdict, named
                    return Verdict(check, False, _error_code(e), "answers", sentence(check, f"{api} failed: {_describe(e)}"),
                                   data={"api": api})
                return Verdict(check, True, "answers", "answers", sentence(check, f"{api} answers: {answer}"), data={"api": api})

            out.append(self.measure(check, run))
        return out

    def _mysql_client(self) -> Any:
        """azure-mgmt-mysqlflexibleservers: the drill creates Azure MySQL's firewall rule through it."""
        from drivers.actions import azure_auth
        from drivers.mysql_firewall import make_mysql_client

        return make_mysql_client(azure_auth(self.target))

    # -- preflight -----------------------------------------------------------------------------------------
    def check_preflight(self) -> list[Verdict]:
        """One verdict per preflight check that applies to this target (drill/preflight.py): would the
        drill's plan work on the real clouds? A check with a finding fails, naming what and why."""
        from drill import preflight as core
        from steps import preflight

        facts = preflight.gather(self.target)
        out = []
        for check in core.applicable(self.target):
            def run(check: str = check) -> Verdict:
                found = [f for f in core.run(self.target, facts) if f.check == check]
                if found:
                    return Verdict(check, False, "finding", "no finding", found[0].detail,
                                   data={"phase": found[0].phase, "runbook_step": found[0].runbook_step})
                return Verdict(check, True, "no finding", "no finding", sentence(check, "no finding"))

            out.append(self.measure(check, run))
        return out

    # -- the record of drills ----------------------------------------------------------------------------------
    def check_last_passing_drill(self) -> Verdict:
        """Days since the last passing drill of this target (drill.history): stale beyond the target's
        `evidence.stale_after_days` (quarterly → 90), or with no passing drill on record. Only sealed
        bundles that verify count (and, when the target signs its evidence, whose signature verifies)."""
        check = "drills.last_passing"

        def run() -> Verdict:
            from drill import chain, history
            from drill.attestation import check as check_attestation
            from drill.attestation import signing_key

            t = history.Thresholds.from_config(self.target.evidence)
            key = signing_key(self.target.evidence)
            extra: dict[str, list[str]] = {}
            if key is not None:
                for s in chain.discover(self.evidence.root, self.target.name, check=False):
                    found = check_attestation(s.path, key.public_key()).problems
                    if found:
                        extra[s.run_id] = found
            runs = history.load(self.evidence.root, self.target.name, extra)
            st = history.staleness(runs, t)
            data = {"evidence": str(self.evidence.root), "runs_on_record": len(runs),
                    "edited_runs": [r.run_id for r in runs if not r.intact], "phases": list(t.passing_phases)}
            measured = None if st.days is None else round(st.days, 2)
            if st.last is not None:
                data["last_passing_run"] = st.last.run_id
            return Verdict(check, not st.stale, measured, t.stale_after_days, sentence(check, st.sentence()),
                           unit="days", data=data)

        return self.measure(check, run)

    # -- end of run ------------------------------------------------------------------------------------------
    def clean_up(self) -> list[str]:
        """Empty the scratch database again if this run restored into it; problems, if any."""
        if not self._scratch_used:
            return []
        from drivers import scratch

        try:
            scratch.empty(self.scratch_db())
            return []
        except Exception as e:  # noqa: BLE001 — a cleanup failure is reported in the summary, never raised over the verdicts
            return [self.evidence.mask(f"could not empty the scratch database: {_describe(e)}")]

    def summary(self, failed_tests: list[str], notes: list[str]) -> dict[str, Any]:
        finished = time.time()
        failed = [v.check for v in self.verdicts if not v.passed]
        return {
            "schema_version": READINESS_SCHEMA_VERSION,
            "kind": "readiness",
            "run_id": self.run_id,
            "target": self.target.name,
            "time_scale": self.target.time_scale,
            "operator": operator(),
            "started_at": iso(self.started),
            "finished_at": iso(finished),
            "duration_seconds": round(time.monotonic() - self._t0, 3),
            "git_revision": git_revision(),
            "harness_version": __version__,
            "verdict": overall(self.verdicts, failed_tests),
            "checks_passed": sum(v.passed for v in self.verdicts),
            "checks_failed": failed,
            "failed_tests": failed_tests,
            "notes": notes,
            "checks": [v.as_dict() for v in self.verdicts],
        }

    def finish(self, failed_tests: list[str]) -> dict[str, Any]:
        """Empty the scratch database, write the evidence; the summary (readiness.json's content)."""
        from drill.attestation import signing_key
        from drill.seal import seal_bundle

        notes = self.clean_up()
        summary = self.summary(failed_tests, notes)
        ev = self.evidence
        ev.write_json("readiness.json", summary)
        ev.write_text("readiness.md", render_markdown(summary, self.verdicts))
        ev.write_json("target.json", self.target.masked_dict())
        ev.write_json("environment.json", {
            "python": sys.version.split()[0], "platform": platform.platform(), "host": platform.node(),
            "operator": summary["operator"], "git_revision": summary["git_revision"], "harness_version": __version__,
        })
        seal_bundle(ev.path, signing_key(self.target.evidence))  # manifest, then the (signed) statement
        _point(ev.root, LATEST_LINK, self.run_id)
        return summary


def _point(root: Path, name: str, run_id: str) -> None:
    """`name` -> this run (relative symlink, replaced atomically); a plain file where links fail."""
    link, tmp = root / name, root / f".{name}-{run_id}"
    try:
        tmp.unlink(missing_ok=True)
        os.symlink(run_id, tmp)
        os.replace(tmp, link)
    except OSError:
        (root / f"{name.upper()}").write_text(run_id + "\n")


def _account_name(account_url: str) -> str:
    # Azure: https://ACCOUNT.blob.core.windows.net ; Azurite: http://127.0.0.1:PORT/ACCOUNT
    host = account_url.rstrip("/").split("://", 1)[1].split("/", 1)
    return host[1] if len(host) > 1 and host[1] else host[0].split(".", 1)[0]


def _opt(x: int | None) -> str:
    return "*" if x is None else str(x)


def _select_one(db: Any) -> str:
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
    finally:
        conn.close()
    return f"connected to {db!r}"


def _token_ok(credential: Any) -> str:
    token = credential.get_token("https://management.azure.com/.default")
    return f"token valid for {max(0, int(token.expires_on - time.time()))}s"


def _error_code(e: BaseException) -> str:
    """The API's own error code where there is one (AccessDenied, AuthorizationFailed, 1045, exit 1)."""
    code = error_code(e)
    if code:
        return code
    aad = re.search(r"AADSTS\d+", str(e))  # Entra's own error code (e.g. AADSTS7000215: invalid secret)
    if aad:
        return aad.group(0)
    err_code = getattr(getattr(e, "error", None), "code", None)
    if err_code:
        return str(err_code)
    status_code = getattr(e, "status_code", None)
    if status_code:
        return f"HTTP {status_code}"
    exit_code = getattr(e, "exit_code", None)
    if exit_code is not None:
        return f"exit {exit_code}"
    args = getattr(e, "args", ())
    if args and isinstance(args[0], int):
        return str(args[0])  # pymysql: (1045, "Access denied ...")
    return type(e).__name__


def _describe(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    first = next((line for line in text if line.strip()), "")
    first = first.split(" Trace ID:", 1)[0]  # Entra's per-request ids: noise in a verdict
    code = _error_code(e)
    head = type(e).__name__ if code == type(e).__name__ else f"{type(e).__name__} {code}"
    return f"{head}: {first[:300]}" if first else head
