"""Seed moto with the AWS side of the seed topology, through boto3 as Terraform would."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from lab import topology as T

# The two method sets CloudFront offers beyond GET/HEAD (AllowedMethods must be one of the three).
READ_METHODS = ["GET", "HEAD", "OPTIONS"]
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]


# An Amazon EKS optimized AMI id's shape; moto launches instances from any id.
EKS_NODE_AMI = "ami-0e2b6f1b4c9a7d3e5"


@dataclass(frozen=True)
class AwsSeed:
    distribution_id: str
    distribution_domain: str
    alb_arn: str
    alb_dns_name: str
    target_group_arn: str
    secret_arn: str


def client(service: str, endpoint: str, key: str, secret: str) -> Any:
    return boto3.client(
        service, region_name=T.REGION, endpoint_url=endpoint,
        aws_access_key_id=key, aws_secret_access_key=secret,
    )


def seed(endpoint: str, key: str, secret: str, db_secret: dict[str, Any]) -> AwsSeed:
    ec2 = client("ec2", endpoint, key, secret)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in (("10.0.1.0/24", "ap-northeast-2a"), ("10.0.2.0/24", "ap-northeast-2c"))
    ]

    eks = client("eks", endpoint, key, secret)
    role = f"arn:aws:iam::{T.ACCOUNT_ID}:role/blue-eks-role"
    eks.create_cluster(name=T.CLUSTER, roleArn=role, resourcesVpcConfig={"subnetIds": subnets})
    autoscaling = client("autoscaling", endpoint, key, secret)
    for ng, label in ((T.WEB_NODEGROUP, "web"), (T.WAS_NODEGROUP, "was")):
        created = eks.create_nodegroup(
            clusterName=T.CLUSTER, nodegroupName=ng, scalingConfig=dict(T.NODEGROUP_SCALING),
            subnets=subnets, nodeRole=f"arn:aws:iam::{T.ACCOUNT_ID}:role/blue-node-role",
            labels={"role": label}, instanceTypes=["t3.medium"],
        )["nodegroup"]
        # EKS makes each managed node group an Auto Scaling group (named in its `resources`) from a
        # launch template of its own; the group's instances are the nodes.
        template = f"eks-{ng}"
        ec2.create_launch_template(LaunchTemplateName=template, LaunchTemplateData={
            "ImageId": EKS_NODE_AMI, "InstanceType": "t3.medium",
        })
        (group,) = created["resources"]["autoScalingGroups"]
        scaling = T.NODEGROUP_SCALING
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=group["name"], LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
            MinSize=scaling["minSize"], MaxSize=scaling["maxSize"], DesiredCapacity=scaling["desiredSize"],
            VPCZoneIdentifier=",".join(subnets),
            Tags=[{"Key": "eks:nodegroup-name", "Value": ng, "PropagateAtLaunch": True},
                  {"Key": "eks:cluster-name", "Value": T.CLUSTER, "PropagateAtLaunch": True}],
        )

    elb = client("elbv2", endpoint, key, secret)
    alb = elb.create_load_balancer(Name=T.ALB_NAME, Subnets=subnets, Scheme="internet-facing", Type="application")[
        "LoadBalancers"
    ][0]
    tg = elb.create_target_group(
        Name=T.TARGET_GROUP, Protocol="HTTP", Port=30080, VpcId=vpc, TargetType="instance",
        HealthCheckProtocol="HTTP", HealthCheckPath="/actuator/health", HealthCheckIntervalSeconds=30,
        HealthCheckTimeoutSeconds=5, HealthyThresholdCount=5, UnhealthyThresholdCount=2, Matcher={"HttpCode": "200"},
    )["TargetGroups"][0]
    elb.create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )

    sm = client("secretsmanager", endpoint, key, secret)
    secret_arn = sm.create_secret(Name=T.DB_SECRET_NAME, SecretString=json.dumps(db_secret))["ARN"]

    cf = client("cloudfront", endpoint, key, secret)
    dist = cf.create_distribution(DistributionConfig=distribution_config(alb["DNSName"]))["Distribution"]
    return AwsSeed(dist["Id"], dist["DomainName"], alb["LoadBalancerArn"], alb["DNSName"], tg["TargetGroupArn"], secret_arn)


def distribution_config(alb_dns: str) -> dict[str, Any]:
    def custom_origin(origin_id: str, domain: str, policy: str) -> dict[str, Any]:
        return {
            "Id": origin_id, "DomainName": domain, "OriginPath": "",
            "ConnectionAttempts": 3, "ConnectionTimeout": 10,
            "CustomOriginConfig": {
                "HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": policy,
                "OriginReadTimeout": 30, "OriginKeepaliveTimeout": 5,
                "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
            },
        }

    def behavior(target: str, methods: list[str]) -> dict[str, Any]:
        return {
            "TargetOriginId": target,
            "ViewerProtocolPolicy": "redirect-to-https",
            "AllowedMethods": {"Quantity": len(methods), "Items": list(methods),
                               "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}},
            "CachePolicyId": T.CACHING_DISABLED_POLICY,
            "Compress": True,
        }

    # A configuration the real API accepts: origin failover (GET/HEAD/OPTIONS only) for the site,
    # and the write paths on behaviors that allow every method and go to the primary directly.
    writes = [{"PathPattern": pattern, **behavior(T.PRIMARY_ORIGIN, ALL_METHODS)} for pattern in T.WRITE_PATH_PATTERNS]
    return {
        "CallerReference": "blue-petclinic",
        "Aliases": {"Quantity": 1, "Items": [T.SITE_ALIAS]},
        "Comment": "PetClinic with origin failover to the Azure Blob maintenance page",
        "Enabled": True,
        "Origins": {"Quantity": 2, "Items": [
            custom_origin(T.PRIMARY_ORIGIN, alb_dns, "http-only"),
            custom_origin(T.SECONDARY_ORIGIN, T.BLOB_WEB_HOST, "https-only"),
        ]},
        "OriginGroups": {"Quantity": 1, "Items": [{
            "Id": T.ORIGIN_GROUP,
            "FailoverCriteria": {"StatusCodes": {"Quantity": len(T.FAILOVER_STATUS_CODES), "Items": T.FAILOVER_STATUS_CODES}},
            "Members": {"Quantity": 2, "Items": [{"OriginId": T.PRIMARY_ORIGIN}, {"OriginId": T.SECONDARY_ORIGIN}]},
        }]},
        "DefaultCacheBehavior": behavior(T.ORIGIN_GROUP, READ_METHODS),
        "CacheBehaviors": {"Quantity": len(writes), "Items": writes},
    }
