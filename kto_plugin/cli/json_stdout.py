"""`--json -`: standard output carries the JSON and nothing else once the command runs.

`json_stdout()` points file descriptor 1 at /dev/null for the rest of the process (whatever a
library prints afterwards, Axolotl's stdout logging included, goes there) and returns a stream
on a duplicate of the original descriptor for the JSON. What was written before the command
ran stays: under `axolotl kto check`, Axolotl's logo is already out (its logging flushes it),
so `axolotl-kto check FILE --json - | jq`, the same command without Axolotl's root, is the
one that pipes nothing but JSON. On a terminal, or where
standard output is not descriptor 1 (click's test runner), it returns `sys.stdout` as it is.
"""

from __future__ import annotations

import io
import os
import sys
from typing import TextIO


def json_stdout() -> TextIO:
    try:
        is_fd_1 = sys.stdout.fileno() == 1
    except (AttributeError, ValueError, io.UnsupportedOperation):
        is_fd_1 = False
    if not is_fd_1 or sys.stdout.isatty():
        return sys.stdout
    original = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    return os.fdopen(original, "w", encoding="utf-8")
