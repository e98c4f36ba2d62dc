"""Multi-process runs: CPU ranks, the shipped DeepSpeed configs, the memory estimate.

- `cpu_ranks`: what lets Axolotl's launcher run gloo ranks (plain DDP and DeepSpeed) on a machine without GPUs;
- `zero_configs`: `deepspeed: kto_plugin:NAME` -> the installed JSON in `deepspeed_configs/`;
- `memory_estimate`: GiB per GPU of a run's model states by strategy (`axolotl kto memory`).

May import: `kto_plugin.log`, `kto_plugin.versions`. Never imports data, training, evaluation or cli.
"""
