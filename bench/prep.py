"""Data preparation at scale: rows/s and peak RSS from process start to the first training step.

    python -m bench.prep --rows 200000

Generates a feedback file of ROWS rows from the sample sets' text, then runs Axolotl's
built-in KTO and the plugin on it for one step each (`axolotl train`, one process each),
then the plugin once more, which loads the rows the first run saved under
`dataset_prepared_path`. The time to the first step covers reading, rendering, tokenizing and,
for the plugin, length grouping and the KL pairing; the plugin runs with `kto_ref_cache: off`
so that no reference pass is counted.
It also times the KL pairing alone, the linear rule against the plain quadratic one (on at
most 20,000 rows: the quadratic one takes hours beyond that).
"""

from __future__ import annotations

import copy
import json
import random
import shutil
import time
from pathlib import Path

import click

from bench.runs import RunSpec, run, run_specs
from bench.workload import ModelShape, build_model

GIB = 1024**3


def write_large_file(path: Path, rows: int, seed: int = 0) -> None:
    from bench.workload import _sample_texts

    queries, responses = _sample_texts()
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(rows):
            handle.write(json.dumps({"prompt": rng.choice(queries), "completion": " ".join(rng.sample(responses, 2)),
                                     "label": rng.random() < 0.4}, ensure_ascii=False) + "\n")


def time_pairing(rows: int, window: int = 16) -> dict:
    import numpy as np

    from kto_plugin.training.kl_pairing import kl_partner_array

    keys = np.random.default_rng(0).integers(0, rows // 2 + 1, size=rows)
    started = time.perf_counter()
    kl_partner_array(keys, window)
    linear = time.perf_counter() - started
    small = min(rows, 20_000)
    started = time.perf_counter()
    plain_rule_partners(keys[:small].tolist(), window)
    quadratic = time.perf_counter() - started
    return {"rows": rows, "linear_seconds": linear, "quadratic_rows": small, "quadratic_seconds": quadratic}


def plain_rule_partners(completions: list, window: int) -> list[int | None]:
    """The pairing rule written plainly, as the plugin computed it before (quadratic: a candidate list per example).

    The tests hold the linear version to it. `completions` are token lists or any comparable keys.
    """
    keys = [tuple(item) if isinstance(item, list) else item for item in completions]
    count, partners = len(keys), []
    for index in range(count):
        start = (index // window) * window
        size = min(window, count - start)
        candidates = [start + (index - start + offset) % size for offset in range(1, size)]
        candidates += [(index + offset) % count for offset in range(1, count)]
        partners.append(next((j for j in candidates if keys[j] != keys[index]), None))
    return partners


@click.command()
@click.option("--rows", default=200_000, show_default=True)
@click.option("--work", type=click.Path(path_type=Path), default=Path("outputs/bench-prep"), show_default=True)
def main(rows: int, work: Path):
    from rich.console import Console
    from rich.table import Table

    from kto_plugin.embedded.tiny_model import ensure_tiny_model

    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    model_dir = work / "model"
    build_model(ModelShape(hidden_size=64, num_layers=2, vocab_size=4096, intermediate_size=128), ensure_tiny_model(),
                model_dir)
    data = work / "rows.jsonl"
    write_large_file(data, rows)
    specs = [spec for spec in run_specs(model_dir, data, work, steps=1, micro_batch=4, sequence_len=512)
             if spec.kind in ("kto-builtin", "kto-plugin")]
    for spec in specs:
        if spec.kind == "kto-plugin":
            spec.config.update(kto_ref_cache="off", dataset_prepared_path=str(work / "prepared-plugin"))
            shutil.rmtree(work / "prepared-plugin", ignore_errors=True)
    # the plugin again on the same rows: it loads the rows the first run saved (data/prepared.py)
    plugin_spec = next(spec for spec in specs if spec.kind == "kto-plugin")
    again = copy.deepcopy(plugin_spec.config)
    again["output_dir"] = str(work / "kto-plugin-again")
    specs.append(RunSpec("plugin KTO, prepared rows loaded", again, "kto-plugin"))
    table = Table(title=f"Preparing {rows:,} rows: process start to the first training step")
    for column in ("run", "seconds", "rows/s", "peak RSS GiB"):
        table.add_column(column, justify="left" if column == "run" else "right")
    report = {"rows": rows, "runs": []}
    for spec in specs:
        result = run(spec, work)
        seconds = result.seconds_to_first_step if result.returncode == 0 else float("nan")
        table.add_row(spec.name, f"{seconds:.0f}", f"{rows / seconds:,.0f}", f"{result.peak_rss_bytes / GIB:.2f}")
        report["runs"].append({"name": spec.name, "returncode": result.returncode, "seconds_to_first_step": seconds,
                               "peak_rss_bytes": result.peak_rss_bytes, "log_tail": result.log_tail})
    report["kl_pairing"] = pairing = time_pairing(rows)
    console = Console(width=160)
    console.print(table)
    console.print(f"KL pairing alone: {rows:,} rows in {pairing['linear_seconds']:.2f} s (linear); the plain rule "
                  f"took {pairing['quadratic_seconds']:.1f} s for {pairing['quadratic_rows']:,} rows")
    (work / "prep.json").write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
