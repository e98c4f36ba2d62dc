"""The alignment bench's table (rich) and plot (matplotlib PNG): mean and spread over seeds per variant."""

from __future__ import annotations

import statistics
from pathlib import Path

MEASURES = (  # (key, column title)
    ("preference_accuracy", "preference accuracy"),
    ("good", "good answers"),
    ("bad", "bad answers"),
    ("other", "neither (displaced)"),
    ("logp_good", "mean log p(good)"),
)


def mean_and_spread(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summary(results: dict) -> dict[str, dict[str, tuple[float, float]]]:
    """variant -> measure -> (mean, standard deviation over seeds); `base` first."""
    table = {}
    for variant, runs in results["variants"].items():
        table[variant] = {key: mean_and_spread([run[key] for run in runs]) for key, _ in MEASURES}
    return table


def print_table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = summary(results)
    seeds = len(results["seeds"])
    table = Table(title=f"Refund desk, {results['held_out_questions']} held-out questions: mean ± sd over {seeds} seeds "
                        f"(base: the warm model; {results['settings']})")
    table.add_column("variant", no_wrap=True)
    for _, title in MEASURES:
        table.add_column(title, justify="right")
    for variant, measures in rows.items():
        cells = []
        for key, _ in MEASURES:
            mean, spread = measures[key]
            cells.append(f"{mean:.1f} ± {spread:.1f}" if key == "logp_good" else f"{mean:.2f} ± {spread:.2f}")
        table.add_row(variant, *cells)
    Console().print(table)


def plot(results: dict, path: Path) -> None:
    """Grouped bars: preference accuracy and the good / bad / neither shares of sampled answers, with sd bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary(results)
    variants = list(rows)
    keys = [("preference_accuracy", "preference accuracy"), ("good", "good answers"),
            ("bad", "bad answers"), ("other", "neither (displaced)")]
    width = 0.8 / len(keys)
    figure, axis = plt.subplots(figsize=(9, 4.2), dpi=120)
    for offset, (key, title) in enumerate(keys):
        positions = [index + (offset - (len(keys) - 1) / 2) * width for index in range(len(variants))]
        axis.bar(positions, [rows[v][key][0] for v in variants], width, yerr=[rows[v][key][1] for v in variants],
                 capsize=2, label=title)
    axis.set_xticks(range(len(variants)), variants)
    axis.set_ylim(0, 1)
    axis.set_ylabel("share (held-out questions)")
    axis.set_title(f"Refund desk: KTO, DPO and SFT from one feedback budget ({len(results['seeds'])} seeds, mean ± sd)")
    axis.legend(ncol=4, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
