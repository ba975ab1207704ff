"""Carry out a ledger Action (an inverse, usually) against a target: the unwind executor.

Inverses are data so that `drill unwind` can replay them from the persisted ledger in a fresh
process; this module maps each operation name to the driver call that performs it. Secrets are
never in the ledger: an operation names where to find them (a Secrets Manager id, the target).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from drill.config import Target
from drill.ledger import NOTHING, Action
from drivers.aws import Aws, CloudFront, NodeGroups, Scaling, Secrets

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
INVERSE_ATTEMPTS = 3  # an inverse carried out at most this often when it fails transiently (each with the SDK's retries)


def executor(target: Target, busy_timeout: float = 600.0, log: Callable[[str], None] | None = None) -> Callable[[Action], None]:
    from drivers.retries import api_settings

    aws = Aws(target.aws, api_settings(target))

    def eks_set_scaling(p: dict[str, Any]) -> None:
        NodeGroups(aws).apply_scaling(p["cluster"], p["nodegroup"], Scaling.from_api(p["scaling"]), busy_timeout)

    def cloudfront_set_origin(p: dict[str, Any]) -> None:
        # Not undone until the edges serve it: the next inverse may remove what the origin pointed at.
        cf = CloudFront(aws, time_scale=target.time_scale)
        cf.apply_origin(p["distribution_id"], p["origin_id"], p["settings"])
        cf.wait_deployed(p["distribution_id"], timeout=busy_timeout)

    def primary(p: dict[str, Any]) -> Any:
        from drivers.database import Database

        s = Secrets(aws).json(p["secret_id"])
        ssl_ca = target.database.ssl_ca if target.database is not None else None
        return Database(str(s["host"]), int(s["port"]), str(s["username"]), str(s["password"]), str(s["dbname"]),
                        ssl_ca=ssl_ca)

    def db_delete_rows(p: dict[str, Any]) -> None:
        if not (IDENT.match(p["table"]) and IDENT.match(p["column"])):
            raise ValueError(f"refusing an unsafe table/column name in {p}")
        with primary(p).connect() as conn, conn.cursor() as cur:
            cur.execute(f"DELETE FROM `{p['table']}` WHERE `{p['column']}` = %s", (p["value"],))

    def db_drop_table(p: dict[str, Any]) -> None:
        if not IDENT.match(p["table"]):
            raise ValueError(f"refusing an unsafe table name in {p}")
        with primary(p).connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS `{p['table']}`")

    def provisioner_destroy(p: dict[str, Any]) -> None:
        from drivers.provisioner import ProvisionerError, check_created_by_run, execute_provisioner_action
        from drivers.terraform_stack import stack_terraform

        action = Action("provisioner.destroy", p, "terraform destroy")
        check_created_by_run(action)  # before anything: only a stack this run created is destroyed
        # Terraform needs the target's subscription, credentials and variables to destroy, as to apply.
        cli = lambda chdir, binary: stack_terraform(target, log=log, chdir=chdir, binary=binary)  # noqa: E731
        # Another Terraform operation (an interrupted drill's apply) may still hold the state lock.
        for attempt in Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, ProvisionerError) and "state lock" in str(e)),
            wait=wait_fixed(2.0), stop=stop_after_delay(busy_timeout), reraise=True,
        ):
            with attempt:
                execute_provisioner_action(action, log=log, cli=cli)

    def kube_op(action: Action) -> None:
        from drivers.aks import ensure_kubeconfig
        from drivers.kube import execute_kube_action

        ensure_kubeconfig(action.params, target, log)  # a fresh process whose kubeconfig is gone fetches it again
        execute_kube_action(action, api_settings(target))

    def azure_op(action: Action) -> None:
        from drivers.azure_network import execute_azure_action, make_client

        if target.azure is None:
            raise RuntimeError("an Azure inverse needs the target's `azure:` section")
        if action.op.startswith("azure.vm."):
            from drivers.azure_compute import execute_vm_action
            from drivers.azure_compute import make_client as compute_client

            return execute_vm_action(action, lambda: compute_client(azure_auth(target)))
        if action.op.startswith("azure.mysql."):
            from drivers.mysql_firewall import execute_mysql_action, make_mysql_client

            return execute_mysql_action(action, lambda: make_mysql_client(azure_auth(target)))
        execute_azure_action(action, lambda: make_client(azure_auth(target)))

    ops: dict[str, Callable[[dict[str, Any]], None]] = {
        "aws.eks.set_scaling": eks_set_scaling,
        "aws.cloudfront.set_origin": cloudfront_set_origin,
        "db.delete_rows": db_delete_rows,
        "db.drop_table": db_drop_table,
        "provisioner.destroy": provisioner_destroy,
        NOTHING: lambda p: None,  # the way back is another entry's, or none is needed
    }

    def once(action: Action) -> None:
        if action.op.startswith("kube."):
            return kube_op(action)
        if action.op.startswith("azure."):
            return azure_op(action)
        try:
            op = ops[action.op]
        except KeyError:
            raise ValueError(f"no executor for operation {action.op!r}") from None
        op(action.params)

    def execute(action: Action) -> None:
        """An inverse, tried again (INVERSE_ATTEMPTS in all) while it fails with what the services call
        transient (throttling, 5xx, no answer) after the SDK's own retries: inverses are idempotent, and
        an unwind that gives up on a throttled API leaves the system changed. Bounded: an API that stays
        unreachable (a cluster whose stack is already gone) costs a few tries, not the unwind's time."""
        from tenacity import stop_after_attempt, wait_exponential

        from drivers.retries import is_transient

        scale = target.time_scale
        stop = stop_after_attempt(INVERSE_ATTEMPTS) | stop_after_delay(busy_timeout)
        for attempt in Retrying(retry=retry_if_exception(is_transient), reraise=True, stop=stop,
                                wait=wait_exponential(multiplier=2.0 / scale, max=60.0 / scale),
                                before_sleep=lambda st: log and log(f"{action.description}: transient failure, trying "
                                                                    f"again: {st.outcome.exception()}")):  # type: ignore[union-attr]
            with attempt:
                once(action)

    return execute


def azure_auth(target: Target) -> Any:
    """The target's Azure section in the shape drivers.azure_network reads."""
    from drivers.azure_network import AzureAuth
    from drivers.retries import api_settings

    az = target.azure
    if az is None:
        raise RuntimeError(f"target {target.name!r} has no `azure:` section")
    c = az.credential
    return AzureAuth(
        subscription_id=az.subscription_id, tenant_id=c.tenant_id, client_id=c.client_id,
        client_secret=c.client_secret, authority_host=c.authority_host,
        resource_manager_url=az.arm_endpoint, ca_bundle=c.ca_bundle, api=api_settings(target),
    )


def blob_service(target: Target) -> Any:
    """The target's storage account: a shared key if the target gives one, else Entra credentials."""
    from azure.storage.blob import BlobServiceClient

    if target.azure is None:
        raise RuntimeError(f"target {target.name!r} has no `azure:` section")
    st = target.azure.storage
    if st.account_key:
        # Azure: https://ACCOUNT.blob.core.windows.net ; Azurite: http://127.0.0.1:PORT/ACCOUNT
        host, _, path = st.account_url.rstrip("/").split("://", 1)[1].partition("/")
        account = path or host.split(".", 1)[0]
        credential: Any = {"account_name": account, "account_key": st.account_key.get_secret_value()}
    else:
        from drivers.azure_network import make_credential

        credential = make_credential(azure_auth(target))
    from drivers.retries import api_settings, storage_client_kwargs

    # The storage SDK's own retries (ServerBusy, 5xx), recorded, at the target's time scale.
    return BlobServiceClient(st.account_url, credential=credential, **storage_client_kwargs(api_settings(target)))
