"""The studio's test fixtures: Debian's chromium through Playwright, and a studio served in this process."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest


def chromium_path() -> str | None:
    """KTO_PLUGIN_CHROMIUM, else Debian's chromium (installed by `make browser`)."""
    return os.environ.get("KTO_PLUGIN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    """Headless chromium driven by Playwright (Playwright's own browser download is not used)."""
    path = chromium_path()
    if path is None:
        message = "no chromium: `make browser` installs Debian's (or set KTO_PLUGIN_CHROMIUM)"
        if os.environ.get("KTO_PLUGIN_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=path, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so a fixture's teardown knows whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def show_failed_page(page, screenshot: Path) -> None:
    """What a failed browser test leaves for the next person: the page's text, a screenshot and every thread's stack
    (the studio is served by threads of this process, so a request stuck in the studio shows where)."""
    import sys
    import threading
    import traceback

    page.set_default_timeout(5_000)
    try:
        print(f"page {page.url}:\n{page.inner_text('body')[:3000]}")
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"screenshot: {screenshot}")
    except Exception as error:  # the page itself may be what hangs
        print(f"the page did not answer: {error}")
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        print(f"--- thread {names.get(ident, ident)}\n{''.join(traceback.format_stack(frame))}")


@pytest.fixture
def page(browser, request, tmp_path):
    """A fresh browser context and page (1280 wide), a minute's patience for each step."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(60_000)
    yield opened
    call = getattr(request.node, "report_call", None)
    if call is not None and call.failed:
        show_failed_page(opened, tmp_path / "failed-page.png")
    context.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Where the tests' screenshots go: KTO_PLUGIN_SCREENSHOTS (docs/studio.md shows those in docs/studio), else a temp folder."""
    folder = Path(os.environ.get("KTO_PLUGIN_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class ServedStudio:
    def __init__(self, studio, app, url):
        self.studio, self.app, self.url = studio, app, url


def serve(config: Path | None, folders: list[Path], answers: str = "", labels: str = "labels.jsonl",
          run: Path | None = None) -> ServedStudio:
    """The studio's page on a free local port, in a thread of this process (as `axolotl kto studio` serves it)."""
    from kto_plugin.studio.app import Studio, build_app, shortcuts_head
    from kto_plugin.studio.folders import AllowedFolders

    studio = Studio(config, AllowedFolders.of(folders), answers, labels, run)
    app = build_app(studio)
    port = free_port()
    app.queue().launch(server_name="127.0.0.1", server_port=port, head=shortcuts_head(), prevent_thread_lock=True,
                       quiet=True, show_error=False)
    return ServedStudio(studio, app, f"http://127.0.0.1:{port}")
