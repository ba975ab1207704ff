"""Allure around the drill: the results' metadata, and the offline HTML report (`drill report`).

Into the results directory (`reports/allure-results`, pytest's `--alluredir`), at the end of a run:

* `environment.properties` — target, time scale, run id, verdict, git revision, harness and tool
  versions (the report's *Environment* widget);
* `executor.json` — who ran it: the GitHub Actions run (from `GITHUB_*`) or the operator;
* `categories.json` — failures sorted into RTO breach, RPO breach, infrastructure error and
  harness error, by the failure messages the steps produce (see CATEGORIES);
* `history/` — the history of every earlier run (`reports/allure-history`), so the trend widgets
  (statuses, durations, categories: RTO/RPO breaches over runs) carry on from run to run.

**One report, one run.** `reports/allure-results` holds one pytest session's results only: when a
session starts (`start_session`, from conftest.py) the previous session's results leave it. A
drill's results (they carry `environment.properties`) that were never reported wait in
`reports/allure-pending/` for their trend point; anything else is dropped. `drill report`
(`generate_report`) first folds each pending run into `reports/allure-history` (an Allure
generation each: Allure computes history, we only carry it), then renders the current results
with that history: the report shows the last run's tests and environment, and its Trend every run.
Reporting the same results again gives the same Trend (the base history is kept in the results).

`generate_report` runs Allure 2 (npm `allure-commandline`, installed into `.tools/` by setup.sh;
it runs on Java) offline: `--single-file` (one portable index.html that opens from file://) and
`--clean`. A single-file report has no `history/` folder, so the history is taken back out of the
generated index.html (where Allure embeds it).
Stdlib only; nothing here imports allure-python.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
ALLURE_VERSION = "2.46.1"
ALLURE_BIN = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "allure"
VERSIONED = ("pytest", "pytest-bdd", "allure-pytest-bdd", "boto3", "moto", "azure-mgmt-network", "kubernetes", "locust")

# Allure puts a result into EVERY category it matches (Pattern.matches, DOTALL: the whole text), so
# these are mutually exclusive. They match the test's status message, which allure-pytest-bdd sets
# to the exception as pytest shows it ("AssertionError: maintenance-page RTO 7.20s exceeds the target
# 6.00s", "botocore.exceptions.ClientError: …"): RTO and RPO breaches are assertion failures
# ("failed") in the steps' own words; infrastructure errors are SDK/driver exceptions, or a step's
# assertion naming one ("terraform apply … failed: …"); harness errors are every other exception
# ("broken"). Other assertion failures stay in Allure's "Product defects".
_BREACH = r"\bR[TP]O\b.*exceeds the target"
_RTO = (r"(?s)(?!.*\bRPO\b.*exceeds the target)"
        r".*(\bRTO\b.*exceeds the target|users never (saw|got) |data restored .* after the fault, target ).*")
_RPO = r"(?s)(?!.*\bRTO\b.*exceeds the target).*(\bRPO\b.*exceeds the target|more than the RPO\b).*"
_INFRA_WORDS = (
    r"botocore|ClientError|BotoCoreError|EndpointConnectionError|NoCredentialsError|HttpResponseError|"
    r"ResourceNotFoundError|ServiceRequestError|ClientAuthenticationError|AzureError|ApiException|"
    r"ProvisionerError|KubeError|RolloutFailed|DatabaseError|BackupError|TimeoutError|Timeout\b|ConnectError|"
    r"ConnectionError|OperationalError|terraform (init|apply|destroy)\b[^\n]* failed"
)
CATEGORIES: list[dict[str, Any]] = [
    {"name": "RTO breach", "matchedStatuses": ["failed"], "messageRegex": _RTO,
     "description": "a recovery time objective was missed: users did not get the expected service within the target"},
    {"name": "RPO breach", "matchedStatuses": ["failed"], "messageRegex": _RPO,
     "description": "more data would be lost than the recovery point objective allows"},
    {"name": "Infrastructure error", "matchedStatuses": ["failed", "broken"],
     "messageRegex": rf"(?s)(?!.*{_BREACH})(?!.*users never (saw|got) ).*({_INFRA_WORDS}).*",
     "description": "a cloud, SDK or provisioner call failed (botocore ClientError, azure HttpResponseError, "
                    "kubernetes ApiException, ProvisionerError, TimeoutError, …)"},
    {"name": "Harness error", "matchedStatuses": ["broken"], "messageRegex": rf"(?s)(?!.*({_INFRA_WORDS})).*",
     "description": "the harness itself raised: a bug in the drill, not a finding about the system"},
]


def _escape_properties(text: str, key: bool = False) -> str:
    """Java .properties escaping (Allure reads the file with java.util.Properties, ISO-8859-1)."""
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch in "=:#!" or (ch == " " and (key or i == 0)):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) > 0x7E:
            out.append("".join(f"\\u{u:04x}" for u in _utf16(ch)))
        else:
            out.append(ch)
    return "".join(out)


def _utf16(ch: str) -> list[int]:
    b = ch.encode("utf-16-be")
    return [int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2)]


def environment_properties(summary: dict[str, Any], environment: dict[str, Any] | None = None) -> dict[str, str]:
    env = environment or {}
    props: dict[str, Any] = {
        "target": summary.get("target"),
        "time_scale": summary.get("time_scale"),
        "run_id": summary.get("run_id"),
        "verdict": summary.get("verdict"),
        "git_revision": summary.get("git_revision") or env.get("git_revision"),
        "harness_version": summary.get("harness_version") or env.get("harness_version"),
        "operator": summary.get("operator") or env.get("operator"),
        "started_at": summary.get("started_at"),
        "python": env.get("python"),
        "platform": env.get("platform"),
    }
    for dist in VERSIONED:
        try:
            props[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return {k: str(v) for k, v in props.items() if v is not None and v != ""}


def executor_info(summary: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Allure's executor: the GitHub Actions run that ran the drill, or the operator."""
    e = os.environ if environ is None else environ
    run_id = summary.get("run_id", "?")
    report_name = f"dr-drill {run_id} on {summary.get('target', '?')}"
    if e.get("GITHUB_ACTIONS") == "true" or e.get("GITHUB_RUN_ID"):
        server = e.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        repo = e.get("GITHUB_REPOSITORY", "")
        build_url = f"{server}/{repo}/actions/runs/{e.get('GITHUB_RUN_ID', '')}"
        if e.get("GITHUB_RUN_ATTEMPT") not in (None, "", "1"):
            build_url += f"/attempts/{e['GITHUB_RUN_ATTEMPT']}"
        number = e.get("GITHUB_RUN_NUMBER", "")
        return {
            "name": "GitHub Actions", "type": "github", "url": f"{server}/{repo}",
            "buildOrder": int(number) if number.isdigit() else None,
            "buildName": f"{e.get('GITHUB_WORKFLOW', 'workflow')} #{number} ({e.get('GITHUB_EVENT_NAME', '?')} "
                         f"by {e.get('GITHUB_ACTOR', '?')}, {e.get('GITHUB_REF_NAME', '?')} {e.get('GITHUB_SHA', '')[:12]})",
            "buildUrl": build_url, "reportName": report_name, "reportUrl": f"{build_url}#artifacts",
        }
    started = summary.get("started_at")
    try:
        order = int(datetime.fromisoformat(str(started)).timestamp()) if started else None
    except ValueError:
        order = None
    return {
        "name": f"operator {summary.get('operator', '?')}", "type": "local",
        "buildOrder": order, "buildName": f"{report_name} by {summary.get('operator', '?')}",
        "reportName": report_name,
    }


HISTORY_DIR = "allure-history"  # beside the results: the history of every run folded so far
PENDING_DIR = "allure-pending"  # beside the results: drills' results not yet folded into it
MAX_PENDING = 20  # runs kept for the Trend while never reported (Allure's Trend shows 20)
FOLDED = ".folded"  # in the results: `drill report` folded them; their base history is results/history
# What Allure writes into a results directory (allure-python's file names): nothing else is touched.
_RESULT_FILES = ("*-result.json", "*-container.json", "*-attachment*", "environment.properties", "executor.json",
                 "categories.json", FOLDED)


def history_source(results_dir: Path) -> Path:
    """The history of earlier runs for `results_dir`: reports/allure-history, or (before it existed)
    the last report's history, which was exactly that."""
    base = Path(results_dir).parent / HISTORY_DIR
    return base if base.is_dir() else Path(results_dir).parent / "allure-report" / "history"


def copy_history(src: Path, results_dir: Path) -> bool:
    """History json files from `src` into results_dir/history (replacing it). True if copied."""
    src = Path(src)
    if src.name != "history" and (src / "history").is_dir():
        src = src / "history"  # a report directory
    if not src.is_dir() or not any(src.glob("*.json")):
        return False
    dst = Path(results_dir) / "history"
    if dst.is_dir():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for f in src.glob("*.json"):
        shutil.copyfile(f, dst / f.name)
    return True


def _result_entries(results_dir: Path) -> list[Path]:
    out: set[Path] = set()
    for pattern in _RESULT_FILES:
        out.update(p for p in Path(results_dir).glob(pattern) if p.is_file() and not p.is_symlink())
    history = Path(results_dir) / "history"
    if history.is_dir() and not history.is_symlink():
        out.add(history)
    return sorted(out)


def start_session(results_dir: Path) -> str:
    """Before a pytest session writes results: the previous session's leave `results_dir`.

    Returns what happened: "empty", "pending" (a drill never reported: moved to allure-pending/
    for `drill report` to fold into the history), or "dropped" (reported already, or not a drill).
    Only Allure's own files are moved or removed, whatever directory --alluredir names.
    """
    results = Path(results_dir)
    entries = _result_entries(results) if results.is_dir() else []
    if not any(p.name.endswith("-result.json") for p in entries):
        for p in entries:  # metadata without results: nothing to keep
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        return "empty"
    names = {p.name for p in entries}
    if FOLDED not in names and "environment.properties" in names:
        pending = results.parent / PENDING_DIR / f"{datetime.now():%Y%m%dT%H%M%S.%f}-{os.getpid()}"
        pending.mkdir(parents=True)
        for p in entries:
            os.replace(p, pending / p.name)
        # Allure's Trend shows the last 20 runs: older unreported runs would only cost generations.
        waiting = sorted(d for d in pending.parent.iterdir() if d.is_dir())
        for old in waiting[:-MAX_PENDING]:
            shutil.rmtree(old)
        return "pending"
    for p in entries:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return "dropped"


def write_allure_metadata(
    results_dir: Path,
    summary: dict[str, Any],
    environment: dict[str, Any] | None = None,
    *,
    report_dir: Path | None = None,
    mask: Callable[[str], str] | None = None,
    environ: dict[str, str] | None = None,
) -> list[Path]:
    """environment.properties, executor.json, categories.json and history/ into `results_dir`.

    summary: summary.json (a dict; may be partial); environment: environment.json.
    report_dir: where the history of earlier runs is (default: history_source(results_dir), i.e.
    reports/allure-history). mask: applied to every text written.
    """
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    m = mask or (lambda s: s)
    props = environment_properties(summary or {}, environment)
    lines = [f"{_escape_properties(k, key=True)}={_escape_properties(m(v))}" for k, v in props.items()]
    written = [results_dir / "environment.properties", results_dir / "executor.json", results_dir / "categories.json"]
    written[0].write_text("\n".join(lines) + "\n", encoding="ascii")
    written[1].write_text(m(json.dumps(executor_info(summary or {}, environ), indent=2)) + "\n", encoding="utf-8")
    written[2].write_text(json.dumps(CATEGORIES, indent=2) + "\n", encoding="utf-8")
    if copy_history(report_dir if report_dir is not None else history_source(results_dir), results_dir):
        written.append(results_dir / "history")
    return written


def _scrub(text: str, mask: Callable[[str], str]) -> str:
    """A JSON document masked as data when the masker can (drill.evidence.Masker.data), then as text."""
    data = getattr(mask, "data", None)
    if data is not None:
        try:
            obj = json.loads(text)
        except ValueError:
            return mask(text)
        masked = data(obj)
        if masked != obj:
            text = json.dumps(masked, ensure_ascii=False)
    return mask(text)


def scrub_results(results_dir: Path, mask: Callable[[str], str]) -> list[str]:
    """Mask secrets in every text file of `results_dir` (results, attachments); names of files changed.

    Belt and braces for what steps attach unmasked: call it once all results are written (e.g. from
    `pytest_sessionfinish`; allure-pytest-bdd writes a scenario's result after its teardown).
    Binary attachments (PNG) are left alone; history/ holds no free text.
    """
    changed = []
    for path in sorted(Path(results_dir).glob("*")):
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        masked = _scrub(text, mask) if path.suffix == ".json" else mask(text)
        if masked != text:
            path.write_text(masked, encoding="utf-8")
            changed.append(path.name)
    return changed


# -- the HTML report --------------------------------------------------------------------------------

class ReportError(RuntimeError):
    pass


def allure_binary() -> Path:
    """Allure 2 from .tools/ (setup.sh), or $DRILL_ALLURE; ReportError saying how to get it."""
    override = os.environ.get("DRILL_ALLURE")
    path = Path(override) if override else ALLURE_BIN
    if not path.exists():
        raise ReportError(f"Allure is not installed ({path} is missing): run ./setup.sh, which installs "
                          f"allure-commandline@{ALLURE_VERSION} into .tools/ with npm")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise ReportError("Allure 2 runs on Java, and there is no `java` on PATH (nor JAVA_HOME): install a JRE 8+")
    return path


_EMBEDDED = re.compile(r"d\('(history/[A-Za-z0-9_.-]+\.json)','([A-Za-z0-9+/=]*)'\)")


def extract_history(index_html: Path, history_dir: Path) -> int:
    """Allure's single-file report embeds history/*.json as base64; write them out. Number written."""
    text = Path(index_html).read_text(encoding="utf-8", errors="replace")
    n = 0
    for name, b64 in _EMBEDDED.findall(text):
        history_dir.mkdir(parents=True, exist_ok=True)
        (history_dir / Path(name).name).write_bytes(base64.b64decode(b64))
        n += 1
    return n


def _run_allure(binary: Path, results_dir: Path, out: Path, single_file: bool, timeout: float) -> None:
    cmd = [str(binary), "generate", str(results_dir), "-o", str(out), "--clean"] + (["--single-file"] if single_file else [])
    env = dict(os.environ, ALLURE_NO_ANALYTICS="true")
    try:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ReportError(f"allure generate did not finish in {timeout:.0f}s") from None
    if res.returncode != 0 or not (out / "index.html").exists():
        tail = (res.stdout + res.stderr).strip()[-2000:]
        raise ReportError(f"allure generate failed (exit {res.returncode}): {tail}")


def _generate(binary: Path, results_dir: Path, report_dir: Path, timeout: float) -> Path:
    """Allure single-file report of `results_dir` (its history/ as the earlier runs); report_dir/history out."""
    _run_allure(binary, results_dir, report_dir, single_file=True, timeout=timeout)
    if extract_history(report_dir / "index.html", report_dir / "history") == 0:
        # Not embedded (another Allure version): a multi-file run gives the history folder.
        with tempfile.TemporaryDirectory(prefix="dr-drill-allure-") as tmp:
            _run_allure(binary, results_dir, Path(tmp) / "report", single_file=False, timeout=timeout)
            shutil.copytree(Path(tmp) / "report" / "history", report_dir / "history", dirs_exist_ok=True)
    return report_dir / "index.html"


def fold_pending(results_dir: Path, binary: Path, timeout: float = 300.0) -> list[str]:
    """Each drill never reported (allure-pending/, oldest first) becomes a point of allure-history."""
    pending_root = Path(results_dir).parent / PENDING_DIR
    history = Path(results_dir).parent / HISTORY_DIR
    folded = []
    for run in sorted(p for p in pending_root.glob("*") if p.is_dir()) if pending_root.is_dir() else []:
        if not any(run.glob("*-result.json")):
            shutil.rmtree(run)
            continue
        copy_history(history_source(results_dir), run)
        (run / "categories.json").write_text(json.dumps(CATEGORIES, indent=2) + "\n", encoding="utf-8")
        with tempfile.TemporaryDirectory(prefix="dr-drill-fold-") as tmp:
            _generate(binary, run, Path(tmp) / "report", timeout)
            _replace_history(Path(tmp) / "report" / "history", history)
        shutil.rmtree(run)
        folded.append(run.name)
    return folded


def _replace_history(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)


def generate_report(
    results_dir: Path,
    report_dir: Path,
    *,
    summary: dict[str, Any] | None = None,
    environment: dict[str, Any] | None = None,
    timeout: float = 300.0,
) -> Path:
    """Generate the offline single-file HTML report of `results_dir` into `report_dir`; its index.html.

    Folds pending runs into allure-history first, renders the current results over that history,
    then folds the current results in too (marking them `.folded`, so a later report of the same
    results starts from the same base). Makes sure categories.json is there (and environment/executor
    from `summary`, if given and missing).
    """
    results_dir, report_dir = Path(results_dir), Path(report_dir)
    binary = allure_binary()
    if not results_dir.is_dir() or not any(results_dir.glob("*-result.json")):
        raise ReportError(f"no Allure results in {results_dir}: run a drill first (`pytest -m drill`)")
    fold_pending(results_dir, binary, timeout)
    (results_dir / "categories.json").write_text(json.dumps(CATEGORIES, indent=2) + "\n", encoding="utf-8")
    if summary is not None and not (results_dir / "environment.properties").exists():
        write_allure_metadata(results_dir, summary, environment, report_dir=history_source(results_dir))
    if not (results_dir / FOLDED).exists():
        copy_history(history_source(results_dir), results_dir)  # the earlier runs, as of this run's first report
    index = _generate(binary, results_dir, report_dir, timeout)
    if (report_dir / "history").is_dir():
        _replace_history(report_dir / "history", results_dir.parent / HISTORY_DIR)
        (results_dir / FOLDED).write_text("folded into allure-history by drill report\n", encoding="utf-8")
    return index
