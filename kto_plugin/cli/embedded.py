"""Commands for what the plugin ships and makes: the embedded tiny model and the sample sets."""

from __future__ import annotations

from pathlib import Path

import click

from kto_plugin.cli.shipped_files import list_show_or_copy


@click.command("make-tiny-model")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Folder to write to (default: the plugin's cache, used by kto_plugin://tiny-model).")
@click.option("--seed", type=int, default=42, show_default=True, help="Weight initialisation seed.")
@click.option("--force", is_flag=True, help="Rebuild even if the folder already holds a model.")
@click.option("--warm-up", is_flag=True,
              help="Make kto_plugin://warm-model instead: a 3.1M-parameter model given a seeded SFT warm-up with "
                   "`axolotl train` on the sample sets (a few minutes on 2 cores).")
def make_tiny_model(output: Path | None, seed: int, force: bool, warm_up: bool):
    """Make the embedded tiny causal LM (seeded) and its Chinese-capable tokenizer."""
    from kto_plugin.embedded.cache import tiny_model_dir
    from kto_plugin.embedded.tiny_model import build_tiny_model

    if warm_up:
        from kto_plugin.embedded.warm_model import RECIPE, cached_recipe, warm_model_dir
        from kto_plugin.orchestration.warm_up import build_warm_model

        output = output or warm_model_dir()
        recipe = {**RECIPE, "seed": seed}
        if cached_recipe(output) == recipe and not force:
            click.echo(f"warm model already present: {output} (use --force to rebuild)")
            return
        click.echo(f"warming up the embedded model with axolotl train ({recipe['num_epochs']} epochs); "
                   "a few minutes on 2 cores")
        build_warm_model(output, recipe)
        click.echo(f"warm model written to {output}")
        return
    output = output or tiny_model_dir()
    if (output / "config.json").exists() and not force:
        click.echo(f"tiny model already present: {output} (use --force to rebuild)")
        return
    build_tiny_model(output, seed=seed)
    click.echo(f"tiny model written to {output}")


@click.command("sample-data")
@click.argument("name", required=False)
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Copy the sample set to this file instead of printing its path.")
def sample_data(name: str | None, output: Path | None):
    """List the shipped sample sets, print one's installed path, or copy it out."""
    from kto_plugin.embedded.samples import sample_dataset_names, sample_dataset_path

    list_show_or_copy(name, output, sample_dataset_names, sample_dataset_path)


@click.command("recipes")
@click.argument("name", required=False)
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Copy NAME here; with --all, the folder to copy every recipe into (default: yaml_examples).")
@click.option("--all", "copy_all", is_flag=True, help="Copy every recipe, the pipeline's stages and data too.")
@click.option("--force", is_flag=True, help="With --all: replace files that already exist.")
def recipes(name: str | None, output: Path | None, copy_all: bool, force: bool):
    """List the example configs, print one's path, or copy one (or --all of them) out.

    `axolotl kto recipes --all` writes ./yaml_examples/, so the README's commands
    (`axolotl train yaml_examples/quickstart.yaml`, `axolotl kto pipeline`) work in this folder.
    """
    from kto_plugin.embedded.recipes import copy_recipes, recipe_names, recipe_path

    if copy_all:
        if name is not None:
            raise click.UsageError("give a NAME or --all, not both")
        written = copy_recipes(output or Path("yaml_examples"), force)
        click.echo(f"copied {len(written)} files to {output or Path('yaml_examples')}")
        return
    list_show_or_copy(name, output, recipe_names, recipe_path)
