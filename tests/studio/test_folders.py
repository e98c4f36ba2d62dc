"""Paths typed in the studio resolve only inside the folders it was given."""

from __future__ import annotations

import pytest

from kto_plugin.studio.folders import AllowedFolders, OutsideAllowedFolders


def test_paths_inside_resolve_and_paths_outside_are_refused(tmp_path):
    allowed = tmp_path / "work"
    (allowed / "data").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("no", encoding="utf-8")
    (allowed / "link").symlink_to(tmp_path / "secret.txt")
    folders = AllowedFolders.of([allowed])
    assert folders.resolve("data/labels.jsonl") == allowed / "data" / "labels.jsonl"
    assert folders.resolve(str(allowed / "data")) == allowed / "data"
    for typed in ("../secret.txt", str(tmp_path / "secret.txt"), "data/../../secret.txt", "link", "/etc/passwd", "~"):
        with pytest.raises(OutsideAllowedFolders, match="outside the folders this studio may use"):
            folders.resolve(typed)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        folders.resolve("data/missing.jsonl", must_exist=True)
    with pytest.raises(ValueError, match="no path given"):
        folders.resolve("  ")
    assert folders.allow(tmp_path / "out").resolve(str(tmp_path / "out" / "x")) == tmp_path / "out" / "x"


def test_a_folder_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(ValueError, match="--folder .*missing: not an existing folder"):
        AllowedFolders.of([tmp_path / "missing"])
