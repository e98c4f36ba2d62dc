"""`axolotl kto studio`: the local web page to label feedback, check it, train, and compare."""

from __future__ import annotations

import socket
from pathlib import Path

import click


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    user, colon, password = value.partition(":")
    if not colon or not user or not password:
        raise click.BadParameter("use USER:PASS, both non-empty", param_hint="--auth")
    return user, password


@click.command("studio")
@click.argument("config", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any other than this machine's loopback (0.0.0.0 opens the studio to the "
                   "network) needs --auth, or --insecure-no-auth.")
@click.option("--insecure-no-auth", is_flag=True,
              help="Listen beyond loopback without a password: anyone who can reach this machine can label, train "
                   "and read the allowed folders.")
@click.option("--port", type=int, default=7860, show_default=True, help="Port to listen on.")
@click.option("--auth", metavar="USER:PASS", default=None, help="Ask for this user name and password.")
@click.option("--folder", "folders", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="A folder the page may read and write (repeatable; default: the current folder). "
                   "Every path typed in the page must lie in one of them, or in the config's output_dir.")
@click.option("--answers", default="", help="A file of unlabelled (prompt, response) rows to open in the Label tab.")
@click.option("--labels", default="labels.jsonl", show_default=True,
              help="The KTO JSONL file the Label tab appends decisions to (relative: in the first --folder).")
@click.option("--run", "run", default=None, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The run folder of `axolotl kto iterate` for the Rounds tab (default: CONFIG's, if it has one); "
                   "the page may use it, and the Label tab opens on its round that waits for labels.")
def studio(config: Path | None, host: str, insecure_no_auth: bool, port: int, auth: str | None,
           folders: tuple[Path, ...], answers: str, labels: str, run: Path | None):
    """A local web page for the whole KTO loop: label answers, check the data, train, compare blind.

    Tabs: Label (accept / reject / skip answers from a file or from CONFIG's model, each decision
    appended at once to a KTO JSONL file), Check (the `axolotl kto check` report), Train
    (`axolotl train CONFIG` with its log and live plots), Compare (blind A/B ratings of the base
    and the trained model, then unblinded), Rounds (an `axolotl kto iterate` run: its rounds,
    their scores, the next round started from the page).
    """
    from kto_plugin.studio.app import Studio, build_app, shortcuts_head
    from kto_plugin.studio.folders import AllowedFolders

    credentials = parse_auth(auth)
    try:
        allowed = AllowedFolders.of(folders or [Path.cwd()])
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--folder") from None
    if host not in ("127.0.0.1", "localhost", "::1") and credentials is None:
        if not insecure_no_auth:
            raise click.UsageError(f"--host {host} opens the studio beyond this machine: add --auth USER:PASS "
                                   "(or --insecure-no-auth to let anyone who can reach it label, train and read "
                                   "the allowed folders)")
        click.echo(f"Warning: listening on {host} without --auth (--insecure-no-auth): anyone who can reach this "
                   "machine can label, train and read the allowed folders.", err=True)
    if port_in_use(host, port):
        raise click.ClickException(f"port {port} on {host} is in use (another studio or Gradio app?): "
                                   "pass --port with a free one")
    app = build_app(Studio(config.resolve() if config else None, allowed, answers, labels, run))
    click.echo(f"KTO studio on http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port} "
               f"(files in {allowed.describe()}); Ctrl-C stops it")
    app.queue().launch(server_name=host, server_port=port, auth=credentials, head=shortcuts_head(),
                       share=False, quiet=True, show_error=False)
