"""The config-keys reference (`docs/config-keys.md`, `axolotl kto config-keys`), generated from `KTOPluginArgs`.

Each key's type and default come from its annotation and `Field`, its text from the `Field`
description: the page cannot drift from the code (a test regenerates it and compares).
"""

from __future__ import annotations

import types
import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from kto_plugin.args import KTOPluginArgs

HEADER = """# Config keys

The plugin's keys, beside Axolotl's own (`rl: kto`, `rl_beta`, `kto_desirable_weight`,
`kto_undesirable_weight`, `excess_length_strategy`, `sequence_len`, ...). Generated from
`kto_plugin/args.py` by `axolotl kto config-keys > docs/config-keys.md`; a test
checks that this page is current.

| key | type | default | what it does |
|---|---|---|---|
"""


def type_text(annotation) -> str:
    """`bool`, `"auto" | bool`, `list of float`, `{type, start, end, warmup_steps}`, ..."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(f"`{value}`" for value in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_text(arg) for arg in args if arg is not type(None))
    if origin in (list, tuple):
        return f"list of {type_text(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "{" + ", ".join(annotation.model_fields) + "}"
    metadata_type = getattr(annotation, "__origin__", None)  # Annotated[float, Gt(0)] and the like
    if metadata_type is not None:
        return type_text(metadata_type)
    return getattr(annotation, "__name__", str(annotation))


def default_text(value) -> str:
    if value is PydanticUndefined or value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _described_submodel(annotation) -> type[BaseModel] | None:
    """The settings model a key holds (`kto_iterate: {...}`) when its own keys are described, else None."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel) and all(
                spec.description for spec in candidate.model_fields.values()):
            return candidate
    return None


def _rows(fields: dict, prefix: str = "") -> list[str]:
    rows = []
    for name, spec in fields.items():
        cells = [f"`{prefix}{name}`", type_text(spec.annotation), default_text(spec.default),
                 " ".join((spec.description or "").split())]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        submodel = _described_submodel(spec.annotation)
        if submodel is not None:
            rows.extend(_rows(submodel.model_fields, f"{prefix}{name}."))
    return rows


def config_keys_markdown() -> str:
    return HEADER + "\n".join(_rows(KTOPluginArgs.model_fields)) + "\n"
