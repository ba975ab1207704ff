"""EKS in the lab: node group scaling is validated and busy while nodes come and go, as on AWS.

moto accepts any scaling config and is ACTIVE at once. AWS rejects min > desired > max and refuses
another update while the node group is UPDATING; the lab's web tier marks a node group busy until
its nodes have converged on desiredSize.
"""
from __future__ import annotations

import threading
from typing import Any

from moto.eks import models as eks_models
from moto.eks.exceptions import InvalidParameterException, ResourceInUseException

_busy: set[tuple[str, str]] = set()
# Node groups whose nodes a lab tier runs (it reports through set_busy). Any other node group has
# no emulated nodes to wait for: it converges at once and stays ACTIVE, as plain moto does.
_managed: set[tuple[str, str]] = set()
_lock = threading.Lock()
_installed = False


def set_busy(cluster: str, nodegroup: str, busy: bool) -> None:
    with _lock:
        _managed.add((cluster, nodegroup))
        (_busy.add if busy else _busy.discard)((cluster, nodegroup))


def is_managed(cluster: str, nodegroup: str) -> bool:
    with _lock:
        return (cluster, nodegroup) in _managed


def is_busy(cluster: str, nodegroup: str) -> bool:
    with _lock:
        return (cluster, nodegroup) in _busy


def validate_scaling(current: dict[str, int], change: dict[str, int]) -> None:
    merged = {**current, **change}
    lo, want, hi = merged.get("minSize", 0), merged.get("desiredSize", 0), merged.get("maxSize", 1)
    if hi < 1:
        raise InvalidParameterException(message="Maxsize must be greater than or equal to 1")
    if not (0 <= lo <= want <= hi):
        raise InvalidParameterException(
            message=f"Minimum capacity {lo} can't be greater than desired size {want}"
            if lo > want
            else f"Desired capacity {want} can't be greater than max size {hi}"
        )


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    orig_update = eks_models.EKSBackend.update_nodegroup_config

    def update_nodegroup_config(self: Any, cluster_name: str, nodegroup_name: str, *args: Any, **kwargs: Any) -> Any:
        cluster = self.clusters.get(cluster_name)
        nodegroup = cluster.nodegroups.get(nodegroup_name) if cluster else None
        scaling = kwargs.get("scaling_config")
        if nodegroup is not None:
            if is_busy(cluster_name, nodegroup_name):
                raise ResourceInUseException(
                    clusterName=cluster_name,
                    nodegroupName=nodegroup_name,
                    fargateProfileName=None,
                    addonName=None,
                    message=f"Nodegroup {nodegroup_name} cannot be updated as it is currently not in Active State",
                )
            if scaling:
                validate_scaling(nodegroup.scaling_config, scaling)
        result = orig_update(self, cluster_name, nodegroup_name, *args, **kwargs)
        if nodegroup is not None and scaling and is_managed(cluster_name, nodegroup_name):
            # The web tier flips it back to ACTIVE once nodes have converged.
            nodegroup.status = "UPDATING"
            set_busy(cluster_name, nodegroup_name, True)
            result["status"] = "InProgress"
        return result

    eks_models.EKSBackend.update_nodegroup_config = update_nodegroup_config  # type: ignore[method-assign]
