"""`lora_model_dir` with `rl: kto`: the saved adapter trained further, where Axolotl would start a fresh one."""

from __future__ import annotations

from kto_plugin.log import get_logger

LOG = get_logger(__name__)


def continue_saved_adapter(adapter_dir: str | None, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Train the adapter in `lora_model_dir` further instead of a fresh one.

    For `rl: kto` (and dpo, ipo) Axolotl hands TRL only the LoRA *config*, and TRL wraps the
    model in a new adapter: `lora_model_dir` is silently ignored. Here the saved adapter is
    loaded trainable and TRL gets the PEFT model with no config. TRL's reference is then the
    base model with the adapter switched off, not the model the adapter came from.
    """
    if not adapter_dir or kwargs.get("peft_config") is None:
        return args, kwargs
    from peft import PeftModel

    model = args[0] if args else kwargs["model"]
    if isinstance(model, PeftModel):
        return args, kwargs
    LOG.info(f"KTO: training the adapter in lora_model_dir {adapter_dir} further (Axolotl would start a fresh one "
             "for rl: kto); the reference model is the base with the adapter switched off")
    model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=True)
    kwargs = {**kwargs, "peft_config": None}
    if args:
        return (model, *args[1:]), kwargs
    return args, {**kwargs, "model": model}
