"""Tamper evidence for an evidence bundle: `manifest.json` and its check. Core module: stdlib only.

`manifest.json` lists every other file of the bundle (recursively, by its path relative to the
bundle, `/`-separated) with its SHA-256 digest and size in bytes. It is written last, when nothing
else will change. `verify` recomputes everything and names each file that was changed, added or
removed, one problem per line:

    changed: summary.json (size 1691 → 1692 bytes)
    added: notes.txt
    removed: timeline.jsonl
    manifest: missing (manifest.json)

An empty list means the bundle is exactly as written. The manifest protects against accidents and
casual edits, not against someone who rewrites the manifest too: for that, keep its digest (or the
whole bundle) somewhere the drill cannot write, e.g. CI artifacts.
"""
from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
ALGORITHM = "sha256"
_CHUNK = 1 << 20


def _quote(name: str) -> str:
    """A file name on one line: as is when it is plain, JSON-quoted otherwise (newlines, spaces at the ends)."""
    if name.isprintable() and name == name.strip() and not name.startswith('"'):
        return name
    return json.dumps(name, ensure_ascii=False)


def digest_file(path: Path) -> tuple[str, int]:
    """(hex SHA-256, size in bytes) of a file, read in chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _entries(bundle: Path) -> dict[str, Path]:
    """Every non-directory entry under `bundle` except the manifest, by relative POSIX path.

    Symbolic links are listed, not followed (a link in a bundle is itself something to report).
    """
    out: dict[str, Path] = {}
    for root, dirs, files in os.walk(bundle, followlinks=False):
        rel_root = Path(root).relative_to(bundle)
        # A symlink to a directory shows up in `dirs`: list it as an entry, do not descend.
        for d in list(dirs):
            if (Path(root) / d).is_symlink():
                files.append(d)
                dirs.remove(d)
        for name in files:
            rel = (rel_root / name).as_posix()
            if rel != MANIFEST_NAME:
                out[rel] = Path(root) / name
    return dict(sorted(out.items()))


def _describe(path: Path) -> dict[str, Any]:
    if path.is_symlink():
        return {"symlink": os.readlink(path)}
    sha, size = digest_file(path)
    return {ALGORITHM: sha, "size": size}


def write_manifest(bundle: Path) -> Path:
    """Write `bundle/manifest.json` covering every other file in the bundle; returns its path.

    Written atomically (a temporary file, then rename), so a reader never sees half a manifest.
    """
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise NotADirectoryError(f"not a bundle directory: {bundle}")
    files = {rel: _describe(p) for rel, p in _entries(bundle).items()}
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "algorithm": ALGORITHM,
        "bundle": bundle.resolve().name,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "files": files,
    }
    out = bundle / MANIFEST_NAME
    tmp = bundle / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out


def _valid_rel(rel: Any) -> bool:
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and ".." not in p.parts and "." not in p.parts and str(p) == rel and rel != MANIFEST_NAME


def load_manifest(bundle: Path) -> tuple[dict[str, dict[str, Any]] | None, list[str]]:
    """(files of the manifest, problems). Files is None when the manifest is missing or malformed."""
    path = Path(bundle) / MANIFEST_NAME
    if path.is_symlink() or not path.exists():
        return None, [f"manifest: missing ({MANIFEST_NAME})" if not path.is_symlink() else f"manifest: {MANIFEST_NAME} is a symlink"]
    if not path.is_file():
        return None, [f"manifest: malformed: {MANIFEST_NAME} is not a regular file"]
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return None, [f"manifest: malformed: {MANIFEST_NAME} is not UTF-8 text"]
    except json.JSONDecodeError as e:
        return None, [f"manifest: malformed: {MANIFEST_NAME} is not JSON ({e.msg}, line {e.lineno})"]
    if not isinstance(doc, dict):
        return None, [f"manifest: malformed: {MANIFEST_NAME} is not a JSON object"]
    version = doc.get("manifest_version")
    if version != MANIFEST_VERSION:
        return None, [f"manifest: malformed: manifest_version is {version!r}, this harness reads {MANIFEST_VERSION}"]
    if doc.get("algorithm") != ALGORITHM:
        return None, [f"manifest: malformed: algorithm is {doc.get('algorithm')!r}, expected {ALGORITHM!r}"]
    files = doc.get("files")
    if not isinstance(files, dict):
        return None, ["manifest: malformed: `files` is not an object"]
    problems = []
    for rel, entry in files.items():
        if not _valid_rel(rel):
            problems.append(f"manifest: malformed: bad path {_quote(str(rel))}")
        elif not isinstance(entry, dict):
            problems.append(f"manifest: malformed: entry for {_quote(rel)} is not an object")
        elif "symlink" in entry:
            if not isinstance(entry["symlink"], str):
                problems.append(f"manifest: malformed: entry for {_quote(rel)} has a bad symlink target")
        elif not (isinstance(entry.get(ALGORITHM), str) and len(entry[ALGORITHM]) == 64
                  and all(c in "0123456789abcdef" for c in entry[ALGORITHM])
                  and isinstance(entry.get("size"), int) and not isinstance(entry.get("size"), bool) and entry["size"] >= 0):
            problems.append(f"manifest: malformed: entry for {_quote(rel)} needs a hex {ALGORITHM} and a size")
    if problems:
        return None, problems
    return files, []


def verify(bundle: Path) -> list[str]:
    """Problems with `bundle` against its manifest, one line each; empty when intact.

    Every changed, added and removed file is named (not just the first one found).
    """
    bundle = Path(bundle)
    if not bundle.is_dir():
        return [f"bundle: not a directory: {bundle}"]
    listed, problems = load_manifest(bundle)
    if listed is None:
        return problems
    present = _entries(bundle)
    out: list[str] = []
    for rel in sorted(set(listed) | set(present)):
        name = _quote(rel)
        if rel not in present:
            out.append(f"removed: {name}")
            continue
        if rel not in listed:
            out.append(f"added: {name}")
            continue
        want, path = listed[rel], present[rel]
        try:
            got = _describe(path)
        except OSError as e:
            out.append(f"changed: {name} (unreadable: {e.strerror or e})")
            continue
        if got == {k: v for k, v in want.items() if k in (ALGORITHM, "size", "symlink")}:
            continue
        if "symlink" in got or "symlink" in want:
            out.append(f"changed: {name} (" + ("now a symlink" if "symlink" in got and "symlink" not in want
                                              else "no longer a symlink" if "symlink" in want and "symlink" not in got
                                              else "symlink target differs") + ")")
        elif got["size"] != want["size"]:
            out.append(f"changed: {name} (size {want['size']} → {got['size']} bytes)")
        else:
            out.append(f"changed: {name} (content differs, same size)")
    return out
