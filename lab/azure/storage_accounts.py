"""Storage accounts and their lifecycle management policy (Microsoft.Storage) in the lab's ARM model."""
from __future__ import annotations

import copy
import time
from typing import Any

from lab.azure.arm_base import ArmBase, ArmError, _key

STORAGE_TYPE = "Microsoft.Storage/storageAccounts"
POLICY_TYPE = "Microsoft.Storage/storageAccounts/managementPolicies"


class StorageAccounts(ArmBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._storage: dict[tuple[str, str], dict[str, Any]] = {}  # storage accounts
        self._policies: dict[tuple[str, str], dict[str, Any]] = {}  # account -> managementPolicies/default

    def storage_account_id(self, rg: str, name: str) -> str:
        return f"{self.rg_id(rg)}/providers/{STORAGE_TYPE}/{name}"

    def create_storage_account(
        self, rg: str, name: str, location: str | None = None, kind: str = "StorageV2", sku: str = "Standard_LRS",
    ) -> dict[str, Any]:
        """A storage account as ARM's GET shows it (provisioned at once; endpoints as Azure names them)."""
        with self._lock:
            rg = self._require_rg(rg)
            acct = {
                "id": self.storage_account_id(rg, name), "name": name, "type": STORAGE_TYPE,
                "location": location or self.location, "kind": kind, "tags": {},
                "sku": {"name": sku, "tier": sku.split("_", 1)[0]},
                "properties": {
                    "provisioningState": "Succeeded", "statusOfPrimary": "available", "accessTier": "Hot",
                    "creationTime": time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime()),
                    "primaryEndpoints": {
                        "blob": f"https://{name}.blob.core.windows.net/", "web": f"https://{name}.z12.web.core.windows.net/",
                    },
                    "supportsHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False,
                },
            }
            self._storage[_key(rg, name)] = acct
            return copy.deepcopy(acct)

    def get_storage_account(self, rg: str, name: str) -> dict[str, Any]:
        with self._lock:
            rg = self._require_rg(rg)
            acct = self._storage.get(_key(rg, name))
            if acct is None:
                raise self._not_found(STORAGE_TYPE, name, rg)
            return copy.deepcopy(acct)

    def put_management_policy(self, rg: str, account: str, body: dict[str, Any]) -> dict[str, Any]:
        """managementPolicies/default: the account's lifecycle rules (`properties.policy.rules`)."""
        with self._lock:
            acct = self.get_storage_account(rg, account)
            policy = ((body or {}).get("properties") or {}).get("policy")
            if not isinstance(policy, dict) or not isinstance(policy.get("rules"), list) or not policy["rules"]:
                raise ArmError(400, "InvalidManagementPolicyRules", "ManagementPolicy rules must be a non-empty array.")
            res = {
                "id": f"{acct['id']}/managementPolicies/default", "name": "DefaultManagementPolicy", "type": POLICY_TYPE,
                "properties": {
                    "lastModifiedTime": time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime()),
                    "policy": copy.deepcopy(policy),
                },
            }
            self._policies[_key(rg, account)] = res
            self._record("management policy put", account=account, rules=len(policy["rules"]))
            return copy.deepcopy(res)

    def get_management_policy(self, rg: str, account: str) -> dict[str, Any]:
        with self._lock:
            self.get_storage_account(rg, account)
            res = self._policies.get(_key(rg, account))
            if res is None:  # what Azure answers for an account without lifecycle rules
                raise ArmError(404, "ManagementPolicyNotFound", f"No ManagementPolicy found for account {account}")
            return copy.deepcopy(res)

    def delete_management_policy(self, rg: str, account: str) -> bool:
        with self._lock:
            self.get_storage_account(rg, account)
            gone = self._policies.pop(_key(rg, account), None) is not None
            if gone:
                self._record("management policy deleted", account=account)
            return gone


# -- seeds ------------------------------------------------------------------------------------------
def lifecycle_rule(container: str, prefix: str = "backups/", days: int = 30, name: str = "delete-old-backups") -> dict[str, Any]:
    """A lifecycle rule deleting block blobs under container/prefix `days` after their last modification."""
    return {
        "enabled": True, "name": name, "type": "Lifecycle",
        "definition": {
            "filters": {"blobTypes": ["blockBlob"], "prefixMatch": [f"{container}/{prefix}"]},
            "actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": days}}},
        },
    }


def seed_storage_account(
    state: StorageAccounts, rg: str = "rg-blue", name: str = "bloberry01", backup_container: str = "mysql-backups",
    retention_days: int = 30,
) -> dict[str, Any]:
    """bloberry01 as the 1-always stack has it, with the design's 30-day lifecycle rule for the backups."""
    if state.get_resource_group(rg) is None:
        state.create_resource_group(rg)
    acct = state.create_storage_account(rg, name)
    state.put_management_policy(rg, name, {"properties": {"policy": {"rules": [
        lifecycle_rule(backup_container, "backups/", retention_days),
    ]}}})
    return acct
