"""One helper for commands that list, locate or copy out files the plugin ships."""

from __future__ import annotations

import shutil
from pathlib import Path

import click


def list_show_or_copy(name: str | None, output: Path | None, names, path_of) -> None:
    """List shipped files (no NAME), print one's installed path, or copy it to `output`."""
    if name is None:
        for known in names():
            click.echo(f"{known}\t{path_of(known)}")
        return
    try:
        path = path_of(name)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="NAME") from None
    if output is None:
        click.echo(str(path))
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, output)
    click.echo(f"copied {path} to {output}")
