@drill @phase2
Feature: Phase 2 — the VM DR site: Azure MySQL from the newest daily snapshot, the VM started, dr. serves PetClinic
  The "VM DR" option: the standby Azure VM (Standard_B2s, nginx → Tomcat) is deallocated, and Azure
  MySQL holds whatever was last restored. The operators start the VM, restore the newest daily
  snapshot dump (RDS snapshot copied to Blob at 03:00 KST) into Azure MySQL while it boots, and send
  users to dr.goupang.shop. Users of www keep getting the maintenance page: www's secondary is the
  Blob page, not the VM. The RTO runs from the start to users getting PetClinic, on the restored data,
  at the DR site: the VM's start and boot and the restore overlap, the longer of the two counts.
  (service-inventory.md: "DR Option 2: Azure VM", RTO 2 min (manual start), RPO 24 h.)

  Scenario: Bring up the VM DR site from the newest snapshot
    Given users get the maintenance page after Phase 1
    And the newest snapshot dump in Blob Storage is younger than the snapshot RPO
    When the DR VM is started
    And the newest snapshot dump is restored into Azure MySQL while the VM boots
    Then the DR VM's power state is running
    And the DR site serves PetClinic from Azure, on the restored data, within the VM DR site RTO
    And the measured RPO of the daily snapshot is within target
    And a user signed in on AWS is not signed in on the DR site
