"""manifest.json and `drill verify`: every changed, added or removed file is named."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from drill.bundle import MANIFEST_NAME, MANIFEST_VERSION, verify, write_manifest

REPO = Path(__file__).resolve().parents[2]
FILES = {
    "summary.json": b'{"run_id": "r1", "verdict": "passed"}\n',
    "timeline.jsonl": b'{"t":1,"mono":1,"status":200,"latency_ms":3,"class":"aws","error":null}\n',
    "actions.json": b"[]\n",
    "timeline.png": bytes(range(256))[:40],  # binary: every byte value matters
    "empty.txt": b"",
    "sub/nested.txt": "한국어 nested\n".encode(),
}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    b = tmp_path / "20260101T000000Z-abcdef"
    for name, data in FILES.items():
        (b / name).parent.mkdir(parents=True, exist_ok=True)
        (b / name).write_bytes(data)
    write_manifest(b)
    return b


def test_a_fresh_bundle_verifies_and_the_manifest_lists_every_other_file(bundle: Path) -> None:
    assert verify(bundle) == []
    doc = json.loads((bundle / MANIFEST_NAME).read_text())
    assert doc["manifest_version"] == MANIFEST_VERSION and doc["algorithm"] == "sha256"
    assert set(doc["files"]) == set(FILES)
    assert doc["files"]["summary.json"]["size"] == len(FILES["summary.json"])
    assert len(doc["files"]["empty.txt"]["sha256"]) == 64


def test_flipping_any_single_byte_of_any_file_names_that_file(bundle: Path) -> None:
    for name, data in FILES.items():
        path = bundle / name
        for i in range(len(data)):
            flipped = bytearray(data)
            flipped[i] ^= 0x01
            path.write_bytes(bytes(flipped))
            assert verify(bundle) == [f"changed: {name} (content differs, same size)"], (name, i)
        path.write_bytes(data)
    assert verify(bundle) == []


def test_a_size_change_and_an_emptied_file_are_named(bundle: Path) -> None:
    (bundle / "empty.txt").write_bytes(b"x")
    (bundle / "summary.json").write_bytes(b"")
    assert verify(bundle) == [
        "changed: empty.txt (size 0 → 1 bytes)",
        f"changed: summary.json (size {len(FILES['summary.json'])} → 0 bytes)",
    ]


def test_added_removed_and_changed_files_are_all_named(bundle: Path) -> None:
    (bundle / "timeline.jsonl").unlink()
    (bundle / "extra.txt").write_text("planted")
    (bundle / "sub" / "deeper").mkdir()
    (bundle / "sub" / "deeper" / "x.bin").write_bytes(b"\0")
    (bundle / "actions.json").write_text("[1]\n")
    assert verify(bundle) == [
        "changed: actions.json (size 3 → 4 bytes)",
        "added: extra.txt",
        "added: sub/deeper/x.bin",
        "removed: timeline.jsonl",
    ]


def test_a_symlink_is_reported_not_followed(bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("outside")
    os.symlink(tmp_path / "outside.txt", bundle / "link.txt")
    (bundle / "summary.json").unlink()
    os.symlink(tmp_path / "outside.txt", bundle / "summary.json")
    assert verify(bundle) == ["added: link.txt", "changed: summary.json (now a symlink)"]


def test_odd_file_names_stay_on_one_line(bundle: Path) -> None:
    (bundle / "two\nlines").write_text("x")
    (bundle / " lead").write_text("x")
    assert verify(bundle) == ['added: " lead"', 'added: "two\\nlines"']


def test_missing_manifest(bundle: Path) -> None:
    (bundle / MANIFEST_NAME).unlink()
    assert verify(bundle) == ["manifest: missing (manifest.json)"]


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "not a JSON object"),
        (json.dumps({"manifest_version": 99, "algorithm": "sha256", "files": {}}).encode(), "manifest_version is 99"),
        (json.dumps({"manifest_version": 1, "algorithm": "md5", "files": {}}).encode(), "algorithm is 'md5'"),
        (json.dumps({"manifest_version": 1, "algorithm": "sha256", "files": []}).encode(), "`files` is not an object"),
        (json.dumps({"manifest_version": 1, "algorithm": "sha256", "files": {"../etc/passwd": {"sha256": "0" * 64, "size": 1}}}).encode(),
         "bad path ../etc/passwd"),
        (json.dumps({"manifest_version": 1, "algorithm": "sha256", "files": {"/abs": {"sha256": "0" * 64, "size": 1}}}).encode(),
         "bad path /abs"),
        (json.dumps({"manifest_version": 1, "algorithm": "sha256", "files": {"a.json": {"size": 1}}}).encode(),
         "entry for a.json needs a hex sha256 and a size"),
        (json.dumps({"manifest_version": 1, "algorithm": "sha256", "files": {"a.json": {"sha256": "xyz", "size": 1}}}).encode(),
         "entry for a.json needs a hex sha256 and a size"),
        (json.dumps({"manifest_version": 1, "algorithm": "sha256", "files": {"a.json": {"sha256": "0" * 64, "size": -1}}}).encode(),
         "entry for a.json needs a hex sha256 and a size"),
    ],
)
def test_malformed_manifest_is_a_clear_problem(bundle: Path, content: bytes, words: str) -> None:
    (bundle / MANIFEST_NAME).write_bytes(content)
    problems = verify(bundle)
    assert problems and all(p.startswith("manifest: malformed: ") for p in problems), problems
    assert any(words in p for p in problems), problems


def test_an_edited_digest_in_the_manifest_names_the_file(bundle: Path) -> None:
    doc = json.loads((bundle / MANIFEST_NAME).read_text())
    doc["files"]["actions.json"]["sha256"] = "0" * 64
    (bundle / MANIFEST_NAME).write_text(json.dumps(doc))
    assert verify(bundle) == ["changed: actions.json (content differs, same size)"]


def test_not_a_directory(tmp_path: Path) -> None:
    assert verify(tmp_path / "nope") == [f"bundle: not a directory: {tmp_path / 'nope'}"]


def test_rewriting_the_manifest_leaves_no_temporary_file(bundle: Path) -> None:
    write_manifest(bundle)
    assert not list(bundle.glob(".*tmp")) and verify(bundle) == []


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drill.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_cli_verify_exit_codes(bundle: Path) -> None:
    ok = _cli("verify", str(bundle))
    assert ok.returncode == 0, ok.stderr
    assert f"intact: {len(FILES)} file(s)" in ok.stdout

    (bundle / "summary.json").write_text('{"verdict": "passed!"}')
    (bundle / "planted.txt").write_text("x")
    (bundle / "actions.json").unlink()
    bad = _cli("verify", str(bundle))
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == ["removed: actions.json", "added: planted.txt",
                                       f"changed: summary.json (size {len(FILES['summary.json'])} → 22 bytes)"]
    assert "NOT intact: 3 problem(s)" in bad.stderr

    (bundle / MANIFEST_NAME).unlink()
    gone = _cli("verify", str(bundle))
    assert gone.returncode == 1 and gone.stdout.strip() == "manifest: missing (manifest.json)"

    (bundle / MANIFEST_NAME).write_text("{")
    broken = _cli("verify", str(bundle))
    assert broken.returncode == 1 and broken.stdout.startswith("manifest: malformed: manifest.json is not JSON")

    nowhere = _cli("verify", str(bundle / "nope"))
    assert nowhere.returncode == 1 and "not a directory" in nowhere.stdout
