"""`kto_lora_preset: auto | small | 7b | 70b`: LoRA settings by model size, filled before Axolotl validates the config.

| preset | chosen by `auto` for | lora_r | lora_alpha | target modules |
|---|---|---|---|---|
| `small` | fewer than 3B parameters | 32 | 64 | q_proj, v_proj |
| `7b` | 3B to under 30B | 64 | 128 | every linear layer (`lora_target_linear: true`) |
| `70b` | 30B and more | 128 | 256 | q_proj, k_proj, v_proj |

The parameter count comes from the base model's config alone: the model is built on the
`meta` device (no weights read or allocated) and its parameters counted. A key the user set
(`lora_r`, `lora_alpha`, or any of `lora_target_modules` / `lora_target_linear`) is never
replaced; `adapter` is set to `lora` when it is unset. One log line says what was chosen
and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from kto_plugin.errors import ConfigError
from kto_plugin.log import get_logger

LOG = get_logger(__name__)

PRESET_NAMES = ("auto", "small", "7b", "70b")
SMALL_BELOW = 3_000_000_000
SEVEN_B_BELOW = 30_000_000_000
TARGET_KEYS = ("lora_target_modules", "lora_target_linear")


@dataclass(frozen=True)
class LoraPreset:
    name: str
    r: int
    alpha: int
    target_modules: tuple[str, ...] | None  # None: every linear layer

    def targets_in_words(self) -> str:
        return ", ".join(self.target_modules) if self.target_modules else "every linear layer"


PRESETS = {
    "small": LoraPreset("small", 32, 64, ("q_proj", "v_proj")),
    "7b": LoraPreset("7b", 64, 128, None),
    "70b": LoraPreset("70b", 128, 256, ("q_proj", "k_proj", "v_proj")),
}


def preset_for_parameters(parameters: int) -> LoraPreset:
    """The preset `auto` picks for a model of this many parameters."""
    if parameters < SMALL_BELOW:
        return PRESETS["small"]
    if parameters < SEVEN_B_BELOW:
        return PRESETS["7b"]
    return PRESETS["70b"]


def count_parameters_from_config(model_name_or_path: str, trust_remote_code: bool = False) -> tuple[int, set[str]]:
    """(parameter count, the last parts of its module names) of a causal LM, built on the meta device from its config."""
    from transformers import AutoConfig

    from kto_plugin.distributed.memory_estimate import model_on_meta

    config = AutoConfig.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)
    model = model_on_meta(config, trust_remote_code)
    count = sum(parameter.numel() for parameter in model.parameters())  # tied weights once
    module_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    return count, module_names


def apply_lora_preset(cfg: dict) -> None:
    """Fill the LoRA keys of a raw config from `kto_lora_preset` (see the module docstring)."""
    requested = cfg.get("kto_lora_preset")
    if not requested:
        return
    if requested not in PRESET_NAMES:
        raise ConfigError(f"`kto_lora_preset: {requested}` is unknown: use one of {', '.join(PRESET_NAMES)}")
    if not cfg.get("base_model"):
        raise ConfigError("`kto_lora_preset` needs `base_model:` to size the LoRA")
    parameters, module_names = count_parameters_from_config(cfg["base_model"], bool(cfg.get("trust_remote_code")))
    preset = preset_for_parameters(parameters) if requested == "auto" else PRESETS[requested]
    why = (f"the base model has {parameters / 1e9:.2f}B parameters (counted from its config)"
           if requested == "auto" else f"asked for (the base model has {parameters / 1e9:.2f}B parameters)")

    chosen, kept = [], []
    if not cfg.get("adapter"):
        cfg["adapter"] = "lora"
        chosen.append("adapter lora")
    for key, value in (("lora_r", preset.r), ("lora_alpha", preset.alpha)):
        if cfg.get(key) is None:
            cfg[key] = value
            chosen.append(f"{key} {value}")
        else:
            kept.append(f"{key}: {cfg[key]}")
    if any(cfg.get(key) not in (None, False, []) for key in TARGET_KEYS):
        kept.extend(f"{key}: {cfg[key]}" for key in TARGET_KEYS if cfg.get(key) not in (None, False, []))
    elif preset.target_modules and not set(preset.target_modules) <= module_names:
        cfg["lora_target_linear"] = True
        chosen.append(f"every linear layer (this model has no {', '.join(sorted(set(preset.target_modules) - module_names))})")
    elif preset.target_modules:
        cfg["lora_target_modules"] = list(preset.target_modules)
        chosen.append(f"on {preset.targets_in_words()}")
    else:
        cfg["lora_target_linear"] = True
        chosen.append("on every linear layer")
    LOG.info(
        f"KTO LoRA preset {preset.name} (kto_lora_preset: {requested}): {why}; set "
        + (", ".join(chosen) or "nothing")
        + (f"; kept what you set: {', '.join(kept)}" if kept else "")
    )
