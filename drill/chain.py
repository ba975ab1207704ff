"""The hash chain of sealed drill runs, per target, and its check (`drill history --verify`).

Each drill bundle's manifest records the run sealed before it for the same target:
`previous: {run_id, manifest_sha256}` — the SHA-256 of that run's manifest.json, which itself lists
the SHA-256 of every file of that run. Like a transparency log, changing any run after a later one
was sealed breaks the later run's link; deleting a run leaves a link to nothing.

The newest link has nothing after it, so the evidence root keeps the chain's head apart from the
bundles: `chain/<target>.json` = {run_id, manifest_sha256, created_at} of the newest sealed run,
written when a run is first sealed. A new run links to the head (not to whatever bundle looks
newest: that one may have been edited and resealed), and the check compares the head with the
newest bundle, so an edited or deleted last run is caught too. The head is only as safe as the
directory it is in: anchor it elsewhere (the signature, `drill verify --key`; GitHub's artifact
attestation in CI; a copy an auditor keeps).

Resealing a bundle (finalize_bundle again) keeps its own link and never moves the head.
Core module: stdlib only.
"""
from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from drill.bundle import (
    HEX64,
    MANIFEST_NAME,
    RUN_ID,
    BundleError,
    Manifest,
    manifest_digest,
    read_manifest,
    read_regular,
    verify,
)

HEAD_DIR = "chain"
SUMMARY = "summary.json"
MAX_DEPTH = 4  # an auditor's copy: evidence/, or artifact folders holding evidence folders


@dataclass
class Sealed:
    """One sealed drill bundle as the chain sees it."""

    run_id: str
    target: str
    path: Path
    manifest: Manifest | None
    digest: str | None  # SHA-256 of its manifest.json now
    problems: list[str] = field(default_factory=list)  # drill.bundle.verify's

    @property
    def previous(self) -> dict[str, str] | None:
        return None if self.manifest is None else self.manifest.previous

    @property
    def created_at(self) -> datetime | None:
        return None if self.manifest is None else self.manifest.created_at


def _target_of(bundle: Path) -> str | None:
    """The target a drill bundle belongs to (summary.json's), None for anything else."""
    try:
        doc = json.loads(read_regular(bundle / SUMMARY).decode("utf-8"))
    except (OSError, BundleError, ValueError):
        return None
    t = doc.get("target") if isinstance(doc, dict) else None
    return t if isinstance(t, str) and t else None


def discover(root: Path, target: str | None = None, check: bool = True) -> list[Sealed]:
    """Drill bundles (a manifest and a summary.json) under `root`, any depth up to MAX_DEPTH.

    Links (`latest`) are not followed; the chain's own folder is not a bundle. Sorted by run id.
    check: run drill.bundle.verify on each (its problems are kept on the record).
    """
    out: list[Sealed] = []

    def walk(d: Path, depth: int) -> None:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            return
        names = {e.name for e in entries}
        if MANIFEST_NAME in names and SUMMARY in names:
            t = _target_of(d)
            if t is not None and (target is None or t == target):
                manifest, _ = read_manifest(d)
                try:
                    digest = manifest_digest(d)
                except (OSError, BundleError):
                    digest = None
                out.append(Sealed(d.name, t, d, manifest, digest, verify(d) if check else []))
            return
        if depth >= MAX_DEPTH:
            return
        for e in entries:
            if e.is_dir(follow_symlinks=False) and e.name != HEAD_DIR:
                walk(Path(e.path), depth + 1)

    walk(Path(root), 0)
    return sorted(out, key=lambda s: s.run_id)


# -- the head ----------------------------------------------------------------------------------------
def head_path(root: Path, target: str) -> Path:
    return Path(root) / HEAD_DIR / f"{target}.json"


def read_head(root: Path, target: str) -> dict[str, str] | None:
    """The recorded head of `target`'s chain, None if there is none (or it is unreadable)."""
    try:
        doc = json.loads(read_regular(head_path(root, target)).decode("utf-8"))
    except (OSError, BundleError, ValueError):
        return None
    if (isinstance(doc, dict) and isinstance(doc.get("run_id"), str) and RUN_ID.match(doc["run_id"])
            and isinstance(doc.get("manifest_sha256"), str) and HEX64.match(doc["manifest_sha256"])):
        return doc
    return None


def write_head(root: Path, target: str, run_id: str, digest: str, created_at: str) -> None:
    path = head_path(root, target)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"target": target, "run_id": run_id, "manifest_sha256": digest, "created_at": created_at},
                              indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@contextmanager
def locked(root: Path, target: str) -> Iterator[None]:
    """One sealer at a time per target (a dry run may seal while a drill does): no fork by a race."""
    path = head_path(root, target).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def link_for(root: Path, target: str, exclude: str) -> dict[str, str] | None:
    """The link a run sealed now records: the head if there is one, else the newest sealed bundle of
    the target in `root` (a directory from before the head was kept), else None (a chain starts)."""
    head = read_head(root, target)
    if head is not None and head["run_id"] != exclude:
        return {"run_id": head["run_id"], "manifest_sha256": head["manifest_sha256"]}
    candidates = [(created, digest, s.run_id) for s in discover(root, target, check=False)
                  if s.run_id != exclude and (digest := s.digest) is not None
                  and (created := s.created_at) is not None and s.path.parent == Path(root)]
    if not candidates:
        return None
    _, digest, run_id = max(candidates, key=lambda c: c[0])  # the first of the newest, as before
    return {"run_id": run_id, "manifest_sha256": digest}


# -- the check ---------------------------------------------------------------------------------------
@dataclass
class ChainReport:
    target: str
    runs: list[Sealed]
    problems: list[str]
    head: dict[str, str] | None

    @property
    def ok(self) -> bool:
        return not self.problems


def check_chain(runs: list[Sealed], head: dict[str, str] | None = None, start: str | None = None,
                signature_problems: dict[str, list[str]] | None = None) -> list[str]:
    """Problems with one target's chain, each naming the run: edited, missing, broken link, fork.

    runs: every sealed bundle of the target found. head: the recorded head, if any.
    start: a run whose predecessor may be absent (an auditor's copy that begins there).
    signature_problems: run id → `drill verify --key` problems, when a key was given.
    """
    out: list[str] = []
    by_id = {r.run_id: r for r in runs}
    for r in runs:
        if r.problems:
            out.append(f"edited: run {r.run_id} ({r.path}): " + "; ".join(r.problems[:3])
                       + (f"; … {len(r.problems) - 3} more" if len(r.problems) > 3 else ""))
        for p in (signature_problems or {}).get(r.run_id, []):
            out.append(f"edited: run {r.run_id}: {p}")
    followers: dict[str, list[str]] = {}
    starts: list[str] = []
    for r in runs:
        if r.manifest is None:
            continue  # unreadable manifest: already reported as edited
        if r.manifest.version < 2:
            continue  # sealed before the chain existed: no link to check
        link = r.previous
        if link is None:
            starts.append(r.run_id)
            continue
        followers.setdefault(link["run_id"], []).append(r.run_id)
        prev = by_id.get(link["run_id"])
        if prev is None:
            if r.run_id != start:
                out.append(f"missing: run {link['run_id']} (recorded by run {r.run_id} as the run before it)")
            continue
        if prev.digest != link["manifest_sha256"]:
            out.append(f"broken link: run {r.run_id} records run {prev.run_id} with manifest sha256 "
                       f"{link['manifest_sha256'][:16]}…, but its manifest is now {str(prev.digest)[:16]}…: "
                       f"run {prev.run_id} was changed after run {r.run_id} was sealed")
        if prev.created_at and r.created_at and prev.created_at > r.created_at:
            out.append(f"broken link: run {r.run_id} was sealed before run {prev.run_id}, which it records as the run before it")
    for prev_id, nexts in sorted(followers.items()):
        if len(nexts) > 1:
            out.append(f"fork: runs {', '.join(sorted(nexts))} all record run {prev_id} as the run before them")
    if len(starts) > 1:
        out.append(f"fork: runs {', '.join(sorted(starts))} each start a chain (only the first run of a target has no previous run)")
    if head is not None:
        h = by_id.get(head["run_id"])
        if h is None:
            out.append(f"missing: run {head['run_id']} (the newest sealed run, recorded as the chain's head)")
        else:
            if h.digest != head["manifest_sha256"]:
                out.append(f"broken link: the chain's head records run {h.run_id} with manifest sha256 "
                           f"{head['manifest_sha256'][:16]}…, but its manifest is now {str(h.digest)[:16]}…: "
                           f"run {h.run_id} was changed after it was sealed")
            if head["run_id"] in followers:
                out.append(f"broken link: run(s) {', '.join(followers[head['run_id']])} follow run {h.run_id}, "
                           "which the chain's head says is the newest")
    return out


def verify_chains(root: Path, target: str | None = None, start: str | None = None,
                  signature_problems: dict[str, list[str]] | None = None) -> list[ChainReport]:
    """Check every target's chain under `root` (or one target's); one report per target."""
    runs = discover(root, target)
    targets = [target] if target else sorted({r.target for r in runs} | _heads(root))
    out = []
    for t in targets:
        mine = [r for r in runs if r.target == t]
        head = read_head(root, t)
        out.append(ChainReport(t, mine, check_chain(mine, head, start, signature_problems), head))
    return out


def _heads(root: Path) -> set[str]:
    d = Path(root) / HEAD_DIR
    return {p.stem for p in d.glob("*.json")} if d.is_dir() else set()


def describe(report: ChainReport) -> str:
    """One line: the chain's extent, or how many problems."""
    runs = [r for r in report.runs if r.manifest is not None and r.manifest.version >= 2]
    if not report.runs and report.head is None:
        return f"chain {report.target}: no sealed run"
    if report.ok:
        span = f" from run {runs[0].run_id} to run {runs[-1].run_id}" if runs else ""
        legacy = len(report.runs) - len(runs)
        return (f"chain {report.target}: intact, {len(runs)} linked run(s){span}"
                + (f"; {legacy} older run(s) sealed before the chain" if legacy else ""))
    return f"chain {report.target}: BROKEN, {len(report.problems)} problem(s)"


def ordered(runs: list[Sealed]) -> list[Sealed]:
    """Runs in chain order where links allow (each after the run it records), else by run id."""
    by_prev: dict[str | None, list[Sealed]] = {}
    for r in runs:
        by_prev.setdefault(None if r.previous is None else r.previous["run_id"], []).append(r)
    seen: set[str] = set()
    out: list[Sealed] = []
    queue = sorted(by_prev.get(None, []), key=lambda r: r.run_id)
    while queue:
        r = queue.pop(0)
        if r.run_id in seen:
            continue
        seen.add(r.run_id)
        out.append(r)
        queue = sorted(by_prev.get(r.run_id, []), key=lambda x: x.run_id) + queue
    out += sorted((r for r in runs if r.run_id not in seen), key=lambda r: r.run_id)
    return out


def load_summary(run: Sealed) -> dict[str, Any] | None:
    try:
        doc = json.loads(read_regular(run.path / SUMMARY).decode("utf-8"))
    except (OSError, BundleError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
