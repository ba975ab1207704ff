"""AKS credentials for a cluster the drill's own `terraform apply` created (runbook 2.3 step 1).

The failover stack's cluster exists only once the apply is done, so no kubeconfig can be named in a
target file beforehand (it would point at nothing, or at last quarter's cluster, whose CA and
credentials died with it). After the apply the drill does what `az aks get-credentials` does:
ARM's `managedClusters/listClusterUserCredential` through azure-mgmt-containerservice, cluster name
from the stack's Terraform output `aks_cluster_name`. The kubeconfig is written owner-only (0600) in
the run's private work directory (reports/work/<run-id>/), never into evidence or logs.

Microsoft Entra-integrated clusters hand out a kubeconfig that needs the kubelogin exec plugin; for
non-interactive use it is converted with `kubelogin convert-kubeconfig -l azurecli|spn|
workloadidentity|msi` ("Use kubelogin to authenticate users in AKS"). kubelogin then gets the
token itself at every call: `spn` reads AAD_SERVICE_PRINCIPAL_CLIENT_ID/AAD_SERVICE_PRINCIPAL_CLIENT_SECRET
(or AZURE_CLIENT_ID/AZURE_CLIENT_SECRET) from the environment, `workloadidentity` the federated
token file variables, `azurecli` a logged-in `az`, `msi` the machine's managed identity. The drill
never passes a secret on kubelogin's command line (that would leave it in the kubeconfig).

Kube inverses in the rollback ledger name the kubeconfig file and the cluster (`aks`): an unwind in
a fresh process whose kubeconfig is gone fetches it again (`ensure_kubeconfig`).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential
from azure.mgmt.containerservice import ContainerServiceClient

from drivers.azure_network import client_kwargs, make_credential

PERMISSIONS_API_VERSION = "2022-04-01"  # Microsoft.Authorization/permissions
KUBELOGIN_MODES = ("azurecli", "spn", "workloadidentity", "msi")
# What each kubelogin mode reads when it gets a token (kubelogin docs, "Login modes").
KUBELOGIN_ENV = {
    "spn": (("AAD_SERVICE_PRINCIPAL_CLIENT_ID", "AAD_SERVICE_PRINCIPAL_CLIENT_SECRET"), ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")),
    "workloadidentity": (("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"),),
}


class AksCredentialsError(RuntimeError):
    """The cluster's credentials could not be had; the message says why and what to do."""


@dataclass(frozen=True)
class Kubelogin:
    mode: str
    binary: str = "kubelogin"

    def __post_init__(self) -> None:
        if self.mode not in KUBELOGIN_MODES:
            raise ValueError(f"kubelogin mode {self.mode!r}: one of {', '.join(KUBELOGIN_MODES)}")


def make_client(auth: Any, credential: TokenCredential | None = None) -> ContainerServiceClient:
    """ContainerServiceClient for `auth.subscription_id` (the same AzureAuth shape drivers.azure_network reads)."""
    kw: dict[str, Any] = client_kwargs(auth)
    return ContainerServiceClient(credential or make_credential(auth), auth.subscription_id,
                                  base_url=getattr(auth, "resource_manager_url", None) or None, **kw)


def write_private(path: Path, data: bytes) -> Path:
    """Write `data` to `path` readable by its owner only (0600 from the first byte, replaced atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


class AksCredentials:
    """Fetches one cluster's user kubeconfig from ARM into a private file."""

    def __init__(self, client: ContainerServiceClient, kubelogin: Kubelogin | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.client = client
        self.kubelogin = kubelogin
        self.log = log or (lambda line: None)

    def __repr__(self) -> str:
        return f"AksCredentials(kubelogin={self.kubelogin!r})"

    def fetch(self, resource_group: str, cluster: str, dest: Path) -> Path:
        """`az aks get-credentials`, into `dest` (0600): the cluster user's kubeconfig, converted with
        kubelogin when the cluster is Entra-integrated. ResourceNotFoundError if the cluster does not exist."""
        mc = self.client.managed_clusters.get(resource_group, cluster)
        entra = getattr(mc, "aad_profile", None) is not None
        if entra and self.kubelogin is None:
            raise AksCredentialsError(
                f"AKS cluster {cluster} is Microsoft Entra-integrated: its kubeconfig needs kubelogin for non-interactive "
                f"use; set kubernetes.kubelogin.mode (azurecli, spn, workloadidentity or msi) in the target")
        result = self.client.managed_clusters.list_cluster_user_credentials(
            resource_group, cluster, format="exec" if entra else None)
        configs = [k for k in (result.kubeconfigs or []) if k.value]
        if not configs:
            raise AksCredentialsError(f"ARM returned no kubeconfig for AKS cluster {cluster}")
        write_private(dest, bytes(configs[0].value or b""))  # (the filter above kept only non-empty values)
        self.log(f"kubeconfig of AKS cluster {resource_group}/{cluster} written to {dest} (0600)")
        if self.kubelogin is not None:
            convert_kubeconfig(self.kubelogin, dest, log=self.log)
        return dest


def convert_kubeconfig(kubelogin: Kubelogin, kubeconfig: Path, log: Callable[[str], None] | None = None,
                       timeout: float = 60.0) -> None:
    """`kubelogin convert-kubeconfig -l MODE --kubeconfig FILE`, in place; the file stays 0600."""
    binary = shutil.which(kubelogin.binary) if os.sep not in kubelogin.binary else kubelogin.binary
    if not binary or not os.access(binary, os.X_OK):
        raise AksCredentialsError(f"kubelogin {kubelogin.binary!r} is not an executable on PATH: install kubelogin "
                                  f"(`az aks install-cli`) or set kubernetes.kubelogin.binary")
    argv = [binary, "convert-kubeconfig", "-l", kubelogin.mode, "--kubeconfig", str(kubeconfig)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AksCredentialsError(f"kubelogin convert-kubeconfig did not finish within {timeout:.0f}s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise AksCredentialsError(f"kubelogin convert-kubeconfig -l {kubelogin.mode} failed (exit {done.returncode}): "
                                  + " | ".join(tail))
    os.chmod(kubeconfig, 0o600)  # whatever kubelogin's umask gave the rewritten file
    if log:
        log(f"kubeconfig {kubeconfig} converted by kubelogin (mode {kubelogin.mode})")


def kubelogin_problem(kubelogin: Kubelogin, env: dict[str, str] | None = None) -> str | None:
    """Why kubelogin in this mode could not get a token here (no binary, missing variables), or None."""
    env = dict(os.environ) if env is None else env
    binary = kubelogin.binary
    found = binary if os.sep in binary and os.access(binary, os.X_OK) else shutil.which(binary, path=env.get("PATH"))
    if not found:
        return f"kubelogin {binary!r} is not an executable on PATH (install it: `az aks install-cli`)"
    if kubelogin.mode == "azurecli" and not shutil.which("az", path=env.get("PATH")):
        return "kubelogin mode azurecli needs a logged-in Azure CLI, and `az` is not on PATH"
    alternatives = KUBELOGIN_ENV.get(kubelogin.mode)
    if alternatives and not any(all(env.get(v) for v in names) for names in alternatives):
        wanted = " or ".join("+".join(names) for names in alternatives)
        return f"kubelogin mode {kubelogin.mode} gets its token from the environment, and {wanted} is not set"
    return None


def caller_permissions(client: ContainerServiceClient, subscription_id: str, resource_group: str) -> list[dict[str, Any]]:
    """What the drill's Azure identity may do in the resource group (ARM: Permissions - List For
    Resource Group), read with the same client and credential that will fetch the kubeconfig."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest

    url = (f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.Authorization/"
           f"permissions?api-version={PERMISSIONS_API_VERSION}")
    resp = client.send_request(HttpRequest("GET", url))
    if resp.status_code != 200:
        try:
            err = resp.json().get("error") or {}
        except ValueError:
            err = {}
        raise HttpResponseError(f"{resp.status_code} {err.get('code', '')}: {err.get('message', resp.text()[:200])}", response=resp)
    return list(resp.json().get("value") or [])


def cluster_ref(resource_group: str, name: str) -> dict[str, str]:
    """How a kube ledger entry names the AKS cluster it lives on (to fetch its credentials again)."""
    return {"resource_group": resource_group, "name": name}


def ensure_kubeconfig(params: dict[str, Any], target: Any, log: Callable[[str], None] | None = None) -> None:
    """Before a kube inverse in a fresh process: if its kubeconfig file is gone, fetch it again from
    ARM with the target's Azure identity (when the entry names its AKS cluster)."""
    path = Path(str(params.get("kubeconfig") or ""))
    ref = params.get("aks")
    if path.name == "" or path.exists() or not ref or getattr(target, "azure", None) is None:
        return
    from drivers.actions import azure_auth

    k8s = getattr(target, "kubernetes", None)
    kl = getattr(k8s, "kubelogin", None) if k8s is not None else None
    creds = AksCredentials(make_client(azure_auth(target)), Kubelogin(kl.mode, kl.binary) if kl else None, log)
    creds.fetch(ref["resource_group"], ref["name"], path)
