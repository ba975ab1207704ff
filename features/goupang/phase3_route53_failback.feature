@drill @phase3
Feature: Phase 3 — AWS recovers: Route 53 fails back by itself, the DR VM is deallocated again
  Once the web tier is back and the ALB's targets are healthy, the health checkers see the primary
  healthy again and Route 53 answers with it by itself: no record changes. Users return to AWS as
  their resolvers' cached answers expire. The operators deallocate the VM (standby again).

  Scenario: Fail back to AWS through Route 53 and deallocate the DR VM
    Given users get the maintenance page and the DR site serves PetClinic after Phase 2
    When the AWS web node group is restored to its original size
    Then the ALB reports healthy targets
    And Route 53's health check of the primary is healthy again and the site's name answers with the primary
    And users get PetClinic from AWS again within the failback RTO
    When the DR VM is deallocated
    Then the DR VM's power state is deallocated
    And the evidence says whether a signed-in user's session survived each phase
