"""Checks against the target's own clouds that refuse a drill before its first change.

These are the production guard (live identities) and the drill lock (a blob lease).

Is this the lab? Only when every endpoint the drill would reach is an endpoint of a lab this
process started, or of the one given with --lab-endpoints (`lab_mismatches`). A `lab:` section
in the file only asks for a lab; it never exempts a target from the guard.

Production guard: a target that is not the lab runs only in real time (`time_scale: 1`), with an
explicit opt-in (`DRILL_ALLOW_PRODUCTION=1`), and only if the live AWS account (STS) and the Azure
subscription — the SDK's and the one Terraform applies to — match the target's `guard:` allowlist.
Drill lock: one drill per target at a time, held as a lease on a blob in the target's own storage
account (as Terraform locks its state), naming its holder; a stale lock (a killed drill) is broken
explicitly with `drill unlock --break`.
"""
from __future__ import annotations

import getpass
import os
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drill.config import Target, placeholder_value
from drivers.retries import api_settings

OPT_IN = "DRILL_ALLOW_PRODUCTION"
LOCK_CONTAINER = "dr-drill"


class Refused(Exception):
    """The drill must not start; the message says why, in one line."""


# Each endpoint a drill reaches, and the lab endpoint it must be for the run to count as the lab.
LAB_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("aws.endpoint_url", "aws_endpoint"),
    ("azure.subscription_id", "azure_subscription_id"),
    ("azure.arm_endpoint", "arm_endpoint"),
    ("azure.credential.authority_host", "azure_authority_host"),
    ("azure.storage.account_url", "blob_endpoint"),
    ("kubernetes.kubeconfig", "aks_kubeconfig"),
    ("failover_stack.terraform_binary", "terraform_binary"),
    ("failover_stack.chdir", "failover_stack_dir"),
    ("site.url", "site_url"),
    ("dr_site.url", "dr_site_url"),
    ("aws.route53.nameserver", "dns_nameserver"),
    ("probe.resolver.nameserver", "dns_nameserver"),
)


def stand_in_endpoints() -> dict[str, Any]:
    """What `${lab:KEY}` resolves to before a lab runs: a `lab:` target's own placeholders match it."""
    return {key: placeholder_value(key) for _, key in LAB_ENDPOINTS}


def lab_mismatches(target: Target, endpoints: Mapping[str, Any]) -> list[str]:
    """Every endpoint of `target` that is not the lab's in `endpoints` (empty: the run is the lab).

    Unset endpoints are the real services' (no endpoint_url = AWS itself), so they do not match.
    """
    out: list[str] = []
    for path, key in LAB_ENDPOINTS:
        section, *rest = path.split(".")
        value: Any = getattr(target, section)
        if value is None:
            continue  # the target does not reach that service at all
        absent = False
        for attr in rest:
            if value is None:  # a section the target does not have (e.g. no aws.route53)
                absent = True
                break
            value = getattr(value, attr)
        if absent:
            continue
        want = endpoints.get(key)
        if value is None and path == "kubernetes.kubeconfig":
            continue  # fetched from the cluster's ARM (the lab's, checked above) after the apply
        if value is None or want is None or str(value) != str(want):
            out.append(f"{path} is {value if value is not None else '(unset: the real service)'}")
    return out


def refuse_other_time_scale(target: Target, endpoints: Mapping[str, Any]) -> None:
    """The lab plays every documented delay `time_scale` times faster and the target divides each
    objective by its own `time_scale`: a lab attached at another pace (`drill lab up --time-scale 60`
    under targets/lab.yaml's 30) would judge the drill against objectives twice too lenient, a pass
    the real clouds would not give. Refused, whatever the opt-in."""
    lab_scale = endpoints.get("time_scale")
    if target.wants_lab and lab_scale is not None and float(lab_scale) != float(target.time_scale):
        raise Refused(f"the lab runs at time scale {float(lab_scale):g} but target {target.name!r} has time_scale "
                      f"{target.time_scale:g}: its objectives would be compared at the wrong pace. Start the lab with "
                      f"`drill lab up --time-scale {target.time_scale:g}` or set the target's time_scale to {float(lab_scale):g}")


def refuse_unless_lab(target: Target, endpoints: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> None:
    """A `lab:` target whose endpoints are not the lab's is production: refused without the opt-in;
    the lab's is refused when it plays time at another pace than the target's."""
    env = os.environ if environ is None else environ
    refuse_other_time_scale(target, endpoints)
    wrong = lab_mismatches(target, endpoints)
    if wrong and env.get(OPT_IN) != "1":
        raise Refused(
            f"target {target.name!r} has a `lab:` section, but it is not the lab: {'; '.join(wrong)}. A target is the "
            "lab only when every endpoint is a lab's this run started or attached (--lab-endpoints); anything else is "
            f"drilled as production: {OPT_IN}=1, time_scale 1 and a guard: allowlist")


def check_production_guard(
    target: Target, environ: Mapping[str, str] | None = None, lab_endpoints: Mapping[str, Any] | None = None,
) -> list[str]:
    """Refuse a target that is not the lab without opt-in, outside real time, or with unlisted
    identities; return what was verified. `lab_endpoints`: the lab this run started or attached."""
    env = os.environ if environ is None else environ
    if lab_endpoints is not None and not lab_mismatches(target, lab_endpoints):
        refuse_other_time_scale(target, lab_endpoints)
        return ["lab: every endpoint is the lab's this run started or attached: no production guard"]
    if target.wants_lab:
        refuse_unless_lab(target, lab_endpoints or {}, env)
    if target.time_scale != 1:
        raise Refused(f"target {target.name!r} is not the lab, so it plays real time: time_scale must be 1, not "
                      f"{target.time_scale:g} (it would divide every objective by {target.time_scale:g})")
    if env.get(OPT_IN) != "1":
        raise Refused(f"target {target.name!r} is not the lab: set {OPT_IN}=1 to drill it (a drill injects real faults)")
    guard = target.guard
    if guard is None or not guard.aws_account_ids:
        raise Refused(f"target {target.name!r} has no guard.aws_account_ids allowlist: refusing to drill an unlisted account")
    from drivers.aws import Aws

    account = Aws(target.aws, api_settings(target)).client("sts").get_caller_identity()["Account"]
    if account not in guard.aws_account_ids:
        raise Refused(f"the AWS credentials are for account {account}, which target {target.name!r} does not allow "
                      f"(guard.aws_account_ids: {', '.join(guard.aws_account_ids)})")
    verified = [f"AWS account {account} allowed"]
    if target.azure is not None:
        sub = target.azure.subscription_id
        if sub not in guard.azure_subscription_ids:
            raise Refused(f"Azure subscription {sub} is not in target {target.name!r}'s guard.azure_subscription_ids")
        from drivers.actions import azure_auth
        from drivers.azure_network import make_client

        # Reading the resource group's networks proves the credentials reach that subscription.
        try:
            list(make_client(azure_auth(target)).virtual_networks.list(target.azure.resource_group))
        except Exception as e:  # noqa: BLE001 — whatever the SDK, the credential chain or the network raises, the drill must refuse
            raise Refused(f"the Azure credentials cannot read subscription {sub}: {type(e).__name__}") from None
        verified.append(f"Azure subscription {sub} allowed and reachable")
    if target.failover_stack is not None:
        verified.append(_terraform_subscription(target, guard.azure_subscription_ids))
    return verified


def _terraform_subscription(target: Target, allowed: list[str]) -> str:
    """The subscription Terraform will apply to and destroy in: ARM_SUBSCRIPTION_ID, unless the root
    module's provider block sets one (which wins). Both must be allowed."""
    from drivers.terraform_stack import StackError, provider_subscriptions, terraform_env

    try:
        sub = terraform_env(target)[0]["ARM_SUBSCRIPTION_ID"]
    except StackError as e:
        raise Refused(str(e)) from None
    if sub not in allowed:
        raise Refused(f"Terraform would apply the failover stack to subscription {sub}, which is not in "
                      f"target {target.name!r}'s guard.azure_subscription_ids")
    assert target.failover_stack is not None  # its only caller checks the target has one
    chdir = target.failover_stack.chdir
    for file, expr in provider_subscriptions(chdir):
        literal = expr.strip().strip('"')
        if literal not in allowed:
            raise Refused(f"{chdir}/{file}: the azurerm provider block sets subscription_id = {expr}, which wins over "
                          f"ARM_SUBSCRIPTION_ID and is not in guard.azure_subscription_ids: remove it (the drill passes "
                          "the guarded subscription to Terraform)")
    return f"Terraform applies to subscription {sub} (ARM_SUBSCRIPTION_ID; no provider block overrides it)"


@dataclass
class Holder:
    who: str
    since: str
    run_id: str

    @classmethod
    def me(cls, run_id: str) -> Holder:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry for this uid (containers), or no login name
            user = "unknown"
        who = os.environ.get("DRILL_OPERATOR") or f"{user}@{platform.node()} pid {os.getpid()}"
        return cls(who, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), run_id)

    @classmethod
    def from_metadata(cls, meta: dict[str, str] | None) -> Holder | None:
        """The holder the lock blob's metadata names; None when it names nobody."""
        return cls(meta.get("who", "unknown"), meta.get("since", "unknown"), meta.get("run_id", "unknown")) if meta else None


class DrillLock:
    """A blob lease in the target's storage account: `dr-drill/locks/<target>.lock`."""

    def __init__(self, target: Target) -> None:
        if target.azure is None:
            raise Refused(f"target {target.name!r} has no azure.storage: the drill lock lives there")
        from drivers.actions import blob_service

        self.target = target.name
        self._svc = blob_service(target)
        self._blob = self._svc.get_blob_client(LOCK_CONTAINER, f"locks/{target.name}.lock")
        self._lease: Any = None

    def __repr__(self) -> str:
        return f"DrillLock({self.target!r})"

    def holder(self) -> Holder | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return Holder.from_metadata(self._blob.get_blob_properties().metadata)
        except ResourceNotFoundError:
            return None

    def acquire(self, run_id: str) -> Holder:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        try:
            self._svc.create_container(LOCK_CONTAINER)
        except ResourceExistsError:
            pass
        except HttpResponseError as e:
            # A role scoped to the lock container alone (least privilege, README "Drilling production")
            # may not create containers: the container then exists already, made by the operators.
            if e.status_code != 403:
                raise
        try:
            self._blob.upload_blob(b"", overwrite=False)
        except ResourceExistsError:
            pass  # exists (perhaps leased): the lease decides
        except HttpResponseError as e:
            # 412 LeaseIdMissing: it exists and is leased. Anything else (ServerBusy after the SDK's
            # retries, say) is not "someone else holds the lock": say what it is.
            if e.status_code != 412:
                raise
        try:
            lease = self._blob.acquire_lease(lease_duration=-1)
        except HttpResponseError as e:
            if e.status_code != 409:  # 409 LeaseAlreadyPresent: another drill holds it
                raise
            time.sleep(0.5)  # the holder sets its name just after taking the lease
            h = self.holder()
            who = f"{h.who} since {h.since} (run {h.run_id})" if h else "another drill"
            raise Refused(f"target {self.target!r} is being drilled by {who}; "
                          f"if that drill is gone, break the lock: drill unlock --target {self.target} --break") from None
        me = Holder.me(run_id)
        self._blob.set_blob_metadata({"who": me.who, "since": me.since, "run_id": me.run_id}, lease=lease)
        self._lease = lease
        return me

    def release(self) -> None:
        if self._lease is not None:
            try:
                self._blob.set_blob_metadata({}, lease=self._lease)
                self._lease.release()
            finally:
                self._lease = None

    def release_if_held_by(self, run_id: str) -> tuple[str, Holder | None]:
        """Break the lease only if the lock names `run_id` (a killed drill's, being unwound).

        Returns what was found: "released" (it was that run's), "other" (another run holds it: left
        alone), "anonymous" (leased but naming no holder: left alone) or "free".
        """
        from azure.core.exceptions import ResourceNotFoundError

        try:
            props = self._blob.get_blob_properties()
        except ResourceNotFoundError:
            return "free", None
        holder = Holder.from_metadata(props.metadata)
        if props.lease.status != "locked":
            return "free", holder
        if holder is None:
            return "anonymous", None
        if holder.run_id != run_id:
            return "other", holder
        self._break()
        return "released", holder

    def break_lock(self) -> Holder | None:
        """Break a stale lease (a killed drill's); returns who held it."""
        h = self.holder()
        self._break()
        return h

    def _break(self) -> None:
        from azure.storage.blob import BlobLeaseClient

        BlobLeaseClient(self._blob).break_lease(lease_break_period=0)
        self._blob.set_blob_metadata({})

