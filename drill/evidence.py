"""The evidence a drill leaves behind: `reports/evidence/<run-id>/`, with `latest` pointing at it.

summary.json has a versioned schema (documented in the README): an auditor's tools may rely on
its keys. Secrets are masked on the way out of every writer here.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
MASK = "***"


def new_run_id(now: float | None = None) -> str:
    stamp = datetime.fromtimestamp(now or time.time(), UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


class Masker:
    """Replaces every known secret value in text (longest first, so no secret is half-masked)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: list[str] = []
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        # Very short values would mask ordinary words; real secrets here are long random strings.
        self._values = sorted({*self._values, *(v for v in values if v and len(v) >= 6)}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for v in self._values:
            text = text.replace(v, MASK)
        return text


@dataclass
class PhaseResult:
    name: str
    title: str
    rto_seconds: float | None
    rto_target_seconds: float
    passed: bool
    measured: str  # what was measured, in words: "fault → maintenance page sustained"
    fault_at: str | None = None
    reached_at: str | None = None
    rto_target_real_seconds: float | None = None
    rto_real_equivalent_seconds: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class EvidenceDir:
    def __init__(self, root: Path, run_id: str, masker: Masker | None = None) -> None:
        self.root = root
        self.run_id = run_id
        self.path = root / run_id
        self.path.mkdir(parents=True, exist_ok=True)
        self.mask = masker or Masker()

    def write_text(self, name: str, text: str) -> Path:
        p = self.path / name
        p.write_text(self.mask(text), encoding="utf-8")
        return p

    def write_json(self, name: str, obj: Any) -> Path:
        return self.write_text(name, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")

    def copy_text(self, src: Path, name: str) -> Path | None:
        """Copy a text file in, masked; a missing source is not an error (the probe may never have run)."""
        if not Path(src).exists():
            return None
        dst = self.path / name
        with open(src, encoding="utf-8", errors="replace") as fin, open(dst, "w", encoding="utf-8") as fout:
            for line in fin:
                fout.write(self.mask(line))
        return dst

    def point_latest(self) -> None:
        """`latest` → this run (a relative symlink, replaced atomically)."""
        link = self.root / "latest"
        tmp = self.root / f".latest-{self.run_id}"
        try:
            tmp.unlink(missing_ok=True)
            os.symlink(self.run_id, tmp)
            os.replace(tmp, link)
        except OSError:
            if link.is_dir() and not link.is_symlink():
                shutil.rmtree(link)
            (self.root / "LATEST").write_text(self.run_id + "\n")


def phase_dicts(phases: Iterable[PhaseResult]) -> list[dict[str, Any]]:
    return [asdict(p) for p in phases]
