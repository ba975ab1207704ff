"""The drill's timeline chart: what users saw over time, with the faults, remediations and RTOs.

`render_timeline(summary, samples, out)` draws a PNG from what the evidence bundle holds:

* top panel — one lane per class (PetClinic from AWS, maintenance page, PetClinic from Azure,
  errors): a band while users saw that class (the timeline's own piecewise-constant rule, so a
  probe silence longer than `max_gap` is left blank, never drawn as up), and a dot per request;
  with more than one vantage, one lane per vantage instead, its band coloured by what that
  vantage's users saw (blank where its probe was silent: a killed worker's gap stays a gap), and a
  triangle where it reached each phase's expected class, with its own RTO;
* vertical lines — the fault (solid red), later phases' starting instants (remediations, solid
  green), every change the drill made (dotted grey, `#id` of the rollback ledger) and every change
  it undid (dotted green, `↩#id`); each phase's RTO target deadline (dash-dot, from that phase's
  starting instant) and an arrow from the start to the instant users got the expected class,
  labelled with the measured RTO;
* bottom panel — each request's latency (log scale), by class.

The x axis is wall-clock seconds since the drill started; with a time scale other than 1 a second
axis on top gives the real-world equivalent.

matplotlib is imported here only, through its object API and the Agg canvas (no pyplot, no global
backend switch, no display): callers import this module lazily, the core does not depend on it.
"""
from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from drill import timeline as tl

LANES: tuple[tuple[str, str, str], ...] = (
    # class, label, colour
    ("aws", "PetClinic (AWS)", "#2e7d32"),
    ("maintenance", "maintenance page", "#f9a825"),
    ("azure", "PetClinic (Azure)", "#0078d4"),
    ("error", "error / no response", "#c62828"),
)
OTHER_COLOUR = "#6d4c41"
FAULT_COLOUR = "#b71c1c"
REMEDIATION_COLOUR = "#1b5e20"
CHANGE_COLOUR = "#757575"
UNDO_COLOUR = "#43a047"
TARGET_COLOUR = "#6a1b9a"


def _ts(value: Any) -> float | None:
    """Epoch seconds from an ISO 8601 string or a number; None when absent or unreadable."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def _short(text: str, n: int = 38) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _cluster(instants: list[tuple[float, str]], within: float) -> list[tuple[float, list[str]]]:
    """Instants closer than `within` to the previous one share one line (labels joined)."""
    out: list[tuple[float, list[str]]] = []
    for t, label in sorted(instants):
        if out and t - out[-1][0] <= within:
            out[-1][1].append(label)
        else:
            out.append((t, [label]))
    return out


def _join_labels(labels: list[str], limit: int = 3) -> str:
    if len(labels) <= limit:
        return "; ".join(labels)
    return "; ".join(labels[:limit]) + f"; +{len(labels) - limit} more"


def vantage_lanes(summary: dict[str, Any], samples: Sequence[tl.Sample]) -> list[str]:
    """The vantages the chart draws a lane for: the summary's (declared order), then any other sampled."""
    names = [str(v.get("name")) for v in summary.get("vantages") or [] if isinstance(v, dict) and v.get("name")]
    for s in samples:
        if s.vantage not in names:
            names.append(s.vantage)
    return names


def render_timeline(
    summary: dict[str, Any],
    samples: Sequence[tl.Sample],
    out: Path,
    actions: Sequence[Any] | None = None,  # as read from the evidence: malformed entries are skipped
    max_gap: float | None = None,
    dpi: int = 100,
) -> Path:
    """Draw the drill's timeline chart to `out` (PNG) and return `out`.

    summary: summary.json as a dict (uses started_at, finished_at, phases, time_scale, run_id,
             target, verdict, seconds_by_class); any key may be missing (an interrupted run).
    samples: the probe's samples (drill.timeline.load_timeline of timeline.jsonl); may be empty.
    actions: actions.json (the rollback ledger: applied_at / undone_at per change); optional.
    max_gap: the longest probe silence still drawn as observed; default from the samples' spacing.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    out = Path(out)
    samples = tl.sort_samples(samples)
    phases = [p for p in (summary.get("phases") or []) if isinstance(p, dict)]
    actions = [a for a in (actions or []) if isinstance(a, dict)]

    # -- the time origin and range -------------------------------------------------------------
    origin = _ts(summary.get("started_at"))
    candidates = [s.t for s in samples] + [t for p in phases for t in (_ts(p.get("fault_at")),) if t is not None]
    if origin is None:
        origin = min(candidates) if candidates else 0.0
    end = _ts(summary.get("finished_at"))
    xs_end = [s.wall_seen for s in samples] + [t for t in (end,) if t is not None]
    for p in phases:  # every RTO deadline and measured instant stays on the chart
        t0, target = _ts(p.get("fault_at")), p.get("rto_target_seconds")
        if t0 is not None and isinstance(target, (int, float)):
            xs_end.append(t0 + float(target) * 1.04)
        if (reached_at := _ts(p.get("reached_at"))) is not None:
            xs_end.append(reached_at)
    xs_end += [t for a in actions for t in (_ts(a.get("applied_at")), _ts(a.get("undone_at"))) if t is not None]
    x_max = max([x - origin for x in xs_end] + [1.0])

    # mono → wall: each sample carries both; the offset is the same for all (same process).
    offset = statistics.median(s.t - s.mono for s in samples) if samples else 0.0
    if max_gap is None:
        spacing = statistics.median(b.seen - a.seen for a, b in itertools.pairwise(samples)) if len(samples) > 2 else 0.1
        max_gap = max(1.0, 2.0 + 2 * spacing)

    present = {s.cls for s in samples}
    class_lanes = list(LANES) + [(c, c, OTHER_COLOUR) for c in sorted(present - {c for c, _, _ in LANES})]
    colour = {c: col for c, _, col in class_lanes}
    vantage_names = vantage_lanes(summary, samples)
    by_vantage = {n: [s for s in samples if s.vantage == n] for n in vantage_names}
    per_vantage = len(vantage_names) > 1
    lanes = [(n, n, "") for n in vantage_names] if per_vantage else class_lanes
    lane_y = {key: len(lanes) - 1 - i for i, (key, _, _) in enumerate(lanes)}  # first lane on top

    fig = Figure(figsize=(12.5, 7.2), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(2, 1, height_ratios=[3.2, 1.3])
    ax = fig.add_subplot(gs[0])
    lat = fig.add_subplot(gs[1], sharex=ax)

    # -- bands and points ------------------------------------------------------------------------
    seconds = summary.get("seconds_by_class") or {}
    # (lane y, that lane's samples, the classes drawn in it): a class's lane, or a vantage's lane of every class.
    rows = ([(lane_y[n], by_vantage[n], [c for c, _, _ in class_lanes]) for n in vantage_names] if per_vantage
            else [(lane_y[c], samples, [c]) for c, _, _ in class_lanes])
    y: float
    for y, lane_samples, classes in rows:
        for cls in classes:
            spans = [(iv.start + offset - origin, iv.duration) for iv in tl.class_intervals(lane_samples, cls, max_gap)]
            spans = [(x, max(w, x_max / 1500)) for x, w in spans]  # a single request still shows
            if spans:
                ax.broken_barh(spans, (y - 0.32, 0.64), facecolors=colour[cls], alpha=0.30, edgecolor="none")
            pts = [s for s in lane_samples if s.cls == cls]
            if pts:
                ax.scatter([s.wall_seen - origin for s in pts], [y] * len(pts), s=7 if not per_vantage else 4,
                           color=colour[cls], linewidths=0, zorder=3)
    for cls, label, col in class_lanes:
        pts = [s for s in samples if s.cls == cls]
        if pts:
            lat.scatter([s.wall_seen - origin for s in pts], [max(s.latency_ms, 0.1) for s in pts], s=7, color=col,
                        marker="x" if cls == tl.ERROR else "o", linewidths=0.8 if cls == tl.ERROR else 0, zorder=3,
                        label=label)
    ticklabels = []
    if per_vantage:
        about = {v.get("name"): v for v in summary.get("vantages") or [] if isinstance(v, dict)}
        for n in vantage_names:
            edges = sorted({s.edge for s in by_vantage[n] if s.edge})
            v = about.get(n) or {}
            down = v.get("downtime_seconds")
            extra = [", ".join(edges)] if edges else []
            if isinstance(down, (int, float)) and down:
                extra.append(f"errors {down:.1f}s")
            if isinstance(v.get("unobserved_seconds"), (int, float)) and v["unobserved_seconds"] >= 0.05:
                extra.append(f"unobserved {v['unobserved_seconds']:.1f}s")
            ticklabels.append(n + ("\n" + "; ".join(extra) if extra else ""))
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(facecolor=col, alpha=0.5, label=label) for c, label, col in class_lanes
                           if c in present], fontsize=7, loc="lower left", ncols=4, framealpha=0.85)
    else:
        for cls, label, _ in lanes:
            secs = seconds.get(cls)
            ticklabels.append(f"{label}\n{secs:.1f}s" if isinstance(secs, (int, float)) and secs else label)
    ax.set_yticks([lane_y[c] for c, _, _ in lanes], ticklabels, fontsize=8)

    # -- instants: faults, remediations, ledger changes, RTO deadlines; arrows: measured RTOs ------
    starts: dict[float, list[str]] = {}
    for p in phases:
        t = _ts(p.get("fault_at"))
        if t is not None:
            starts.setdefault(round(t, 3), []).append(str(p.get("name", "?")))
    first_fault = min(starts) if starts else None
    x_min = min([0.0] + [t - origin for t in starts])
    span = x_max * 1.01 - x_min
    top = len(lanes) - 0.5

    lines: list[tuple[float, str, str, str, float]] = []  # (t, label, colour, style, width)
    for t, names in sorted(starts.items()):
        if t == first_fault:
            lines.append((t, f"fault ({', '.join(names)})", FAULT_COLOUR, "-", 1.6))
        else:
            lines.append((t, f"remediation ({', '.join(names)})", REMEDIATION_COLOUR, "-", 1.4))
    changes: list[tuple[float, str]] = []
    undos: list[tuple[float, str]] = []
    for a in actions:
        ident = a.get("id", "?")
        applied, undone = _ts(a.get("applied_at")), _ts(a.get("undone_at"))
        change = a.get("change") or {}
        desc = change.get("description") or change.get("op") or ""
        if applied is not None:
            changes.append((applied, f"#{ident} {_short(desc, 30)}"))
        if undone is not None:
            undos.append((undone, f"#{ident}"))
    within = span / 150
    for t, labels in _cluster(changes, within):
        if any(abs(t - s) <= within for s in starts):  # the fault's own change: the fault line names it
            labels = [lb.split(" ", 1)[0] for lb in labels]
        lines.append((t, _join_labels(labels, 2 if len(labels) > 2 else 3), CHANGE_COLOUR, ":", 1.0))
    for t, labels in _cluster(undos, within):
        lines.append((t, "undo " + " ".join(labels[:8]) + (" …" if len(labels) > 8 else ""), UNDO_COLOUR, ":", 1.0))
    for p in phases:
        t0, target = _ts(p.get("fault_at")), p.get("rto_target_seconds")
        if t0 is not None and isinstance(target, (int, float)):
            lines.append((t0 + float(target), f"{p.get('name', '?')} RTO target {float(target):.1f}s", TARGET_COLOUR, "-.", 1.1))

    # RTO arrows first (just above the lanes), then the instants' labels in rows above them,
    # each label in the lowest row where it does not run into the previous label.
    measured = [p for p in phases if _ts(p.get("fault_at")) is not None]
    arrows_top = top + 0.25 + 0.5 * len(measured)
    row_h, max_rows = 0.36, 9
    px_per_unit = (12.5 - 1.9) * dpi / span
    row_end: list[float] = []
    placed: list[tuple[float, float, str, str, bool]] = []
    for t, label, col, style, width in sorted(lines, key=lambda ln: ln[0]):
        x = t - origin
        for axes in (ax, lat):
            axes.axvline(x, color=col, linestyle=style, linewidth=width, zorder=2)
        w = (len(label) + 2) * 0.55 * 6.5 * dpi / 72 / px_per_unit
        right = x + w > x_min + span  # no room on the right: the label goes left of its line
        x0 = x - w if right else x
        row = next((i for i, e in enumerate(row_end) if e < x0), None)
        if row is None:
            row = len(row_end) if len(row_end) < max_rows else min(range(len(row_end)), key=row_end.__getitem__)
            if row == len(row_end):
                row_end.append(x0 + w)
        row_end[row] = x0 + w
        placed.append((x, arrows_top + 0.2 + row_h * row, (label + " ") if right else (" " + label), col, right))
    for x, label_y, label, col, right in placed:
        ax.text(x, label_y, label, fontsize=6.5, color=col, ha="right" if right else "left", va="center", zorder=5, clip_on=True,
                bbox={"boxstyle": "square,pad=0.05", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    y_max = arrows_top + 0.2 + row_h * max(len(row_end), 1) + 0.1

    for level, p in enumerate(measured):
        t0 = _ts(p.get("fault_at"))
        if t0 is None:  # (measured holds only phases with a fault)
            continue
        name = str(p.get("name", "?"))
        y = top + 0.3 + 0.5 * level
        target = p.get("rto_target_seconds")
        reached = _ts(p.get("reached_at"))
        rto = p.get("rto_seconds")
        ok = bool(p.get("passed"))
        col = REMEDIATION_COLOUR if ok else FAULT_COLOUR
        if reached is not None and isinstance(rto, (int, float)):
            ax.annotate("", xy=(reached - origin, y), xytext=(t0 - origin, y),
                        arrowprops={"arrowstyle": "<|-|>", "color": col, "linewidth": 1.2, "shrinkA": 0, "shrinkB": 0},
                        zorder=4)
            real = p.get("rto_real_equivalent_seconds")
            words = f"{name} RTO {float(rto):.2f}s"
            if isinstance(real, (int, float)) and summary.get("time_scale") not in (None, 1, 1.0):
                words += f" (≈{real:g}s real)"
            words += " PASS" if ok else " FAIL"
            ax.text(reached - origin, y, " " + words, fontsize=7, color=col, ha="left", va="center", zorder=5, clip_on=True,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
        else:
            stop = (t0 + float(target) - origin) if isinstance(target, (int, float)) else x_max
            ax.plot([t0 - origin, stop], [y, y], color=FAULT_COLOUR, linestyle="--", linewidth=1.1, zorder=4)
            ax.text(stop, y, f" {name} RTO not reached FAIL", fontsize=7, color=FAULT_COLOUR, ha="left",
                    va="center", zorder=5, clip_on=True)

    # Where each vantage reached each phase's class: a triangle on its lane, labelled with its own RTO.
    if per_vantage:
        for p in measured:
            for v in ((p.get("detail") or {}).get("vantages") or []):
                at = _ts(v.get("reached_at"))
                if at is None or v.get("vantage") not in lane_y or not isinstance(v.get("rto_seconds"), (int, float)):
                    continue
                y = lane_y[v["vantage"]]
                ax.scatter([at - origin], [y + 0.36], marker="v", s=28, color=TARGET_COLOUR, zorder=6)
                ax.text(at - origin, y + 0.36, f" {p.get('name')} {v['rto_seconds']:.2f}s", fontsize=6, color=TARGET_COLOUR,
                        ha="left", va="bottom", zorder=6, clip_on=True)

    # -- axes, titles, empty cases ----------------------------------------------------------------
    ax.set_ylim(-0.6, y_max)
    ax.set_xlim(x_min, x_max * 1.01)
    ax.grid(axis="x", alpha=0.25)
    ax.tick_params(axis="x", labelbottom=False)
    if not samples:
        ax.text(0.5, 0.45, "no probe samples (the probe never ran, or the run was interrupted)",
                transform=ax.transAxes, ha="center", va="center", fontsize=11, color="#555555")
    verdict = str(summary.get("verdict", "unknown")).upper()
    title = (f"dr-drill {summary.get('run_id', '?')} on {summary.get('target', '?')}: {verdict} — what users saw"
             + (f" at each of {len(vantage_names)} vantages" if per_vantage else ""))
    ax.set_title(title, fontsize=11, loc="left")
    scale = summary.get("time_scale")
    if isinstance(scale, (int, float)) and scale > 0 and not math.isclose(float(scale), 1.0):
        k = float(scale)

        def real_minutes(x: Any) -> Any:  # scalars or numpy arrays, as matplotlib passes them
            return x * k / 60.0

        def lab_seconds(m: Any) -> Any:
            return m * 60.0 / k

        sec = ax.secondary_xaxis("top", functions=(real_minutes, lab_seconds))
        sec.set_xlabel(f"real-world minutes (lab time scale ×{k:g})", fontsize=8)
        sec.tick_params(labelsize=7)

    lat.set_yscale("log")
    lat.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    lat.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    lat.yaxis.set_minor_formatter(NullFormatter())
    lat.set_ylabel("latency (ms)", fontsize=8)
    lat.set_xlabel("seconds since the drill started (wall clock)", fontsize=8)
    lat.grid(alpha=0.25)
    lat.tick_params(labelsize=7)
    ax.tick_params(labelsize=7)
    if samples:
        lat.legend(fontsize=7, loc="upper right", markerscale=1.5, ncols=len(present))
    else:
        lat.set_ylim(1, 1000)

    out.parent.mkdir(parents=True, exist_ok=True)
    # The lanes drawn, readable without looking at the picture (a PNG tEXt chunk, png_lanes()).
    lanes_text = ("vantages: " if per_vantage else "classes: ") + ", ".join(key for key, _, _ in lanes)
    fig.savefig(out, format="png", metadata={"Software": None, "Description": lanes_text, "Title": title})
    return out


def png_lanes(path: Path) -> str | None:
    """The lanes a timeline.png was drawn with ("vantages: a, b" or "classes: aws, …"), from its tEXt chunk."""
    return png_text(path, "Description")


def png_text(path: Path, keyword: str) -> str | None:
    """A text chunk of a PNG this module wrote ("Description": the lanes, "Title": the chart's title)."""
    import struct
    import zlib

    data = Path(path).read_bytes()
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            key, _, rest = body.partition(b"\0")
            if key == keyword.encode("latin-1"):
                if kind == b"zTXt":
                    rest = zlib.decompress(rest[1:])
                elif kind == b"iTXt":
                    rest = rest[2:].split(b"\0", 2)[-1]
                return rest.decode("latin-1" if kind == b"tEXt" else "utf-8")
        pos += 12 + length
    return None
