"""Stage 1, data: read feedback rows, check their labels, render them with the chat template, fit them to `sequence_len`.

- `formats`: the four row formats (`query_response`, `messages`, `prompt_completion`, `paired`);
- `labels`: what counts as accepted / rejected;
- `located_examples`: the one reading core: rows -> located examples or unusable rows (file and line),
  a policy to stop at the first bad row (training) or collect them (check, clean); `RowLocator`;
- `row_files`: the one parser of local data files (.jsonl .json .csv .parquet, saved datasets, folders of them),
  read a batch at a time, for check, clean and training alike;
- `sources`: one dataset entry's rows: local files through `row_files`, anything else through Axolotl's loader;
- `rendering`: prompt and completion through the tokenizer's chat template;
- `lengths`: token counts and truncation that keeps the completion and the end of the prompt;
- `loading`: the plugin's `load_datasets` hook (report line, train/validation split);
- `arrow_rows`: prepared rows written to an Arrow file a batch at a time, the split memory-mapped from it;
- `prepared`: the prepared rows saved under `dataset_prepared_path` and loaded by later runs;
- `strategies`: `type: kto_plugin.<format>` for Axolotl's own strategy loader;
- `feedback_files`: raw rows of a file with line numbers, written back atomically in the output's format;
- `feedback_examples`: files and a config's datasets through the core, bad rows collected (check, clean, try,
  the held-out probe), and the keys that compare examples;
- `low_information`: "ok" / "好的" responses (the shipped `low_information.txt`, `--min-chars`, `--pattern`);
- `row_checks`: what `axolotl kto check` finds (duplicates, conflicting labels, lengths, ...);
- `check_tables`: the tables of a check, once, for the terminal, the studio and the HTML page;
- `check_html`: the self-contained HTML page of a check (histograms, problem rows);
- `cleaning`: what `axolotl kto clean` keeps, removes and sets aside for review;
- `data_check`: the report of `axolotl kto check` (files or a config's data) with the weights `kto_auto_weights` would pick;
- `label_log`: a labelled KTO file, each decision appended under a file lock, flushed and fsynced, none
  written twice (the studio's Label tab and `axolotl kto iterate`'s judges);
- `class_balance`: the class-weight arithmetic of the paper's Eq. 8 (`kto_auto_weights`), and how many times
  `kto_class_balance` reads a rare class's rows an epoch instead.

May import: `kto_plugin.log`, `kto_plugin.errors`, `kto_plugin.versions`, `kto_plugin.leftovers`, `kto_plugin.embedded`. Never imports training, evaluation or cli.
"""
