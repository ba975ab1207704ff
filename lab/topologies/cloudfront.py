"""The CloudFront system's lab (topology `cloudfront`): its whole local topology, its endpoints, a stop without leaks.

Parts, in start order: MariaDB "rds" with PetClinic data, Azurite (storage account with the
maintenance page and the backup container), moto (AWS control plane, corrected and seeded),
the web tier (PetClinic replicas following the `web` node group, ALB), the Blob static-website
endpoint, and the CloudFront edge on the public site address.
"""
from __future__ import annotations

import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import trustme
from azure.storage.blob import BlobServiceClient, ContentSettings

from lab import topology as T
from lab.azurite import Azurite
from lab.control import ControlServer
from lab.edge import Edge
from lab.egress import EgressEcho
from lab.failover_stack import (
    AKS,
    APPGW,
    DATABASE,
    FIREWALL,
    MYSQL,
    PARAMETER,
    FailoverStack,
    StackParts,
    write_stack_dir,
)
from lab.faults import Faults
from lab.mariadb import MariaDB, issue_server_tls
from lab.ports import free_port
from lab.static_site import StaticWebsite
from lab.topologies import Assembly, LabSettings
from lab.web_tier import AppEnv, WebTier

HERE = Path(__file__).resolve().parents[1]  # lab/


class Lab(Assembly):
    """One running lab. `start()` returns the endpoints document; `stop()` is idempotent."""

    name = "cloudfront"

    def __init__(self, settings: LabSettings) -> None:
        super().__init__(settings)
        # What the lab's cloud APIs answer a chosen call with (throttling, 5xx, hang, stale, partial apply):
        # armed through the control endpoint, shared by every surface (lab.faults).
        self.faults = Faults(settings.time_scale, self.events)
        # The lab's certificate authority for its databases: RDS's and Azure MySQL's server certificates
        # (the drill verifies them with it, host name included, as it would RDS's and DigiCert's roots).
        self.db_ca = trustme.CA(organization_name="dr-drill lab databases")
        self.rds = MariaDB(self.workdir, "rds", tls=issue_server_tls(
            self.db_ca, self.workdir / "tls" / "rds", ("127.0.0.1", "localhost")))
        self.azurite = Azurite(self.workdir, T.STORAGE_ACCOUNT)
        self._parts: FailoverParts | None = None  # the failover stack's resources, once the Azure side runs

    def _start(self) -> dict[str, Any]:
        self.rds.start()
        self._stack.append(self.rds)
        db_password = secrets.token_urlsafe(18)
        self.rds.create_database(T.DB_NAME, T.DB_USER, db_password)
        for f in ("schema.sql", "data.sql"):
            self.rds.execute_script((HERE / "petclinic" / f).read_text(), database=T.DB_NAME)
        # A scratch server for readiness's restore check: the primary's app user may not create databases.
        scratch = MariaDB(self.workdir, "scratch")
        scratch.start()
        self._stack.append(scratch)
        scratch_password = secrets.token_urlsafe(18)
        scratch.create_database("scratch", "scratch", scratch_password)

        self.azurite.start()
        self._stack.append(self.azurite)
        self._seed_storage()
        from lab.azure.blob_front import BlobFront

        # The account's Blob endpoint as clients reach it: Azurite behind the lab's faults.
        blob_front = BlobFront(free_port(), self.azurite.port, self.faults).start()
        self._stack.append(blob_front)

        from lab.aws.server import AwsControlPlane  # imports moto: keep it off `import lab`

        aws = AwsControlPlane(self.timings, self.events, time_scale=self.settings.time_scale, faults=self.faults)
        self._stack.append(aws)
        db_secret = {
            "username": T.DB_USER, "password": db_password, "engine": "mysql",
            "host": "127.0.0.1", "port": self.rds.port, "dbname": T.DB_NAME,
        }
        seed = aws.start(db_secret)

        app = AppEnv(f"jdbc:mysql://127.0.0.1:{self.rds.port}/{T.DB_NAME}", T.DB_USER, db_password)
        web_ng = aws.nodegroup(T.CLUSTER, T.WEB_NODEGROUP)
        web = WebTier(
            nodegroup=web_ng, cluster=T.CLUSTER, auto_scaling_group=aws.auto_scaling_group(web_ng),
            target_group=aws.target_group(seed.target_group_arn), registry=aws.target_health,
            timings=self.timings, time_scale=self.settings.time_scale, app=app, events=self.events,
            log_dir=self.workdir / "logs",
        )
        web.start()
        self._stack.append(web)

        alarms = self._start_monitoring(aws, seed, web)

        site = StaticWebsite(free_port(), self.azurite.connection_string).start()
        self._stack.append(site)
        # The lab's DNS as the edge sees it: fixed names, and the failover stack's public names (the
        # App Gateway's public IP DNS name) for as long as ARM has them.
        dns = {seed.alb_dns_name: ("127.0.0.1", web.alb_port), T.BLOB_WEB_HOST: ("127.0.0.1", site.server.port)}
        edges: list[Edge] = []
        for location, host in T.EDGE_LOCATIONS:
            edge = Edge(free_port(host), seed.distribution_id, aws.cloudfront, lambda name: dns.get(name) or self._public_dns(name),
                        self.settings.time_scale, self.events, location=location, host=host)
            edge.start()
            self._stack.append(edge)
            edges.append(edge)
        edge = edges[0]  # the public site address

        azure = self._start_azure(site.server.port, app, db_password)

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
            # Each edge location's address (host:port), for vantages that reach the site through it.
            "edge_locations": {e.location: e.address for e in edges},
            **{edge_endpoint_key(e.location): e.address for e in edges},
            "alb_url": f"http://127.0.0.1:{web.alb_port}/",
            "blob_web_url": f"http://127.0.0.1:{site.server.port}/",
            "blob_endpoint": f"http://127.0.0.1:{blob_front.port}/{T.STORAGE_ACCOUNT}",
            "storage_account": T.STORAGE_ACCOUNT,
            "storage_account_key": self.azurite.key,
            "rds_host": "127.0.0.1",
            "rds_port": self.rds.port,
            # RDS for MySQL 8.4 and lower offers TLS without requiring it (require_secure_transport OFF by
            # default: RDS User Guide, "Requiring SSL/TLS for all connections to a MySQL DB instance");
            # the drill verifies the server with this bundle (RDS: global-bundle.pem).
            "rds_ca_bundle": str(self.rds.tls.ca) if self.rds.tls else None,
            "rds_database": T.DB_NAME,
            "rds_user": T.DB_USER,
            "rds_password": db_password,
            "scratch_db_host": "127.0.0.1",
            "scratch_db_port": scratch.port,
            "scratch_db_user": "scratch",
            "scratch_db_password": scratch_password,
            "scratch_db_database": "scratch",
            **alarms,
            **azure,
        }
        return self.endpoints

    def _start_azure(self, static_site_port: int, primary: AppEnv, primary_password: str) -> dict[str, Any]:
        """Always-on Azure (ARM with rg-blue/vnet-blue, the backup job) and the failover stack's parts."""
        from lab.azure.arm_server import ArmEmulator
        from lab.azure.arm_state import seed_storage_account, seed_virtual_network
        from lab.backups import BackupJob

        scale = self.settings.time_scale
        arm = ArmEmulator(self.workdir / "arm", self.events, time_scale=scale, faults=self.faults)
        arm.start()
        self._stack.append(arm)
        # 1-always: the resource group and the network the failover stack deploys into.
        arm.state.create_resource_group(T.AZURE_RESOURCE_GROUP)
        seed_virtual_network(arm.state, T.AZURE_RESOURCE_GROUP, T.AZURE_VNET)
        seed_storage_account(arm.state, T.AZURE_RESOURCE_GROUP, T.STORAGE_ACCOUNT, T.BACKUP_CONTAINER)
        backups = BackupJob(
            "127.0.0.1", self.rds.port, T.DB_USER, primary_password, T.DB_NAME,
            self.azurite.connection_string, T.BACKUP_CONTAINER, 300.0 / scale, self.events,
        )
        backups.start(first_as_of=backups.last_slot())  # the lab's history: see lab/backups.py
        self._stack.append(backups)

        parts = FailoverParts(self, arm, static_site_port, scale)
        self._parts = parts
        stack = FailoverStack(parts.stack_parts(), scale, self.events, arm.subscription_id)
        self._stack.append(parts)  # stopping the lab tears down whatever the stack left running
        # `curl -s ifconfig.me` of runbook 2.2 step 4: the drill host's address, as the lab's MySQL sees it.
        egress = EgressEcho().start()
        self._stack.append(egress)
        token = secrets.token_urlsafe(24)
        control = ControlServer(stack, token, backups, self.faults).start()
        self._stack.append(control)
        stack_dir = self.workdir / "stacks" / "2-failover"
        write_stack_dir(stack_dir, control.url, token)
        shim = write_terraform_shim(self.workdir / "bin")
        return {
            "azure_subscription_id": arm.subscription_id,
            "azure_tenant_id": arm.tenant_id,
            "azure_client_id": arm.client_id,
            "azure_client_secret": arm.client_secret,
            "azure_authority_host": arm.url,
            "azure_ca_bundle": str(arm.ca_path),
            "arm_endpoint": arm.url,
            "azure_mysql_port": parts.mysql_port,
            "azure_mysql_ca_bundle": str(parts.mysql_tls.ca),
            "egress_echo_url": egress.url,
            # A password for the stack's mysql_admin_password variable (lab.yaml passes it to Terraform).
            "azure_mysql_password": parts.mysql_password,
            "appgw_http_port": parts.appgw_port,
            "terraform_binary": str(shim),
            "failover_stack_dir": str(stack_dir),
            # The lab's own control endpoint (failover stack, backup job, faults), for tests and tools.
            "lab_control_url": control.url,
            "lab_control_token": token,
        }

    def _start_monitoring(self, aws: Any, seed: Any, web: WebTier) -> dict[str, Any]:
        """CloudWatch's side: the chat stand-in subscribed to the alarm topic, the design's alarms, the
        services' metrics and every alarm's evaluation (lab.monitoring); back once each seeded alarm
        has been evaluated (a new alarm is INSUFFICIENT_DATA until then)."""
        from lab.chat import ChatStandIn
        from lab.monitoring import AlbSource, Monitoring, NodeCountSource, RdsCpuSource

        chat = ChatStandIn(confirm=aws.confirm_subscription).start()
        self._stack.append(chat)
        monitoring = Monitoring(aws.alarms, self.settings.time_scale, self.events, [
            AlbSource(web.alb, seed.target_group_arn, seed.alb_arn),
            NodeCountSource(T.CLUSTER, lambda: web.node_count() + aws.in_service(T.WAS_NODEGROUP)),
            RdsCpuSource(T.RDS_INSTANCE, lambda: self.rds.pid),
        ])
        out = aws.seed_alarms(chat.url)
        monitoring.start()
        self._stack.append(monitoring)
        deadline = time.monotonic() + 3 * monitoring.minute + 10
        backend = aws.alarms.backend()
        while any(a.state_value == "INSUFFICIENT_DATA" for a in backend.alarms.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return {**out, "chat_url": chat.url, "chat_messages_url": chat.url.rsplit("/", 1)[0] + "/messages"}

    def _public_dns(self, name: str) -> tuple[str, int] | None:
        """A public DNS name of the failover stack (Azure DNS for a public IP's label), else None."""
        return self._parts.resolve_public(name) if self._parts is not None else None

    def _seed_storage(self) -> None:
        svc = BlobServiceClient.from_connection_string(self.azurite.connection_string)
        web = svc.create_container("$web")
        web.upload_blob(
            "index.html", (HERE / "static" / "maintenance.html").read_bytes(),
            content_settings=ContentSettings(content_type="text/html; charset=utf-8"), overwrite=True,
        )
        svc.create_container(T.BACKUP_CONTAINER)

class FailoverParts:
    """What each resource of the failover stack is in the lab, and how it comes and goes."""

    def __init__(self, lab: Lab, arm: Any, static_site_port: int, time_scale: float) -> None:
        self.lab = lab
        self.arm = arm
        self.static_site_port = static_site_port
        self.time_scale = time_scale
        # Reserved now: the target file names them before the resources exist.
        self.mysql_port = free_port()
        self.appgw_port = free_port()
        self.mysql_password = secrets.token_urlsafe(18)  # suggested; the server uses what Terraform is given
        self.mysql: MariaDB | None = None
        self.mysql_endpoint: Any = None  # lab.azure.mysql_dataplane.FlexibleServerEndpoint
        # Azure MySQL's certificate: its FQDN and the lab's stand-in for it (mysql_fqdn is 127.0.0.1).
        # Flexible Server refuses insecure transport by default (require_secure_transport=ON).
        self.mysql_tls = issue_server_tls(lab.db_ca, lab.workdir / "tls" / "azure-mysql",
                                          ("127.0.0.1", f"{T.AZURE_MYSQL_SERVER}.mysql.database.azure.com"),
                                          require_secure_transport=True)
        self.kube: Any = None
        self._aks_subnet_id: str | None = None
        self.dataplane: Any = None
        # The gateway's view of the network: the Blob web endpoint on the Internet, and in vnet-blue
        # whatever the AKS cluster exposes there (internal load balancers, node ports) — never a ClusterIP.
        from lab.azure.gateway_network import GatewayNetwork

        self.network = GatewayNetwork(
            {T.BLOB_WEB_HOST: ("127.0.0.1", static_site_port)},
            lambda: arm.state.get_virtual_network(T.AZURE_RESOURCE_GROUP, T.AZURE_VNET)["properties"]["addressSpace"]["addressPrefixes"],
            lambda: [self.kube] if self.kube is not None else [],
            vnet_name=T.AZURE_VNET,
        )

    def __repr__(self) -> str:
        return f"FailoverParts(mysql_port={self.mysql_port}, appgw_port={self.appgw_port})"

    def stack_parts(self) -> StackParts:
        nothing = lambda *_: None  # noqa: E731  (Terraform state only: nothing of its own in the lab)
        return StackParts(
            create={MYSQL: self.create_mysql, DATABASE: self.create_database, FIREWALL: nothing, PARAMETER: nothing,
                    AKS: lambda _: self.create_aks(), APPGW: lambda _: self.create_appgw()},
            destroy={MYSQL: self.destroy_mysql, DATABASE: self.destroy_database, FIREWALL: nothing, PARAMETER: nothing,
                     AKS: self.destroy_aks, APPGW: self.destroy_appgw},
            outputs=self.outputs,
            # Server processes start during the modeled creation, unseen until it completes.
            prepare={MYSQL: self.prepare_mysql, AKS: lambda _: self.prepare_aks()},
        )

    def outputs(self, present: set[str]) -> dict[str, Any]:
        """The seeds' Terraform outputs for what exists (Terraform omits outputs of absent resources)."""
        out: dict[str, Any] = {"resource_group_name": T.AZURE_RESOURCE_GROUP}
        if MYSQL in present:
            # The lab's "FQDN" is its loopback address; Azure's would be mysql-dr-blue.mysql.database.azure.com.
            out.update(mysql_fqdn="127.0.0.1", mysql_admin_username=T.AZURE_MYSQL_ADMIN,
                       mysql_server_name=T.AZURE_MYSQL_SERVER)
        if DATABASE in present:
            out.update(mysql_database_name=T.DB_NAME)
        if AKS in present:
            out.update(aks_cluster_name=T.AKS_CLUSTER)
        if APPGW in present:
            # appgw_fqdn: the public IP's DNS name (domain_name_label), the one CloudFront can use.
            pip = self.arm.state.get_public_ip(T.AZURE_RESOURCE_GROUP, T.APPGW_PUBLIC_IP)
            out.update(appgw_name=T.APPGW_NAME, appgw_public_ip=pip["properties"]["ipAddress"],
                       appgw_fqdn=pip["properties"]["dnsSettings"]["fqdn"])
        return out

    def prepare_mysql(self, variables: dict[str, str]) -> None:
        """The server process and its administrator login with the password Terraform was given
        (TF_VAR_...), on a private port nobody is told: the server is not reachable before `create_mysql`."""
        # MariaDB on a port of its own; clients reach it through the server's public endpoint on the
        # reserved port, which applies the firewall and refuses insecure transport as Azure does.
        db = MariaDB(self.lab.workdir / "azure-mysql", "azmysql", tls=self.mysql_tls)
        self.mysql = db  # set before start: a failed start is still stopped by destroy_mysql
        db.start()
        conn = db.connect()
        try:
            with conn.cursor() as cur:
                # As Flexible Server's administrator: may create and use every database of the server.
                for host in ("127.0.0.1", "localhost", "%"):
                    cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s",
                                (T.AZURE_MYSQL_ADMIN, host, variables["mysql_admin_password"]))
                    cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@%s", (T.AZURE_MYSQL_ADMIN, host))
        finally:
            conn.close()

    def create_mysql(self, variables: dict[str, str]) -> None:
        """The server as Azure shows it once created: in ARM and behind its public endpoint."""
        from lab.azure.mysql_dataplane import FlexibleServerEndpoint

        assert self.mysql is not None, "the server was not prepared"
        # Public access (allowed IP addresses), no firewall rule: nobody gets in until one allows them.
        self.arm.state.create_mysql_flexible_server(T.AZURE_RESOURCE_GROUP, T.AZURE_MYSQL_SERVER,
                                                    f"{T.AZURE_MYSQL_SERVER}.mysql.database.azure.com", T.AZURE_MYSQL_ADMIN)
        self.mysql_endpoint = FlexibleServerEndpoint(self.mysql_port, self.mysql.port, self.mysql_client_allowed,
                                                     self.lab.events, name=T.AZURE_MYSQL_SERVER).start()

    def mysql_client_allowed(self, address: str) -> bool:
        """The server's firewall: its ARM firewall rules, once they have taken effect."""
        return bool(self.arm.state.mysql_client_allowed(T.AZURE_RESOURCE_GROUP, T.AZURE_MYSQL_SERVER, address))

    def create_database(self, variables: dict[str, str]) -> None:
        """azurerm_mysql_flexible_database: without it there is nothing to restore into."""
        assert self.mysql is not None, "the database's server is not there"
        conn = self.mysql.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{T.DB_NAME}` CHARACTER SET utf8mb4")
        finally:
            conn.close()

    def destroy_database(self) -> None:
        if self.mysql is not None and self.mysql.alive():
            conn = self.mysql.connect()
            try:
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS `{T.DB_NAME}`")
            finally:
                conn.close()

    def destroy_mysql(self) -> None:
        self.arm.state.delete_mysql_flexible_server(T.AZURE_RESOURCE_GROUP, T.AZURE_MYSQL_SERVER)
        if self.mysql_endpoint is not None:
            self.mysql_endpoint.stop()
            self.mysql_endpoint = None
        if self.mysql is not None:
            self.mysql.stop()
            shutil.rmtree(self.mysql.basedir, ignore_errors=True)  # a deleted server keeps no data
            self.mysql = None

    def prepare_aks(self) -> None:
        """AKS into vnet-blue/snet-aks: a new API server (new CA, new token) for every creation, its
        credentials served by ARM's listClusterUserCredential, never written where a drill would find them."""
        import ipaddress

        from lab.azure.arm_base import ArmError
        from lab.kube.kubelet import PetClinicRunner
        from lab.kube.network import ClusterNetwork
        from lab.kube.server import KubeApiServer

        rg, vnet = T.AZURE_RESOURCE_GROUP, T.AZURE_VNET
        subnet = self.arm.state.get_subnet(rg, vnet, T.AKS_SUBNET)

        def other_subnet(name: str) -> ipaddress.IPv4Network | None:
            try:
                return ipaddress.IPv4Network(self.arm.state.get_subnet(rg, vnet, name)["properties"]["addressPrefix"])
            except (ArmError, KeyError, ValueError):  # ARM's 404 (no such subnet); no single or no valid addressPrefix
                return None

        network = ClusterNetwork(node_subnet=ipaddress.IPv4Network(subnet["properties"]["addressPrefix"]),
                                 subnet_name=T.AKS_SUBNET, subnets=other_subnet)
        kube = KubeApiServer(self.lab.workdir / "aks", PetClinicRunner(self.lab.workdir / "logs"),
                             time_scale=self.time_scale, events=self.lab.events, cluster_name=T.AKS_CLUSTER, network=network,
                             faults=self.lab.faults)
        self.kube = kube  # set before start: a failed start is still stopped by destroy_aks
        kube.start()
        self._aks_subnet_id = subnet["id"]

    def create_aks(self) -> None:
        """The cluster as ARM shows it once created: its credentials from listClusterUserCredential."""
        assert self.kube is not None, "the cluster was not prepared"
        self.arm.clusters.register(T.AZURE_RESOURCE_GROUP, T.AKS_CLUSTER, self.kube.client_kubeconfig,
                                   subnet_id=self._aks_subnet_id)

    def destroy_aks(self) -> None:
        self.arm.clusters.unregister(T.AZURE_RESOURCE_GROUP, T.AKS_CLUSTER)
        if self.kube is not None:
            self.kube.stop()  # its CA and token die with it: the next creation makes new ones
            self.kube = None

    def create_appgw(self) -> None:
        from lab.azure.appgw_dataplane import AppGatewayDataPlane
        from lab.azure.arm_state import seed_app_gateway

        # The lab's "public IP" is its loopback address; its DNS name is resolved by the lab's edge.
        self.arm.state.create_public_ip(T.AZURE_RESOURCE_GROUP, T.APPGW_PUBLIC_IP, "127.0.0.1", T.APPGW_DNS_LABEL)
        # immediate: the stack has already played the gateway's creation time.
        self.arm.state.create_app_gateway(T.AZURE_RESOURCE_GROUP, T.APPGW_NAME, seed_app_gateway(
            rg=T.AZURE_RESOURCE_GROUP, name=T.APPGW_NAME, blob_fqdn=T.BLOB_WEB_HOST, subscription_id=self.arm.subscription_id,
        ), immediate=True)
        self.dataplane = AppGatewayDataPlane(
            self.arm.state, T.AZURE_RESOURCE_GROUP, T.APPGW_NAME, self.resolve, self.time_scale, self.lab.events,
            port=self.appgw_port,
        )
        self.dataplane.start()

    def destroy_appgw(self) -> None:
        if self.dataplane is not None:
            self.dataplane.stop()
            self.dataplane = None
        self.arm.state.delete_app_gateway(T.AZURE_RESOURCE_GROUP, T.APPGW_NAME)
        self.arm.state.delete_public_ip(T.AZURE_RESOURCE_GROUP, T.APPGW_PUBLIC_IP)

    def resolve_public(self, name: str) -> tuple[str, int] | None:
        """Public DNS: a public IP's DNS name while it exists -> where that IP's listener is (the gateway's)."""
        pip = self.arm.state.public_ip_by_fqdn(name)
        if pip is None or pip["name"].lower() != T.APPGW_PUBLIC_IP.lower():
            return None
        return (pip["properties"]["ipAddress"], self.appgw_port)

    def resolve(self, address: str, port: int) -> list[tuple[str, int]]:
        """The App Gateway's view of the network (lab.azure.gateway_network): Unreachable for a ClusterIP."""
        return self.network.resolve(address, port)

    def stop(self) -> None:
        for destroy in (self.destroy_appgw, self.destroy_aks, self.destroy_mysql):
            try:
                destroy()
            except Exception:  # noqa: BLE001 — stopping goes on through every resource whatever one raises: nothing may leak
                pass


def edge_endpoint_key(location: str) -> str:
    """The endpoints key of an edge location's address: `edge_nrt57_p3_address` (a `${lab:KEY}` name)."""
    return "edge_" + "".join(c if c.isalnum() else "_" for c in location.lower()) + "_address"


def write_terraform_shim(bin_dir: Path) -> Path:
    """An executable named `terraform` running lab/terraform_shim.py with this interpreter."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "terraform"
    shim.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(HERE.parent)!r})\n"
        "from lab.terraform_shim import run\n"
        "raise SystemExit(run(sys.argv[1:]))\n"
    )
    shim.chmod(0o755)
    return shim
