"""Carry out a ledger Action (an inverse, usually) against a target: the unwind executor.

Inverses are data so that `drill unwind` can replay them from the persisted ledger in a fresh
process; this module maps each operation name to the driver call that performs it.
"""
from __future__ import annotations

from typing import Callable

from drill.config import Target
from drill.ledger import Action
from drivers.aws import Aws, NodeGroups, Scaling


def executor(target: Target, busy_timeout: float = 600.0) -> Callable[[Action], None]:
    aws = Aws(target.aws)

    def eks_set_scaling(p: dict) -> None:
        NodeGroups(aws).apply_scaling(p["cluster"], p["nodegroup"], Scaling.from_api(p["scaling"]), busy_timeout)

    ops: dict[str, Callable[[dict], None]] = {"aws.eks.set_scaling": eks_set_scaling}

    def execute(action: Action) -> None:
        try:
            op = ops[action.op]
        except KeyError:
            raise ValueError(f"no executor for operation {action.op!r}") from None
        op(action.params)

    return execute
