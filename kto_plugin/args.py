"""The plugin's config keys, validated with the rest of the Axolotl config."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from kto_plugin.formats import format_of_type


class KTOPluginArgs(BaseModel):
    """Config checks for `plugins: [kto_plugin.KTOPlugin]`.

    The plugin reuses Axolotl's own KTO keys (`rl_beta`, `kto_desirable_weight`,
    `kto_undesirable_weight`, `excess_length_strategy`, `sequence_len`), so this model
    only checks how they combine with the plugin.
    """

    kto_dataset_fields: dict[str, list[dict[str, str]]] | None = Field(
        default=None,
        description=(
            "Filled by the plugin: the `field_*` keys of each `datasets:` / `test_datasets:` "
            "entry, which Axolotl's dataset schema would otherwise drop. Set the keys in the "
            "dataset entries, not here."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def check_rl_is_kto(cls, data: Any) -> Any:
        if isinstance(data, dict) and str(data.get("rl") or "").lower().split(".")[-1] != "kto":
            raise ValueError(
                "`plugins: [kto_plugin.KTOPlugin]` needs `rl: kto` "
                f"(got `rl: {data.get('rl')}`): add `rl: kto` or remove the plugin"
            )
        return data

    @model_validator(mode="before")
    @classmethod
    def check_dataset_types(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for key in ("datasets", "test_datasets"):
            for position, entry in enumerate(data.get(key) or []):
                # Axolotl has already turned entries into its KTODataset models here.
                dataset_type = entry.get("type") if isinstance(entry, dict) else getattr(entry, "type", None)
                try:
                    format_of_type(dataset_type)
                except ValueError as err:
                    raise ValueError(f"`{key}[{position}].type`: {err}") from None
        return data

    @model_validator(mode="before")
    @classmethod
    def check_excess_length_strategy(cls, data: Any) -> Any:
        if isinstance(data, dict):
            strategy = data.get("excess_length_strategy")
            if strategy is not None and str(strategy).lower() not in {"truncate", "drop", "raise"}:
                raise ValueError(
                    f"`excess_length_strategy: {strategy}`: use truncate (the plugin's default: "
                    "keep the completion and the end of the prompt), drop, or raise"
                )
        return data
