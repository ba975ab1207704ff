@readiness
Feature: DR readiness — is disaster recovery actually ready today?
  Read-only checks, safe to run every day against production: each scenario measures one thing the
  runbook (dr-failover-test-guide.md) relies on and compares it with its threshold from the target's
  `readiness:` section and objectives. Nothing on the target changes: no node group, distribution,
  container or network is touched. The only writes go into a scratch database, which the restore
  check empties, fills from the newest backup and empties again (it refuses to use the primary).
  Every check leaves a verdict — check, passed, measured, threshold, detail — in Allure and in
  reports/evidence/<run-id>/readiness.json and readiness.md; one failed check fails the run.

  Scenario: Backups — the newest backup is younger than the RPO
    The RPO is measured from the dump's start; while the next backup dumps and uploads, the newest
    one may be older than the RPO by `backup_in_flight_seconds`.
    Given the backups in the backup container
    Then the newest backup is younger than the RPO, allowing for a backup in flight

  Scenario: Backups — backups arrive on schedule
    Given the backups in the backup container
    Then no two backups in the schedule window are further apart than the tolerated multiple of the backup interval

  Scenario: Backups — the newest backup restores into a scratch database and matches the primary
    The reference tables (vets, specialties, vet_specialties, types) are never written, so they must
    equal the primary's exactly. Owners, pets and visits only grow (PetClinic deletes nothing): the
    primary may have more rows than the backup, never fewer.
    Given the backups in the backup container
    When the newest backup is restored into the emptied scratch database
    Then every PetClinic table is present in the restored database
    And the restored reference tables match the primary exactly
    And the restored append-only tables hold no more rows than the primary

  Scenario: Backups — old backups expire by the storage account's lifecycle policy
    Then the storage account's lifecycle policy deletes backups after the designed number of days

  Scenario: CDN — CloudFront's origin group fails over on the expected status codes
    Then CloudFront's origin group fails over from the primary to the secondary origin on the expected status codes

  Scenario: CDN — the secondary origin is the Blob maintenance site
    Then the secondary origin is the Blob maintenance site

  Scenario: CDN — the maintenance page answers when fetched directly
    Then the maintenance page answers 200 with the maintenance text when fetched directly

  Scenario: AWS primary — every node group is at its expected size
    Then every EKS node group is active at its expected size

  Scenario: AWS primary — the ALB has healthy targets
    Then the ALB has at least the expected number of healthy targets

  Scenario: AWS primary — the team's alarms would tell them of an outage
    The design's CloudWatch alarms (and the drill's stop-condition alarms) must exist, have an ALARM
    action (SNS → the team's chat) with actions enabled, and be OK: one already in ALARM tells no one
    about the next outage, and a drill guarded by it refuses to start.
    Then every DR-relevant alarm exists, notifies on ALARM and is OK

  Scenario: AWS primary — users get PetClinic through CloudFront
    Then the site serves PetClinic from AWS through CloudFront

  Scenario: Azure always-on — the storage account exists
    Then the storage account exists in the resource group

  Scenario: Azure always-on — the maintenance and backup containers exist
    Then the storage account has the maintenance and backup containers

  Scenario: Azure always-on — the network the failover stack deploys into
    Then the virtual network has every subnet the failover stack needs

  Scenario: Azure always-on — the failover stack's plan is clean
    The failover stack is normally destroyed, so `terraform plan` is expected to propose creating it.
    Clean means: the plan succeeds and proposes nothing but creations (or no changes at all, while
    the stack is up); an update, a replacement or a destroy is drift in something that exists.
    Checked on every target, the lab's terraform-compatible shim included.
    Then terraform plan of the failover stack proposes nothing but creations

  Scenario: Credentials — every API the drill uses answers a read-only call
    One probe per API: AWS STS, EKS, ELBv2, CloudFront, Secrets Manager and the primary database;
    the Entra token, ARM networks, App Gateways and storage accounts, the Blob service; Terraform.
    Then every API the drill uses answers a read-only call with the drill's credentials

  Scenario: Preflight — the drill's plan would work on the real clouds
    Named checks of what the real clouds refuse and the lab must refuse too (drill/preflight.py): e.g.
    an IP address as CloudFront's origin, an App Gateway backend its subnet cannot reach, a database
    client without a TLS CA, no way to get credentials for a cluster the drill creates. The same
    checks run in a dry run, and before a real drill's first change.
    Then no preflight check finds what the real clouds would refuse in the drill's plan

  Scenario: Drills — the last passing drill is recent enough
    An untested DR plan is not a plan: a drill that ran every phase (evidence.passing_phases) must
    have passed within `evidence.stale_after_days` calendar days (quarterly drills: 90). Read from the
    sealed bundles in the evidence directory; an edited bundle (or, where the target signs its
    evidence, one whose signature does not verify) does not count.
    Then a drill covering every phase passed within the staleness limit
