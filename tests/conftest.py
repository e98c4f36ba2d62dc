"""Shared fixtures: an offline environment, a private plugin cache, the embedded tiny model, a fresh plugin registry,
and the two tiers of the suite.

Plain helper functions (configs, `axolotl train` in a subprocess) are in `helpers.py`.

The tiers: a test that starts a real `axolotl` process (train, preprocess, `axolotl kto ...`, the warm-up,
the studio's Train tab) requests the `axolotl` fixture, directly or through another fixture, and is
marked `e2e` for it. `make test-fast` runs the rest (`-m "not e2e"`); `make test` runs both. A test
outside the e2e tier that starts `axolotl`, `accelerate` or `torchrun` fails and says to request the fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "AXOLOTL_DO_NOT_TRACK", "DO_NOT_TRACK"):
    os.environ.setdefault(_name, "1")


@pytest.fixture(scope="session")
def plugin_cache(tmp_path_factory) -> Path:
    """A private cache for kto_plugin://tiny-model, also seen by `axolotl` subprocesses."""
    cache = tmp_path_factory.mktemp("kto_plugin_cache")
    os.environ["KTO_PLUGIN_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def tiny_model(plugin_cache) -> Path:
    from kto_plugin.embedded.cache import tiny_model_dir
    from kto_plugin.embedded.tiny_model import ensure_tiny_model

    return ensure_tiny_model(tiny_model_dir())


@pytest.fixture(autouse=True)
def fresh_plugin_manager():
    """Axolotl's plugin registry is a process-wide singleton: start each test empty."""
    from axolotl.integrations.base import PluginManager

    PluginManager._instance = None
    yield
    PluginManager._instance = None


@pytest.fixture(autouse=True)
def environment_restored():
    """Each test starts with the environment the last one started with: Axolotl's config loading sets process-wide
    variables (`ACCELERATE_DEEPSPEED_ZERO_STAGE=3` for a ZeRO-3 config), and every later `axolotl` subprocess of
    the session inherited them (a DDP run then loaded its model as under ZeRO-3, and crashed)."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def axolotl():
    """Marks a test `e2e`: it may start real `axolotl` processes (`helpers.run_axolotl`, `helpers.train_with_axolotl`,
    or plugin code that runs `axolotl`). Runs that several tests only read belong in a module or session fixture."""
    import helpers

    return helpers


STACK = f"py{sys.version_info.major}{sys.version_info.minor}"


def pytest_collection_modifyitems(config, items):
    """Mark e2e tests; leave out (deselect, not skip) a test marked `stack("py3XX")` on the other stack.

    A few slow tests check nothing that differs between Axolotl versions (the pipeline's routes,
    a wheel install, the quickstart's measured alignment, ...): CI runs both stacks side by side, and
    each of these runs on one of them, so the two suites finish together. `KTO_PLUGIN_ALL_STACKS=1` runs
    them on this stack as well (to check one on the other stack by hand)."""
    kept, other_stack = [], []
    every_stack = os.environ.get("KTO_PLUGIN_ALL_STACKS") == "1"
    for item in items:
        if "axolotl" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)
        marker = item.get_closest_marker("stack")
        (other_stack if marker is not None and STACK not in marker.args and not every_stack else kept).append(item)
    if other_stack:
        config.hook.pytest_deselected(items=other_stack)
        items[:] = kept


AXOLOTL_PROGRAMS = ("axolotl", "accelerate", "torchrun", "axolotl.cli.main")


@pytest.fixture(autouse=True)
def only_e2e_tests_start_axolotl(request, monkeypatch):
    """Outside the e2e tier, starting `axolotl` (or its launchers) fails with what to change."""
    if request.node.get_closest_marker("e2e"):
        return
    original = subprocess.Popen.__init__

    def guarded(self, args, *rest, **kwargs):
        words = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
        names = {Path(str(word)).name for word in words[:4]}
        if names & set(AXOLOTL_PROGRAMS):
            raise RuntimeError(f"{request.node.nodeid} starts `{' '.join(map(str, words[:4]))}`: request the `axolotl` "
                               "fixture (it marks the test e2e), or test without a real Axolotl process")
        original(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
