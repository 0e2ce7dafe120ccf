"""One PNG of a pool report: responses per query by difficulty, and a pass-rate histogram.

The left panel is drawn like the right of Figure 1 of the DART-Math paper: queries on the x axis
from hardest to easiest (ascending pass rate), the number of responses on the y axis, with the
correct responses drawn over the raw ones. matplotlib is imported only when a plot is asked for.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from dartmath.stats import Report, hardest_first

if TYPE_CHECKING:
    from matplotlib.axes import Axes

RAW_COLOR = "#b8c7dc"
CORRECT_COLOR = "#2f6db5"
BAR_LIMIT = 300  # above this many queries, stepped areas instead of one bar per query
LABEL_LIMIT = 25  # up to this many queries, label each bar with its query_id


def plot_report(
    report: Report,
    path: str | os.PathLike,
    title: str | None = None,
    correct_label: str = "correct",
) -> None:
    """Write the two-panel PNG of `report` to `path` (its directory must exist). `title`
    replaces the summary line; `correct_label` names the dark bars (`dart export`: "kept")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    try:
        _responses_panel(left, hardest_first(report.queries), correct_label)
        _pass_rate_panel(right, report.queries)
        fig.suptitle(title or _title(report), fontsize=11)
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=110)
    finally:
        plt.close(fig)


def _title(report: Report) -> str:
    s = report.summary
    name = os.path.basename(report.source) if report.source else "pool"
    if not s["responses"]:
        return f"{name}: no responses"
    return (
        f"{name}: {s['queries']} queries, {s['responses']} responses, "
        f"{s['correct']} correct ({100 * s['pass_rate']:.1f}%), "
        f"{s['unsolved_queries']} unsolved"
    )


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no queries", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _responses_panel(ax: Axes, rows: list[dict[str, Any]], correct_label: str) -> None:
    """Raw and correct (or `correct_label`) responses per query, hardest query first."""
    ax.set_title("Responses per query, hardest first")
    if not rows:
        _no_data(ax)
        return
    xs = list(range(len(rows)))
    raw = [r["tot_n_samples"] for r in rows]
    correct = [r["tot_n_corrects"] for r in rows]
    if len(rows) <= BAR_LIMIT:
        ax.bar(xs, raw, width=0.8, color=RAW_COLOR, label="raw")
        ax.bar(xs, correct, width=0.8, color=CORRECT_COLOR, label=correct_label)
    else:
        ax.fill_between(xs, raw, step="mid", color=RAW_COLOR, label="raw", linewidth=0)
        ax.fill_between(
            xs, correct, step="mid", color=CORRECT_COLOR, label=correct_label, linewidth=0
        )
        ax.set_xlim(-0.5, len(rows) - 0.5)
    if len(rows) <= LABEL_LIMIT:
        ax.set_xticks(
            xs,
            [
                str(r["query_id"] if r["query_id"] is not None else i + 1)
                for i, r in enumerate(rows)
            ],
            rotation=30,
            ha="right",
            fontsize=8,
        )
        ax.set_xlabel("query (sorted by difficulty: lowest pass rate first)")
    else:
        ax.set_xlabel(f"{len(rows)} queries, sorted by difficulty (lowest pass rate first)")
    ax.set_ylabel("number of responses")
    ax.set_ylim(0, max(raw) * 1.15)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="upper right", frameon=False, ncols=2)


def _pass_rate_panel(ax: Axes, rows: list[dict[str, Any]]) -> None:
    """Histogram of per-query pass rates over [0, 1]."""
    ax.set_title("Per-query pass rate")
    if not rows:
        _no_data(ax)
        return
    rates = [r["pass_rate"] for r in rows]
    bins = [i / 10 for i in range(11)]
    counts, _, _ = ax.hist(rates, bins=bins, color=CORRECT_COLOR, edgecolor="white")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(counts) * 1.2)
    ax.set_xticks(bins)
    ax.set_xlabel("pass rate (correct / raw responses)")
    ax.set_ylabel("number of queries")
    ax.yaxis.get_major_locator().set_params(integer=True)
    mean = sum(rates) / len(rates)
    ax.axvline(mean, color="#c0392b", linestyle="--", linewidth=1, label=f"mean {mean:.2f}")
    ax.legend(loc="upper right", frameon=False)
