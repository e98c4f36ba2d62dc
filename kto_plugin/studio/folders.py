"""The folders the studio may read and write: every path typed in the page must resolve inside one.

A relative path is taken from the first folder. Symbolic links and `..` are resolved before
the check, so neither can lead out of the folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kto_plugin.errors import ConfigError, MissingFileError


class OutsideAllowedFolders(ConfigError):
    """A path that resolves outside every allowed folder."""


@dataclass(frozen=True)
class AllowedFolders:
    roots: tuple[Path, ...]

    @classmethod
    def of(cls, folders) -> "AllowedFolders":
        roots = []
        for folder in folders:
            path = Path(folder).expanduser().resolve()
            if not path.is_dir():
                raise ConfigError(f"--folder {folder}: not an existing folder")
            roots.append(path)
        if not roots:
            raise ConfigError("the studio needs at least one folder it may use (--folder)")
        return cls(tuple(dict.fromkeys(roots)))

    def describe(self) -> str:
        return ", ".join(str(root) for root in self.roots)

    def resolve(self, typed: str | Path, must_exist: bool = False) -> Path:
        """The real path of `typed` (relative: from the first folder); refused if outside every folder."""
        text = str(typed).strip()
        if not text:
            raise ConfigError("no path given")
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.roots[0] / path
        real = path.resolve()
        if not any(real == root or real.is_relative_to(root) for root in self.roots):
            raise OutsideAllowedFolders(
                f"{text} is outside the folders this studio may use ({self.describe()}); "
                "restart it with --folder to allow another folder"
            )
        if must_exist and not real.exists():
            raise MissingFileError(f"{text} does not exist (looked for {real})")
        return real

    def allow(self, folder: Path) -> "AllowedFolders":
        """These folders and one more (the config's output_dir, which the user named in the config)."""
        return AllowedFolders(tuple(dict.fromkeys([*self.roots, Path(folder).resolve()])))
