"""The history chart: every drill of a target, oldest to newest (`drill history`, attached to Allure).

Top: each phase's measured RTO as a share of its target (one colour per phase; the dashed line at
100 % is the target, so phases minutes and seconds long read on one axis); a red ring marks a
regression, an × a phase not reached. Middle:
RPO against its target, and user-visible downtime. Bottom: the verdict of each run (passed,
failed, dry run, EDITED). The x axis is the runs in order, labelled with their start (UTC).

matplotlib through its object API and the Agg canvas only, imported lazily (as drill.chart).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from drill.history import Regression, Run, phase_names

COLOURS = ("#1565c0", "#6a1b9a", "#ef6c00", "#2e7d32", "#00838f", "#ad1457")
VERDICT = {"passed": "#2e7d32", "failed": "#c62828", "dry-run": "#9e9e9e"}


def render_history(runs: Sequence[Run], regs: Sequence[Regression], out: Path, title: str = "", dpi: int = 100) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 7.5), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax_rto, ax_rpo, ax_v = fig.subplots(3, 1, sharex=True, height_ratios=[3, 2, 0.7])
    xs = list(range(len(runs)))
    flagged = {(g.run_id, g.figure) for g in regs}
    # RTO as a share of its target: phases of very different lengths on one axis, the target at 100 %.
    shares = [100 * p["rto_seconds"] / p["rto_target_seconds"] for r in runs for p in r.phases.values()
              if p["rto_seconds"] is not None and p["rto_target_seconds"]]
    top = max(shares + [100.0]) * 1.12  # where "not reached" is drawn
    for i, name in enumerate(phase_names(runs)):
        colour = COLOURS[i % len(COLOURS)]
        pts = [(x, r.phases[name]) for x, r in zip(xs, runs, strict=True) if name in r.phases and r.phases[name]["rto_target_seconds"]]
        reached = [(x, 100 * p["rto_seconds"] / p["rto_target_seconds"]) for x, p in pts if p["rto_seconds"] is not None]
        if reached:
            ax_rto.plot(*zip(*reached, strict=True), marker="o", color=colour, label=f"{name} RTO")
        for x, p in pts:
            y = top if p["rto_seconds"] is None else 100 * p["rto_seconds"] / p["rto_target_seconds"]
            if p["rto_seconds"] is None:
                ax_rto.scatter([x], [y], marker="x", color=colour, s=70, zorder=3)
            if (runs[x].run_id, f"{name} RTO") in flagged:
                ax_rto.scatter([x], [y], s=260, facecolors="none", edgecolors="#d50000", linewidths=2, zorder=4)
    ax_rto.axhline(100, color="#616161", linestyle="--", linewidth=1, label="target (100 %)")
    ax_rto.text(-0.5, top, "× not reached", fontsize=7, va="center", color="#616161")
    ax_rto.set_ylim(0, top * 1.08)
    ax_rto.set_ylabel("RTO, % of its target")
    ax_rto.set_title(title or "drill history", loc="left")
    ax_rto.grid(alpha=0.3)
    ax_rto.legend(loc="lower left", fontsize=8, ncols=3)

    rpo = [(x, r.rpo_seconds) for x, r in zip(xs, runs, strict=True) if r.rpo_seconds is not None]
    rpo_t = [(x, r.rpo_target_seconds) for x, r in zip(xs, runs, strict=True) if r.rpo_target_seconds is not None]
    down = [(x, r.downtime_seconds) for x, r in zip(xs, runs, strict=True) if r.downtime_seconds is not None]
    if rpo:
        ax_rpo.plot(*zip(*rpo, strict=True), marker="s", color="#6d4c41", label="RPO")
    if rpo_t:
        ax_rpo.plot(*zip(*rpo_t, strict=True), linestyle="--", drawstyle="steps-mid", color="#6d4c41", alpha=0.6, label="RPO target")
    if down:
        ax_rpo.plot(*zip(*down, strict=True), marker="^", color="#c62828", label="downtime (errors)")
    for g in regs:
        if g.figure in ("RPO", "downtime") and g.value is not None:
            ax_rpo.scatter([next(x for x, r in zip(xs, runs, strict=True) if r.run_id == g.run_id)], [g.value], s=260,
                           facecolors="none", edgecolors="#d50000", linewidths=2, zorder=4)
    ax_rpo.set_ylabel("wall s")
    ax_rpo.grid(alpha=0.3)
    if rpo or down:
        ax_rpo.legend(loc="upper left", fontsize=8)

    for x, r in zip(xs, runs, strict=True):
        label = "EDITED" if not r.intact else ("dry-run" if r.dry_run else r.verdict)
        ax_v.bar([x], [1], color="#000000" if not r.intact else VERDICT.get(r.verdict, "#bdbdbd"), width=0.8)
        ax_v.text(x, 0.5, label, ha="center", va="center", color="white", fontsize=7)
    ax_v.set_yticks([])
    ax_v.set_ylabel("verdict")
    ax_v.set_xticks(xs, [f"{r.started_at:%m-%d %H:%M}\n{r.run_id[-6:]}" if r.started_at else r.run_id[-6:] for r in runs],
                    fontsize=7, rotation=0)
    ax_v.set_xlim(-0.6, max(len(runs) - 0.4, 0.6))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", metadata={"Software": None})
    return out
