"""Stage 4, orchestration: runs that chain real `axolotl` jobs, above training and evaluation.

- `axolotl_jobs`: one way to build and run an Axolotl job: `axolotl_command` (this Python's
  `axolotl`), `run_axolotl_logged` (a job with its log file and an error with the log's tail),
  `cpu_job_config` (the keys every CPU job the plugin writes shares: fp32, no GPU kernels);
- `warm_up`: makes `kto_plugin://warm-model` with `axolotl train` from the embedded recipe;
- `suitability`: `axolotl kto try`, a short run on a sample of a config's data with a verdict;
- `pipeline`: `axolotl kto pipeline`, SFT -> KTO -> DPO stages run with `axolotl train` and scored after each;
- `iterate`: `axolotl kto iterate`, rounds of sample -> label -> check -> train -> score on the model's own answers;
- `iterate_settings`: `kto_iterate:`, the loop's settings (a pydantic model, also a config key);
- `iterate_folder`: the run folder (`round-K/`, `rounds.json`) and what a resume keeps;
- `iterate_steps`: one round's steps, each writing its files;
- `prompt_pool`: the prompts a round samples answers for, and the held-out ones.

May import: `kto_plugin.log`, `kto_plugin.errors`, `kto_plugin.versions`, `kto_plugin.data`, `kto_plugin.training`,
`kto_plugin.evaluation`, `kto_plugin.embedded`, `kto_plugin.distributed`. Imported by the plugin's hooks
(the warm model on first use), the CLI, the studio, `bench/` and the tests; never by the stages below it.
"""
