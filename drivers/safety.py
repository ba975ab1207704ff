"""Checks against the target's own clouds that refuse a drill before its first change.

These are the production guard (live identities) and the drill lock (a blob lease).

Production guard: a target that is not the lab runs only with an explicit opt-in
(`DRILL_ALLOW_PRODUCTION=1`) and only if the live AWS account (STS) and Azure subscription match the
target's `guard:` allowlist. Drill lock: one drill per target at a time, held as a lease on a blob in
the target's own storage account (as Terraform locks its state), naming its holder; a stale lock
(a killed drill) is broken explicitly with `drill unlock --break`.
"""
from __future__ import annotations

import getpass
import os
import platform
import time
from dataclasses import dataclass
from typing import Any

from drill.config import Target

OPT_IN = "DRILL_ALLOW_PRODUCTION"
LOCK_CONTAINER = "dr-drill"


class Refused(Exception):
    """The drill must not start; the message says why, in one line."""


def check_production_guard(target: Target, environ: dict[str, str] | None = None) -> list[str]:
    """Refuse a non-lab target without opt-in or with unlisted identities; return what was verified."""
    if target.is_lab:
        return ["lab target: no production guard"]
    env = os.environ if environ is None else environ
    if env.get(OPT_IN) != "1":
        raise Refused(f"target {target.name!r} is not the lab: set {OPT_IN}=1 to drill it (a drill injects real faults)")
    guard = target.guard
    if guard is None or not guard.aws_account_ids:
        raise Refused(f"target {target.name!r} has no guard.aws_account_ids allowlist: refusing to drill an unlisted account")
    from drivers.aws import Aws

    account = Aws(target.aws).client("sts").get_caller_identity()["Account"]
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
        except Exception as e:
            raise Refused(f"the Azure credentials cannot read subscription {sub}: {type(e).__name__}") from None
        verified.append(f"Azure subscription {sub} allowed and reachable")
    return verified


@dataclass
class Holder:
    who: str
    since: str
    run_id: str

    @classmethod
    def me(cls, run_id: str) -> "Holder":
        try:
            user = getpass.getuser()
        except Exception:
            user = "unknown"
        who = os.environ.get("DRILL_OPERATOR") or f"{user}@{platform.node()} pid {os.getpid()}"
        return cls(who, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), run_id)

    @classmethod
    def from_metadata(cls, meta: dict[str, str] | None) -> "Holder | None":
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
        try:
            self._blob.upload_blob(b"", overwrite=False)
        except (ResourceExistsError, HttpResponseError):
            pass  # exists (perhaps leased): the lease decides
        try:
            lease = self._blob.acquire_lease(lease_duration=-1)
        except HttpResponseError:
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

