"""Stage 2, training: the plugin's KTO trainer, its loss, and what steers a run.

- `trainer`: `KTOPluginTrainer` (Axolotl's KTO trainer with the plugin's loss and KL pairing);
- `training_args`: the plugin's settings as typed training arguments (`KTOTrainingArgsMixin`), read by the trainer;
- `continued_adapter`: `lora_model_dir` of an adapter run trained further (Axolotl starts a fresh adapter for rl: kto);
- `loss`: the KTO and APO-zero losses with the SFT term (formula in the docstring);
- `displacement`: the guards that warn once when accepted answers lose likelihood while the margin grows (training
  rows each logging window, the eval split at each evaluation);
- `chunked_logps`: completion log-probs from the last hidden states, the output layer a chunk at a time;
- `padding_free`: `kto_padding_free`, a micro-batch's rows packed into one sequence (no padding computed);
- `reference_cache`: reference log-probs on disk, keyed by weights, rows and KL pairing, checksummed;
- `reference_pass`: the reference's log-probs through that cache, computed when a micro-batch first needs them
  (before step 1 only in a full fine-tune), each node writing its own copy;
- `reference_store`: those values in memory by row number, merged over the ranks;
- `reference_model`: no second model loaded for a KTO full fine-tune's reference (Axolotl's was never used);
- `length_grouping`: the training order, micro-batches of rows of similar length;
- `class_sampling`: `kto_class_balance`, a rare class repeated in that order instead of weighted up (never twice in a
  micro-batch), and `training_order`, the two together;
- `kl_pairing`: mismatched (prompt, completion) pairs for the KL reference point (`kto_reference_point: kl`);
- `reference_point`: `kto_reference_point: reward_mean` (the default), BCO's running reward mean as z0 (no KL pairs), checkpointed;
- `beta_schedule`: per-epoch, linear and cosine beta;
- `class_weights`: `kto_auto_weights` and the paper's range check on the trainer (arithmetic in `data.class_balance`);
- `lora_presets`: `kto_lora_preset`, LoRA rank, alpha and targets by model size;
- `metrics_log`: `OUTPUT_DIR/kto_metrics.jsonl`.
- `cpu_memory`: `kto_release_cpu_memory`, freed blocks given back to the system at once on a CPU run.

May import: `kto_plugin.log`, `kto_plugin.versions`, `kto_plugin.data`, `kto_plugin.embedded`, `kto_plugin.distributed`
(`lora_presets` sizes a model with `memory_estimate`). Never imports evaluation or cli.
"""
