"""`kto_iterate:`, the settings of `axolotl kto iterate` in the training config (the command's options override them).

    kto_iterate:
      prompts: data/prompts.txt         # one prompt per line, or .jsonl rows with `query` (and `system`)
      judge: my_judges:is_good          # human | MODULE:FUNCTION | reward-model:FOLDER | chat-model:FOLDER
      rounds: 3

Everything else has a default for a first run (`IterateSettings`). `axolotl train` ignores the key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt, field_validator

DEFAULT_RUN_FOLDER_NAME = "iterate"


class IterateSettings(BaseModel):
    """The loop: how many rounds, which prompts, how answers are sampled, who labels them."""

    model_config = ConfigDict(extra="forbid")

    prompts: str | None = Field(default=None, description="The prompt pool: a .txt file (one prompt per line) or "
                                "a .jsonl / .json file of rows with `query` (or `prompt`) and an optional `system`.")
    judge: str | None = Field(default=None, description="Who labels the answers: `human` (the studio's Label tab), "
                              "`MODULE:FUNCTION` or `file.py:FUNCTION` (`(prompt, answer) -> bool | float`), "
                              "`reward-model:FOLDER` or `chat-model:FOLDER` (local models).")
    rounds: PositiveInt = Field(default=3, description="Rounds of sample -> label -> check -> train -> score.")
    held_out_prompts: str | None = Field(default=None, description="Prompts never trained on, scored after each "
                                         "round (default: `held_out_share` of the pool, drawn with `seed`).")
    held_out_share: float = Field(default=0.2, gt=0, lt=1, description="Share of the pool held out when "
                                  "`held_out_prompts` is not given.")
    prompts_per_round: PositiveInt | None = Field(default=None, description="Training prompts sampled each round "
                                                  "(default: every training prompt, every round).")
    answers_per_prompt: PositiveInt = Field(default=4, description="Answers sampled for each prompt.")
    temperature: NonNegativeFloat = Field(default=1.0, description="Sampling temperature (0: greedy, one answer).")
    max_new_tokens: PositiveInt = Field(default=128, description="Longest answer sampled, in tokens.")
    sampler: Literal["auto", "transformers", "vllm"] = Field(
        default="auto", description="What samples the answers: `vllm` (every prompt of a round in one batched call; "
        "needs `pip install vllm` and a CUDA GPU), `transformers` (one prompt at a time), or `auto`: vLLM where it is "
        "installed and a GPU is present, else Transformers.")
    label_threshold: float | Literal["mean", "median"] = Field(
        default="median", description="A number-returning judge's answers are desirable above this: a number, or "
        "the `mean` or `median` of the round's scores. Held-out scores use the value the base model's answers gave.")
    replay_share: float = Field(default=0.0, ge=0, le=1, description="Share of the earlier rounds' labelled rows "
                                "trained on again beside the new round's.")
    seed: int = Field(default=0, description="Seeds the held-out split, the prompts drawn and the sampling.")
    output_dir: str | None = Field(default=None, description="The run folder: round-1/, round-2/, ..., rounds.json "
                                   f"(default: the config's output_dir/{DEFAULT_RUN_FOLDER_NAME}).")

    @field_validator("judge")
    @classmethod
    def judge_is_named_well(cls, value):
        if value is not None:
            from kto_plugin.evaluation.judges import parse_judge

            try:
                parse_judge(value)
            except ValueError as err:
                raise ValueError(f"`kto_iterate.judge`: {err}") from None
        return value
