@drill @phase1
Feature: Phase 1 — the AWS web tier fails and users see the maintenance page
  When every node of the AWS web node group is gone, the ALB has no healthy target and answers
  5xx; CloudFront's origin group then fails over, request by request, to the Azure Blob static
  site, so users see the maintenance page instead of an error. The team must hear of it: the
  design's CloudWatch alarms fire and their notifications reach the team's chat (watched from the
  fault on, judged in Phase 2 — or at the end of a Phase-1-only run — so that waiting for them never
  delays the failover).
  (Runbook: dr-failover-test-guide.md, Phase 1, steps 1.1–1.5.)

  Scenario: The web node group is scaled to zero and CloudFront fails over to the maintenance page
    Given PetClinic is served from AWS
    And the ALB reports healthy targets
    And CloudFront's origin group fails over from "primary-aws" to "secondary-azure" on 500, 502, 503 and 504
    When the AWS web node group is scaled to 0 nodes
    Then the web node group settles at 0 nodes
    And the ALB reports no healthy targets
    And the site serves the maintenance page within the maintenance RTO
    And the team's alarms are watched from the fault on: each alarm the web tier's failure must set off exists and notifies the team
    And the web node group's original size is held in the rollback ledger
