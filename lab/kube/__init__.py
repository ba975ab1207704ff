"""The lab's AKS: a Kubernetes API emulator (state model, HTTP surface, controllers + kubelet).

`KubeApiServer` is what the lab starts; drivers reach it with the kubeconfig it writes, exactly as
they reach a real cluster.
"""
from lab.kube.controller import ContainerRunner, Controller, ImagePullError, PetClinicRunner, RunningContainer
from lab.kube.server import KubeApiServer
from lab.kube.state import ApiError, Selector, Store

__all__ = [
    "ApiError", "ContainerRunner", "Controller", "ImagePullError", "KubeApiServer", "PetClinicRunner",
    "RunningContainer", "Selector", "Store",
]
