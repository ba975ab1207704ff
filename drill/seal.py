"""Sealing a bundle: its chain link, manifest.json, then the signed attestation.json. Core module.

    seal_bundle(bundle, key)          # key: an Ed25519 private key, or None for an unsigned seal

The last thing written into a bundle (drill.finalize calls it after the reports). For a drill
bundle (one with summary.json) it takes the chain lock of the run's target, links the run to the
chain's head (drill.chain), writes the manifest, signs the in-toto Statement over every file
(drill.attestation), and moves the head to this run. Sealing again keeps the run's own link and
leaves the head alone, so a resealed old run breaks the link of the run after it.
"""
from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drill import chain
from drill.attestation import keyid, write_attestation
from drill.bundle import BundleError, Manifest, manifest_digest, read_manifest, read_regular, write_manifest


@dataclass
class Sealed:
    bundle: Path
    previous: dict[str, str] | None
    manifest_sha256: str
    signed_by: str | None  # keyid, None: unsigned


def rfc3339(value: Any) -> Any:
    """An ISO 8601 UTC time as RFC 3339 with `Z` (in-toto's Timestamp); anything else as it is."""
    if not isinstance(value, str):
        return value
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return value
    if t.tzinfo is None:
        return value
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def predicate(summary: dict[str, Any], environment: dict[str, Any], manifest: Manifest) -> dict[str, Any]:
    """The run's key figures, as an auditor reads them first (README: "the drill-run predicate")."""
    phases = []
    for p in summary.get("phases") or []:
        if isinstance(p, dict):
            phases.append({k: p.get(k) for k in ("name", "rto_seconds", "rto_target_seconds", "passed",
                                                  "rto_target_real_seconds", "rto_real_equivalent_seconds")})
    return {
        "run_id": manifest.bundle,
        "target": summary.get("target"),
        "time_scale": summary.get("time_scale"),
        "dry_run": summary.get("dry_run"),
        "verdict": summary.get("verdict"),
        "phases": phases,
        "rpo_seconds": summary.get("rpo_seconds"),
        "rpo_target_seconds": summary.get("rpo_target_seconds"),
        "downtime_seconds": summary.get("downtime_seconds"),
        "operator": summary.get("operator") or environment.get("operator"),
        "git_revision": summary.get("git_revision") or environment.get("git_revision"),
        "harness_version": summary.get("harness_version") or environment.get("harness_version"),
        "started_at": rfc3339(summary.get("started_at")),
        "finished_at": rfc3339(summary.get("finished_at")),
        "sealed_at": rfc3339(manifest.created_at.isoformat()),
        "previous": manifest.previous,
    }


def _json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(read_regular(path).decode("utf-8"))
    except (OSError, BundleError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def seal_bundle(bundle: Path, key: Ed25519PrivateKey | None = None) -> Sealed:
    """Link, manifest, attestation (signed with `key` if given), head. Returns what was sealed."""
    bundle = Path(bundle)
    summary = _json(bundle / "summary.json")
    environment = _json(bundle / "environment.json")
    target = summary.get("target") if isinstance(summary.get("target"), str) else None
    root = bundle.resolve().parent
    before, _ = read_manifest(bundle)
    resealing = before is not None and before.version >= 2
    with chain.locked(root, target) if target else nullcontext():
        if resealing:
            assert before is not None  # resealing: there is a manifest
            previous = before.previous
        elif target:
            previous = chain.link_for(root, target, exclude=bundle.resolve().name)
        else:
            previous = None
        write_manifest(bundle, previous)
        manifest, problems = read_manifest(bundle)
        if manifest is None:
            raise BundleError(f"the manifest just written does not read back: {problems}")
        write_attestation(bundle, predicate(summary, environment, manifest), key)
        digest = manifest_digest(bundle)
        if target and not resealing:
            chain.write_head(root, target, manifest.bundle, digest, manifest.created_at.isoformat())
    return Sealed(bundle, previous, digest, None if key is None else keyid(key.public_key()))
