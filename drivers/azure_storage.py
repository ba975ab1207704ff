"""Azure Storage for readiness: the account and its lifecycle policy (azure-mgmt-storage), containers (Blob).

Read-only: `get_properties` of the account, `management_policies.get` of its one policy (named
`default`), and a list of the containers. The management client is built like drivers.azure_network's
(the same credential, ARM endpoint and CA bundle), so the lab's ARM emulator is reached unchanged.
"""
from __future__ import annotations

from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.storage import StorageManagementClient
from azure.storage.blob import BlobServiceClient

from drivers.azure_network import make_credential


def make_storage_client(cfg: Any, credential: TokenCredential | None = None) -> StorageManagementClient:
    """StorageManagementClient for `cfg.subscription_id` (an AzureAuth-shaped object), against its ARM URL."""
    kw: dict[str, Any] = {}
    if getattr(cfg, "ca_bundle", None):
        kw["connection_verify"] = str(cfg.ca_bundle)
    return StorageManagementClient(
        credential or make_credential(cfg), cfg.subscription_id,
        base_url=getattr(cfg, "resource_manager_url", None) or "https://management.azure.com", **kw,
    )


class StorageAccount:
    """One storage account as ARM sees it."""

    def __init__(self, client: StorageManagementClient, resource_group: str, name: str) -> None:
        self.client = client
        self.resource_group = resource_group
        self.name = name

    def __repr__(self) -> str:
        return f"StorageAccount({self.resource_group}/{self.name})"

    def properties(self) -> dict[str, Any]:
        """The account resource in ARM's JSON shape (raises ResourceNotFoundError if it is gone)."""
        acct = self.client.storage_accounts.get_properties(self.resource_group, self.name)
        return dict(acct.as_dict())  # the REST JSON shape (these models are mappings over it)

    def management_policy(self) -> dict[str, Any] | None:
        """The lifecycle management policy in ARM's JSON shape; None when the account has none."""
        try:
            policy = self.client.management_policies.get(self.resource_group, self.name, "default")
        except ResourceNotFoundError:
            return None
        except HttpResponseError as e:  # ManagementPolicyNotFound arrives as a plain 404 on some API versions
            if e.status_code == 404 and _code(e) in (None, "ManagementPolicyNotFound", "ResourceNotFound"):
                return None
            raise
        return dict(policy.as_dict())


def container_names(service: BlobServiceClient) -> list[str]:
    """Every container of the account (data plane; needs list permission on the account)."""
    return sorted(c.name for c in service.list_containers())


def _code(e: HttpResponseError) -> str | None:
    err = getattr(e, "error", None)
    return getattr(err, "code", None) if err is not None else None
