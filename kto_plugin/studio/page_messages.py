"""Messages in the page instead of stack traces: a handler's error becomes a line in its status box."""

from __future__ import annotations

import functools
import logging

from kto_plugin.errors import is_user_error

LOG = logging.getLogger("kto_plugin.studio")


def error_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, KeyError):
        text = f"missing {text}"
    return f"**Error:** {text}"


def shows_errors(outputs: int, status_at: int):
    """Wrap a Gradio handler with `outputs` outputs: on an error, only output `status_at` changes, to the message."""
    import gradio as gr

    def wrap(handler):
        @functools.wraps(handler)
        def guarded(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - a user error is a line in the page; a bug is logged with its trace
                if is_user_error(err):
                    LOG.info("studio: %s failed: %r", handler.__name__, err)
                    line = error_line(err)
                else:
                    LOG.exception("studio: bug in %s", handler.__name__)
                    line = f"**Bug:** {type(err).__name__}: {str(err).strip()[:200]} (the traceback is in the studio's log)"
                updates = [gr.skip()] * outputs
                updates[status_at] = line
                return updates[0] if outputs == 1 else tuple(updates)

        return guarded

    return wrap
