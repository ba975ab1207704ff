"""A real Phase 1 drill leaves no secret anywhere, and a sealed, checklist-walking evidence bundle."""
from __future__ import annotations

import base64
import html
import json
import subprocess
import sys
from pathlib import Path

import pytest

from drill.bundle import verify
from drill.checklist import ITEMS
from drill.evidence import Masker

pytestmark = [pytest.mark.lab, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def _strings(obj: object) -> set[str]:
    if isinstance(obj, str):
        return {obj}
    if isinstance(obj, dict):
        return {x for k, v in obj.items() for x in _strings(k) | _strings(v)}
    if isinstance(obj, list):
        return {x for v in obj for x in _strings(v)}
    return set()


def leaks_in(files: list[Path], secrets: dict[str, str], root: Path) -> list[str]:
    """`name in file` for each secret found in a file: as is, JSON-escaped (either way), HTML-escaped
    or base64-encoded; a secret too short to mask inside text (Masker.MIN_IN_TEXT), as any whole
    JSON string value."""
    out = []
    for p in files:
        data = p.read_bytes()
        values: set[str] | None = None
        for name, value in secrets.items():
            if len(value) < Masker.MIN_IN_TEXT:
                if values is None:
                    values = _json_values(p, data)
                if value in values:
                    out.append(f"{name} in {p.relative_to(root)}")
                continue
            forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], html.escape(value)}
            if any(f.encode() in data for f in forms) or base64.b64encode(value.encode()) in data:
                out.append(f"{name} in {p.relative_to(root)}")
    return out


def _json_values(p: Path, data: bytes) -> set[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return set()
    docs = [text] if p.suffix == ".json" else text.split("\n") if p.suffix == ".jsonl" else []
    out: set[str] = set()
    for d in docs:
        try:
            out |= _strings(json.loads(d))
        except ValueError:
            pass
    return out


def test_no_secret_appears_in_any_report_attachment_log_or_evidence_file(phase1_drill) -> None:
    secrets = phase1_drill.secrets()
    # The lab generates these; if one is missing the check below proves less than it claims.
    assert {"lab:aws_secret_access_key", "lab:rds_password", "lab:storage_account_key", "lab:azure_client_secret",
            "lab:azure_mysql_password", "env:DRILL_TEST_SECRET", "env:GITHUB_TOKEN", "env:DRILL_HOSTILE_AWS",
            "env:DRILL_HOSTILE_MYSQL", "env:DRILL_HOSTILE_SHORT"} <= set(secrets), sorted(secrets)
    # The hostile ones really were the drill's: target.json shows those fields masked.
    target = json.loads((phase1_drill.bundle / "target.json").read_text())
    assert target["aws"]["secret_access_key"] == target["azure"]["mysql"]["admin_password"] == "***"
    files = [p for p in phase1_drill.reports.rglob("*") if p.is_file()]
    kinds = {p.name.rsplit(".", 1)[-1] for p in files}
    assert {"json", "jsonl", "md", "html", "png", "properties"} <= kinds, kinds
    assert any(p.name.endswith("-attachment.json") for p in files) and any(p.name.endswith("-result.json") for p in files)
    # The search itself finds them where they are meant to be: the lab's own endpoints file.
    (endpoints,) = phase1_drill.root.glob("dr-drill-lab-*/endpoints.json")
    assert len(leaks_in([endpoints], secrets, endpoints.parent)) >= 5
    assert leaks_in(files, secrets, phase1_drill.reports) == []
    # Allure step parameters carry fixture reprs: none may carry a secret (checked above) or a target's innards.
    for p in phase1_drill.allure_results.glob("*-result.json"):
        for step in json.loads(p.read_text())["steps"]:
            for param in step.get("parameters", []):
                assert "SecretStr" not in param["value"] and "password" not in param["value"].lower(), param


def test_the_drill_sealed_its_bundle_and_it_walks_the_phase1_checklist(phase1_drill) -> None:
    b = phase1_drill.bundle
    # Sealed by the drill itself (nothing in the fixture seals): a manifest, and every file matches it.
    assert (b / "manifest.json").is_file(), "the drill left its evidence bundle unsealed (no manifest.json)"
    assert verify(b) == []
    names = {p.name for p in b.iterdir()}
    assert {"summary.json", "timeline.jsonl", "actions.json", "target.json", "environment.json", "lab-events.jsonl",
            "timeline.png", "report.md", "report.html", "manifest.json"} <= names
    assert (b / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    md = (b / "report.md").read_text(encoding="utf-8")
    rows = {line.split(" | ")[0][2:]: line for line in md.splitlines() if line.startswith("| ") and " | " in line}
    summary = json.loads((b / "summary.json").read_text())
    (phase,) = summary["phases"]
    for item in ITEMS:
        row = rows[item.number]
        assert item.ko in row and item.en in row
        if item.phase == 1:
            assert "✅ passed" in row, row
        else:
            assert "⏭️ not run" in row and "passed" not in row, row
    assert f"{phase['rto_seconds']:.2f} s" in rows["1.5"] and f"target {phase['rto_target_seconds']:.2f} s" in rows["1.5"]
    assert "lab-events.jsonl" in rows["1.3"]
    page = (b / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and all(item.ko in page for item in ITEMS)

    cli = subprocess.run([sys.executable, "-m", "drill_cli", "verify", str(phase1_drill.reports / "evidence" / "latest")],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and cli.stdout.startswith("intact:"), cli.stdout + cli.stderr


def test_allure_metadata_names_the_ci_run_and_the_target(phase1_drill) -> None:
    results = phase1_drill.allure_results
    props = (results / "environment.properties").read_text(encoding="ascii")
    summary = json.loads((phase1_drill.bundle / "summary.json").read_text())
    assert "target=lab" in props and "time_scale=30.0" in props and f"run_id={summary['run_id']}" in props
    assert ("git_revision=" in props) == bool(summary.get("git_revision"))
    executor = json.loads((results / "executor.json").read_text())
    assert executor["type"] == "github" and executor["buildUrl"] == "https://github.com/acme/dr-drill/actions/runs/4242"
    assert [c["name"] for c in json.loads((results / "categories.json").read_text())] == [
        "RTO breach", "RPO breach", "Infrastructure error", "Harness error"]
