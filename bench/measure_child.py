"""Run a command and write its wall time and its largest process's peak RSS to a JSON file.

    python -m bench.measure_child RESULT.json -- COMMAND...

A fresh process per run, so `RUSAGE_CHILDREN` holds only this command's processes (the
largest of them: Linux reports the maximum, not the sum).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main() -> int:
    result_path, separator, *command = sys.argv[1:]
    assert separator == "--", "usage: python -m bench.measure_child RESULT.json -- COMMAND..."
    started = time.time()
    returncode = subprocess.call(command)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump({"returncode": returncode, "started": started, "wall_seconds": time.time() - started,
                   "peak_rss_bytes": peak_kib * 1024}, handle)
    return returncode


if __name__ == "__main__":
    raise SystemExit(main())
