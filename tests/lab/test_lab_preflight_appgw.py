"""The App Gateway / MySQL / CloudFront preflight findings against the running lab, each produced by
breaking the real part (a CA bundle, the origin output, the address echo), through the same facts and
checks a dry run, readiness and a real drill's start use (steps.preflight.run). A healthy lab gives none.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trustme

from drill.config import Target
from lab.ports import free_port
from steps import preflight

pytestmark = pytest.mark.lab

PHASES = ["phase1", "phase2", "phase3"]


def found(target: Target) -> dict[str, str]:
    return {f.check: f.detail for f in preflight.run(target, PHASES)}


def with_(target: Target, section: str, sub: str | None = None, **values: Any) -> Target:
    sec = getattr(target, section)
    if sub is None:
        return target.model_copy(update={section: sec.model_copy(update=values)})
    return target.model_copy(update={section: sec.model_copy(update={sub: getattr(sec, sub).model_copy(update=values)})})


def test_a_healthy_lab_has_no_finding(target: Target) -> None:
    assert found(target) == {}


def test_an_ip_address_output_as_cloudfronts_origin(target: Target) -> None:
    detail = found(with_(target, "failover_stack", origin_output="appgw_public_ip"))
    assert list(detail) == ["preflight.cloudfront_origin_dns_name"]
    assert "CloudFront refuses an IP address as an origin domain" in detail["preflight.cloudfront_origin_dns_name"]


def test_the_primarys_ca_bundle_missing_unreadable_a_leaf_or_the_wrong_ca(target: Target, lab: dict[str, Any],
                                                                         tmp_path: Path) -> None:
    assert "database.ssl_ca is not set" in found(with_(target, "database", ssl_ca=None))["preflight.primary_database_tls"]
    assert "cannot read" in found(with_(target, "database", ssl_ca=str(tmp_path / "nope.pem")))["preflight.primary_database_tls"]
    leaf = Path(lab["workdir"]) / "tls" / "rds" / "server-cert.pem"  # the server's own certificate, not its CA
    assert "no certificate authority" in found(with_(target, "database", ssl_ca=str(leaf)))["preflight.primary_database_tls"]
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    detail = found(with_(target, "database", ssl_ca=str(other)))
    assert list(detail) == ["preflight.primary_database_tls"]
    assert "CERTIFICATE_VERIFY_FAILED" in detail["preflight.primary_database_tls"]


def test_azure_mysqls_ca_bundle_missing_or_not_pem(target: Target, tmp_path: Path) -> None:
    detail = found(with_(target, "azure", "mysql", ssl_ca=None))
    assert list(detail) == ["preflight.azure_mysql_tls"] and "require_secure_transport=ON" in detail["preflight.azure_mysql_tls"]
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    assert "holds no PEM certificate" in found(with_(target, "azure", "mysql", ssl_ca=str(junk)))["preflight.azure_mysql_tls"]


def test_the_drills_address_cannot_be_learned(target: Target) -> None:
    dead = f"http://127.0.0.1:{free_port()}/"
    detail = found(with_(target, "azure", "mysql", client_address_url=dead))
    assert list(detail) == ["preflight.mysql_client_address"]
    assert "did not tell the drill its address" in detail["preflight.mysql_client_address"]
    detail = found(with_(target, "azure", "mysql", client_address_url=None))
    assert "cannot create the firewall rule" in detail["preflight.mysql_client_address"]
