@drill @phase3
Feature: Phase 3 — AWS recovers: traffic returns to AWS, the origin goes back to Blob, Azure is torn down
  When the AWS web tier is back, CloudFront serves every request from the primary again. The
  operators then point the secondary origin back at the Blob maintenance site and destroy the
  Azure failover stack, and the system must be exactly as it was before the drill — the team's
  alarms back to OK included.
  (Runbook: dr-failover-test-guide.md, Phase 3, steps 3.1–3.8.)

  Scenario: Fail back to AWS and remove the Azure failover stack
    Given PetClinic is served from Azure after Phase 2
    When the AWS web node group is restored to its original size
    Then the ALB reports healthy targets
    And the site serves PetClinic from AWS again within the failback RTO
    When CloudFront's secondary origin is reverted to the Blob maintenance site and the Azure failover stack destroyed
    Then CloudFront's secondary origin is the Blob maintenance site again
    And no Azure failover resource remains
    And data written on Azure during the outage is reported as lost on failback
    And the team's alarms are back to OK within the clear objective after failback
