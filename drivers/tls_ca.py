"""What a CA bundle file holds: the certificates a database client verifies its server with.

A client given a file that is missing, unreadable, not PEM, or holds only a leaf certificate (no
certificate authority) cannot verify the server: pymysql and the mysql client fail the TLS
handshake, or, worse, a client configured to "prefer" TLS carries on unverified. Read-only.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from cryptography import x509


def inspect_ca_bundle(path: str) -> dict[str, Any]:
    """{"path", "certificates", "authorities", "expired"} or {"path", "error"}."""
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except OSError as e:
        return {"path": str(p), "error": f"cannot read {p}: {e.strerror or type(e).__name__}"}
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        return {"path": str(p), "error": f"{p} holds no PEM certificate"}
    now = dt.datetime.now(dt.UTC)
    authorities = [c for c in certs if _is_authority(c)]
    return {
        "path": str(p), "certificates": len(certs), "authorities": len(authorities),
        "expired": sum(1 for c in authorities if c.not_valid_after_utc < now),
        "subjects": [c.subject.rfc4514_string() for c in authorities][:5],
    }


def _is_authority(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:  # a v1 root has no extensions: self-issued is the only sign
        return cert.issuer == cert.subject
