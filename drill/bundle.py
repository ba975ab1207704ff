"""Tamper evidence for an evidence bundle: `manifest.json` and its check. Core module: stdlib only.

`manifest.json` lists every other file of the bundle (recursively, by its path relative to the
bundle, `/`-separated) with its SHA-256 digest and size in bytes, and says which bundle it seals
(`bundle`: the directory's name, the run id), when (`created_at`) and which sealed run came before
it for the same target (`previous`: the hash chain, drill/chain.py). It is written when nothing
else will change; `attestation.json` (drill/attestation.py), the signed in-toto Statement over
every file including the manifest, is the only file written after it and is not listed in it.

`verify` recomputes everything and names each problem, one per line:

    changed: summary.json (size 1691 → 1692 bytes)
    added: notes.txt
    added: empty directory extra/
    removed: timeline.jsonl
    refused: pipe (a FIFO: a bundle holds regular files and directories only)
    manifest: missing (manifest.json)
    manifest: bundle is '20260101T000000Z-aaaaaa', but the directory is '20260101T000000Z-bbbbbb'

An empty list means the bundle is exactly as written. A bundle holds regular files only: a
symbolic link, FIFO, device or socket is refused, and nothing is ever opened that could block (a
FIFO) or lead outside the bundle (a link). The manifest alone protects against accidents and casual
edits, not against someone who rewrites it too: the signature (`drill verify --key`) and the hash
chain (`drill history --verify`) are for that.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST_NAME = "manifest.json"
# Written after the manifest (it signs the manifest too), so never listed in it.
ATTESTATION_NAME = "attestation.json"
RESERVED = (MANIFEST_NAME, ATTESTATION_NAME)
MANIFEST_VERSION = 2  # 2 adds `previous` (the hash chain); version 1 bundles are still read
READABLE_VERSIONS = (1, 2)
ALGORITHM = "sha256"
FIELDS = {1: {"manifest_version", "algorithm", "bundle", "created_at", "files"},
          2: {"manifest_version", "algorithm", "bundle", "created_at", "files", "previous"}}
RUN_ID = re.compile(r"^(\d{8}T\d{6}Z)-[0-9a-f]{6}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
# A manifest dated later than this past the verifier's clock was not written when it says.
CLOCK_SKEW = timedelta(minutes=5)
_CHUNK = 1 << 20


class BundleError(ValueError):
    """A bundle that cannot be sealed (it holds something that is not a regular file)."""


def quote(name: str) -> str:
    """A file name on one line: as is when it is plain, JSON-quoted otherwise (newlines, spaces at the ends)."""
    if name.isprintable() and name == name.strip() and not name.startswith('"'):
        return name
    return json.dumps(name, ensure_ascii=False)


def _open_regular(path: Path) -> int:
    """A descriptor of `path` if it is a regular file, never blocking and never following a link.

    O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; O_NOFOLLOW:
    a link swapped in after the directory was listed is refused, not followed.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BundleError(f"{path.name} is {_kind(os.fstat(fd).st_mode)}, not a regular file")
        return fd
    except BaseException:
        os.close(fd)
        raise


def digest_file(path: Path) -> tuple[str, int]:
    """(hex SHA-256, size in bytes) of a regular file, read in chunks (BundleError for anything else)."""
    h = hashlib.sha256()
    size = 0
    with os.fdopen(_open_regular(Path(path)), "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file (BundleError for a link, FIFO, device …; OSError if missing)."""
    with os.fdopen(_open_regular(Path(path)), "rb") as f:
        return f.read()


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


@dataclass
class Scan:
    """What a bundle directory holds, by relative POSIX path (the reserved files left out of `files`)."""

    files: dict[str, Path] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # path → what it is ("a FIFO")
    empty_dirs: list[str] = field(default_factory=list)


def scan(bundle: Path) -> Scan:
    """Every entry under `bundle`, by lstat alone: nothing is opened and no link is followed."""
    out = Scan()

    def walk(directory: Path, rel: str) -> bool:
        """True if anything (a file or a refused entry) lies below `directory`."""
        found = False
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            path = f"{rel}{entry.name}"
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                if walk(Path(entry.path), f"{path}/"):
                    found = True
                else:
                    out.empty_dirs.append(f"{path}/")
            elif stat.S_ISREG(mode):
                found = True
                if path not in RESERVED:
                    out.files[path] = Path(entry.path)
            else:
                found = True
                out.refused[path] = _kind(mode)
        return found

    walk(Path(bundle), "")
    # A directory holding only empty directories is itself reported once, at the top.
    tops = [d for d in out.empty_dirs if not any(d != o and d.startswith(o) for o in out.empty_dirs)]
    out.empty_dirs = sorted(tops)
    return out


def _refusal(rel: str, kind: str) -> str:
    return f"refused: {quote(rel)} ({kind}: a bundle holds regular files and directories only)"


def write_manifest(bundle: Path, previous: dict[str, str] | None = None) -> Path:
    """Write `bundle/manifest.json` covering every other file in the bundle; returns its path.

    previous: the chain link to the run sealed before this one ({run_id, manifest_sha256}) or None.
    Refuses (BundleError) a bundle holding a link, FIFO, device or socket: nothing the drill writes
    is one, and sealing one would seal something a reader cannot safely open. Written atomically
    (a temporary file, then rename), so a reader never sees half a manifest.
    """
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise NotADirectoryError(f"not a bundle directory: {bundle}")
    found = scan(bundle)
    if found.refused:
        raise BundleError("not sealed: " + "; ".join(_refusal(r, k) for r, k in found.refused.items()))
    if previous is not None and set(previous) != {"run_id", "manifest_sha256"}:
        raise ValueError(f"a chain link is {{run_id, manifest_sha256}}, got {sorted(previous)}")
    files = {}
    for rel, path in found.files.items():
        if path.name.startswith(f".{MANIFEST_NAME}") and path.name.endswith(".tmp"):
            continue
        sha, size = digest_file(path)
        files[rel] = {ALGORITHM: sha, "size": size}
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "algorithm": ALGORITHM,
        "bundle": bundle.resolve().name,
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "previous": previous,
        "files": files,
    }
    out = bundle / MANIFEST_NAME
    tmp = bundle / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out


def manifest_digest(bundle: Path) -> str:
    """SHA-256 of manifest.json's bytes: what the next run's chain link records."""
    return hashlib.sha256(read_regular(Path(bundle) / MANIFEST_NAME)).hexdigest()


def _valid_rel(rel: Any) -> bool:
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and ".." not in p.parts and "." not in p.parts and str(p) == rel and rel not in RESERVED


@dataclass
class Manifest:
    version: int
    bundle: str
    created_at: datetime
    files: dict[str, dict[str, Any]]
    previous: dict[str, str] | None  # None: the first run of its chain (or a version 1 manifest)
    raw: dict[str, Any]


def run_started(run_id: str) -> datetime | None:
    """When a run started, from its id (YYYYMMDDTHHMMSSZ-xxxxxx); None for a name that is not a run id."""
    m = RUN_ID.match(run_id)
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if m else None


def check_link(previous: Any) -> str | None:
    """What is wrong with a chain link (None: nothing)."""
    if previous is None:
        return None
    if not isinstance(previous, dict) or set(previous) != {"run_id", "manifest_sha256"}:
        return "`previous` is neither null nor {run_id, manifest_sha256}"
    if not isinstance(previous["run_id"], str) or not RUN_ID.match(previous["run_id"]):
        return f"`previous.run_id` {previous['run_id']!r} is not a run id"
    if not isinstance(previous["manifest_sha256"], str) or not HEX64.match(previous["manifest_sha256"]):
        return "`previous.manifest_sha256` is not a hex SHA-256"
    return None


def read_manifest(bundle: Path, now: datetime | None = None) -> tuple[Manifest | None, list[str]]:
    """(the manifest, problems). The manifest is None when it is missing or malformed.

    Every field is checked: its version and algorithm, that it lists only safe relative paths with
    well-formed digests, that it names this directory (`bundle`), that `created_at` is an ISO 8601
    time that is neither in the future nor before the run started, and the chain link's shape. A
    field that disagrees with the bundle is a problem but still returns the manifest, so the files
    are checked too.
    """
    bundle = Path(bundle)
    path = bundle / MANIFEST_NAME
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None, [f"manifest: missing ({MANIFEST_NAME})"]
    if not stat.S_ISREG(mode):
        return None, [f"manifest: malformed: {MANIFEST_NAME} is {_kind(mode)}, not a regular file"]
    try:
        doc = json.loads(read_regular(path).decode("utf-8"))
    except UnicodeDecodeError:
        return None, [f"manifest: malformed: {MANIFEST_NAME} is not UTF-8 text"]
    except json.JSONDecodeError as e:
        return None, [f"manifest: malformed: {MANIFEST_NAME} is not JSON ({e.msg}, line {e.lineno})"]
    except (OSError, BundleError) as e:
        return None, [f"manifest: malformed: {MANIFEST_NAME} unreadable ({e})"]
    if not isinstance(doc, dict):
        return None, [f"manifest: malformed: {MANIFEST_NAME} is not a JSON object"]
    version = doc.get("manifest_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        return None, [f"manifest: malformed: manifest_version is {version!r}, this harness reads "
                      + " and ".join(str(v) for v in READABLE_VERSIONS)]
    if doc.get("algorithm") != ALGORITHM:
        return None, [f"manifest: malformed: algorithm is {doc.get('algorithm')!r}, expected {ALGORITHM!r}"]
    problems = [f"manifest: malformed: unexpected field {k!r}" for k in sorted(set(doc) - FIELDS[version])]
    problems += [f"manifest: malformed: missing field {k!r}" for k in sorted(FIELDS[version] - {"previous"} - set(doc))]
    if version >= 2 and "previous" not in doc:
        problems.append("manifest: malformed: missing field 'previous'")
    files = doc.get("files")
    if not isinstance(files, dict):
        return None, problems + ["manifest: malformed: `files` is not an object"]
    for rel, entry in files.items():
        if not _valid_rel(rel):
            problems.append(f"manifest: malformed: bad path {quote(str(rel))}")
        elif not isinstance(entry, dict) or set(entry) != {ALGORITHM, "size"}:
            problems.append(f"manifest: malformed: entry for {quote(rel)} needs a hex {ALGORITHM} and a size, nothing else")
        elif not (isinstance(entry[ALGORITHM], str) and HEX64.match(entry[ALGORITHM])
                  and isinstance(entry["size"], int) and not isinstance(entry["size"], bool) and entry["size"] >= 0):
            problems.append(f"manifest: malformed: entry for {quote(rel)} needs a hex {ALGORITHM} and a size")
    name = doc.get("bundle")
    if not isinstance(name, str) or not name:
        problems.append(f"manifest: malformed: `bundle` is {name!r}, not a directory name")
    created: datetime | None = None
    raw_created = doc.get("created_at")
    try:
        created = datetime.fromisoformat(raw_created) if isinstance(raw_created, str) else None
    except ValueError:
        created = None
    if created is None or created.tzinfo is None:
        problems.append(f"manifest: malformed: created_at {raw_created!r} is not an ISO 8601 time with its UTC offset")
        created = None
    link_problem = check_link(doc.get("previous"))
    if link_problem:
        problems.append(f"manifest: malformed: {link_problem}")
    if any(p.startswith("manifest: malformed") for p in problems):
        return None, problems
    assert created is not None and isinstance(name, str)
    # The fields must describe this bundle, when and where it was sealed.
    here = bundle.resolve().name
    if name != here:
        problems.append(f"manifest: bundle is {name!r}, but the directory is {here!r} (a renamed or swapped bundle)")
    now = now or datetime.now(UTC)
    if created > now + CLOCK_SKEW:
        problems.append(f"manifest: created_at {raw_created} is in the future (now {now.isoformat(timespec='seconds')})")
    started = run_started(name)
    if started is not None and created < started:
        problems.append(f"manifest: created_at {raw_created} is before the run started ({started.isoformat()}, from its id)")
    return Manifest(version, name, created, files, doc.get("previous"), doc), problems


def load_manifest(bundle: Path) -> tuple[dict[str, dict[str, Any]] | None, list[str]]:
    """(files of the manifest, problems). Files is None when the manifest is missing or malformed."""
    manifest, problems = read_manifest(bundle)
    return (None if manifest is None else manifest.files), problems


def verify(bundle: Path, now: datetime | None = None) -> list[str]:
    """Problems with `bundle` against its manifest, one line each; empty when intact.

    Every changed, added, removed and refused entry is named (not just the first one found), and
    every field of the manifest is checked (read_manifest). Nothing is opened but regular files.
    """
    bundle = Path(bundle)
    if not bundle.is_dir():
        return [f"bundle: not a directory: {bundle}"]
    manifest, problems = read_manifest(bundle, now)
    if manifest is None:
        return problems
    listed = manifest.files
    found = scan(bundle)
    out = list(problems)
    for rel in sorted(set(listed) | set(found.files) | set(found.refused)):
        name = quote(rel)
        if rel in found.refused:
            out.append(_refusal(rel, found.refused[rel]))
            continue
        if rel not in found.files:
            out.append(f"removed: {name}")
            continue
        if rel not in listed:
            out.append(f"added: {name}")
            continue
        want = listed[rel]
        try:
            sha, size = digest_file(found.files[rel])
        except (OSError, BundleError) as e:
            out.append(f"changed: {name} (unreadable: {getattr(e, 'strerror', None) or e})")
            continue
        if sha == want[ALGORITHM] and size == want["size"]:
            continue
        if size != want["size"]:
            out.append(f"changed: {name} (size {want['size']} → {size} bytes)")
        else:
            out.append(f"changed: {name} (content differs, same size)")
    out += [f"added: empty directory {quote(d)}" for d in found.empty_dirs]
    return out
