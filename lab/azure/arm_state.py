"""Azure Resource Manager state for the lab: one subscription's resources, a module per resource
family, composed here. No HTTP here (arm_server.py is the surface), so the lab can also seed and
inspect resources in-process.

  arm_base.py          errors, ids, resource groups, long-running operations
  networks.py          virtual networks and subnets
  storage_accounts.py  storage accounts and their lifecycle management policy
  app_gateways.py      application gateways, their validation and backend health
  mysql_flexible.py    Azure Database for MySQL flexible servers and their firewall rules

A new family is a mixin of `ArmBase` in its own module, added to `ArmState`'s bases (and its
routes to arm_server.py's provider table).
"""
from __future__ import annotations

from lab.azure.app_gateways import GW_COLLECTIONS, GW_TYPE, AppGateways, HealthFn, seed_app_gateway
from lab.azure.arm_base import (
    DEFAULT_LOCATION,
    DEFAULT_SUBSCRIPTION_ID,
    NETWORK,
    NOT_FOUND_HINT,
    ArmError,
    ArmTimings,
    Operation,
)
from lab.azure.mysql_flexible import MysqlFlexibleServers
from lab.azure.networks import VNET_TYPE, seed_virtual_network
from lab.azure.storage_accounts import POLICY_TYPE, STORAGE_TYPE, StorageAccounts, lifecycle_rule, seed_storage_account


class ArmState(AppGateways, StorageAccounts, MysqlFlexibleServers):
    """All ARM resources of one subscription. Thread-safe; timings are real-world seconds / time_scale."""


__all__ = [
    "DEFAULT_LOCATION",
    "DEFAULT_SUBSCRIPTION_ID",
    "GW_COLLECTIONS",
    "GW_TYPE",
    "NETWORK",
    "NOT_FOUND_HINT",
    "POLICY_TYPE",
    "STORAGE_TYPE",
    "VNET_TYPE",
    "ArmError",
    "ArmState",
    "ArmTimings",
    "HealthFn",
    "Operation",
    "lifecycle_rule",
    "seed_app_gateway",
    "seed_storage_account",
    "seed_virtual_network",
]
