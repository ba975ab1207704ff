@readiness
Feature: DR readiness of the goupang system — is the VM DR site's data recent, and is the plan tested?
  Read-only checks, safe to run every day: nothing on the target changes. The VM DR site restores
  the newest daily snapshot dump (RDS snapshot → S3 → AzCopy to Blob at 03:00 KST), so its RPO is
  the snapshot's age: the newest dump must be younger than the target's RPO (24 h, the seeds' claim),
  and a dump must arrive every day; the preflight checks of the drill's plan pass. Each verdict goes to Allure and to
  reports/evidence/<run-id>/readiness.json and readiness.md; one failed check fails the run.

  Scenario: Snapshot — the newest daily snapshot dump is younger than the RPO
    The RPO is measured from the dump's start; while the next dump is copied, the newest one may be
    older than the RPO by `backup_in_flight_seconds`.
    Given the backups in the backup container
    Then the newest backup is younger than the RPO, allowing for a backup in flight

  Scenario: Snapshot — a dump arrives every day
    Given the backups in the backup container
    Then no two backups in the schedule window are further apart than the tolerated multiple of the backup interval

  Scenario: Preflight — the drill's plan would work on the real clouds
    Named checks of what Route 53 and Azure would refuse or silently ignore (drill/preflight_goupang.py):
    a PRIMARY record Route 53 never fails over, a health check that does not ask what users get, a
    TTL the maintenance RTO cannot absorb, a DR VM that is missing or not on standby. The same checks
    run in a dry run, and before a real drill's first change.
    Then no preflight check finds what the real clouds would refuse in the drill's plan

  Scenario: Drills — the last passing drill is recent enough
    Then a drill covering every phase passed within the staleness limit
