"""The feedback-loop bench's table (rich) and plot (matplotlib PNG): each round's scores, mean ± sd over seeds,
beside offline KTO and SFT on the same label budget."""

from __future__ import annotations

from pathlib import Path

from bench.alignment.report import mean_and_spread

MEASURES = (("preference_accuracy", "preference accuracy"), ("good", "good answers"), ("bad", "bad answers"),
            ("other", "neither (displaced)"))


def rows(results: dict) -> list[tuple[str, dict, float | None]]:
    """(name, measure -> (mean, sd), minutes) for round 0..N of the loop, then each offline variant."""
    runs = list(results["iterate"].values())
    found = []
    for index in range(min(len(run) for run in runs)):
        name = "warm model (round 0)" if index == 0 else f"iterate, after round {index}"
        measures = {key: mean_and_spread([run[index][key] for run in runs]) for key, _ in MEASURES}
        minutes = None if index == 0 else mean_and_spread([run[index]["seconds"] / 60 for run in runs])[0]
        found.append((name, measures, minutes))
    for variant, scores in results["offline"].items():
        measures = {key: mean_and_spread([score[key] for score in scores]) for key, _ in MEASURES}
        found.append((f"offline {variant}", measures, mean_and_spread([score["seconds"] / 60 for score in scores])[0]))
    return found


def print_table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Refund desk, held-out questions: mean ± sd over {len(results['seeds'])} seeds, "
                        f"{results['label_budget']} labelled answers per run")
    table.add_column("model", no_wrap=True)
    for _, title in MEASURES:
        table.add_column(title, justify="right")
    table.add_column("minutes", justify="right")
    for name, measures, minutes in rows(results):
        table.add_row(name, *(f"{measures[key][0]:.2f} ± {measures[key][1]:.2f}" for key, _ in MEASURES),
                      "-" if minutes is None else f"{minutes:.1f}")
    Console().print(table)


def plot(results: dict, path: Path) -> None:
    """Good and neither shares after each round (mean ± sd), offline KTO and SFT as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = rows(results)
    loop = [(index, measures) for index, (name, measures, _) in enumerate(found) if name.startswith(("warm", "iterate"))]
    figure, axis = plt.subplots(figsize=(7, 4), dpi=120)
    for key, title, color in (("good", "good answers", "tab:green"), ("other", "neither (garbled)", "tab:gray"),
                              ("bad", "bad answers", "tab:red")):
        axis.errorbar([index for index, _ in loop], [m[key][0] for _, m in loop], yerr=[m[key][1] for _, m in loop],
                      marker="o", capsize=3, color=color, label=f"iterate: {title}")
        for name, measures, _ in found:
            if name.startswith("offline") and key == "good":
                axis.axhline(measures["good"][0], linestyle="--" if "kto" in name else ":", color=color,
                             label=f"{name}: good answers")
    axis.set_xticks([index for index, _ in loop])
    axis.set_xlabel("round (0: the warm model)")
    axis.set_ylim(0, 1)
    axis.set_ylabel("share of sampled held-out answers")
    axis.set_title(f"Refund desk: rounds of KTO on the model's own answers ({len(results['seeds'])} seeds)")
    axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
