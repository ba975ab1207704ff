"""Names of the seed topology (shared/seeds), used by the lab and by targets/lab.yaml."""
from __future__ import annotations

REGION = "ap-northeast-2"
ACCOUNT_ID = "123456789012"  # moto's default account
CLUSTER = "blue-eks"
WEB_NODEGROUP = "blue-web-ng"
WAS_NODEGROUP = "blue-was-ng"
NODEGROUP_SCALING = {"minSize": 2, "maxSize": 4, "desiredSize": 2}
ALB_NAME = "blue-alb"
TARGET_GROUP = "blue-web-tg"
SITE_ALIAS = "blueisthenewblack.store"
# The CloudFront edge locations the lab runs, each on its own loopback address: the first one answers
# on the public site address (where the drill host's DNS would send it: Seoul); vantages reach the
# others by address (probe.vantages[].connect_to, `${lab:edge_<location>_address}`). A configuration
# change reaches each at its own time within the deploy window (lab.aws.cloudfront).
EDGE_LOCATIONS: tuple[tuple[str, str], ...] = (
    ("ICN54-P1", "127.0.0.1"),  # Seoul
    ("NRT57-P3", "127.0.0.11"),  # Tokyo
    ("SIN2-P1", "127.0.0.12"),  # Singapore
)
PRIMARY_ORIGIN = "primary-aws"
SECONDARY_ORIGIN = "secondary-azure"
ORIGIN_GROUP = "petclinic-failover"
FAILOVER_STATUS_CODES = [500, 502, 503, 504]
# PetClinic's write paths (its owner, pet and visit forms: GET shows the form, POST submits it). The
# real API refuses POST/PUT/PATCH/DELETE on a behavior that targets an origin group, so these go, in
# ordered cache behaviors, straight to the primary origin; everything else takes the default
# behavior (GET/HEAD/OPTIONS) through the origin group. CloudFront path patterns: `*` spans `/`.
WRITE_PATH_PATTERNS = [
    "/owners/new",
    "/owners/*/edit",
    "/owners/*/pets/new",
    "/owners/*/pets/*/edit",
    "/owners/*/pets/*/visits/new",
]
STORAGE_ACCOUNT = "bloberry01"
BLOB_WEB_HOST = f"{STORAGE_ACCOUNT}.z12.web.core.windows.net"
BACKUP_CONTAINER = "mysql-backups"
DB_NAME = "petclinic"
DB_USER = "petclinic"
DB_SECRET_NAME = "petclinic/rds"
# AWS managed cache policy "CachingDisabled": the drill must see origin behaviour, not cache hits.
CACHING_DISABLED_POLICY = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
AZURE_RESOURCE_GROUP = "rg-blue"
AZURE_VNET = "vnet-blue"
AZURE_MYSQL_SERVER = "mysql-dr-blue"
AZURE_MYSQL_ADMIN = "mysqladmin"
AKS_CLUSTER = "aks-dr-blue"
AKS_SUBNET = "snet-aks"
APPGW_NAME = "appgw-blue"
APPGW_PUBLIC_IP = "pip-appgw-blue"
# The DNS name label the failover stack gives the gateway's public IP (domain_name_label), so that
# the stack can output a name CloudFront accepts as an origin: <label>.koreacentral.cloudapp.azure.com.
APPGW_DNS_LABEL = "appgw-blue-dr"
# The primary database's RDS instance identifier (the seeds name none).
RDS_INSTANCE = "blue-rds"
# Design §7: CloudWatch alarms → SNS → the team's chat (AWS Chatbot → Slack).
ALARM_TOPIC = "blue-alarms"
# An SQS queue subscribed to the alarm topic beside the chat integration: where the drill reads
# when SNS delivered each notification (a drill cannot read Slack).
ALARM_RECEIPTS_QUEUE = "dr-drill-alarm-receipts"
