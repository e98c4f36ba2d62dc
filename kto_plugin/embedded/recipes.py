"""The example configs the plugin ships (package data in `kto_plugin/recipes/`; `yaml_examples/` in a checkout).

Their data paths are relative to the folder *above* `yaml_examples/` (the pipeline's
configs read `yaml_examples/pipeline/data/...` and write `./outputs/...`), so
`copy_recipes(Path("yaml_examples"))` in any folder makes the README's commands work there
as they do in a checkout, also after `pip install kto-plugin` from a wheel.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from kto_plugin.errors import ConfigError

SUFFIXES = (".yaml", ".jsonl")


def recipes_dir() -> Path:
    return Path(str(resources.files("kto_plugin") / "recipes"))


def recipe_names() -> list[str]:
    """Every shipped file, as its path inside the recipes folder (`quickstart.yaml`, `pipeline/kto.yaml`, ...)."""
    root = recipes_dir()
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.suffix in SUFFIXES)


def recipe_path(name: str) -> Path:
    """Installed path of one shipped file; `quickstart` means `quickstart.yaml`."""
    names = recipe_names()
    for candidate in (name, f"{name}.yaml"):
        if candidate in names:
            return recipes_dir() / candidate
    raise ConfigError(f"unknown recipe {name!r}: the plugin ships {', '.join(names)}")


def copy_recipes(destination: Path, force: bool = False) -> list[Path]:
    """Copy every shipped file under `destination` (keeping `pipeline/data/...`); refuses to overwrite unless `force`."""
    destination = Path(destination)
    targets = [(recipes_dir() / name, destination / name) for name in recipe_names()]
    existing = [target for _, target in targets if target.exists()]
    if existing and not force:
        raise ConfigError(f"{len(existing)} recipe file(s) already exist under {destination} (e.g. {existing[0]}): "
                          "pass --force to replace them")
    for source, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return [target for _, target in targets]
