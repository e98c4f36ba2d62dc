"""Messages in the page instead of stack traces: a handler's error becomes a line in its status box."""

from __future__ import annotations

import functools
import logging

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
            except Exception as err:  # noqa: BLE001 - every error is shown in the page, none as a trace
                LOG.info("studio: %s failed: %r", handler.__name__, err)
                updates = [gr.skip()] * outputs
                updates[status_at] = error_line(err)
                return updates[0] if outputs == 1 else tuple(updates)

        return guarded

    return wrap
