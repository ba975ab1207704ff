"""The goupang system's lab (topology `goupang`): Route 53 DNS failover and the Azure VM DR site.

service-inventory.md's second deployment, on loopback:

  www.goupang.shop  Route 53 failover: PRIMARY alias → the ALB (health check HTTP /actuator/health,
                    every 30 s, unhealthy after 3 failures); SECONDARY alias → a CloudFront
                    distribution in front of the Azure Blob maintenance page. Alias TTL 60 s.
  dr.goupang.shop   A record → the DR VM's public IP (Standard_B2s; nginx → PetClinic → Azure MySQL).

Shared parts: MariaDB (RDS, Azure MySQL), Azurite, moto (EKS, ELBv2, CloudFront, Secrets Manager,
Route 53) with the lab's corrections, the web tier and ALB, the CloudFront edge, the Blob website,
the ARM emulator. Parts of its own: the Route 53 health checkers and the zone's DNS server
(lab.aws.route53, lab.dns), public addresses (lab.addresses: the ALB, the maintenance distribution
and the VM each answer on their own 127.x.y.z at the site's port), Redis for Spring-Session-like
sessions (lab.redis_server), the VM (lab.azure.virtual_machines, lab.vm_host), and the daily snapshot
(the seeds' RDS snapshot → S3 → AzCopy to Blob at 03:00 KST: here a dump to Blob every 24 h scaled,
the first standing for the latest daily slot before the lab started).

Departures, stated: the seeds put CloudFront (and an App Gateway) in front of the VM for `dr.`; here
`dr.` resolves to the VM's address directly (nginx on the VM is the reverse proxy users reach). A
deallocated VM's address refuses connections (Azure drops them: a timeout). Azure MySQL offers TLS
but does not require it, and has no firewall emulation here (the drill restores over verified TLS).
"""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import trustme
from azure.storage.blob import BlobServiceClient, ContentSettings

from lab import topology as T
from lab.addresses import Relay, pick_public_block
from lab.azurite import Azurite
from lab.dns import DnsServer
from lab.edge import Edge
from lab.mariadb import MariaDB, issue_server_tls
from lab.ports import free_port
from lab.redis_server import RedisServer
from lab.static_site import StaticWebsite
from lab.topologies import Assembly, LabSettings
from lab.web_tier import AppEnv, WebTier

HERE = Path(__file__).resolve().parents[1]
ZONE = "goupang.shop"
WWW = f"www.{ZONE}"
DR = f"dr.{ZONE}"
STORAGE_ACCOUNT = "goupangdr"
BLOB_WEB_HOST = f"{STORAGE_ACCOUNT}.z12.web.core.windows.net"
BACKUP_CONTAINER = "db-backups"
RESOURCE_GROUP = "rg-goupang-dr"
VM_NAME = "vm-goupang-dr"
VM_SIZE = "Standard_B2s"
VM_FQDN = f"{VM_NAME}.koreacentral.cloudapp.azure.com"
AZURE_MYSQL_SERVER = "goupangdr"
AZURE_MYSQL_ADMIN = "mysqladmin"
SNAPSHOT_INTERVAL_SECONDS = 86400.0  # daily (03:00 KST)
SESSION_TIMEOUT_SECONDS = 1800.0  # spring.session / cookie Max-Age (seeds)
MAINTENANCE_ORIGIN = "azure-blob-maintenance"


class GoupangLab(Assembly):
    """One running goupang lab. `start()` returns the endpoints document; `stop()` is idempotent."""

    name = "goupang"

    def __init__(self, settings: LabSettings) -> None:
        super().__init__(settings)
        self.scale = settings.time_scale
        self.db_ca = trustme.CA(organization_name="dr-drill lab databases")

    def _start(self) -> dict[str, Any]:
        from lab.aws import route53 as lab_r53
        from lab.aws.seed import client
        from lab.aws.server import AwsControlPlane

        # Public addresses: the ALB, the maintenance distribution's edge, the VM; one port for all.
        (alb_ip, cdn_ip, vm_ip), site_port = pick_public_block(3)

        rds = MariaDB(self.workdir, "rds", tls=issue_server_tls(self.db_ca, self.workdir / "tls" / "rds", ("127.0.0.1", "localhost")))
        rds.start()
        self._up(rds)
        db_password = secrets.token_urlsafe(18)
        rds.create_database(T.DB_NAME, T.DB_USER, db_password)
        for f in ("schema.sql", "data.sql"):
            rds.execute_script((HERE / "petclinic" / f).read_text(), database=T.DB_NAME)

        # Azure MySQL (always on, standby: restored from the newest snapshot by the drill).
        az_tls = issue_server_tls(self.db_ca, self.workdir / "tls" / "azure-mysql",
                                  ("127.0.0.1", f"{AZURE_MYSQL_SERVER}.mysql.database.azure.com"))
        azmysql = MariaDB(self.workdir, "azmysql", tls=az_tls)
        azmysql.start()
        self._up(azmysql)
        az_password = secrets.token_urlsafe(18)
        azmysql.create_database(T.DB_NAME, AZURE_MYSQL_ADMIN, az_password)

        redis = self._up(RedisServer(self.workdir / "redis").start())

        azurite = Azurite(self.workdir, STORAGE_ACCOUNT)
        azurite.start()
        self._up(azurite)
        svc = BlobServiceClient.from_connection_string(azurite.connection_string)
        svc.create_container("$web").upload_blob(
            "index.html", (HERE / "static" / "maintenance.html").read_bytes(),
            content_settings=ContentSettings(content_type="text/html; charset=utf-8"), overwrite=True)
        svc.create_container(BACKUP_CONTAINER)

        aws = AwsControlPlane(self.timings, self.events)
        self._up(aws)
        seed = aws.start({"username": T.DB_USER, "password": db_password, "engine": "mysql",
                          "host": "127.0.0.1", "port": rds.port, "dbname": T.DB_NAME})
        key, secret = aws.access_key, aws.secret_key

        sessions = {"SPRING_SESSION_STORE_TYPE": "redis", "SPRING_REDIS_HOST": "127.0.0.1",
                    "SPRING_REDIS_PORT": str(redis.port),
                    "SERVER_SERVLET_SESSION_TIMEOUT": f"{SESSION_TIMEOUT_SECONDS / self.scale:g}"}
        app = AppEnv(f"jdbc:mysql://127.0.0.1:{rds.port}/{T.DB_NAME}", T.DB_USER, db_password, extra=sessions)
        web_ng = aws.nodegroup(T.CLUSTER, T.WEB_NODEGROUP)
        web = WebTier(nodegroup=web_ng, cluster=T.CLUSTER, auto_scaling_group=aws.auto_scaling_group(web_ng),
                      target_group=aws.target_group(seed.target_group_arn), registry=aws.target_health,
                      timings=self.timings, time_scale=self.scale, app=app, events=self.events,
                      log_dir=self.workdir / "logs")
        web.start()
        self._up(web)

        site = self._up(StaticWebsite(free_port(), azurite.connection_string).start())
        # The maintenance distribution: CloudFront in front of the Blob static website (the seeds'
        # Lambda@Edge sets the Host header to the Blob endpoint, as the lab's edge does for any origin).
        cf = client("cloudfront", aws.endpoint, key, secret)
        dist = cf.create_distribution(DistributionConfig=maintenance_distribution())["Distribution"]
        aws.cloudfront.record(dist["Id"], cf.get_distribution_config(Id=dist["Id"])["DistributionConfig"],
                              cf.get_distribution(Id=dist["Id"])["ETag"], immediate=True)
        origins = {BLOB_WEB_HOST: ("127.0.0.1", site.server.port)}
        edge = Edge(free_port(), dist["Id"], aws.cloudfront, lambda name: origins.get(name), self.scale, self.events)
        self._up(edge.start())

        # Public addresses at the site's port: what the zone's answers point users (and checkers) at.
        self._up(Relay(alb_ip, site_port, lambda: ("127.0.0.1", web.alb_port), "alb").start())
        self._up(Relay(cdn_ip, site_port, lambda: ("127.0.0.1", edge.server.port), "maintenance-cdn").start())
        public = {seed.alb_dns_name.lower(): alb_ip, str(dist["DomainName"]).lower(): cdn_ip, VM_FQDN: vm_ip}

        zone_id, health_check_id = seed_route53(client("route53", aws.endpoint, key, secret), seed.alb_dns_name,
                                                str(dist["DomainName"]), vm_ip, site_port)
        backend = lambda: lab_r53.backend(T.ACCOUNT_ID)  # noqa: E731
        checkers = lab_r53.HealthCheckers(backend, public.get, lambda hc: int(hc.port), self.scale, self.events)
        lab_r53.install(checkers)
        self._up(checkers.start())
        answers = lab_r53.FailoverAnswers(backend, checkers, public.get)
        dns = self._up(DnsServer(answers.lookup).start())

        azure = self._start_azure(vm_ip, site_port, azurite, rds, db_password, azmysql, az_password)
        self.endpoints = {
            "topology": "goupang",
            "time_scale": self.scale,
            "workdir": str(self.workdir),
            "events_path": str(self.events.path),
            "region": T.REGION,
            "aws_endpoint": aws.endpoint,
            "aws_access_key_id": key,
            "aws_secret_access_key": secret,
            "target_group_arn": seed.target_group_arn,
            "alb_dns_name": seed.alb_dns_name,
            "cloudfront_distribution_id": dist["Id"],
            "cloudfront_domain": dist["DomainName"],
            "hosted_zone_id": zone_id,
            "health_check_id": health_check_id,
            "dns_nameserver": dns.nameserver,
            "public_addresses": {"alb": alb_ip, "maintenance_cdn": cdn_ip, "vm": vm_ip},
            "site_port": site_port,
            "site_url": f"http://{WWW}:{site_port}/",
            "dr_site_url": f"http://{DR}:{site_port}/",
            "alb_url": f"http://127.0.0.1:{web.alb_port}/",
            "blob_web_url": f"http://127.0.0.1:{site.server.port}/",
            "blob_endpoint": azurite.blob_endpoint,
            "storage_account": STORAGE_ACCOUNT,
            "storage_account_key": azurite.key,
            "redis_port": redis.port,
            "rds_host": "127.0.0.1",
            "rds_port": rds.port,
            "rds_ca_bundle": str(rds.tls.ca) if rds.tls else None,
            "rds_database": T.DB_NAME,
            "rds_user": T.DB_USER,
            "rds_password": db_password,
            **azure,
        }
        return self.endpoints

    def _start_azure(self, vm_ip: str, site_port: int, azurite: Azurite, rds: MariaDB, rds_password: str,
                     azmysql: MariaDB, az_password: str) -> dict[str, Any]:
        from lab.azure.arm_server import ArmEmulator
        from lab.azure.virtual_machines import VirtualMachines, Vm, attach
        from lab.backups import BackupJob
        from lab.vm_host import VmHost

        arm = ArmEmulator(self.workdir / "arm", self.events, time_scale=self.scale)
        arm.start()
        self._up(arm)
        arm.state.create_resource_group(RESOURCE_GROUP)
        # The VM's guest: PetClinic on Azure MySQL, sessions in its own memory (no Redis on the VM).
        vm_app = AppEnv(f"jdbc:mysql://127.0.0.1:{azmysql.port}/{T.DB_NAME}", AZURE_MYSQL_ADMIN, az_password,
                        extra={"SERVER_SERVLET_SESSION_TIMEOUT": f"{SESSION_TIMEOUT_SECONDS / self.scale:g}"})
        host = VmHost(vm_ip, site_port, vm_app, self.scale, self.events, self.workdir / "logs")
        vms = VirtualMachines(arm.subscription_id, self.scale, self.events, host.power)
        vms.add(Vm(RESOURCE_GROUP, VM_NAME, VM_SIZE, arm.state.location, vm_ip))  # deallocated: the standby
        attach(arm, vms)
        self._up(host)
        self._up(vms)
        # The daily snapshot copied to Blob (seeds: RDS snapshot → S3 → AzCopy at 03:00 KST).
        backups = BackupJob("127.0.0.1", rds.port, T.DB_USER, rds_password, T.DB_NAME, azurite.connection_string,
                            BACKUP_CONTAINER, SNAPSHOT_INTERVAL_SECONDS / self.scale, self.events)
        # The first dump stands for the schedule's latest slot (lab/backups.py: the database has not
        # changed since then), so the newest snapshot is as old as it would be at a random moment of
        # the day, not taken the instant the drill starts.
        backups.start(first_as_of=backups.last_slot())
        self._up(backups)
        return {
            "azure_subscription_id": arm.subscription_id,
            "azure_tenant_id": arm.tenant_id,
            "azure_client_id": arm.client_id,
            "azure_client_secret": arm.client_secret,
            "azure_authority_host": arm.url,
            "azure_ca_bundle": str(arm.ca_path),
            "arm_endpoint": arm.url,
            "azure_resource_group": RESOURCE_GROUP,
            "vm_name": VM_NAME,
            "azure_mysql_host": "127.0.0.1",
            "azure_mysql_port": azmysql.port,
            "azure_mysql_password": az_password,
            "azure_mysql_ca_bundle": str(azmysql.tls.ca) if azmysql.tls else None,
        }

def maintenance_distribution() -> dict[str, Any]:
    """The seeds' "CloudFront (Blob DR)": one origin, the Blob static website, every path."""
    return {
        "CallerReference": "goupang-maintenance",
        "Aliases": {"Quantity": 1, "Items": [WWW]},
        "Comment": "www.goupang.shop secondary: the Azure Blob maintenance page",
        "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{
            "Id": MAINTENANCE_ORIGIN, "DomainName": BLOB_WEB_HOST, "OriginPath": "",
            "ConnectionAttempts": 3, "ConnectionTimeout": 10,
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only",
                                   "OriginReadTimeout": 30, "OriginKeepaliveTimeout": 5,
                                   "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]}},
        }]},
        "DefaultCacheBehavior": {
            "TargetOriginId": MAINTENANCE_ORIGIN, "ViewerProtocolPolicy": "redirect-to-https",
            "AllowedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"],
                               "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}},
            "CachePolicyId": T.CACHING_DISABLED_POLICY, "Compress": True,
        },
    }


def seed_route53(r53: Any, alb_dns: str, cdn_domain: str, vm_ip: str, port: int) -> tuple[str, str]:
    """The hosted zone as the seeds' Terraform leaves it; (zone id, the primary's health check id)."""
    zone_id = r53.create_hosted_zone(Name=ZONE, CallerReference="goupang-zone")["HostedZone"]["Id"].split("/")[-1]
    # service-inventory.md: HTTPS :443 /actuator/health, interval 30 s, 3 failures. The lab's ALB
    # listens on plain HTTP at the site's port: same path, interval and threshold.
    hc = r53.create_health_check(CallerReference="goupang-primary", HealthCheckConfig={
        "Type": "HTTP", "FullyQualifiedDomainName": alb_dns, "Port": port, "ResourcePath": "/actuator/health",
        "RequestInterval": 30, "FailureThreshold": 3})["HealthCheck"]["Id"]
    r53.change_tags_for_resource(ResourceType="healthcheck", ResourceId=hc, AddTags=[{"Key": "Name", "Value": "www-primary-alb"}])
    changes = [
        {"Action": "CREATE", "ResourceRecordSet": {
            "Name": WWW, "Type": "A", "SetIdentifier": "primary-aws", "Failover": "PRIMARY", "HealthCheckId": hc,
            "AliasTarget": {"HostedZoneId": "ZWKZPGTI48KDX", "DNSName": alb_dns, "EvaluateTargetHealth": False}}},
        {"Action": "CREATE", "ResourceRecordSet": {
            "Name": WWW, "Type": "A", "SetIdentifier": "secondary-azure-blob", "Failover": "SECONDARY",
            # Z2FDTNDATAQYW2: the hosted zone id every CloudFront alias target uses.
            "AliasTarget": {"HostedZoneId": "Z2FDTNDATAQYW2", "DNSName": cdn_domain, "EvaluateTargetHealth": False}}},
        {"Action": "CREATE", "ResourceRecordSet": {
            "Name": DR, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": vm_ip}]}},
    ]
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return zone_id, hc
