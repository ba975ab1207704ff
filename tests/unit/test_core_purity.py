"""The core package imports no cloud SDK, Locust or pytest: auditors read it, tests need no lab.

Every module of drill/ is checked, found by walking the package (no list to keep up to date, no
exception): the command line, which wires the core to the drivers and the lab, lives outside it in
drill_cli/.
"""
from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import drill

FORBIDDEN = ("boto3", "botocore", "moto", "azure", "kubernetes", "locust", "gevent", "httpx", "pytest", "lab", "drivers")


def core_modules() -> list[str]:
    return ["drill"] + sorted(m.name for m in pkgutil.walk_packages(drill.__path__, "drill."))


def test_every_core_module_is_checked() -> None:
    """The walk finds the package's modules (a broken walk must not pass as 'nothing imported')."""
    found = set(core_modules())
    on_disk = {"drill." + p.stem for p in Path(drill.__path__[0]).glob("*.py") if p.stem != "__init__"}
    assert on_disk and on_disk <= found
    assert "drill.cli" not in found  # the command line is drill_cli/, outside the core


def test_core_modules_import_no_sdk() -> None:
    # One fresh interpreter imports the modules one by one and names, for each, the forbidden
    # top-level packages it brought in (a module that only re-imports an offender is not blamed).
    code = (
        "import importlib, json, sys\n"
        f"forbidden = {FORBIDDEN!r}\n"
        "blame = {}\n"
        f"for name in {core_modules()!r}:\n"
        "    before = set(sys.modules)\n"
        "    importlib.import_module(name)\n"
        "    new = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in forbidden)\n"
        "    if new:\n"
        "        blame[name] = new\n"
        "print(json.dumps(blame))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout) == {}
