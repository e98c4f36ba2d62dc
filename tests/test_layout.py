"""The package layout: every path a user types still resolves, and imports run one way (data -> training -> evaluation)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys

import pytest
from helpers import REPO_ROOT, base_config, load_config

PACKAGE = REPO_ROOT / "kto_plugin"

# What each package may import of the plugin (besides itself and the shared kto_plugin.log, kto_plugin.errors
# and kto_plugin.versions).
ALLOWED = {
    "embedded": set(),
    "distributed": set(),
    "data": {"embedded"},
    "training": {"data", "embedded", "distributed"},
    "evaluation": {"data", "training", "embedded"},
    "orchestration": {"data", "training", "evaluation", "embedded", "distributed"},
    "studio": {"data", "training", "evaluation", "orchestration", "embedded", "distributed"},
}


def plugin_imports(path) -> set[str]:
    """Every `kto_plugin.X...` module that a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kto_plugin"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("kto_plugin"))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_run_one_way(package):
    allowed = ALLOWED[package] | {package, "log", "versions", "errors", "leftovers"}
    wrong = {}
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for module in plugin_imports(path):
            parts = module.split(".")
            if len(parts) == 1 or parts[1] not in allowed:
                wrong.setdefault(path.relative_to(REPO_ROOT).as_posix(), []).append(module)
    assert not wrong, f"kto_plugin/{package} may import only {sorted(allowed)}: {wrong}"


def test_nothing_imports_the_cli():
    importers = [
        path.relative_to(REPO_ROOT).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "cli" not in path.relative_to(PACKAGE).parts
        and any(module.startswith("kto_plugin.cli") for module in plugin_imports(path))
    ]
    assert not importers


def test_only_the_cli_imports_the_studio():
    importers = [
        path.relative_to(REPO_ROOT).as_posix()
        for path in PACKAGE.rglob("*.py")
        if not {"cli", "studio"} & set(path.relative_to(PACKAGE).parts)
        and any(module.startswith("kto_plugin.studio") for module in plugin_imports(path))
    ]
    assert not importers


def test_every_package_says_what_lives_there_and_what_may_import_it():
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "import" in doc, f"{init.relative_to(REPO_ROOT)} has no docstring saying what may import it"
        for module in init.parent.glob("*.py"):
            if module.name != "__init__.py":
                assert f"`{module.stem}`" in doc, f"{init.relative_to(REPO_ROOT)} does not name {module.stem}"


@pytest.mark.parametrize("module", [
    "kto_plugin.embedded.cache", "kto_plugin.embedded.samples",
    "kto_plugin.embedded.tiny_model", "kto_plugin.embedded.uris", "kto_plugin.embedded.warm_model",
])
def test_embedded_modules_import_alone_in_a_fresh_interpreter(module):
    """No import circle: each module loads first, on its own."""
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_public_python_paths_resolve():
    import kto_plugin
    from kto_plugin.training.trainer import KTOPluginTrainer

    assert kto_plugin.KTOPlugin.__module__ == "kto_plugin.plugin"
    assert importlib.import_module("kto_plugin.trainer").KTOPluginTrainer is KTOPluginTrainer
    for name in ("query_response", "messages", "prompt_completion", "paired"):
        assert callable(getattr(kto_plugin, name))
    assert importlib.import_module("kto_plugin.cli").kto.name == "kto"


def test_config_paths_a_user_types_resolve(tmp_path, tiny_model):
    """`kto_plugin.KTOPlugin`, `type: kto_plugin.<format>`, `kto_plugin://...`, `trainer_cls:`.

    `deepspeed: kto_plugin:zero2` starts torch.distributed when loaded, so it is checked in its own
    process by tests/distributed/test_deepspeed_configs.py.
    """
    from axolotl.prompt_strategies.kto import load as load_kto_type

    from kto_plugin.embedded.samples import sample_dataset_path
    from kto_plugin.trainer import KTOPluginTrainer

    datasets = [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}]
    cfg = load_config(tmp_path, base_config(tmp_path, datasets))
    assert cfg.datasets[0]["path"] == str(sample_dataset_path("kto-sample-en"))
    assert cfg.base_model == str(tiny_model)
    module_name, _, class_name = cfg.trainer_cls.rpartition(".")
    assert getattr(importlib.import_module(module_name), class_name) is KTOPluginTrainer
    for name in ("query_response", "messages", "prompt_completion", "paired"):
        assert load_kto_type(f"kto_plugin.{name}", cfg, dataset_idx=0) is not None


MAX_MODULE_LINES = 320  # "about 300": a module past it usually holds a second job


def test_no_module_is_much_over_300_lines():
    long = {path.relative_to(REPO_ROOT).as_posix(): count for path in sorted(PACKAGE.rglob("*.py"))
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"split these modules (each over {MAX_MODULE_LINES} lines): {long}"
