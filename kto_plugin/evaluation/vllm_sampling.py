"""Answers sampled with vLLM, for `axolotl kto iterate` on a GPU where vLLM is installed (`kto_iterate.sampler`).

`sampler: auto` (the default) takes vLLM when `import vllm` works and CUDA is present, else
Transformers (`generation.generate_answers`, one prompt at a time). vLLM takes a whole round's
prompts in one call (continuous batching), `n = answers_per_prompt` samples each, with plain
temperature sampling (top-p 1, top-k off) as `generate_answers` does, seeded per call. For the
same seed its answers are not the Transformers path's: other kernels, another random stream.

One engine is built per model folder and released before anything else needs the GPU
(`axolotl train`, the next round's model): `free()` drops it and empties CUDA's cache.
"""

from __future__ import annotations

import gc
import importlib.util

from kto_plugin.errors import ConfigError
from kto_plugin.evaluation.generation import GenerationSettings

SAMPLERS = ("auto", "transformers", "vllm")
GPU_MEMORY_SHARE = 0.85  # of the GPU vLLM's engine may take while it samples (nothing else is loaded then)


def vllm_usable() -> bool:
    """vLLM importable and a CUDA device present."""
    import torch

    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


def choose_sampler(setting: str) -> str:
    """"vllm" or "transformers" for `kto_iterate.sampler`; ConfigError when vLLM is asked for and cannot run."""
    if setting == "transformers":
        return "transformers"
    usable = vllm_usable()
    if setting == "auto":
        return "vllm" if usable else "transformers"
    if not usable:
        raise ConfigError("`kto_iterate.sampler: vllm` needs vLLM installed (`pip install vllm`) and a CUDA GPU; "
                          "set it to auto or transformers to sample with Transformers")
    return "vllm"


class VLLMSampler:
    """A vLLM engine over one model folder, built on first use."""

    def __init__(self, model_dir: str):
        self.model_dir = str(model_dir)
        self.engine = None

    def generate(self, prompts: list[str], settings: GenerationSettings, progress: str | None = None) -> list[str]:
        """`settings.answers_per_prompt` answers to each rendered prompt, in prompt order (as `generate_answers`)."""
        from vllm import LLM, SamplingParams

        if self.engine is None:
            self.engine = LLM(model=self.model_dir, seed=settings.seed, gpu_memory_utilization=GPU_MEMORY_SHARE)
        greedy = settings.temperature <= 0  # one greedy answer, repeated: every greedy answer to a prompt is the same
        params = SamplingParams(n=1 if greedy else settings.answers_per_prompt, temperature=max(settings.temperature, 0.0),
                                top_p=1.0, top_k=-1, max_tokens=settings.max_new_tokens,
                                min_tokens=settings.min_new_tokens, seed=settings.seed, skip_special_tokens=True)
        outputs = self.engine.generate(prompts, params, use_tqdm=progress is not None)
        answers = []
        for output in outputs:  # vLLM returns the outputs in the prompts' order
            texts = [completion.text.strip() for completion in output.outputs]
            answers.extend(texts * settings.answers_per_prompt if greedy else texts)
        return answers

    def free(self) -> None:
        if self.engine is None:
            return
        self.engine = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
