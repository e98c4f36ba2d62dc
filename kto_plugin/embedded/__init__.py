"""What the plugin ships and makes so a first run needs no hub: sample sets, the tiny model, `kto_plugin://` names.

- `cache`: the cache folder ($KTO_PLUGIN_CACHE) and where the tiny model lives in it;
- `samples`: the shipped sample sets in `sample_data/`, their `train` / `held-out` splits and the held-out prompts;
- `refund_desk`: the generated refund-desk task behind `kto-sample-refunds`: questions, answers of each kind, the grader;
- `tiny_model`: the seeded tiny Llama and its byte-level BPE tokenizer;
- `warm_model`: the recipe, rows and config of a larger tiny Llama warmed up on the sample sets
  (`kto_plugin://warm-model`; `orchestration.warm_up` runs the `axolotl train` that makes it);
- `recipes`: the example configs shipped in `kto_plugin/recipes/` (`yaml_examples/` in a checkout), listed and copied out;
- `uris`: `kto_plugin://kto-sample-en` (or `.../train`), `kto_plugin://tiny-model`, `kto_plugin://warm-model` -> paths.

The bottom layer: imports nothing of the plugin but `kto_plugin.log`, `kto_plugin.errors` and `kto_plugin.versions`;
anything may import it.
"""
