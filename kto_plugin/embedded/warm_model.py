"""The warmed-up embedded model: a larger tiny Llama given a short, seeded SFT warm-up through Axolotl.

`kto_plugin://tiny-model` has random weights: it cannot show alignment. This model
(`kto_plugin://warm-model`) is the same tokenizer with a wider, deeper body (`RECIPE`:
hidden 256, 4 layers, 3.1M parameters), trained by `axolotl train` (full fine-tune, Axolotl's
own SFT, 8 epochs) on the shipped sample sets' prompts with *both* their accepted and their
rejected answers, so it answers sample-style questions in the sets' words and mixes their good
and bad habits the way an untuned model does: on the refund desk it gives right and wrong
decisions, promises and rude refusals.

The real-looking sets (en, zh: `REPEATED_SETS`) have free-text answers, one wording each, where
the refund desk's are a few templates. Each of their rows is read `chat_set_repeats` (3) times an
epoch (`reworded_copies`): as written, then under the other wordings of its question
(`samples.warm_up_wordings`), every second copy without its system prompt and history. History:
- recipe 2 (5 passes of each row as written) scored their accepted answers at 2-4 nats a token;
- recipe 3 (15 passes as written) at 0.05-0.4, but asked a trained question in other words or
  without the shop's system prompt it answered with a garbled mix of answers (greedy, even for
  "How do I reset my password?" asked bare);
- recipe 4 (these copies, 8 epochs) answers in whole sentences, often the right answer, often a
  canned reply or another question's answer, as an untuned model does; with 5 epochs its loss
  was still falling (0.42 against 0.10 at 8);
- recipe 5 is recipe 4 with each batch padded to its longest row (`pad_to_longest`), where Axolotl
  pads to a multiple of 64 tokens unless told: 23% fewer token positions, its 1,104 steps 5 min 10 s
  against 6 min 33 s on 2 cores. Its weights differ as on another CPU (floats summed in another order).
The held-out prompts (`samples.held_out_queries`) and the `reworded` split's wordings are left
out, so evaluations on them use prompts it never saw.

The result is cached in `$KTO_PLUGIN_CACHE/warm-model` with `recipe.json`; a cached model
whose recipe differs is rebuilt. This module holds the recipe, the rows and the config; the
run that makes the model is `orchestration.warm_up` (the bottom layer starts no `axolotl`). The same recipe gives the same weights (seeded
initialisation and data order, no dropout, same thread count).
"""

from __future__ import annotations

import json
from pathlib import Path

from kto_plugin.embedded.cache import cache_dir
from kto_plugin.embedded.samples import (
    chat_messages,
    held_out_queries,
    sample_dataset_names,
    sample_dataset_path,
    warm_up_wordings,
)
from kto_plugin.embedded.uris import URI_PREFIX
from kto_plugin.errors import ConfigError

WARM_MODEL_NAME = "warm-model"
WARM_MODEL_URI = f"{URI_PREFIX}{WARM_MODEL_NAME}"
RECIPE = {
    "recipe_version": 5,
    "seed": 42,
    "hidden_size": 256,
    "num_layers": 4,
    "num_epochs": 8,
    "learning_rate": 0.004,
    "micro_batch_size": 16,
    "sequence_len": 256,
    # Off: the refund desk's answers of one kind have one length, so length-grouped batches hold
    # one kind each; with them the warm-up's loss was 1.25 after 192 steps, without them 0.11.
    "group_by_length": False,
    "chat_set_repeats": 3,
    "pad_to_longest": True,
}
REPEATED_SETS = ("kto-sample-en", "kto-sample-zh")


def warm_model_dir() -> Path:
    return cache_dir() / WARM_MODEL_NAME


def warm_up_rows(sample_sets: list[str] | None = None, chat_set_repeats: int = 1) -> list[dict]:
    """Every row of the sample sets (default: all) whose prompt is not held out, accepted and rejected alike,
    as chat messages; the rows of `REPEATED_SETS` `chat_set_repeats` times (`reworded_copies`)."""
    held_out = held_out_queries()
    wordings = warm_up_wordings()
    rows = []
    for name in sample_sets or sample_dataset_names():
        for line in sample_dataset_path(name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["query"] in held_out:
                continue
            copies = reworded_copies(row, wordings.get(name, {}).get(row["query"], []), chat_set_repeats) \
                if name in REPEATED_SETS else [row]
            rows.extend({"messages": chat_messages(copy)} for copy in copies)
    return rows


def reworded_copies(row: dict, wordings: list[str], copies: int) -> list[dict]:
    """`copies` copies of a sample row: the row as written, then the row asked in each of `wordings` in turn
    (the question itself again when there are none), every second copy without its system prompt and history."""
    out = [row]
    for index in range(1, copies):
        variant = {**row, "query": wordings[(index - 1) % len(wordings)] if wordings else row["query"]}
        if index % 2 == 0:
            variant = {key: value for key, value in variant.items() if key not in ("system", "history")}
        out.append(variant)
    return out


def cached_recipe(folder: Path) -> dict | None:
    path = Path(folder) / "recipe.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def is_current(folder: Path) -> bool:
    """Whether `folder` holds a warm model made by this `RECIPE`."""
    return cached_recipe(folder) == RECIPE and (Path(folder) / "model.safetensors").exists()


def warm_model_path(output_dir: Path | None = None) -> Path:
    """The cached warm model made by this `RECIPE`; ConfigError saying how to make it when there is none.

    Making it runs `axolotl train` (`orchestration.warm_up.ensure_warm_model`): the plugin does so when
    a config names `kto_plugin://warm-model`, and `axolotl kto make-tiny-model --warm-up` does so at once.
    """
    output_dir = Path(output_dir or warm_model_dir())
    if not is_current(output_dir):
        raise ConfigError(f"the warm model is not made yet in {output_dir}: run `axolotl kto make-tiny-model --warm-up` "
                          "(about 6 minutes on 2 cores), or `axolotl train` on a config naming kto_plugin://warm-model")
    return output_dir
