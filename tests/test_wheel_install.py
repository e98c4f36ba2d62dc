"""The plugin as users get it from a wheel: built, installed (not editable) into a fresh venv, trained and evaluated.

The fresh venv reuses this stack's installed dependencies through a `.pth` line (an
`axolotl` install is minutes and gigabytes), and the stack's other `.pth` hooks, but not
this checkout: the editable install's finder is the stack's `__editable__.kto_plugin*.pth`,
which is left out. So `kto_plugin` is imported from the wheel, and what the wheel lacks is missing.
"""

from __future__ import annotations

import pytest

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import yaml
from helpers import REPO_ROOT


def run(command: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


@pytest.mark.stack("py311")  # slow and not about the Axolotl version: one stack runs it (tests/conftest.py)
def test_a_wheel_installed_in_a_fresh_venv_trains_and_finds_its_shipped_tasks(axolotl, tmp_path, tiny_model):
    source = tmp_path / "source"  # a copy: the build writes build/ and *.egg-info beside pyproject.toml
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "kto_plugin", source / "kto_plugin", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ}
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
         str(source)], tmp_path, env)
    (wheel,) = (tmp_path / "dist").glob("kto_plugin-*.whl")

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env)
                .stdout.strip())
    stack_site = Path(sysconfig.get_paths()["purelib"])
    (site / "stack.pth").write_text(f"{stack_site}\n")
    for hook in stack_site.glob("*.pth"):  # the stack's start-up hooks (setuptools' distutils), not this checkout's
        if "kto_plugin" not in hook.name:
            shutil.copy(hook, site / hook.name)
    run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)], tmp_path, env)

    work = tmp_path / "work"
    work.mkdir()
    env = {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "PYTHONPATH": ""}
    where = run([str(python), "-c", "import kto_plugin; print(kto_plugin.__file__)"], work, env).stdout.strip()
    assert where.startswith(str(site)), f"kto_plugin came from {where}, not the wheel"

    axolotl_cli = [str(python), "-m", "axolotl.cli.main"]
    run([*axolotl_cli, "kto", "recipes", "--all"], work, env)  # the README's yaml_examples/, from the wheel
    config = yaml.safe_load((work / "yaml_examples" / "quickstart.yaml").read_text())
    config.update(base_model=str(tiny_model), output_dir=str(work / "out"), dataset_prepared_path=str(work / "prepared"),
                  datasets=[{"path": "kto_plugin://kto-sample-en/train", "type": "kto_plugin.query_response"}],
                  max_steps=2, eval_steps=None, val_set_size=0, kto_eval_limit=4, kto_eval_tasks=["kto_sample_en_preference"])
    config.pop("test_datasets", None)
    (work / "kto.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    run([*axolotl_cli, "train", "kto.yaml", "--launcher", "python"], work, env)
    assert (work / "out" / "adapter_model.safetensors").exists()
    run([*axolotl_cli, "kto", "eval", "kto.yaml"], work, env)
    report = (work / "out" / "eval" / "report.md").read_text()
    assert "| kto_sample_en_preference | acc |" in report  # the shipped task, found from the installed wheel
