"""Render KTO examples to the prompt / completion strings TRL's KTOTrainer tokenizes.

The prompt is the chat template applied to the prompt messages *with* the generation
prompt; the completion is what the template adds for the assistant turn, so it ends
with the template's end-of-turn token. No template strings are written by hand.
"""

from __future__ import annotations

from typing import Any

from kto_plugin.errors import ConfigError


class MissingChatTemplateError(ConfigError):
    pass


def require_chat_template(tokenizer: Any, model_name: str) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise MissingChatTemplateError(
            f"the tokenizer of {model_name!r} has no chat template, so prompts cannot be "
            "rendered: set `chat_template: chatml` (or another Axolotl template name, or "
            "`chat_template: jinja` with `chat_template_jinja:`) in your config"
        )


def render_example(tokenizer: Any, prompt_messages: list[dict], completion: str) -> tuple[str, str]:
    """Return (prompt, completion) strings for one example."""
    prompt = tokenizer.apply_chat_template(
        prompt_messages, tokenize=False, add_generation_prompt=True
    )
    full = tokenizer.apply_chat_template(
        prompt_messages + [{"role": "assistant", "content": completion}], tokenize=False
    )
    eos = tokenizer.eos_token or ""
    if full.startswith(prompt):
        rendered = full[len(prompt):]
        # Templates end a turn with "<eot>\n"; the trailing newline after the end-of-turn
        # token would make TRL append a second EOS.
        stripped = rendered.rstrip()
        if eos and stripped.endswith(eos):
            rendered = stripped
    else:
        # The template renders the history differently once an assistant turn follows
        # (thinking models do this): keep the generation prompt and close the turn.
        rendered = completion + eos
    return prompt, rendered
