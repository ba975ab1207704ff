"""manifest.json and `drill verify`: every changed, added, removed or refused entry is named, every
manifest field is checked, and nothing blocks (a FIFO) or leads outside the bundle (a link)."""
from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drill.bundle import MANIFEST_NAME, MANIFEST_VERSION, BundleError, verify, write_manifest
from drill.seal import seal_bundle

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
    seal_bundle(b)
    return b


def test_a_fresh_bundle_verifies_and_the_manifest_lists_every_other_file(bundle: Path) -> None:
    assert verify(bundle) == []
    doc = json.loads((bundle / MANIFEST_NAME).read_text())
    assert doc["manifest_version"] == MANIFEST_VERSION and doc["algorithm"] == "sha256"
    assert set(doc["files"]) == set(FILES)
    assert doc["bundle"] == bundle.name and doc["previous"] is None
    assert datetime.fromisoformat(doc["created_at"]).tzinfo is not None
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


def test_a_symlink_is_refused_not_followed(bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("outside")
    os.symlink(tmp_path / "outside.txt", bundle / "link.txt")
    (bundle / "summary.json").unlink()
    os.symlink(tmp_path / "outside.txt", bundle / "summary.json")
    os.symlink(tmp_path, bundle / "dirlink")
    assert verify(bundle) == [
        "refused: dirlink (a symbolic link: a bundle holds regular files and directories only)",
        "refused: link.txt (a symbolic link: a bundle holds regular files and directories only)",
        "refused: summary.json (a symbolic link: a bundle holds regular files and directories only)",
    ]
    with pytest.raises(BundleError, match=r"refused: link\.txt"):
        write_manifest(bundle)


def _within(seconds: float, fn):
    """fn's result, or a failure if it does not return in time (a FIFO opened for reading blocks forever)."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"did not return within {seconds}s: blocked"
    return out[0]


def test_a_fifo_is_refused_without_blocking(bundle: Path) -> None:
    os.mkfifo(bundle / "pipe")
    (bundle / "timeline.jsonl").unlink()
    os.mkfifo(bundle / "timeline.jsonl")  # a listed file replaced by a FIFO: never opened
    assert _within(10, lambda: verify(bundle)) == [
        "refused: pipe (a FIFO: a bundle holds regular files and directories only)",
        "refused: timeline.jsonl (a FIFO: a bundle holds regular files and directories only)",
    ]
    res = _within(60, lambda: _cli("verify", str(bundle)))
    assert res.returncode == 1 and "refused: pipe (a FIFO" in res.stdout


def test_a_fifo_as_the_manifest_is_refused_without_blocking(bundle: Path) -> None:
    (bundle / MANIFEST_NAME).unlink()
    os.mkfifo(bundle / MANIFEST_NAME)
    assert _within(10, lambda: verify(bundle)) == ["manifest: malformed: manifest.json is a FIFO, not a regular file"]


def test_a_device_and_a_socket_are_refused(bundle: Path, tmp_path: Path) -> None:
    try:
        os.mknod(bundle / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root (CAP_MKNOD)")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(bundle / "sock"))
        assert _within(10, lambda: verify(bundle)) == [
            "refused: null (a device: a bundle holds regular files and directories only)",
            "refused: sock (a socket: a bundle holds regular files and directories only)",
        ]
    finally:
        sock.close()


def test_empty_and_unexpected_directories_are_reported(bundle: Path) -> None:
    (bundle / "empty").mkdir()
    (bundle / "deep" / "er" / "still").mkdir(parents=True)
    (bundle / "sub" / "hollow").mkdir()  # inside a listed directory, empty
    (bundle / "planted").mkdir()
    (bundle / "planted" / "x.txt").write_text("x")
    assert verify(bundle) == [
        "added: planted/x.txt",
        "added: empty directory deep/",
        "added: empty directory empty/",
        "added: empty directory sub/hollow/",
    ]


def _edit_manifest(where: Path, **changes: object) -> None:
    doc = json.loads((where / MANIFEST_NAME).read_text())
    for k, v in changes.items():
        if v is ...:
            doc.pop(k, None)
        else:
            doc[k] = v
    (where / MANIFEST_NAME).write_text(json.dumps(doc))


@pytest.mark.parametrize("changes, expected", [
    ({"bundle": "20260101T000000Z-ffffff"},
     "manifest: bundle is '20260101T000000Z-ffffff', but the directory is '20260101T000000Z-abcdef' (a renamed or swapped bundle)"),
    ({"created_at": "2999-01-01T00:00:00.000+00:00"}, "manifest: created_at 2999-01-01T00:00:00.000+00:00 is in the future"),
    ({"created_at": "2025-12-31T23:59:59.000+00:00"},
     "manifest: created_at 2025-12-31T23:59:59.000+00:00 is before the run started (2026-01-01T00:00:00+00:00, from its id)"),
    ({"created_at": "yesterday"}, "manifest: malformed: created_at 'yesterday' is not an ISO 8601 time with its UTC offset"),
    ({"created_at": "2026-06-01T00:00:00"}, "manifest: malformed: created_at '2026-06-01T00:00:00' is not an ISO 8601 time"),
    ({"created_at": ...}, "manifest: malformed: missing field 'created_at'"),
    ({"bundle": ...}, "manifest: malformed: missing field 'bundle'"),
    ({"bundle": 7}, "manifest: malformed: `bundle` is 7, not a directory name"),
    ({"previous": ...}, "manifest: malformed: missing field 'previous'"),
    ({"previous": {"run_id": "r0"}}, "manifest: malformed: `previous` is neither null nor {run_id, manifest_sha256}"),
    ({"previous": {"run_id": "yesterday", "manifest_sha256": "0" * 64}},
     "manifest: malformed: `previous.run_id` 'yesterday' is not a run id"),
    ({"previous": {"run_id": "20251231T000000Z-000000", "manifest_sha256": "xyz"}},
     "manifest: malformed: `previous.manifest_sha256` is not a hex SHA-256"),
    ({"signed_by": "someone"}, "manifest: malformed: unexpected field 'signed_by'"),
])
def test_every_manifest_field_is_checked(bundle: Path, changes: dict, expected: str) -> None:
    _edit_manifest(bundle, **changes)
    problems = verify(bundle)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_version_1_manifest_is_still_read(bundle: Path) -> None:
    _edit_manifest(bundle, manifest_version=1, previous=...)
    assert verify(bundle) == []


def test_an_extra_key_in_a_file_entry_is_malformed(bundle: Path) -> None:
    doc = json.loads((bundle / MANIFEST_NAME).read_text())
    doc["files"]["actions.json"]["note"] = "trust me"
    (bundle / MANIFEST_NAME).write_text(json.dumps(doc))
    assert verify(bundle) == ["manifest: malformed: entry for actions.json needs a hex sha256 and a size, nothing else"]


def test_created_at_a_little_ahead_of_the_clock_is_tolerated(bundle: Path) -> None:
    ahead = (datetime.now(UTC) + timedelta(minutes=2)).isoformat(timespec="milliseconds")
    _edit_manifest(bundle, created_at=ahead)
    assert verify(bundle) == []


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
    return subprocess.run([sys.executable, "-m", "drill_cli", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_cli_verify_exit_codes(bundle: Path) -> None:
    ok = _cli("verify", str(bundle))
    assert ok.returncode == 0, ok.stderr
    assert f"intact: {len(FILES)} file(s)" in ok.stdout and "unsigned" in ok.stdout

    (bundle / "summary.json").write_text('{"verdict": "passed!"}')
    (bundle / "planted.txt").write_text("x")
    (bundle / "actions.json").unlink()
    bad = _cli("verify", str(bundle))
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [
        "removed: actions.json", "added: planted.txt", f"changed: summary.json (size {len(FILES['summary.json'])} → 22 bytes)",
        "statement: subject actions.json is not in the bundle",
        "statement: planted.txt is not a subject of the statement",
        "statement: summary.json's SHA-256 differs from its subject's",
    ]
    assert "NOT intact: 6 problem(s)" in bad.stderr

    (bundle / MANIFEST_NAME).unlink()
    gone = _cli("verify", str(bundle))
    assert gone.returncode == 1 and gone.stdout.strip() == "manifest: missing (manifest.json)"

    (bundle / MANIFEST_NAME).write_text("{")
    broken = _cli("verify", str(bundle))
    assert broken.returncode == 1 and broken.stdout.startswith("manifest: malformed: manifest.json is not JSON")

    nowhere = _cli("verify", str(bundle / "nope"))
    assert nowhere.returncode == 1 and "not a directory" in nowhere.stdout
