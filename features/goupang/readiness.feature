@readiness
Feature: DR readiness of the goupang system — is the VM DR site's data recent, and is the plan tested?
  Read-only checks, safe to run every day: nothing on the target changes. The VM DR site restores
  the newest daily snapshot dump (RDS snapshot → S3 → AzCopy to Blob at 03:00 KST), so its RPO is
  the snapshot's age: the newest dump must be younger than the target's RPO (24 h, the seeds' claim),
  and a dump must arrive every day. Each verdict goes to Allure and to
  reports/evidence/<run-id>/readiness.json and readiness.md; one failed check fails the run.

  Scenario: Snapshot — the newest daily snapshot dump is younger than the RPO
    The RPO is measured from the dump's start; while the next dump is copied, the newest one may be
    older than the RPO by `backup_in_flight_seconds`.
    Given the backups in the backup container
    Then the newest backup is younger than the RPO, allowing for a backup in flight

  Scenario: Snapshot — a dump arrives every day
    Given the backups in the backup container
    Then no two backups in the schedule window are further apart than the tolerated multiple of the backup interval

  Scenario: Drills — the last passing drill is recent enough
    Then a drill covering every phase passed within the staleness limit
