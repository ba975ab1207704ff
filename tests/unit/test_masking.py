"""Secret masking with hostile secrets: short, quoted, backslashed, unicode, with newlines.

Every writer of evidence is fed the secrets, inside structures and free text, and every file is
then searched for every form a secret can take in a file (as is, JSON-escaped with and without
ensure_ascii, HTML-escaped, base64). Secrets shorter than Masker.MIN_IN_TEXT are masked as whole
values only (see drill.evidence.Masker): for them the search is for any JSON string equal to one.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import pytest

from drill.allure_meta import scrub_results
from drill.evidence import MASK, EvidenceDir, Masker
from drill.finalize import finalize_bundle

HOSTILE = {
    "quoted": 'pa"ss\'wo"rd-1',
    "backslashed": "C:\\drill\\secret\\",
    "unicode": "비밀번호-秘密-🔑-ßecret",
    "newline": "first-line\nsecond-line\r\n",
    "control": "tab\there\x07bell\x00nul",
    "json-ish": '{"a": 1}\\u0022',
    "html-ish": "<b>&amp;secret</b>",
}
SHORT = {"two": "Zq", "one": "\u00e9", "five": 'a"\\b\n'}
ALL = {**HOSTILE, **SHORT}


def forms(value: str) -> set[bytes]:
    """Every way a secret can sit in a file we write."""
    out = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], html.escape(value),
           html.escape(json.dumps(value, ensure_ascii=False)[1:-1])}
    return {f.encode("utf-8") for f in out} | {base64.b64encode(value.encode("utf-8"))}


def json_strings(obj: Any) -> set[str]:
    if isinstance(obj, str):
        return {obj}
    if isinstance(obj, dict):
        return set().union(*(json_strings(k) | json_strings(v) for k, v in obj.items())) if obj else set()
    if isinstance(obj, list):
        return set().union(*(json_strings(x) for x in obj)) if obj else set()
    return set()


def leaks(root: Path) -> list[str]:
    found = []
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        for name, value in HOSTILE.items():
            if any(f in data for f in forms(value)):
                found.append(f"{name} in {p.name}")
        docs: list[Any] = []
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        for chunk in ([text] if p.suffix == ".json" else text.split("\n") if p.suffix == ".jsonl" else []):
            try:
                docs.append(json.loads(chunk))
            except ValueError:
                pass
        strings = set().union(*(json_strings(d) for d in docs)) if docs else set()
        found += [f"{name} as a whole value in {p.name}" for name, value in SHORT.items() if value in strings]
    return found


def carrier() -> dict[str, Any]:
    """Data holding every secret as a whole value, inside longer strings, and as a key."""
    return {
        "fields": {name: value for name, value in ALL.items()},
        "in_text": [f"connect with {v} now" for v in HOSTILE.values()],
        "nested": [{"password": v, "tuple": (v, 1)} for v in ALL.values()],
        HOSTILE["unicode"]: "a secret as a key",
        "ordinary": "about a Zq-less world, café",
        "number": 12, "flag": True, "nothing": None,
    }


@pytest.fixture
def masker() -> Masker:
    return Masker(ALL.values())


def test_masking_data_masks_whole_values_of_any_length_and_substrings_of_long_ones(masker: Masker) -> None:
    out = masker.data(carrier())
    assert all(v == MASK for v in out["fields"].values())
    assert out["in_text"] == ["connect with *** now"] * len(HOSTILE)
    assert all(d["password"] == MASK and d["tuple"] == [MASK, 1] for d in out["nested"])
    assert MASK in out and HOSTILE["unicode"] not in out
    # Short secrets are not masked inside ordinary text: that would mangle it and spell them out.
    assert out["ordinary"] == "about a Zq-less world, café"
    assert out["number"] == 12 and out["flag"] is True and out["nothing"] is None
    assert masker.too_short_for_text() == len(SHORT)


def test_text_masking_finds_secrets_json_escaped_either_way(masker: Masker) -> None:
    for value in HOSTILE.values():
        for doc in (json.dumps({"k": f"x{value}y"}), json.dumps({"k": value}, ensure_ascii=False), f"raw {value} raw"):
            assert all(f.decode() not in masker(doc) for f in forms(value) if len(f) >= Masker.MIN_IN_TEXT), (value, doc)


def test_every_evidence_writer_masks_hostile_secrets(tmp_path: Path, masker: Masker) -> None:
    ev = EvidenceDir(tmp_path / "evidence", "run-1", masker)
    # Structured evidence: summary.json-like, with secrets in notes and steps (the report renders those).
    summary = {"run_id": "run-1", "verdict": "failed", "phases": [], "notes": [f"failed with {v}" for v in HOSTILE.values()],
               "failed_steps": list(ALL.values()), "restore": {"unwound": 0, "failures": list(ALL.values()), "site_class": None},
               "detail": carrier()}
    ev.write_json("summary.json", summary)
    ev.write_json("actions.json", [carrier()])
    # Copied files: a JSONL file (lines written by json.dumps, as the probe and the lab do) and a log.
    src = tmp_path / "src"
    src.mkdir()
    (src / "events.jsonl").write_text("".join(json.dumps({"event": "x", "detail": carrier()}, ensure_ascii=a) + "\n"
                                              for a in (True, False)) + "not json " + HOSTILE["quoted"] + "\n")
    ev.copy_text(src / "events.jsonl", "lab-events.jsonl")
    (src / "drivers.log").write_text("".join(f"line {v} end\n" for v in HOSTILE.values()))
    ev.copy_text(src / "drivers.log", "drivers.log")
    # The rendered reports (Markdown, HTML), the Allure metadata and the manifest.
    results = tmp_path / "allure-results"
    assert finalize_bundle(ev.path, results, mask=masker) == []
    # Allure files written unmasked by steps, scrubbed at the end of the session.
    (results / "x-result.json").write_text(json.dumps({"parameters": [{"value": repr(carrier())}], "d": carrier()}))
    (results / "y-attachment.json").write_text(json.dumps(carrier(), ensure_ascii=False, indent=2))
    scrub_results(results, masker)
    assert leaks(tmp_path / "evidence") == []
    assert leaks(results) == []
    # The masked files are still what they claim to be.
    assert json.loads((ev.path / "summary.json").read_text())["detail"]["fields"]["two"] == MASK
    lines = (ev.path / "lab-events.jsonl").read_text().split("\n")
    assert [json.loads(x)["detail"]["fields"]["newline"] for x in lines[:2]] == [MASK, MASK]


def test_the_leak_search_itself_finds_unmasked_secrets(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"k": HOSTILE["newline"], "s": SHORT["two"]}))
    (tmp_path / "b.html").write_text(html.escape(HOSTILE["html-ish"]))
    found = leaks(tmp_path)
    assert "newline in a.json" in found and "two as a whole value in a.json" in found and "html-ish in b.html" in found


def test_attachments_are_masked_before_serialisation(monkeypatch: pytest.MonkeyPatch, masker: Masker) -> None:
    import allure

    import steps.conftest as sc

    attached: list[str] = []
    monkeypatch.setattr(allure, "attach", lambda body, **kw: attached.append(body))
    monkeypatch.setattr(sc, "_MASK", [masker])
    sc.attach_json("hostile", carrier())
    (text,) = attached
    assert not any(f.decode() in text for v in HOSTILE.values() for f in forms(v))
    assert SHORT["two"] not in json_strings(json.loads(text))
