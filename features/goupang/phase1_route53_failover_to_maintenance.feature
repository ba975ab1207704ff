@drill @phase1
Feature: Phase 1 — the AWS primary fails and Route 53 sends users to the maintenance page
  www.goupang.shop is two Route 53 failover records: PRIMARY an alias to the ALB with a health check
  (/actuator/health every 30 s, unhealthy after 3 failures), SECONDARY an alias to CloudFront in
  front of the Azure Blob maintenance page. When every node of the AWS web node group is gone, the
  health checkers see the ALB fail, Route 53 starts answering with the secondary, and each user's
  resolver keeps the old answer until its 60-second TTL runs out. The RTO is the sum of the two.
  (service-inventory.md: "Failover 시나리오", RTO ~3 min: 90 s detection + 60 s TTL + …)

  Scenario: The web node group is scaled to zero and Route 53 fails over to the maintenance page
    Given PetClinic is served from AWS
    And the ALB reports healthy targets
    And Route 53's health check of the primary is healthy and the site's name answers with the primary
    When the AWS web node group is scaled to 0 nodes
    Then the web node group settles at 0 nodes
    And Route 53's health check of the primary goes unhealthy
    And Route 53 answers the site's name with the secondary, the maintenance page's distribution
    And users get the maintenance page within the maintenance RTO, detection and DNS TTL broken out
    And the web node group's original size is held in the rollback ledger
