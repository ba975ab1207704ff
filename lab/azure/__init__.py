"""The lab's Azure control plane: an Azure Resource Manager emulator (state model + HTTPS surface,
split like moto) that is also the Entra ID token authority, and the Application Gateway data plane.

No ARM emulator exists (lab-facts), so this one is pinned against the real azure-mgmt-network and
azure-identity clients in tests/lab/test_arm_emulator.py.
"""
from __future__ import annotations

from lab.azure.arm_state import ArmError, ArmState, ArmTimings, seed_app_gateway, seed_virtual_network

__all__ = ["ArmError", "ArmState", "ArmTimings", "seed_app_gateway", "seed_virtual_network"]
