"""`axolotl kto ...`: the plugin's commands (entry point group `axolotl.cli_commands`).

One module per command group; this file holds the click group and adds their commands:
- `embedded`: make-tiny-model, sample-data, recipes;
- `data_tools`: check, clean;
- `suitability`: try;
- `pipeline`: pipeline (SFT -> KTO -> DPO);
- `iterate`: iterate (rounds of sample -> label -> check -> train -> score);
- `training`: summary, before-after, config-keys;
- `evaluation`: make-eval-tasks, eval, compare, score, chat;
- `distributed`: deepspeed, memory;
- `studio`: studio (the web page; `kto_plugin.studio`);
- `shipped_files`: the list / show / copy helper of sample-data and deepspeed;
- `json_stdout`: `--json -` with nothing but JSON on standard output.

The CLI may import every other package of the plugin; nothing imports the CLI. Errors: every command runs
inside `KTOGroup`, which turns the plugin's errors (`kto_plugin.errors`) into `Error: ...` and exit 1 and lets
any other exception (a bug) show its traceback. `axolotl-kto` is the same group as its own program.
Heavy imports (torch, transformers, lm-eval) happen inside the commands, so
`axolotl --help` stays fast.
"""

from __future__ import annotations

import click

from kto_plugin.cli import data_tools, distributed, embedded, evaluation, iterate, pipeline, studio, suitability, training
from kto_plugin.errors import is_user_error


class KTOGroup(click.Group):
    """The `kto` group: a user error from any command becomes `Error: <message>` and exit 1, without a traceback;
    any other exception is raised as it is, traceback and all (a bug to report)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as err:  # noqa: BLE001 - sorted by is_user_error, the rest re-raised
            if is_user_error(err):
                raise click.ClickException(str(err).strip() or type(err).__name__) from None
            raise


@click.group(cls=KTOGroup)
def kto():
    """KTO plugin tools: the embedded tiny model, sample data, data checks and cleaning, run summaries, evaluation, multi-GPU, the studio."""


for command in (
    embedded.make_tiny_model,
    embedded.sample_data,
    embedded.recipes,
    data_tools.check,
    data_tools.clean,
    suitability.try_config,
    pipeline.pipeline,
    iterate.iterate,
    training.summary,
    training.before_after,
    training.config_keys,
    evaluation.make_eval_tasks,
    evaluation.eval_run,
    evaluation.compare,
    evaluation.score,
    evaluation.chat,
    distributed.deepspeed,
    distributed.memory,
    studio.studio,
):
    kto.add_command(command)
