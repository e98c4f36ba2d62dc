"""The embedded default model: a tiny seeded Llama with a byte-level BPE tokenizer.

No model hub is reachable on the machines this project targets, so the quickstart and
the tests use a model made here. The tokenizer is trained on the shipped English and
Chinese sample sets (byte-level, so any text encodes), carries a ChatML chat template,
and the weights are initialised from a fixed seed: the same seed gives the same files.
"""

from __future__ import annotations

import json
from pathlib import Path

from kto_plugin.embedded.cache import tiny_model_dir
from kto_plugin.embedded.samples import sample_dataset_names, sample_dataset_path
from kto_plugin.log import get_logger

LOG = get_logger(__name__)  # an `axolotl.` name: Axolotl's log filter shows its INFO lines

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
DEFAULT_SEED = 42
DEFAULT_VOCAB_SIZE = 3000


def _training_texts() -> list[str]:
    texts = []
    for name in sample_dataset_names():
        with open(sample_dataset_path(name), encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                texts.append(row.get("system") or "")
                for query, response in row.get("history") or []:
                    texts.extend([query, response])
                texts.extend([row["query"], row["response"]])
    texts.append("system user assistant")
    return [text for text in texts if text]


def build_tokenizer(vocab_size: int = DEFAULT_VOCAB_SIZE):
    """A byte-level BPE tokenizer trained on the shipped sample text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_training_texts(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=2048,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build_tiny_model(
    output_dir: Path,
    seed: int = DEFAULT_SEED,
    hidden_size: int = 64,
    num_layers: int = 2,
) -> Path:
    """Write tokenizer and seeded weights for a tiny Llama to `output_dir`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def ensure_tiny_model(output_dir: Path | None = None) -> Path:
    """Return the cached tiny model folder, making it first if it is missing."""
    from filelock import FileLock

    output_dir = Path(output_dir or tiny_model_dir())
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(output_dir) + ".lock"):
        if not (output_dir / "config.json").exists():
            LOG.info("making the embedded tiny model in %s", output_dir)
            build_tiny_model(output_dir)
    return output_dir
