"""The lab: starts the whole local topology, reports its endpoints, stops it without leaks.

Parts, in start order: MariaDB "rds" with PetClinic data, Azurite (storage account with the
maintenance page and the backup container), moto (AWS control plane, corrected and seeded),
the web tier (PetClinic replicas following the `web` node group, ALB), the Blob static-website
endpoint, and the CloudFront edge on the public site address.
"""
from __future__ import annotations

import json
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient, ContentSettings

from lab import topology as T
from lab.azurite import Azurite
from lab.edge import Edge
from lab.events import EventLog
from lab.mariadb import MariaDB
from lab.ports import free_port
from lab.static_site import StaticWebsite
from lab.timing import Timings
from lab.web_tier import AppEnv, WebTier

HERE = Path(__file__).resolve().parent


@dataclass
class LabSettings:
    time_scale: float = 30.0
    workdir: Path | None = None


class Lab:
    """One running lab. `start()` returns the endpoints document; `stop()` is idempotent."""

    def __init__(self, settings: LabSettings) -> None:
        self.settings = settings
        self.timings = Timings().scaled(settings.time_scale)
        self.workdir = Path(settings.workdir or tempfile.mkdtemp(prefix="dr-drill-lab-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.events = EventLog(self.workdir / "events.jsonl")
        self.rds = MariaDB(self.workdir, "rds")
        self.azurite = Azurite(self.workdir, T.STORAGE_ACCOUNT)
        self._stack: list[Any] = []  # things to stop, in start order
        self.endpoints: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Lab(workdir={str(self.workdir)!r}, time_scale={self.settings.time_scale})"

    def start(self) -> dict[str, Any]:
        t0 = time.monotonic()
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise
        finally:
            self.events.record("lab", "started", seconds=round(time.monotonic() - t0, 3))

    def _start(self) -> dict[str, Any]:
        self.rds.start()
        self._stack.append(self.rds)
        db_password = secrets.token_urlsafe(18)
        self.rds.create_database(T.DB_NAME, T.DB_USER, db_password)
        for f in ("schema.sql", "data.sql"):
            self.rds.execute_script((HERE / "petclinic" / f).read_text(), database=T.DB_NAME)

        self.azurite.start()
        self._stack.append(self.azurite)
        self._seed_storage()

        from lab.aws.server import AwsControlPlane  # imports moto: keep it off `import lab`

        aws = AwsControlPlane(self.timings, self.events)
        self._stack.append(aws)
        db_secret = {
            "username": T.DB_USER, "password": db_password, "engine": "mysql",
            "host": "127.0.0.1", "port": self.rds.port, "dbname": T.DB_NAME,
        }
        seed = aws.start(db_secret)

        app = AppEnv(f"jdbc:mysql://127.0.0.1:{self.rds.port}/{T.DB_NAME}", T.DB_USER, db_password)
        web = WebTier(
            nodegroup=aws.nodegroup(T.CLUSTER, T.WEB_NODEGROUP), cluster=T.CLUSTER,
            target_group=aws.target_group(seed.target_group_arn), registry=aws.target_health,
            timings=self.timings, app=app, events=self.events, log_dir=self.workdir / "logs",
        )
        web.start()
        self._stack.append(web)

        site = StaticWebsite(free_port(), self.azurite.connection_string).start()
        self._stack.append(site)
        dns = {seed.alb_dns_name: ("127.0.0.1", web.alb_port), T.BLOB_WEB_HOST: ("127.0.0.1", site.server.port)}
        edge = Edge(free_port(), seed.distribution_id, aws.cloudfront, dns.get, self.settings.time_scale, self.events)
        edge.start()
        self._stack.append(edge)

        self.endpoints = {
            "time_scale": self.settings.time_scale,
            "workdir": str(self.workdir),
            "events_path": str(self.events.path),
            "region": T.REGION,
            "aws_endpoint": aws.endpoint,
            "aws_access_key_id": aws.access_key,
            "aws_secret_access_key": aws.secret_key,
            "cloudfront_distribution_id": seed.distribution_id,
            "cloudfront_domain": seed.distribution_domain,
            "alb_dns_name": seed.alb_dns_name,
            "target_group_arn": seed.target_group_arn,
            "site_url": f"http://127.0.0.1:{edge.server.port}/",
            "alb_url": f"http://127.0.0.1:{web.alb_port}/",
            "blob_web_url": f"http://127.0.0.1:{site.server.port}/",
            "blob_endpoint": self.azurite.blob_endpoint,
            "storage_account": T.STORAGE_ACCOUNT,
            "storage_account_key": self.azurite.key,
            "rds_host": "127.0.0.1",
            "rds_port": self.rds.port,
            "rds_database": T.DB_NAME,
            "rds_user": T.DB_USER,
            "rds_password": db_password,
        }
        return self.endpoints

    def _seed_storage(self) -> None:
        svc = BlobServiceClient.from_connection_string(self.azurite.connection_string)
        web = svc.create_container("$web")
        web.upload_blob(
            "index.html", (HERE / "static" / "maintenance.html").read_bytes(),
            content_settings=ContentSettings(content_type="text/html; charset=utf-8"), overwrite=True,
        )
        svc.create_container(T.BACKUP_CONTAINER)

    def stop(self) -> None:
        while self._stack:
            part = self._stack.pop()
            try:
                part.stop()
            except Exception as e:  # keep stopping the rest: nothing may leak
                self.events.record("lab", "stop error", part=type(part).__name__, error=repr(e))
        self.events.record("lab", "stopped")


def write_endpoints(path: Path, endpoints: dict[str, Any]) -> None:
    """Endpoints carry lab credentials: owner-only, written atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps(endpoints, indent=2))
    tmp.replace(path)
