"""Signed bundles: an in-toto Statement v1 in a DSSE v1 envelope, Ed25519; `drill verify --key`."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from synthetic_runs import T0, make_run

from drill import attestation as att
from drill.bundle import ATTESTATION_NAME, MANIFEST_NAME, write_manifest
from drill.config import EvidenceConfig
from drill.finalize import finalize_bundle
from drill.seal import seal_bundle

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drill_cli", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    """A key pair made by `drill keygen`, as an operator would."""
    res = _cli("keygen", "--out", str(tmp_path / "keys" / "drill-signing.pem"))
    assert res.returncode == 0, res.stderr
    private = tmp_path / "keys" / "drill-signing.pem"
    assert private.stat().st_mode & 0o777 == 0o600
    return private, tmp_path / "keys" / "drill-signing.pem.pub"


def _key(private: Path) -> att.Ed25519PrivateKey:
    return att.private_key_from_pem(private.read_bytes(), str(private))


def test_pae_matches_the_dsse_specification_test_vector() -> None:
    # dsse protocol.md, "Test Vectors": PAE of "hello world" with type http://example.com/HelloWorld
    assert att.pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    # LEN is the byte length, not the character count
    assert att.pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_the_envelope_is_a_dsse_envelope_of_an_in_toto_statement_over_every_file(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    b = make_run(tmp_path / "evidence", T0, key=_key(keys[0]))
    env = json.loads((b / ATTESTATION_NAME).read_text())
    assert env["payloadType"] == "application/vnd.in-toto+json"
    body = base64.b64decode(env["payload"])
    stmt = json.loads(body)
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == att.PREDICATE_TYPE
    names = [s["name"] for s in stmt["subject"]]
    assert names == sorted(["environment.json", "summary.json", "timeline.jsonl", MANIFEST_NAME])  # not itself
    for s in stmt["subject"]:
        assert s["digest"] == {"sha256": att.digest_file(b / s["name"])[0]}
    p = stmt["predicate"]
    assert p["run_id"] == b.name and p["target"] == "lab" and p["verdict"] == "passed" and p["operator"] == "tester"
    assert [x["name"] for x in p["phases"]] == ["phase1", "phase2-data", "phase2", "phase3"]
    assert p["rpo_seconds"] == 0.5 and p["git_revision"] == "0" * 40 and p["previous"] is None
    assert p["started_at"].endswith("Z")  # in-toto Timestamp: RFC 3339, UTC "Z"
    # The signature is Ed25519 over PAE(payloadType, payload), checked here with cryptography directly.
    (sig,) = env["signatures"]
    public = att.load_public_key(keys[1])
    assert sig["keyid"] == att.keyid(public)
    public.verify(base64.b64decode(sig["sig"]), att.pae(env["payloadType"], body))


def test_an_intact_signed_bundle_passes_verify_with_the_key(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    b = make_run(tmp_path / "evidence", T0, key=_key(keys[0]))
    res = _cli("verify", str(b), "--key", str(keys[1]))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "signature: valid (Ed25519, key sha256:" in res.stdout
    without = _cli("verify", str(b))
    assert without.returncode == 0 and "signature: present" in without.stdout and "not checked" in without.stdout


def test_a_tampered_and_resealed_bundle_fails_the_signature_check(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """The issue's attack: edit summary.json, re-run finalize_bundle: a consistent bundle, but no longer signed by us."""
    b = make_run(tmp_path / "evidence", T0, rtos={"phase1": 9.5}, key=_key(keys[0]))
    s = json.loads((b / "summary.json").read_text())
    s["phases"][0].update(rto_seconds=4.0, passed=True)
    s["verdict"] = "passed"
    (b / "summary.json").write_text(json.dumps(s))
    finalize_bundle(b, None)  # re-renders, reseals: manifest and statement match the edit
    assert _cli("verify", str(b)).returncode == 0  # digests alone cannot tell
    res = _cli("verify", str(b), "--key", str(keys[1]))
    assert res.returncode == 1
    assert "signature: the bundle is unsigned, but a key was given" in res.stdout
    assert "checks failed: signature" in res.stderr


def test_a_statement_rewritten_under_the_old_signature_fails_the_signature_check(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    b = make_run(tmp_path / "evidence", T0, key=_key(keys[0]))
    old = json.loads((b / ATTESTATION_NAME).read_text())
    (b / "summary.json").write_text((b / "summary.json").read_text().replace('"failed"', '"passed"') + " ")
    write_manifest(b)
    new = att.envelope(att.statement(att.subjects(b), {"verdict": "passed"}), None)
    new["signatures"] = old["signatures"]  # the attacker keeps the signature it cannot remake
    (b / ATTESTATION_NAME).write_text(json.dumps(new))
    res = _cli("verify", str(b), "--key", str(keys[1]))
    assert res.returncode == 1 and res.stdout.splitlines() == [
        f"signature: does not verify with key {att.keyid(att.load_public_key(keys[1]))} (signed by "
        f"{old['signatures'][0]['keyid']}): the statement was changed after signing, or signed with another key"]


def test_another_key_does_not_verify(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    b = make_run(tmp_path / "evidence", T0, key=att.private_key_from_pem(att.generate()[0], "other"))
    res = _cli("verify", str(b), "--key", str(keys[1]))
    assert res.returncode == 1 and res.stdout.startswith("signature: does not verify with key")


def test_an_edit_without_reseal_names_the_file_and_the_statement(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    b = make_run(tmp_path / "evidence", T0, key=_key(keys[0]))
    with open(b / "timeline.jsonl", "a") as f:
        f.write("{}\n")
    res = _cli("verify", str(b), "--key", str(keys[1]))
    assert res.returncode == 1
    assert res.stdout.splitlines() == ["changed: timeline.jsonl (size 83 → 86 bytes)",
                                       "statement: timeline.jsonl's SHA-256 differs from its subject's"]


def test_an_unsigned_bundle_is_reported_unsigned(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    b = make_run(tmp_path / "evidence", T0)
    ok = _cli("verify", str(b))
    assert ok.returncode == 0 and ok.stdout.splitlines()[-1].startswith("unsigned: sealed without a signing key")
    keyed = _cli("verify", str(b), "--key", str(keys[1]))
    assert keyed.returncode == 1 and "signature: the bundle is unsigned" in keyed.stdout


def test_a_missing_or_broken_attestation_is_named(tmp_path: Path) -> None:
    b = make_run(tmp_path / "evidence", T0)
    (b / ATTESTATION_NAME).write_text("{")
    res = _cli("verify", str(b))
    assert res.returncode == 1 and res.stdout.startswith("attestation: malformed:")
    (b / ATTESTATION_NAME).unlink()
    gone = _cli("verify", str(b))
    assert gone.returncode == 1 and gone.stdout.strip() == "attestation: missing (attestation.json)"


def test_url_safe_unpadded_base64_is_accepted(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    b = make_run(tmp_path / "evidence", T0, key=_key(keys[0]))
    env = json.loads((b / ATTESTATION_NAME).read_text())
    env["payload"] = base64.urlsafe_b64encode(base64.b64decode(env["payload"])).decode().rstrip("=")
    env["signatures"][0]["sig"] = base64.urlsafe_b64encode(base64.b64decode(env["signatures"][0]["sig"])).decode().rstrip("=")
    (b / ATTESTATION_NAME).write_text(json.dumps(env))
    assert att.check(b, att.load_public_key(keys[1])).signed == "valid"


def test_keys_from_the_target(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    pem = keys[0].read_text()
    from_env = att.signing_key(EvidenceConfig(signing_key=pem))
    from_file = att.signing_key(EvidenceConfig(signing_key_file=str(keys[0])))
    assert from_env is not None and from_file is not None and att.keyid(from_env.public_key()) == att.keyid(from_file.public_key())
    assert att.signing_key(EvidenceConfig()) is None
    with pytest.raises(att.SigningKeyError, match=r"evidence.signing_key_file: .*nope.pem: No such file"):
        att.signing_key(EvidenceConfig(signing_key_file=str(tmp_path / "nope.pem")))
    with pytest.raises(att.SigningKeyError, match=r"evidence\.signing_key: not a PEM private key"):
        att.signing_key(EvidenceConfig(signing_key="not a key at all"))
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(att.SigningKeyError, match="an Ed25519 key is needed, this is RSAPrivateKey"):
        att.signing_key(EvidenceConfig(signing_key=rsa_pem))
    with pytest.raises(ValueError, match="not both"):
        EvidenceConfig(signing_key=pem, signing_key_file=str(keys[0]))


def test_a_target_whose_key_does_not_load_refuses_to_start(tmp_path: Path) -> None:
    lab = (REPO / "targets" / "lab.yaml").read_text()
    t = tmp_path / "signed-lab.yaml"
    t.write_text(lab + f"\nevidence:\n  signing_key_file: {tmp_path / 'missing.pem'}\n")
    res = subprocess.run([sys.executable, "-m", "pytest", "-m", "drill", f"--target={t}", "-p", "no:cacheprovider",
                          "--collect-only", "-q"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "invalid target: evidence.signing_key_file" in res.stderr + res.stdout


def test_the_private_key_never_reaches_the_bundle(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    pem = keys[0].read_text()
    secret_line = pem.splitlines()[1]
    b = make_run(tmp_path / "evidence", T0, key=_key(keys[0]))
    for p in b.rglob("*"):
        assert secret_line not in p.read_text(errors="replace"), p


def test_a_readiness_bundle_is_sealed_the_same_way(tmp_path: Path) -> None:
    b = tmp_path / "evidence" / "20260301T000000Z-abcdef"
    b.mkdir(parents=True)
    (b / "readiness.json").write_text("{}")
    sealed = seal_bundle(b)
    assert sealed.previous is None and (b / ATTESTATION_NAME).exists()
    assert _cli("verify", str(b)).returncode == 0
    assert not (tmp_path / "evidence" / "chain").exists()  # no summary.json: not a drill, not chained

