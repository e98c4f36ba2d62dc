"""The studio, `axolotl kto studio`: a local web page (Gradio) for the whole KTO loop.

- `app`: the page and its five tabs over one config (`Studio`, `build_app`);
- `label_tab`: answers accepted, rejected or skipped, with keyboard shortcuts (`shortcuts.js`);
- `label_queue`: the answers waiting for a label, from a file or generated (decisions go to `data.label_log`);
- `check_tab`: the `axolotl kto check` report with histograms;
- `train_tab`: `axolotl train` started and stopped from the page, log and metrics live;
- `train_process`: that run (and a Rounds tab's `axolotl kto iterate`) as a child process, one at a time;
- `compare_tab`: blind A/B ratings of base and trained answers, then unblinded;
- `rounds_tab`: an `axolotl kto iterate` run's rounds, a plot of their scores, the next round started from the page;
- `iterate_runs`: that run read from its folder: the round waiting for labels, the command that goes on;
- `blind_compare`: the sheet files of `axolotl kto compare`, rated from the page;
- `run_models`: the config through Axolotl's loader, and its base and trained models;
- `folders`: the folders the page may read and write, and the check of every typed path;
- `page_messages`: errors shown as a line in the page, never a stack trace.

May import every other package of the plugin; nothing imports the studio except the CLI's `studio` command.
"""
