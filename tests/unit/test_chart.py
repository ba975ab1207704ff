"""The timeline chart renders a real PNG for complete, failed and interrupted runs."""
from __future__ import annotations

import struct
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drill.chart import png_lanes, png_text, render_timeline, vantage_lanes
from drill.timeline import Sample

T0 = 1_800_000_000.0
MONO0 = 5_000.0
REPO = Path(__file__).resolve().parents[2]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def samples(plan: list[tuple[float, float, str]], rate: float = 10.0) -> list[Sample]:
    """(from, to, class) seconds after T0 → one request every 1/rate s; errors time out at 2 s."""
    out = []
    for start, end, cls in plan:
        n = int((end - start) * rate)
        for i in range(n):
            t = start + i / rate
            out.append(Sample(T0 + t, MONO0 + t, 0 if cls == "error" else 200, 2000.0 if cls == "error" else 5.0 + i % 7, cls,
                              "timeout" if cls == "error" else None))
    return out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def summary(phases: list[dict[str, Any]], end: float, verdict: str = "passed") -> dict[str, Any]:
    return {"run_id": "20270115T080000Z-a1b2c3", "target": "lab", "time_scale": 30.0, "verdict": verdict,
            "started_at": iso(T0), "finished_at": iso(T0 + end), "phases": phases,
            "seconds_by_class": {"aws": 10.0, "maintenance": 20.0, "azure": 15.0, "error": 1.0}}


def phase(name: str, fault: float, reached: float | None, target: float) -> dict[str, Any]:
    return {"name": name, "fault_at": iso(T0 + fault), "reached_at": None if reached is None else iso(T0 + reached),
            "rto_seconds": None if reached is None else reached - fault, "rto_target_seconds": target,
            "passed": reached is not None and reached - fault <= target,
            "rto_real_equivalent_seconds": None if reached is None else (reached - fault) * 30}


def check_png(path: Path) -> None:
    w, h = png_size(path)
    assert 900 <= w <= 2000 and 500 <= h <= 1400, (w, h)
    assert 15_000 < path.stat().st_size < 2_000_000


def test_a_complete_drill(tmp_path: Path) -> None:
    s = summary([phase("phase1", 2, 7.3, 6), phase("phase2-data", 2, 20, 30), phase("phase2", 2, 40, 90),
                 phase("phase3", 50, 60, 20)], 70)
    tl = samples([(0.5, 7.3, "aws"), (7.3, 12, "maintenance"), (12, 13, "error"), (13, 40, "maintenance"),
                  (40, 60, "azure"), (60, 70, "aws")])
    actions = [{"id": i, "change": {"op": "x", "description": f"change number {i}"}, "applied_at": T0 + t,
                "undone_at": T0 + 50 + i} for i, t in enumerate([1, 1.1, 2, 10, 22, 22.1, 22.2, 26, 30], start=1)]
    out = render_timeline(s, tl, tmp_path / "timeline.png", actions=actions, max_gap=2.2)
    assert out == tmp_path / "timeline.png"
    check_png(out)


def test_a_failed_phase_whose_rto_was_never_reached(tmp_path: Path) -> None:
    s = summary([phase("phase1", 2, None, 6)], 20, "failed")
    out = render_timeline(s, samples([(0.5, 20, "aws")]), tmp_path / "t.png")
    check_png(out)


@pytest.mark.parametrize("s", [{}, {"run_id": "r", "verdict": "unknown"}, summary([], 5, "failed")])
def test_an_interrupted_run_with_no_samples_and_no_phases(tmp_path: Path, s: dict[str, Any]) -> None:
    check_png(render_timeline(s, [], tmp_path / "sub" / "t.png"))


def test_an_unknown_class_gets_its_own_lane(tmp_path: Path) -> None:
    tl = samples([(0, 3, "aws"), (3, 5, "teapot")])
    check_png(render_timeline(summary([], 5), tl, tmp_path / "t.png", actions=None))


def test_one_vantage_keeps_a_lane_per_class(tmp_path: Path) -> None:
    out = render_timeline(summary([phase("phase1", 2, 7.3, 6)], 10), samples([(0.5, 7.3, "aws"), (7.3, 10, "maintenance")]),
                          tmp_path / "t.png")
    assert png_lanes(out) == "classes: aws, maintenance, azure, error"


def test_several_vantages_get_a_lane_each_with_their_own_rto(tmp_path: Path) -> None:
    plans = {"seoul": [(0.5, 7.3, "aws"), (7.3, 30, "maintenance")], "tokyo": [(0.5, 9.1, "aws"), (9.1, 30, "maintenance")],
             "singapore": [(0.5, 5.0, "aws")]}  # its worker killed at 5 s: a gap, not a lane of aws
    tl = [Sample(x.t, x.mono, x.status, x.latency_ms, x.cls, x.error, vantage=name, edge=name[:3].upper())
          for name, plan in plans.items() for x in samples(plan)]
    ph = phase("phase1", 2, 9.1, 6)
    ph["detail"] = {"vantages": [{"vantage": n, "rto_seconds": r - 2, "reached_at": iso(T0 + r)} for n, r in
                                 (("seoul", 7.3), ("tokyo", 9.1))] + [{"vantage": "singapore", "rto_seconds": None, "reached_at": None}]}
    s = summary([ph], 30) | {"vantages": [{"name": "seoul", "downtime_seconds": 0.0}, {"name": "tokyo"},
                                          {"name": "singapore", "unobserved_seconds": 22.8}]}
    assert vantage_lanes(s, tl) == ["seoul", "tokyo", "singapore"]
    assert vantage_lanes({}, tl) == ["seoul", "tokyo", "singapore"]  # from the samples alone
    out = render_timeline(s, tl, tmp_path / "t.png", max_gap=2.2)
    check_png(out)
    assert png_lanes(out) == "vantages: seoul, tokyo, singapore"
    assert (png_text(out, "Title") or "").endswith("what users saw at each of 3 vantages")


def test_rendering_uses_the_agg_canvas_and_leaves_pyplot_alone(tmp_path: Path) -> None:
    code = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from drill.chart import render_timeline\n"
        f"render_timeline({{'run_id': 'r'}}, [], Path({str(tmp_path / 'x.png')!r}))\n"
        "print(json.dumps(['matplotlib.pyplot' in sys.modules, 'drill.chart' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "MPLBACKEND": "TkAgg", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[false, true]"
    png_size(tmp_path / "x.png")


def test_the_evidence_modules_import_no_matplotlib_sdk_or_pytest() -> None:
    banned = ("matplotlib", "numpy", "allure", "allure_commons", "boto3", "botocore", "moto", "azure", "kubernetes",
              "locust", "gevent", "httpx", "pytest", "lab", "drivers")
    code = ("import sys\nimport drill.bundle, drill.checklist, drill.report, drill.finalize, drill.allure_meta, drill_cli.main\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {banned!r}))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
