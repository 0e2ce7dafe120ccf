"""One PNG of a plan: expected raw samples and kept responses per query, hardest first (as
`dart stats --plot` draws a finished pool), with the ± band; one panel per source as well when
the config has several. matplotlib is imported only when a plot is asked for."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from dartmath.plan.report import Plan, QueryPlan, Z
from dartmath.plot import CORRECT_COLOR, RAW_COLOR

if TYPE_CHECKING:
    from matplotlib.axes import Axes

UNKNOWN_COLOR = "#d9a441"


def plot_plan(plan: Plan, path: str | os.PathLike) -> None:
    """Write the figure of `plan` to `path` (its directory must exist)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [("all queries", plan.queries)]
    if plan.by_source():
        sources: dict[str | None, list[QueryPlan]] = {}
        for r in plan.queries:
            sources.setdefault(r.source, []).append(r)
        groups += [(f"source {name}", rows) for name, rows in sources.items()]
    fig, axes = plt.subplots(len(groups), 1, figsize=(12, 3.6 * len(groups)), squeeze=False)
    try:
        for ax, (title, rows) in zip(axes[:, 0], groups, strict=True):
            _panel(ax, rows, plan.max_raw)
            ax.set_title(f"{title} ({len(rows):,})", fontsize=10)
        fig.suptitle(f"plan: {plan.strategy}, expected samples per query", fontsize=11)
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=110)
    finally:
        plt.close(fig)


def _rate(r: QueryPlan) -> float:
    return 2.0 if r.belief is None else r.belief.rate  # unknown queries last


def _panel(ax: Axes, rows: list[QueryPlan], max_raw: int | None) -> None:
    """Queries from hardest to easiest (pass rate as known); unknown ones at the right."""
    rows = sorted(rows, key=_rate)
    x = list(range(len(rows)))
    raw, lo, hi, kept = [], [], [], []
    for r in rows:
        mean = r.raw + (r.raw_mean if r.raw_mean is not None else r.min_raw)
        mean = mean if math.isfinite(mean) else float(max_raw or 0)
        sd = math.sqrt(r.raw_var) if r.raw_var is not None and math.isfinite(r.raw_var) else 0.0
        raw.append(mean)
        lo.append(max(0.0, mean - Z * sd))
        hi.append(mean + Z * sd if max_raw is None else min(mean + Z * sd, max_raw))
        kept.append(r.kept_mean or 0.0)
    ax.fill_between(x, lo, hi, step="mid", color=RAW_COLOR, alpha=0.5, label=f"raw ± {Z:g} sd")
    ax.step(x, raw, where="mid", color="#5b7fa8", label="expected raw samples")
    ax.step(x, kept, where="mid", color=CORRECT_COLOR, label="expected kept responses")
    unknown = [i for i, r in enumerate(rows) if r.status == "unknown"]
    if unknown:
        ax.axvspan(unknown[0] - 0.5, unknown[-1] + 0.5, color=UNKNOWN_COLOR, alpha=0.2)
        ax.text(unknown[0], max(raw, default=1), " no pass rate yet", fontsize=8, va="top")
    if max_raw is not None:
        ax.axhline(max_raw, color="#999999", lw=0.8, ls="--", label=f"max_raw {max_raw}")
    ax.set_xlabel("queries, hardest first (by pass rate)")
    ax.set_ylabel("samples")
    ax.set_xlim(-0.5, max(len(rows) - 0.5, 0.5))
    ax.legend(fontsize=8, loc="upper right")
