"""One way to generate answers, with one seeding rule, for every command that samples a model.

`generate_answers(model, tokenizer, prompts, settings)` answers rendered prompts (text already
in the chat template) in order, `settings.answers_per_prompt` answers each; `render_chat`
renders a conversation for it. The seeding rule: the global torch generator is seeded with
`settings.seed` once at the start of the call and restored to the caller's state at the end,
so a call gives the same answers whatever ran before it and changes nothing after it.
`temperature` 0 is greedy decoding; above 0 is plain temperature sampling (no top-k, no top-p).
`before-after`, the held-out probe, `try`, `compare`, `chat` and the studio all use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kto_plugin.errors import DataError


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 128
    min_new_tokens: int = 0
    temperature: float = 0.0
    seed: int = 0
    answers_per_prompt: int = 1


def read_prompts(path: Path) -> list[str]:
    """One prompt per non-blank line of a text file."""
    prompts = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts:
        raise DataError(f"{path} has no prompts: write one prompt per line")
    return prompts


def render_chat(tokenizer, messages: list[dict]) -> str:
    """A conversation in the tokenizer's chat template, ending with the generation prompt."""
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def user_prompts(tokenizer, prompts: list[str]) -> list[str]:
    """Each prompt as a one-turn user conversation, rendered."""
    return [render_chat(tokenizer, [{"role": "user", "content": prompt}]) for prompt in prompts]


def generate_answers(model, tokenizer, prompts: list[str], settings: GenerationSettings, streamer=None,
                     progress: str | None = "Generating") -> list[str]:
    """`settings.answers_per_prompt` answers to each rendered prompt, prompt by prompt (see the module's seeding rule)."""
    import torch
    from tqdm.auto import tqdm

    model.eval()
    device = next(model.parameters()).device
    greedy = settings.temperature <= 0  # one greedy answer, repeated: every greedy answer to a prompt is the same
    sampling = {"do_sample": False} if greedy else {
        "do_sample": True, "temperature": settings.temperature, "top_p": 1.0, "top_k": 0,
        "num_return_sequences": settings.answers_per_prompt}
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(settings.seed)
    answers = []
    try:
        with torch.no_grad():
            for prompt in tqdm(prompts, desc=progress, leave=False, disable=progress is None):
                ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]], device=device)
                output = model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=settings.max_new_tokens,
                    min_new_tokens=settings.min_new_tokens,
                    eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                    streamer=streamer, **sampling)
                texts = [tokenizer.decode(row[ids.shape[1]:], skip_special_tokens=True).strip() for row in output]
                answers.extend(texts * settings.answers_per_prompt if greedy else texts)
    finally:
        torch.random.set_rng_state(generator_state)
    return answers
