"""Stage 3, evaluation: lm-eval tasks from feedback, base vs tuned reports, blind side-by-side sheets.

- `tasks`: write `<name>_preference` and `<name>_rules` lm-eval tasks from KTO rows;
- `lm_eval_tasks`: the shipped lm-eval tasks (package data) and `lm_eval_tasks.utils`, the rule scorers
  lm-eval loads beside a task YAML (copied into tasks `make-eval-tasks` writes; it imports nothing of the plugin);
- `harness`: run lm-eval on the base and the trained model, write results.json and report.md;
- `side_by_side`: answers from both models, A/B rating sheets, scoring with intervals;
- `trained_run`: a finished run (base + adapter, or full weights) found by one rule, and its models;
- `generation`: one `generate_answers` with one seeding rule, for every command that samples;
- `vllm_sampling`: `axolotl kto iterate`'s answers sampled with vLLM on a GPU where it is installed;
- `held_out_probe`: preference accuracy, reward accuracy and rule shares on held-out examples;
- `judges`: who labels answers in `axolotl kto iterate`: a Python function, a reward model, a chat model's
  yes/no, and scores turned into labels at a threshold;
- `answer_match`: the kind of a sampled free-text answer (like an accepted, a rejected or another question's
  answer, or garbled), told by the answers the held-out rows hold;
- `before_after`: `axolotl kto before-after`, a config's base model and trained result on held-out prompts.

May import: `kto_plugin.log`, `kto_plugin.errors`, `kto_plugin.versions`, `kto_plugin.data`, `kto_plugin.training`,
`kto_plugin.embedded`. Starts no `axolotl` job (that is `kto_plugin.orchestration`); never imports cli.
"""
