"""Bad input gets a line in the page, never a stack trace; the command refuses a busy port and warns on an open host."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.parse
import urllib.request

from click.testing import CliRunner
from conftest import free_port, serve
from helpers import write_jsonl
from test_studio_browser import config, text_includes

from kto_plugin.cli import kto
from kto_plugin.orchestration.axolotl_jobs import axolotl_command, axolotl_environment


def status_after(page, button: str, status: str, expected: str) -> str:
    """Click, wait for a message containing `expected` (new to this step) in the status element; no trace in the page."""
    page.click(button)
    page.wait_for_function(text_includes(status, expected))
    text = page.inner_text("body")
    assert "Traceback" not in text and 'File "' not in text
    return page.inner_text(status)


def test_bad_paths_files_and_a_missing_trained_model_are_named_in_the_page(tmp_path, tiny_model, browser, page):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "broken.jsonl").write_text('{"query": "q", "response": "a"}\n{"query": "q2", "resp\n', encoding="utf-8")
    write_jsonl(folder / "answers.jsonl", [{"query": "q", "response": "a"}])
    served = serve(config(folder, tiny_model), [folder])
    try:
        page.goto(served.url)
        page.wait_for_function(text_includes("#label-status", "Name a file of answers"))  # the page's opening fill
        page.fill("#label-answers-path textarea", "answers.jsonl")
        page.fill("#label-labels-path textarea", "../outside.jsonl")
        message = status_after(page, "#label-load", "#label-status", "outside the folders")
        assert "restart it with --folder" in message
        assert not (tmp_path / "outside.jsonl").exists()
        page.fill("#label-answers-path textarea", str(tmp_path / "secret.jsonl"))
        page.fill("#label-labels-path textarea", "labels.jsonl")
        status_after(page, "#label-load", "#label-status", f"{tmp_path / 'secret.jsonl'} is outside the folders")
        page.fill("#label-answers-path textarea", "broken.jsonl")
        status_after(page, "#label-load", "#label-status", "broken.jsonl line 2")
        page.fill("#label-answers-path textarea", "missing.jsonl")
        status_after(page, "#label-load", "#label-status", "does not exist")
        metrics = folder / "out" / "kto_metrics.jsonl"  # a run's metrics: any .jsonl was taken as a labelled file
        metrics.parent.mkdir()
        metrics.write_text('{"step": 1, "loss": 0.5}\n', encoding="utf-8")
        page.fill("#label-answers-path textarea", "answers.jsonl")
        page.fill("#label-labels-path textarea", "out/kto_metrics.jsonl")
        message = status_after(page, "#label-load", "#label-status", "is not a labelled file")
        assert "line 1" in message and metrics.read_text(encoding="utf-8") == '{"step": 1, "loss": 0.5}\n'
        page.fill("#label-labels-path textarea", "labels.skipped.jsonl")
        status_after(page, "#label-load", "#label-status", "one of the studio's own files")
        page.get_by_role("tab", name="Compare").click()
        page.fill("#compare-prompts textarea", "Hello")
        message = status_after(page, "#compare-make", "#compare-status", "no trained model")
        assert str(folder / "out") in message and "train first" in message
        page.get_by_role("tab", name="Check").click()
        page.get_by_role("radio", name="a data file").check()
        page.fill("#check-path textarea", "/etc/passwd")
        status_after(page, "#check-run", "#check-verdict", "outside the folders")
    finally:
        served.app.close()


def test_a_config_without_a_model_is_named_in_the_train_tab(tmp_path, tiny_model, browser, page):
    path = config(tmp_path, tiny_model)
    path.write_text(path.read_text(encoding="utf-8").replace(f"base_model: {tiny_model}\n", ""), encoding="utf-8")
    served = serve(path, [tmp_path])
    try:
        page.goto(served.url)
        page.get_by_role("tab", name="Train").click()
        message = status_after(page, "#train-start", "#train-state", "no base_model")
        assert "add base_model: <model folder" in message  # the Markdown's code span, as the page shows it
        assert served.studio.train.process is None  # nothing was started
    finally:
        served.app.close()


def test_a_busy_port_is_refused_and_an_open_host_needs_auth(tmp_path):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        open_host = ["studio", "--host", "0.0.0.0", "--port", str(port), "--folder", str(tmp_path)]
        refused = CliRunner().invoke(kto, open_host)
        result = CliRunner().invoke(kto, [*open_host, "--insecure-no-auth"])
    assert refused.exit_code == 2 and "add --auth USER:PASS" in refused.output and "--insecure-no-auth" in refused.output
    assert result.exit_code == 1
    assert "Warning: listening on 0.0.0.0 without --auth (--insecure-no-auth)" in result.output
    assert f"port {port} on 0.0.0.0 is in use" in result.output and "pass --port" in result.output
    for args, expected in ((["--auth", "nopassword"], "use USER:PASS"),
                           (["--folder", str(tmp_path / "missing")], "not an existing folder")):
        result = CliRunner().invoke(kto, ["studio", "--port", str(free_port()), *args])
        assert result.exit_code == 2 and expected in result.output


def test_the_command_serves_the_page_on_localhost_behind_its_password(axolotl, tmp_path):
    port = free_port()
    env = axolotl_environment()
    server = subprocess.Popen(axolotl_command(["kto", "studio", "--port", str(port), "--auth", "ann:s3cret",
                                               "--folder", str(tmp_path)]),
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read()[-3000:]
                time.sleep(1)

        def login(password: str) -> int:
            data = urllib.parse.urlencode({"username": "ann", "password": password}).encode()
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/login", data=data, timeout=10).status
            except urllib.error.HTTPError as err:
                return err.code

        assert login("wrong") == 400
        assert login("s3cret") == 200
        busy = subprocess.run(axolotl_command(["kto", "studio", "--port", str(port), "--folder", str(tmp_path)]),
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert busy.returncode == 1 and f"port {port} on 127.0.0.1 is in use" in busy.stderr + busy.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
