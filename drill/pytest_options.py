"""dr-drill's command-line options for pytest, registered as a pytest11 entry point.

Why not in conftest.py: pytest chooses its rootdir (and so finds conftest.py) from path-like
arguments before it knows conftest options, so `--target /elsewhere/prod.yaml` would be taken for
a test path. A plugin registered by the package is loaded first, and its options parse correctly.
"""
from __future__ import annotations

from typing import Any


def pytest_addoption(parser: Any) -> None:
    g = parser.getgroup("dr-drill")
    g.addoption("--target", default="lab", help="target name in targets/ or a target file (default: lab)")
    g.addoption("--reports-dir", default=None, help="where evidence and work files go (default: ./reports)")
    g.addoption(
        "--dry-run", action="store_true", default=False,
        help="read everything, change nothing: record every change as planned and print the plan with its inverses",
    )
    g.addoption(
        "--lab-endpoints", default=None,
        help="use an already running lab (its endpoints.json, e.g. from `drill lab up`) instead of starting one",
    )
