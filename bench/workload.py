"""The bench's generated model and rows: a Qwen2-shaped model with Qwen's vocabulary, feedback rows of set lengths.

The model uses the embedded tiny model's tokenizer (its ids are a subset of the 151,936-row
vocabulary, so every output-layer product has the full Qwen width). Rows are sample-set text
cut to lengths spread evenly over a range (by default 143-516 tokens, median about 320),
written three ways: prompt/completion/label for the plugin and for Axolotl's built-in
`user_defined` KTO type, and the same text rendered with the chat template for SFT.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelShape:
    hidden_size: int = 256
    num_layers: int = 4
    vocab_size: int = 151_936
    intermediate_size: int = 1024
    num_heads: int = 4
    num_kv_heads: int = 2
    tied: bool = True

    def describe(self) -> str:
        return (f"Qwen2-shaped, vocabulary {self.vocab_size:,}, hidden {self.hidden_size}, {self.num_layers} layers, "
                f"{'tied' if self.tied else 'untied'} embeddings")


def build_model(shape: ModelShape, tokenizer_dir: Path, output_dir: Path, seed: int = 0) -> int:
    """Write the model (seeded) and the tokenizer to `output_dir`; return its parameter count."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = Qwen2Config(
        vocab_size=shape.vocab_size, hidden_size=shape.hidden_size, intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers, num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads, max_position_embeddings=4096, tie_word_embeddings=shape.tied,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return sum(parameter.numel() for parameter in model.parameters())


def _sample_texts() -> tuple[list[str], list[str]]:
    from kto_plugin.embedded.samples import sample_dataset_names, sample_dataset_path

    queries, responses = [], []
    for name in sample_dataset_names():
        for line in sample_dataset_path(name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            queries.append(row["query"])
            responses.append(row["response"])
    return queries, responses


def _text_of_tokens(tokenizer, pieces: list[str], rng: random.Random, tokens: int) -> str:
    """Sample pieces joined until they reach `tokens` tokens, then cut to exactly that many."""
    ids: list[int] = []
    while len(ids) < tokens:
        ids += tokenizer(rng.choice(pieces) + " ", add_special_tokens=False)["input_ids"]
    return tokenizer.decode(ids[:tokens])


def write_rows(tokenizer_dir: Path, path: Path, rows: int, min_tokens: int, max_tokens: int,
               seed: int = 0, desirable_share: float = 0.4) -> dict:
    """Write `rows` feedback rows whose prompt + completion lengths spread evenly over [min, max] tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    queries, responses = _sample_texts()
    rng = random.Random(seed)
    lengths, completions = [], []
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for index in range(rows):
            total = min_tokens + round((max_tokens - min_tokens) * index / max(rows - 1, 1))
            prompt_tokens = max(8, total // 3)
            prompt = _text_of_tokens(tokenizer, queries, rng, prompt_tokens)
            completion = _text_of_tokens(tokenizer, responses, rng, total - prompt_tokens)
            label = rng.random() < desirable_share
            rendered = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}], tokenize=False)
            handle.write(json.dumps({"prompt": prompt, "completion": completion, "label": label, "text": rendered},
                                    ensure_ascii=False) + "\n")
            lengths.append(len(tokenizer(rendered, add_special_tokens=False)["input_ids"]))
            completions.append(total - prompt_tokens)
    lengths.sort()
    return {"rows": rows, "tokens": sum(lengths), "min": lengths[0], "median": lengths[len(lengths) // 2],
            "max": lengths[-1], "completion_tokens": sum(completions)}
