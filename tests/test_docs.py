"""README.md and docs/: every link resolves, every `axolotl kto` command and option it names exists,
and every shipped config it names is there: the pages' commands work as pasted."""

from __future__ import annotations

import re
import shlex

import pytest
from helpers import REPO_ROOT

from kto_plugin.cli import kto

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "bench" / "results" / "README.md"]


def command_lines(text: str) -> list[str]:
    """Each `axolotl kto ...` / `axolotl-kto ...` command written in a code span or a fenced block."""
    spans = re.findall(r"`([^`\n]+)`", text) + re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    lines = [line.strip() for span in spans for line in span.splitlines()]
    return [line for line in lines if re.match(r"(axolotl kto|axolotl-kto) [a-z]", line)]


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.relative_to(REPO_ROOT).as_posix())
def test_links_resolve(page):
    missing = [target for target, _ in re.findall(r"\]\(([^)#\s]+)(#[^)]*)?\)", page.read_text(encoding="utf-8"))
               if not target.startswith("http") and not (page.parent / target).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.relative_to(REPO_ROOT).as_posix())
def test_commands_and_options_exist(page):
    problems = []
    for line in command_lines(page.read_text(encoding="utf-8")):
        text = line.replace("\\|", " ").split("|")[0].split(" #")[0].replace("[", " ").replace("]", " ")
        words = shlex.split(text, posix=True)
        name = words[2] if words[0] == "axolotl" else words[1]
        command = kto.commands.get(name)
        if command is None:
            problems.append(f"{line!r}: no command {name!r}")
            continue
        known = {option for param in command.params for option in param.opts + param.secondary_opts}
        problems += [f"{line!r}: {command.name} has no option {word}" for word in words
                     if word.startswith("--") and word.split("=")[0] not in known | {"--help"}]
    assert not problems, problems


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.relative_to(REPO_ROOT).as_posix())
def test_shipped_configs_named_exist(page):
    named = set(re.findall(r"yaml_examples/[\w./-]+\.(?:yaml|jsonl)", page.read_text(encoding="utf-8")))
    assert named or page != REPO_ROOT / "README.md"
    assert not [path for path in named if not (REPO_ROOT / path).exists()]
