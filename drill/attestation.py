"""The signed statement of a sealed bundle: an in-toto Statement v1 in a DSSE v1 envelope, Ed25519.

`attestation.json` is a DSSE JSON envelope (secure-systems-lab/dsse, envelope.md v1.0.0) whose
payload is an in-toto Statement (in-toto/attestation, spec/v1/statement.md):

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "summary.json", "digest": {"sha256": "…"}}, …],   every file but this one
     "predicateType": "https://dr-drill.invalid/attestation/drill-run/v1",
     "predicate": {"run_id", "target", "verdict", "phases": [...], "rpo_seconds", …, "previous"}}

`payloadType` is `application/vnd.in-toto+json` (in-toto spec/v1/envelope.md); the envelope is
stored alone in a file with the `.json` suffix, as that document's naming convention says. Each
signature is Ed25519 (RFC 8032, through `cryptography`) over DSSE's pre-authentication encoding
(dsse protocol.md v1.0.0):

    PAE(type, body) = "DSSEv1" + SP + LEN(type) + SP + type + SP + LEN(body) + SP + body

with LEN the ASCII decimal byte length. `keyid` is `sha256:` + the hex SHA-256 of the raw 32-byte
public key: a hint to pick the key, never trusted (DSSE: KEYID "MUST NOT be used for security
decisions"). An unsigned bundle's envelope has `"signatures": []` (the in-toto envelope requires
the array, not that it be non-empty): it is sealed, and `drill verify` reports it as "unsigned".

The predicate type names this harness's own schema (README, "Signed bundles"); `.invalid` (RFC 6761)
makes it a URI no one else can own, as in-toto's TypeURI asks of a collision-resistant identifier.
Core module: the only dependency is `cryptography` (no cloud SDK).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drill.bundle import ATTESTATION_NAME, MANIFEST_NAME, BundleError, digest_file, read_regular, scan

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://dr-drill.invalid/attestation/drill-run/v1"


class SigningKeyError(ValueError):
    """A signing or verification key that cannot be used; the message says which and why."""



def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of (payload type, serialized body)."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


# -- keys -------------------------------------------------------------------------------------------
def keyid(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def private_key_from_pem(pem: bytes, where: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PKCS#8 PEM (`openssl genpkey -algorithm ed25519`, `drill keygen`)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        reason = "it is encrypted (give an unencrypted PKCS#8 key)" if isinstance(e, TypeError) else "not a PEM private key"
        raise SigningKeyError(f"{where}: {reason}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{where}: an Ed25519 key is needed, this is {type(key).__name__.lstrip('_')}")
    return key


def public_key_from_pem(pem: bytes, where: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo, `openssl pkey -pubout`); a private key gives its public half."""
    try:
        key: Any = serialization.load_pem_public_key(pem)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(pem, password=None).public_key()
        except (ValueError, TypeError):
            raise SigningKeyError(f"{where}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{where}: an Ed25519 key is needed, this is {type(key).__name__.lstrip('_')}")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        return public_key_from_pem(Path(path).read_bytes(), str(path))
    except OSError as e:
        raise SigningKeyError(f"{path}: {e.strerror or e}") from None


def generate() -> tuple[bytes, bytes]:
    """(private PKCS#8 PEM, public SubjectPublicKeyInfo PEM) of a new Ed25519 key."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def signing_key(evidence: Any) -> Ed25519PrivateKey | None:
    """The target's signing key (its `evidence:` section), or None when the target signs nothing.

    `signing_key` holds the PEM itself (normally `${env:NAME}`, so the key lives in an environment
    variable named in the target); `signing_key_file` is a path to it. SigningKeyError names the key.
    """
    if evidence is None:
        return None
    if getattr(evidence, "signing_key", None) is not None:
        pem = evidence.signing_key.get_secret_value().encode()
        return private_key_from_pem(pem, "evidence.signing_key")
    path = getattr(evidence, "signing_key_file", None)
    if path:
        p = Path(path).expanduser()
        try:
            pem = p.read_bytes()
        except OSError as e:
            raise SigningKeyError(f"evidence.signing_key_file: {p}: {e.strerror or e}") from None
        return private_key_from_pem(pem, f"evidence.signing_key_file ({p})")
    return None


# -- statement and envelope -------------------------------------------------------------------------
def subjects(bundle: Path) -> dict[str, str]:
    """name → SHA-256 of every regular file in the bundle but the attestation itself (the manifest included)."""
    found = scan(bundle)
    out = {rel: digest_file(p)[0] for rel, p in found.files.items()}
    manifest = Path(bundle) / MANIFEST_NAME
    if manifest.exists():
        out[MANIFEST_NAME] = digest_file(manifest)[0]
    return dict(sorted(out.items()))


def statement(files: Mapping[str, str], predicate: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": sha}} for name, sha in sorted(files.items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": dict(predicate),
    }


def envelope(stmt: Mapping[str, Any], key: Ed25519PrivateKey | None) -> dict[str, Any]:
    body = json.dumps(stmt, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    signatures = []
    if key is not None:
        signatures.append({"keyid": keyid(key.public_key()), "sig": base64.b64encode(key.sign(pae(PAYLOAD_TYPE, body))).decode()})
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(body).decode(), "signatures": signatures}


def write_attestation(bundle: Path, predicate: Mapping[str, Any], key: Ed25519PrivateKey | None) -> Path:
    """Write attestation.json over every file of the (already sealed) bundle; atomically."""
    bundle = Path(bundle)
    env = envelope(statement(subjects(bundle), predicate), key)
    out, tmp = bundle / ATTESTATION_NAME, bundle / f".{ATTESTATION_NAME}.tmp"
    tmp.write_text(json.dumps(env, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out


def _b64(text: Any) -> bytes:
    """Standard or URL-safe base64, with or without padding (DSSE: verifiers MUST accept either)."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    s = text.strip()
    s += "=" * (-len(s) % 4)
    alt = b"-_" if ("-" in s or "_" in s) else None
    return base64.b64decode(s, altchars=alt, validate=True)


@dataclass
class Check:
    """The attestation's verdict on a bundle.

    signed: "valid" (a signature verified with the given key), "unsigned", "not checked" (signed,
    no key given) or "invalid". problems: one line each, starting with the check that failed:
    `attestation:` (missing or malformed), `signature:` or `statement:`.
    """

    signed: str = "unsigned"
    keyids: list[str] = field(default_factory=list)
    predicate: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def check(bundle: Path, public_key: Ed25519PublicKey | None = None) -> Check:
    """Check attestation.json: the signature (with `public_key`, first, as DSSE's protocol says), then
    that the Statement's subjects are exactly the bundle's files with their present digests."""
    out = Check()
    path = Path(bundle) / ATTESTATION_NAME
    try:
        doc = json.loads(read_regular(path).decode("utf-8"))
    except FileNotFoundError:
        out.problems.append(f"attestation: missing ({ATTESTATION_NAME})")
        out.signed = "invalid" if public_key is not None else "unsigned"
        if public_key is not None:
            out.problems.append("signature: the bundle has no attestation to carry a signature")
        return out
    except (OSError, BundleError, UnicodeDecodeError, json.JSONDecodeError) as e:
        out.problems.append(f"attestation: malformed: {ATTESTATION_NAME} is not a readable JSON envelope ({e})")
        out.signed = "invalid"
        return out
    if not isinstance(doc, dict) or doc.get("payloadType") != PAYLOAD_TYPE or not isinstance(doc.get("signatures"), list):
        out.problems.append(f"attestation: malformed: not a DSSE envelope with payloadType {PAYLOAD_TYPE} and a signatures array")
        out.signed = "invalid"
        return out
    try:
        body = _b64(doc.get("payload"))
    except (ValueError, binascii.Error):
        out.problems.append("attestation: malformed: the payload is not base64")
        out.signed = "invalid"
        return out
    sigs = [s for s in doc["signatures"] if isinstance(s, dict)]
    out.keyids = [str(s.get("keyid", "")) for s in sigs]
    if len(sigs) != len(doc["signatures"]):
        out.problems.append("attestation: malformed: a signature is not an object")
    if public_key is None:
        out.signed = "not checked" if sigs else "unsigned"
    elif not sigs:
        out.signed = "invalid"
        out.problems.append(f"signature: the bundle is unsigned, but a key was given ({keyid(public_key)})")
    else:
        message = pae(PAYLOAD_TYPE, body)
        ok = False
        for s in sigs:
            try:
                public_key.verify(_b64(s.get("sig")), message)
                ok = True
                break
            except (InvalidSignature, ValueError, binascii.Error):
                continue
        out.signed = "valid" if ok else "invalid"
        if not ok:
            out.problems.append(f"signature: does not verify with key {keyid(public_key)} (signed by "
                                f"{', '.join(k or '?' for k in out.keyids)}): the statement was changed after "
                                "signing, or signed with another key")
    try:
        stmt = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        out.problems.append("statement: malformed: the payload is not JSON")
        return out
    if not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_TYPE or not isinstance(stmt.get("subject"), list):
        out.problems.append(f"statement: malformed: not an in-toto Statement ({STATEMENT_TYPE})")
        return out
    if stmt.get("predicateType") != PREDICATE_TYPE:
        out.problems.append(f"statement: predicateType is {stmt.get('predicateType')!r}, expected {PREDICATE_TYPE}")
    predicate = stmt.get("predicate")
    out.predicate = predicate if isinstance(predicate, dict) else {}
    claimed: dict[str, str] = {}
    for s in stmt["subject"]:
        name = s.get("name") if isinstance(s, dict) else None
        sha = (s.get("digest") or {}).get("sha256") if isinstance(s, dict) and isinstance(s.get("digest"), dict) else None
        if not isinstance(name, str) or not isinstance(sha, str):
            out.problems.append(f"statement: malformed subject {s!r}")
            continue
        claimed[name] = sha
    try:
        present = subjects(bundle)
    except (OSError, BundleError) as e:
        out.problems.append(f"statement: the bundle's files cannot be read ({e})")
        return out
    for name in sorted(set(claimed) | set(present)):
        if name not in present:
            out.problems.append(f"statement: subject {name} is not in the bundle")
        elif name not in claimed:
            out.problems.append(f"statement: {name} is not a subject of the statement")
        elif claimed[name] != present[name]:
            out.problems.append(f"statement: {name}'s SHA-256 differs from its subject's")
    return out
