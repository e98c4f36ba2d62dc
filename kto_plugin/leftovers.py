"""Temporary files and folders that name their owner, so a later run can remove what a killed one left.

Everything the plugin writes in steps (a cleaned file, a prepared dataset, the rows' scratch
file) first goes to a temporary path beside its destination, renamed into place when complete.
`owned_prefix(prefix)` puts this host and process id in that name; `remove_stale(folder, prefix)`
deletes the entries whose owner was on this host and no longer runs (killed with SIGKILL, or
the machine lost power), and leaves every other host's and every live process's alone, so two
runs, or two nodes over one shared disk, never remove each other's work.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

from kto_plugin.log import get_logger

LOG = get_logger(__name__)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"


def owned_prefix(prefix: str) -> str:
    """`prefix` + this host and process: `.out.jsonl.partial-` -> `.out.jsonl.partial-myhost-1234-`."""
    return f"{prefix}{_host()}-{os.getpid()}-"


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale(folder: Path, prefix: str) -> list[Path]:
    """Remove `folder`'s entries named `prefix`HOST-PID-... whose process on this host has ended; return them."""
    if not folder.is_dir():
        return []
    pattern = re.compile(re.escape(prefix) + r"(?P<host>.+)-(?P<pid>\d+)-")
    removed = []
    for entry in folder.iterdir():
        match = pattern.match(entry.name)
        if not match or match["host"] != _host() or _is_running(int(match["pid"])):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    if removed:
        LOG.info(f"removed {len(removed)} temporary file(s) an interrupted run left in {folder}: "
                 + ", ".join(entry.name for entry in removed[:3]))
    return removed
