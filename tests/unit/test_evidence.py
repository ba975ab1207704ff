"""Evidence writers: masking, the `latest` pointer, run ids."""
from __future__ import annotations

import json
import re
from pathlib import Path

from drill.evidence import EvidenceDir, Masker, new_run_id


def test_masker_masks_longest_first_and_ignores_short_values() -> None:
    m = Masker(["abcdef", "abcdefghij", "ab", ""])
    assert m("x abcdefghij y abcdef z ab") == "x *** y *** z ab"


def test_evidence_dir_masks_json_and_copies(tmp_path: Path) -> None:
    ev = EvidenceDir(tmp_path, "run-1", Masker(["hunter2-secret"]))
    ev.write_json("s.json", {"password": "hunter2-secret", "ok": 1})
    src = tmp_path / "src.txt"
    src.write_text("line with hunter2-secret\n")
    ev.copy_text(src, "copy.txt")
    assert json.loads((ev.path / "s.json").read_text()) == {"password": "***", "ok": 1}
    assert (ev.path / "copy.txt").read_text() == "line with ***\n"
    assert ev.copy_text(tmp_path / "missing", "x") is None


def test_latest_points_at_newest_run(tmp_path: Path) -> None:
    EvidenceDir(tmp_path, "run-1").point_latest()
    EvidenceDir(tmp_path, "run-2").point_latest()
    assert (tmp_path / "latest").resolve() == (tmp_path / "run-2").resolve()


def test_run_ids_sort_by_time_and_are_unique() -> None:
    a, b = new_run_id(1_800_000_000), new_run_id(1_800_000_001)
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", a)
    assert a < b and new_run_id(1.0) != new_run_id(1.0)
