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
    """Masks every known secret value, on structured data before it is serialised, or in text.

    * `data(obj)`: a copy of JSON-like data where every string that IS a secret becomes `***`,
      whatever its length or characters, and every string that CONTAINS a secret long enough to
      be masked in text has it replaced. Serialise the result: escaping (JSON, HTML) can no longer
      hide a secret from the masker, because masking happened before it.
    * `text(s)` (also `masker(s)`): for free text (logs, copied files, rendered reports). Replaces
      each secret of at least MIN_IN_TEXT characters, as is and in its JSON-escaped forms (a
      secret with `"`, `\\`, a newline or non-ASCII characters inside a JSON document), longest
      first so no secret is half-masked.

    Secrets shorter than MIN_IN_TEXT are masked as whole values only, never inside text: masking
    "ab" in free text would turn "about" into "***out" everywhere, which mangles the evidence and
    shows the secret to anyone who reads it (the masks spell it out). `too_short_for_text()`
    says how many such secrets there are, so a run can say so; fields holding them stay masked.
    """

    MIN_IN_TEXT = 6

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._exact: set[str] = set()
        self._in_text: list[str] = []
        self.add(values)

    def add(self, values: Iterable[object]) -> None:  # a value that is not a text is not a secret to mask
        self._exact |= {v for v in values if isinstance(v, str) and v}
        forms: set[str] = set()
        for v in self._exact:
            if len(v) >= self.MIN_IN_TEXT:
                # As is, and as it appears inside JSON strings (ASCII-escaped and not).
                forms |= {v, json.dumps(v)[1:-1], json.dumps(v, ensure_ascii=False)[1:-1]}
        self._in_text = sorted(forms, key=len, reverse=True)

    def too_short_for_text(self) -> int:
        """How many secrets are masked as whole values only (shorter than MIN_IN_TEXT)."""
        return sum(1 for v in self._exact if len(v) < self.MIN_IN_TEXT)

    def text(self, text: str) -> str:
        for v in self._in_text:
            if v in text:
                text = text.replace(v, MASK)
        return text

    __call__ = text

    def value(self, s: str) -> str:
        """One string value: `***` if it is a secret, else with secrets inside it masked."""
        return MASK if s in self._exact else self.text(s)

    def data(self, obj: Any) -> Any:
        """A masked copy of JSON-like data. Keys are masked like values; objects json cannot
        serialise become their str() (as `json.dumps(default=str)` would), masked."""
        if isinstance(obj, str):
            return self.value(obj)
        if obj is None or isinstance(obj, (bool, int, float)):
            return obj
        if isinstance(obj, dict):
            return {self.value(k) if isinstance(k, str) else k: self.data(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple, set, frozenset)):
            return [self.data(x) for x in obj]
        return self.value(str(obj))

    def json_line(self, line: str) -> str:
        """One JSONL line (no newline), masked as data when it parses, and as text in any case."""
        try:
            obj = json.loads(line)
        except ValueError:
            return self.text(line)
        masked = self.data(obj)
        if masked != obj:
            line = json.dumps(masked, ensure_ascii=False, separators=(",", ":"))
        return self.text(line)


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
        """Masked as data first (no escaping can hide a secret), then as text (belt and braces)."""
        return self.write_text(name, json.dumps(self.mask.data(obj), indent=2, ensure_ascii=False, default=str) + "\n")

    def copy_text(self, src: Path, name: str) -> Path | None:
        """Copy a text file in, masked; a missing source is not an error (the probe may never have run).

        A `.jsonl` file is masked line by line as data; any other file as one text (a secret with a
        newline in it spans lines).
        """
        if not Path(src).exists():
            return None
        dst = self.path / name
        text = Path(src).read_text(encoding="utf-8", errors="replace")
        if name.endswith(".jsonl"):
            # Split on "\n" only: a JSON line may hold U+2028 and the like, which splitlines() splits on.
            out = "\n".join(self.mask.json_line(line) if line.strip() else line for line in text.split("\n"))
        else:
            out = self.mask.text(text)
        dst.write_text(out, encoding="utf-8")
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
