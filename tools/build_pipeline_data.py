"""Build yaml_examples/pipeline/data/ from the shipped sample sets (run from the repository root).

- heldout.jsonl: every row of the 8 prompts of `kto_plugin.embedded.samples.held_out_queries`
  (4 English, 4 Chinese), never trained on by any stage nor by the warm model;
  `axolotl kto pipeline` scores each stage on them;
- sft.jsonl: the accepted rows of the other prompts as chat `messages` (Axolotl's `chat_template` type);
- kto.jsonl: all rows of the other prompts (the plugin's `query_response` format);
- dpo.jsonl: a small paired set for Axolotl's `chatml.prompt_pairs` DPO type: for each other prompt
  without history, its accepted and rejected answers zipped into (prompt, chosen, rejected) pairs,
  at most 2 pairs per prompt.

    python tools/build_pipeline_data.py
"""

from __future__ import annotations

import json
from pathlib import Path

from kto_plugin.embedded.samples import chat_messages, held_out_queries

SAMPLES = Path("kto_plugin/embedded/sample_data")
OUT = Path("yaml_examples/pipeline/data")
PAIRS_PER_PROMPT = 2


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def main() -> None:
    held = held_out_queries()
    held_out, sft, kto, dpo = [], [], [], []
    for language in ("en", "zh"):
        rows = [json.loads(line) for line in (SAMPLES / f"kto-sample-{language}.jsonl").read_text(encoding="utf-8").splitlines()]
        by_prompt: dict[str, dict[bool, list[dict]]] = {}
        for row in rows:
            if row["query"] in held:
                held_out.append(row)
                continue
            kto.append(row)
            by_prompt.setdefault(row["query"], {True: [], False: []})[bool(row["label"])].append(row)
            if row["label"]:
                sft.append({"messages": chat_messages(row)})
        for prompt, groups in by_prompt.items():
            accepted = [row for row in groups[True] if not row.get("history")]
            rejected = [row for row in groups[False] if not row.get("history")]
            for chosen, rejected_row in list(zip(accepted, rejected))[:PAIRS_PER_PROMPT]:
                pair = {"prompt": prompt, "chosen": chosen["response"], "rejected": rejected_row["response"]}
                if chosen.get("system"):
                    pair = {"system": chosen["system"], **pair}
                dpo.append(pair)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, rows in (("heldout", held_out), ("sft", sft), ("kto", kto), ("dpo", dpo)):
        write(OUT / f"{name}.jsonl", rows)
        print(f"{OUT / name}.jsonl: {len(rows)} rows")


if __name__ == "__main__":
    main()
