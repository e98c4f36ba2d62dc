"""The lm-eval tasks the plugin ships (package data), and `utils`, the rule scorers they load.

`kto_sample_en_preference`, `kto_sample_en_rules`, `kto_sample_zh_preference` and
`kto_sample_zh_rules` are written from the sample sets by `axolotl kto make-eval-tasks`
(a test checks they are what it writes). `harness.shipped_tasks_dir()` finds this folder
with `importlib.resources`, so an installed wheel has them too.
"""
