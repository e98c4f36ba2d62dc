"""`kto_iterate.sampler`: which sampler runs, and the glue between a round's prompts and vLLM's API.

vLLM cannot run on this project's machines (no GPU, and it is not installed), so the glue is
checked against a stand-in `vllm` module with vLLM's `LLM.generate` / `SamplingParams` surface
(recording what it was given, answering in prompt order); the sampling itself is vLLM's.
"""

from __future__ import annotations

import sys
import textwrap

import pytest

from kto_plugin.errors import ConfigError
from kto_plugin.evaluation.generation import GenerationSettings
from kto_plugin.evaluation.vllm_sampling import VLLMSampler, choose_sampler
from kto_plugin.orchestration.iterate_settings import IterateSettings
from kto_plugin.orchestration.iterate_steps import sample_answers
from kto_plugin.orchestration.prompt_pool import PoolPrompt

STAND_IN = '''
from types import SimpleNamespace

CALLS = []


class SamplingParams:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


class LLM:
    def __init__(self, model, **kwargs):
        CALLS.append(("LLM", model, kwargs))

    def generate(self, prompts, params, use_tqdm=True):
        CALLS.append(("generate", list(prompts), params.__dict__))
        return [SimpleNamespace(outputs=[SimpleNamespace(text=f" answer {k} to <{prompt}> ") for k in range(params.n)])
                for prompt in prompts]
'''


@pytest.fixture
def stand_in_vllm(tmp_path, monkeypatch):
    """A `vllm` module on the path, and CUDA reported present."""
    import torch

    (tmp_path / "vllm.py").write_text(textwrap.dedent(STAND_IN), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    import vllm

    yield vllm
    sys.modules.pop("vllm", None)


def test_auto_samples_with_transformers_where_vllm_cannot_run_and_vllm_asked_for_says_what_is_missing():
    assert choose_sampler("auto") == "transformers"  # this machine: no vLLM, no GPU
    assert choose_sampler("transformers") == "transformers"
    with pytest.raises(ConfigError, match=r"kto_iterate.sampler: vllm` needs vLLM installed \(`pip install vllm`\)"):
        choose_sampler("vllm")
    with pytest.raises(ValueError, match="sampler"):
        IterateSettings(sampler="sglang")


def test_with_vllm_and_a_gpu_a_rounds_prompts_go_in_one_call_and_come_back_as_rows_in_prompt_order(stand_in_vllm,
                                                                                                  tiny_model):
    from transformers import AutoTokenizer

    assert choose_sampler("auto") == "vllm"
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    prompts = [PoolPrompt("Where is my parcel?"), PoolPrompt("Can I return it?", "Be brief.")]
    settings = IterateSettings(answers_per_prompt=3, temperature=0.8, max_new_tokens=12)
    sampler = VLLMSampler(str(tiny_model))
    rows = sample_answers(sampler, tokenizer, prompts, settings, seed=5, progress="Round 1 answers")
    (_, model, engine_args), (_, sent, params) = stand_in_vllm.CALLS
    assert model == str(tiny_model) and engine_args["seed"] == 5
    assert sent == [tokenizer.apply_chat_template(prompt.messages(), add_generation_prompt=True, tokenize=False)
                    for prompt in prompts]  # rendered in the chat template, as the Transformers path renders them
    assert {key: params[key] for key in ("n", "temperature", "top_p", "top_k", "max_tokens", "seed")} == {
        "n": 3, "temperature": 0.8, "top_p": 1.0, "top_k": -1, "max_tokens": 12, "seed": 5}
    assert [(row["query"], row.get("system"), row["response"]) for row in rows] == [
        (prompt.prompt, prompt.system, f"answer {k} to <{sent[index]}>")
        for index, prompt in enumerate(prompts) for k in range(3)]
    # the engine is built once per model folder, and released
    sampler.generate(sent[:1], GenerationSettings(temperature=0.0, answers_per_prompt=2))
    assert [call[0] for call in stand_in_vllm.CALLS] == ["LLM", "generate", "generate"]
    assert stand_in_vllm.CALLS[-1][2]["n"] == 1  # greedy: one answer, repeated
    sampler.free()
    assert sampler.engine is None
