"""Build kto_plugin/embedded/sample_data/kto-sample-refunds.jsonl, the refund-desk sample set (run from the repository root).

Every question of `kto_plugin.embedded.refund_desk` (10 products x 8 day counts x 3 phrasings)
with its good answer in two wordings (accepted) and two bad answers of different kinds
(rejected), seed 0. The held-out questions are in the file too; the `train` / `held-out`
splits (`kto_plugin://kto-sample-refunds/train`) separate them.

    python tools/build_refund_desk_data.py
"""

from __future__ import annotations

import json
from pathlib import Path

from kto_plugin.embedded.refund_desk import feedback_rows, split_questions

OUT = Path("kto_plugin/embedded/sample_data/kto-sample-refunds.jsonl")


def main() -> None:
    train, held_out = split_questions()
    questions = sorted(train + held_out, key=lambda q: (q.product, q.days, q.phrasing))
    rows = feedback_rows(questions)
    OUT.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    print(f"{OUT}: {len(rows)} rows, {len(questions)} questions ({len(held_out)} held out)")


if __name__ == "__main__":
    main()
