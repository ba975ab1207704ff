@drill @phase2
Feature: Phase 2 — a long outage: PetClinic is brought up on Azure from the latest backup
  When the AWS outage lasts, the operators provision the Azure failover stack, restore the newest
  backup that had completed before the fault (the AWS side, its backup job included, is lost at the
  fault) into Azure MySQL while AKS and the App Gateway come up, deploy PetClinic on AKS, point the
  App Gateway at it and switch CloudFront's secondary origin to the App Gateway. Users go from the
  maintenance page to PetClinic served from Azure.
  (Runbook: dr-failover-test-guide.md, Phase 2, steps 2.1–2.7; design: Stages 2 and 3.)

  Scenario: Fail over to Azure and serve PetClinic from the newest backup
    Given the site serves the maintenance page after Phase 1
    And the newest backup completed before the fault is on the backup schedule
    When the data tier of the Azure failover stack is provisioned
    And the newest backup is restored into Azure MySQL while the rest of the stack is provisioned
    Then owners written before the backup are found in Azure MySQL
    And Azure MySQL holds the restored data within the data-restore RTO
    And the team was alerted of the web tier's failure: each alarm it set off fired and was notified within the detection objective
    When PetClinic is deployed on AKS
    # The header first: that gateway update runs while Azure still makes the internal load balancer
    # the backend update waits for (one gateway update off the critical path).
    And the App Gateway marks its responses as served from Azure
    And the App Gateway's backend pool is pointed at the PetClinic service
    Then the App Gateway serves PetClinic from Azure
    When CloudFront's secondary origin is switched to the App Gateway
    And the CloudFront change is deployed and the cache invalidated
    Then the site serves PetClinic from Azure within the full-service RTO
    And the measured RPO is within target
