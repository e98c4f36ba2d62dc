"""The data check of `axolotl kto check` (and the studio's Check tab): the report of files or of a config's data.

The report (`data.row_checks.DataCheckReport`) counts rows per label and source, token
lengths against `sequence_len`, and every problem row; this module adds the class weights
`kto_auto_weights` would pick. Without a config or a tokenizer folder, token lengths are
counted with the embedded tiny model's tokenizer, a stand-in named as such in the report.
"""

from __future__ import annotations

from pathlib import Path

from kto_plugin.errors import ConfigError

CONFIG_SUFFIXES = (".yaml", ".yml")
FALLBACK_TOKENIZER = "the embedded tiny model's tokenizer (byte-level BPE, ChatML; a stand-in: pass a config or --tokenizer for your model's counts)"
DEFAULT_SEQUENCE_LEN = 2048


class MixedInputsError(ConfigError):
    """A config and data files in one check."""


def check_tokenizer(path: Path | None):
    """(tokenizer, its name for the report): a local tokenizer folder, else the embedded stand-in."""
    from transformers import AutoTokenizer

    from kto_plugin.embedded.cache import tiny_model_dir
    from kto_plugin.embedded.tiny_model import CHATML_TEMPLATE, build_tokenizer

    if path is not None:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        name = str(path)
        if not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = CHATML_TEMPLATE
            name += " (no chat template of its own: ChatML used)"
        return tokenizer, name
    cached = tiny_model_dir()
    if (cached / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(str(cached)), FALLBACK_TOKENIZER
    return build_tokenizer(), FALLBACK_TOKENIZER


def read_check_config(path: Path):
    """(cfg, tokenizer, its name, sequence_len) through Axolotl's own loader."""
    from axolotl.cli.config import load_cfg
    from axolotl.loaders import load_tokenizer

    cfg = load_cfg(str(path))
    tokenizer = load_tokenizer(cfg)
    from kto_plugin.data.rendering import require_chat_template

    require_chat_template(tokenizer, cfg.tokenizer_config or cfg.base_model)
    return cfg, tokenizer, f"{cfg.tokenizer_config or cfg.base_model} (from {path})", cfg.sequence_len


def data_files_of(inputs) -> list[Path]:
    """The inputs with each folder of data files (not a saved dataset) replaced by its files, in name order."""
    from kto_plugin.data.row_files import data_files_in, is_saved_dataset

    return [file for path in inputs
            for file in (data_files_in(path) if path.is_dir() and not is_saved_dataset(path) else [path])]


def run_check(inputs: tuple[Path, ...], format_name, tokenizer_path, sequence_len, rules, progress=True,
              field_names: dict[str, str] | None = None):
    """The DataCheckReport of files (a folder: each of its data files) or of one config's `datasets:`."""
    from kto_plugin.data.class_balance import auto_weights
    from kto_plugin.data.feedback_examples import examples_from_config, examples_from_file
    from kto_plugin.data.row_checks import check_examples

    configs = [path for path in inputs if path.suffix.lower() in CONFIG_SUFFIXES]
    if configs and (len(inputs) > 1 or field_names):
        raise MixedInputsError("pass either one Axolotl config or data files, not both (a config's entries name "
                               "their own fields; --field is for data files)")
    if configs:
        cfg, tokenizer, tokenizer_name, config_len = read_check_config(configs[0])
        sources, rows_read, examples, unusable = examples_from_config(cfg, progress)
        sequence_len = sequence_len or config_len
    else:
        tokenizer, tokenizer_name = check_tokenizer(tokenizer_path)
        sources, rows_read, examples, unusable = [], 0, [], []
        for path in data_files_of(inputs):
            feedback, _, found, bad = examples_from_file(path, format_name, progress, field_names)
            sources.append(str(path))
            rows_read += len(feedback.rows)
            examples.extend(found)
            unusable.extend(bad)
        sequence_len = sequence_len or DEFAULT_SEQUENCE_LEN
    report = check_examples(sources, tokenizer, tokenizer_name, sequence_len, rows_read, examples, unusable,
                            rules, progress)
    if report.desirable and report.undesirable:
        desirable_weight, undesirable_weight = auto_weights(report.desirable, report.undesirable)
        report.auto_weights = {"desirable_weight": desirable_weight, "undesirable_weight": undesirable_weight}
    return report
