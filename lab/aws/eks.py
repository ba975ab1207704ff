"""EKS managed node group updates in the lab, as the EKS API documents them.

moto accepts any scaling config, applies it at once, answers UpdateNodegroupConfig with an update
already `Successful` and has no DescribeUpdate (404). AWS (EKS API Reference):
- UpdateNodegroupConfig: "Your node group continues to function during the update. The response
  output includes an update ID that you can use to track the status of your node group update with
  the DescribeUpdate API operation." A scaling config with min > desired or desired > max is refused
  (InvalidParameterException); so is a second update while one is in progress
  (ResourceInUseException: the node group is UPDATING, "not in Active State").
- DescribeUpdate: status `InProgress` | `Successful` | `Failed` | `Cancelled`; "When the status of
  the update is Successful, the update is complete. If an update fails, the status is Failed, and
  an error detail explains the reason for the failure."
- NodegroupScalingConfig.desiredSize: "Whenever this parameter changes, the number of worker nodes
  in the node group is updated to the specified size … the necessary number of worker nodes are
  terminated"; and a Cluster Autoscaler alters desiredSize itself.
What the update's completion means for the nodes is not documented: EKS's part is the node group's
Auto Scaling group (its min/max/desired); the instances come and go after that, each terminated
node drained first (lab.web_tier). So here an update is InProgress for the modeled processing time,
the node group UPDATING; then the Auto Scaling group gets the new sizes, the update turns
Successful and the node group ACTIVE — while nodes may still be draining or booting. A drill that
takes `Successful` or `ACTIVE` for "the nodes are gone" is wrong here, as it would be on AWS.

For a node group whose nodes a lab tier runs (`manage`), its Auto Scaling group only records a new
desired capacity (from EKS or a SetDesiredCapacity call, as a Cluster Autoscaler makes) and the tier
converges the instances; EKS then reports that capacity as the node group's desiredSize. Any other
node group's group converges at once, as plain moto does.
"""
from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any

from moto.autoscaling import models as asg_models
from moto.eks import models as eks_models
from moto.eks import responses as eks_responses
from moto.eks import urls as eks_urls
from moto.eks.exceptions import InvalidParameterException, ResourceInUseException, ResourceNotFoundException

from lab.events import EventLog

SCALING_PARAMS = (("minSize", "MinSize"), ("maxSize", "MaxSize"), ("desiredSize", "DesiredSize"))


@dataclass
class _Settings:
    update_seconds: float = 1.0
    events: EventLog | None = None


_settings = _Settings()
_lock = threading.RLock()
# update id -> (cluster, node group, the update as DescribeUpdate returns it)
_updates: dict[str, tuple[str, str, dict[str, Any]]] = {}
# Auto Scaling groups whose instances a lab tier runs (by name).
_managed: set[str] = set()
_installed = False


def manage(auto_scaling_group: Any) -> None:
    """A lab tier runs this group's instances: the group records a new capacity, the tier converges."""
    with _lock:
        _managed.add(auto_scaling_group.name)


def in_progress(cluster: str, nodegroup: str) -> bool:
    with _lock:
        return any(c == cluster and n == nodegroup and u["status"] == "InProgress" for c, n, u in _updates.values())


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


def auto_scaling_group(nodegroup: Any) -> Any | None:
    """The node group's Auto Scaling group in moto, by the name the node group's resources give."""
    from moto.backends import get_backend

    names = [g["name"] for g in (nodegroup.resources or {}).get("autoScalingGroups") or []]
    account, region = nodegroup.arn.split(":")[4], nodegroup.region
    groups = get_backend("autoscaling")[account][region].autoscaling_groups
    return next((groups[n] for n in names if n in groups), None)


def _nodegroup_of(group: Any) -> Any | None:
    """The EKS node group whose `resources` name this Auto Scaling group, if any."""
    from moto.backends import get_backend

    try:
        backend = get_backend("eks")[group.account_id][group.region]
    except KeyError:
        return None
    for cluster in list(backend.clusters.values()):
        for ng in list(cluster.nodegroups.values()):
            resources: Any = ng.resources or {}  # a dict at run time, whatever moto's annotation says
            if any(g.get("name") == group.name for g in resources.get("autoScalingGroups") or []):
                return ng
    return None


def _finish(update_id: str) -> None:
    """EKS has applied the update: the Auto Scaling group has the new sizes; the update is Successful."""
    with _lock:
        _cluster, ng_name, update = _updates[update_id]
        nodegroup, scaling = update.pop("_apply")
        try:
            if scaling:
                group = auto_scaling_group(nodegroup)
                if group is not None:
                    group.min_size, group.max_size = nodegroup.scaling_config["minSize"], nodegroup.scaling_config["maxSize"]
                    group.set_desired_capacity(nodegroup.scaling_config["desiredSize"])
            update["status"] = "Successful"
        except Exception as e:  # noqa: BLE001 — the update fails, saying why, as DescribeUpdate's errors do
            update["status"] = "Failed"
            update["errors"] = [{"errorCode": "Unknown", "errorMessage": repr(e), "resourceIds": [ng_name]}]
        nodegroup.status = "ACTIVE"
    if _settings.events is not None:
        _settings.events.record("eks", f"nodegroup update {update['status'].lower()}", nodegroup=ng_name, update=update_id)


def install(update_seconds: float, events: EventLog | None = None) -> None:
    """Patch moto's EKS (and the node groups' Auto Scaling groups) in this process. Idempotent."""
    global _installed
    with _lock:
        _settings.update_seconds, _settings.events = update_seconds, events
        if _installed:
            return
        _installed = True
    orig_update = eks_models.EKSBackend.update_nodegroup_config

    def update_nodegroup_config(self: Any, cluster_name: str, nodegroup_name: str, *args: Any, **kwargs: Any) -> Any:
        cluster = self.clusters.get(cluster_name)
        nodegroup = cluster.nodegroups.get(nodegroup_name) if cluster else None
        scaling = kwargs.get("scaling_config")
        with _lock:
            if nodegroup is not None:
                if in_progress(cluster_name, nodegroup_name):
                    raise ResourceInUseException(
                        clusterName=cluster_name, nodegroupName=nodegroup_name, fargateProfileName=None, addonName=None,
                        message=f"Nodegroup {nodegroup_name} cannot be updated as it is currently not in Active State",
                    )
                if scaling:
                    validate_scaling(nodegroup.scaling_config, scaling)
            result = orig_update(self, cluster_name, nodegroup_name, *args, **kwargs)
            assert nodegroup is not None  # moto's update raised ResourceNotFoundException otherwise
            if scaling:
                # The update's parameters as EKS lists them: one per scaling field given.
                others = [p for p in result["params"] if p["type"] != "ScalingConfig"]
                result["params"] = [{"type": t, "value": str(scaling[k])} for k, t in SCALING_PARAMS if k in scaling] + others
            result["status"] = "InProgress"
            nodegroup.status = "UPDATING"
            _updates[result["id"]] = (cluster_name, nodegroup_name, {**result, "_apply": (nodegroup, bool(scaling))})
        timer = threading.Timer(_settings.update_seconds, _finish, args=(result["id"],))
        timer.daemon = True
        timer.start()
        return copy.deepcopy(result)

    eks_models.EKSBackend.update_nodegroup_config = update_nodegroup_config  # type: ignore[method-assign]  # patches moto

    def describe_update(self: Any, name: str, update_id: str, nodegroup_name: str | None) -> dict[str, Any]:
        if name not in self.clusters:
            raise ResourceNotFoundException(clusterName=name, nodegroupName=None, fargateProfileName=None,
                                            addonName=None, message=f"No cluster found for name: {name}.")
        with _lock:
            found = _updates.get(update_id)
            if found is None or found[0] != name or found[1] != nodegroup_name:
                raise ResourceNotFoundException(clusterName=name, nodegroupName=nodegroup_name, fargateProfileName=None,
                                                addonName=None, message=f"No update found for ID: {update_id}.")
            return {k: copy.deepcopy(v) for k, v in found[2].items() if not k.startswith("_")}

    def list_updates(self: Any, name: str, nodegroup_name: str | None) -> list[str]:
        if name not in self.clusters:
            raise ResourceNotFoundException(clusterName=name, nodegroupName=None, fargateProfileName=None,
                                            addonName=None, message=f"No cluster found for name: {name}.")
        with _lock:
            return [uid for uid, (c, n, _) in _updates.items() if c == name and n == nodegroup_name]

    eks_models.EKSBackend.describe_update = describe_update  # type: ignore[attr-defined]  # patches moto
    eks_models.EKSBackend.list_updates = list_updates  # type: ignore[attr-defined]  # patches moto

    def r_describe_update(self: Any) -> Any:
        update = self.eks_backend.describe_update(
            self._get_param("name"), self._get_param("updateId"), self._get_param("nodegroupName"))
        return eks_responses.ActionResult({"update": update})

    def r_list_updates(self: Any) -> Any:
        ids = self.eks_backend.list_updates(self._get_param("name"), self._get_param("nodegroupName"))
        return eks_responses.ActionResult({"updateIds": ids})

    eks_responses.EKSResponse.describe_update = r_describe_update  # type: ignore[attr-defined]  # patches moto
    eks_responses.EKSResponse.list_updates = r_list_updates  # type: ignore[attr-defined]  # patches moto
    # moto routes by URL first: DescribeUpdate and ListUpdates have none (hence its 404).
    eks_urls.url_paths["{0}/clusters/(?P<name>[^/]+)/updates$"] = eks_urls.response.dispatch
    eks_urls.url_paths["{0}/clusters/(?P<name>[^/]+)/updates/(?P<updateId>[^/]+)$"] = eks_urls.response.dispatch

    orig_set_desired = asg_models.FakeAutoScalingGroup.set_desired_capacity

    def set_desired_capacity(self: Any, new_capacity: int | None) -> None:
        with _lock:
            managed = self.name in _managed
        if managed:
            # A lab tier converges this group's instances (draining each one it terminates).
            self.desired_capacity = self.min_size if new_capacity is None else int(new_capacity)
        else:
            orig_set_desired(self, new_capacity)
        # EKS reports its node group's Auto Scaling group's capacity as the node group's desiredSize
        # (which is how a Cluster Autoscaler's SetDesiredCapacity shows in DescribeNodegroup).
        nodegroup = _nodegroup_of(self)
        if nodegroup is not None and self.desired_capacity is not None:
            nodegroup.scaling_config["desiredSize"] = int(self.desired_capacity)

    asg_models.FakeAutoScalingGroup.set_desired_capacity = set_desired_capacity  # type: ignore[method-assign]  # patches moto
