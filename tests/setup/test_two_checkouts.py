"""Two checkouts set up one after the other on one machine each run from their own code.

`./setup.sh` installs into the checkout's own `.venv`: setting up a second clone must not repoint the
first one's `drill` command, package or pytest plugin, and deleting either leaves the other working
(the failure seen before: the first clone's `drill verify` dying with "No module named 'drill'").
The first checkout is this one, set up by ./setup.sh before the suite runs (as CI and the README's
Quick start do); the second is a clone of its HEAD (committed code, as CI checks it out), set up after
it. `.tools` comes from this checkout's through DRILL_TOOLS_FROM (hard links), so no npm download; pip
installs from its cache. (A third set-up of the same kind proved nothing more and cost ≈ 80 s.)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from drill.seal import seal_bundle

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _env(clone: Path | None = None) -> dict[str, str]:
    """A fresh shell's environment: no activated virtual environment, this checkout's .venv off PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and not p.startswith(str(REPO / ".venv")))
    env["PYTHON"] = getattr(sys, "_base_executable", sys.executable)
    if (REPO / ".tools").is_dir():
        env["DRILL_TOOLS_FROM"] = str(REPO / ".tools")
    return env


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


def _from_own_code(clone: Path, other: Path, bundle: Path) -> None:
    """`drill`, the package, and the pytest plugin all come from `clone`; nothing from `other`."""
    py, drill = clone / ".venv" / "bin" / "python", clone / ".venv" / "bin" / "drill"
    # Imported from /, where no checkout shadows the install: what the venv itself resolves.
    where = _run([str(py), "-c", "import drill, drill.pytest_options, drivers, lab; "
                  "print(drill.__file__); print(drill.pytest_options.__file__); print(drivers.__file__); print(lab.__file__)"],
                 cwd=Path("/"))
    assert where.returncode == 0, where.stderr
    for path in where.stdout.split():
        assert path.startswith(f"{clone}/"), f"{clone.name} imports {path}"
    verified = _run([str(drill), "verify", str(bundle)], cwd=clone)
    assert verified.returncode == 0 and "intact: 1 file(s)" in verified.stdout, verified.stdout + verified.stderr
    collected = _run([str(clone / ".venv" / "bin" / "pytest"), "--co", "-q", "-m", "drill", "-p", "no:cacheprovider",
                      "--trace-config"], cwd=clone)
    assert collected.returncode == 0, collected.stdout[-2000:] + collected.stderr[-2000:]
    assert "steps/cloudfront/test_phase2.py::" in collected.stdout
    plugin = [line for line in collected.stdout.splitlines() if "drill.pytest_options" in line and "from" in line]
    assert plugin and all(f"{clone}/drill/pytest_options.py" in line for line in plugin), plugin
    assert str(other) not in collected.stdout


def test_two_clones_each_run_their_own_code_and_survive_the_others_deletion(tmp_path: Path) -> None:
    a, b = REPO, tmp_path / "second"
    assert Path(sys.prefix) == a / ".venv", (
        f"the suite runs from {sys.prefix}: run it from this checkout's .venv (./setup.sh, then . .venv/bin/activate)")
    cloned = subprocess.run(["git", "clone", "--quiet", str(REPO), str(b)], capture_output=True, text=True, timeout=120)
    assert cloned.returncode == 0, cloned.stderr
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "summary.json").write_text('{"verdict": "passed"}\n')
    seal_bundle(bundle)  # manifest and (unsigned) attestation, as a drill seals one
    setup = _run(["./setup.sh"], cwd=b, timeout=900)  # after the first's, as CI does on a shared machine
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    _from_own_code(a, b, bundle)
    _from_own_code(b, a, bundle)
    shutil.rmtree(b)
    _from_own_code(a, b, bundle)  # the first checkout does not depend on the second
