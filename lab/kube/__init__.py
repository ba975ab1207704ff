"""The lab's AKS: a Kubernetes API emulator, split by job as moto splits models from responses.

- models: resources.py (kinds, ranges, shared rules), errors.py (Status errors), selectors.py,
  validation.py (defaulting and 422s per kind), patches.py, state.py (the object store and watch);
- controllers: controller.py (the loop, namespaces), deployments.py, kubelet.py (pods as processes);
- the HTTP surface: server.py (routes, watch, TLS, kubeconfig), tables.py (`kubectl get`), protobuf.py.

`KubeApiServer` is what the lab starts; drivers reach it with the kubeconfig it writes, exactly as
they reach a real cluster.
"""
from lab.kube.controller import ContainerRunner, Controller, ImagePullError, PetClinicRunner, RunningContainer
from lab.kube.errors import ApiError
from lab.kube.selectors import Selector
from lab.kube.server import KubeApiServer
from lab.kube.state import Store

__all__ = [
    "ApiError", "ContainerRunner", "Controller", "ImagePullError", "KubeApiServer", "PetClinicRunner",
    "RunningContainer", "Selector", "Store",
]
