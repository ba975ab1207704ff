"""The drill workflow holds production credentials: a static analysis of it (zizmor, offline) finds nothing.

zizmor is a pinned dev dependency that setup.sh installs into .venv; offline it checks, among
others, that every action is pinned to a commit (unpinned-uses), that no checkout persists the
token (artipacked), least permissions (excessive-permissions), and template injection.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ZIZMOR = Path(sys.executable).with_name("zizmor")
WORKFLOW = REPO / ".github" / "workflows" / "drill.yml"


def test_zizmor_offline_reports_nothing() -> None:
    assert ZIZMOR.exists(), f"{ZIZMOR} is missing: ./setup.sh installs the dev tools (pyproject's `dev` extra)"
    res = subprocess.run([str(ZIZMOR), "--offline", "--no-progress", ".github/workflows/"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "No findings to report" in res.stdout + res.stderr


def test_every_action_is_pinned_to_a_commit_with_its_version_in_a_comment() -> None:
    uses = re.findall(r"uses:\s*(\S+)(.*)", WORKFLOW.read_text())
    assert uses
    for ref, rest in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), ref
        assert re.search(r"#\s*v\d+(\.\d+)*", rest), f"{ref}: the version it pins belongs in a comment"
