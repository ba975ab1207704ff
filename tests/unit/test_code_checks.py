"""The code passes its linter and type checker: `ruff check .` and both configured mypy runs find nothing.

ruff and mypy are pinned dev dependencies that setup.sh installs into .venv (pyproject's `dev` extra);
their configuration is pyproject.toml's [tool.ruff] / [tool.mypy] (the code) and tests/mypy.ini (the
tests). `./check` runs the same three commands. A checkout without the dev tools skips these tests —
except under CI (CI set, as GitHub Actions and .ci/run set it), where a set-up that lost the tools must
fail instead of hiding every finding. mypy keeps its cache in .mypy_cache (git-ignored): a re-run takes
about a second, a cold one half a minute.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNDER_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _tool(module: str) -> list[str]:
    """The command that runs `module` from this interpreter's environment (the checkout's .venv)."""
    if importlib.util.find_spec(module) is None:
        message = f"{module} is not installed: ./setup.sh installs the dev tools (pyproject's `dev` extra)"
        if UNDER_CI:
            pytest.fail(message)
        pytest.skip(message)
    return [sys.executable, "-m", module]


def _clean(argv: list[str]) -> str:
    res = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"`{' '.join(argv[2:])}` found:\n{res.stdout}{res.stderr}"
    return res.stdout


def test_ruff_finds_nothing() -> None:
    _clean([*_tool("ruff"), "check", "--no-fix", "--output-format=concise", "."])


def test_mypy_finds_nothing_in_the_code() -> None:
    out = _clean([*_tool("mypy")])
    assert out.startswith("Success: no issues found"), out  # and it checked something


def test_mypy_finds_nothing_in_the_tests() -> None:
    out = _clean([*_tool("mypy"), "--config-file", "tests/mypy.ini"])
    assert out.startswith("Success: no issues found"), out


def test_missing_tools_fail_under_ci_and_skip_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setitem(globals(), "UNDER_CI", True)
    with pytest.raises(pytest.fail.Exception, match=r"\./setup\.sh installs the dev tools"):
        _tool("ruff")
    monkeypatch.setitem(globals(), "UNDER_CI", False)
    with pytest.raises(pytest.skip.Exception):
        _tool("ruff")
