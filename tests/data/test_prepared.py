"""The prepared rows under `dataset_prepared_path`: saved once, loaded by later runs with the same key, rebuilt on change."""

from __future__ import annotations

import logging

import pytest
from helpers import base_config, load_config, run_axolotl, write_jsonl

from kto_plugin.data.prepared import FOLDER_PREFIX

ROWS = [
    {"query": f"Question {i}?", "response": f"Answer {i}.", "label": i % 3 != 0} for i in range(12)
]


@pytest.fixture
def plugin_messages():
    """Messages of the plugin's loggers during `load` (Axolotl's config loading resets handlers, so `load` adds it)."""
    return []


def load(tmp_path, data, messages=None, preprocess=False, **overrides):
    from axolotl.integrations.base import PluginManager

    PluginManager._instance = None
    config = base_config(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}], **overrides)
    cfg = load_config(tmp_path, config)
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage()) if messages is not None else None
    logger = logging.getLogger("axolotl.kto_plugin")
    logger.addHandler(handler)
    try:
        return PluginManager.get_instance().load_datasets(cfg, preprocess=preprocess)
    finally:
        logger.removeHandler(handler)


def prepared_folders(tmp_path):
    return sorted(path.name for path in (tmp_path / "prepared").glob(f"{FOLDER_PREFIX}*") if path.is_dir())


def test_second_load_reads_the_saved_rows_and_a_changed_file_is_prepared_again(tmp_path, tiny_model, plugin_messages):
    data = write_jsonl(tmp_path / "feedback.jsonl", ROWS)
    first = load(tmp_path, data, plugin_messages, val_set_size=0.25)
    assert len(prepared_folders(tmp_path)) == 1
    assert not any("loaded the prepared rows" in message for message in plugin_messages)

    plugin_messages.clear()
    second = load(tmp_path, data, plugin_messages, val_set_size=0.25)
    assert any("loaded the prepared rows" in message for message in plugin_messages)
    # the report line of the run that prepared them is repeated, so the removed rows are still reported
    assert any(message.startswith("KTO data (train): read 12 rows") and "(prepared earlier)" in message
               for message in plugin_messages)
    assert second.train_dataset.to_list() == first.train_dataset.to_list()
    assert second.eval_dataset.to_list() == first.eval_dataset.to_list()
    assert len(second.train_dataset) == 9 and len(second.eval_dataset) == 3

    # same path, same size, other content: a new key, prepared from the new file
    write_jsonl(data, [{**row, "response": row["response"].replace("Answer", "Reply!")} for row in ROWS])
    plugin_messages.clear()
    third = load(tmp_path, data, plugin_messages, val_set_size=0.25)
    assert not any("loaded the prepared rows" in message for message in plugin_messages)
    assert all(row["completion"].startswith("Reply!") for row in third.train_dataset)
    assert len(prepared_folders(tmp_path)) == 2

    # a setting that changes the rows (sequence_len) is a new key too
    load(tmp_path, data, plugin_messages, val_set_size=0.25, sequence_len=128)
    assert len(prepared_folders(tmp_path)) == 3


def flip_labels_on_disk(arrow_file) -> None:
    """Two bytes of the label column changed in place: the file still reads, with other labels."""
    import pyarrow as pa

    with pa.memory_map(str(arrow_file)) as source:
        table = pa.ipc.open_stream(source).read_all()
    labels = table.column("label").to_pylist()
    data = bytearray(arrow_file.read_bytes())
    flipped = pa.array([not label for label in labels]).buffers()[1].to_pybytes()
    original = pa.array(labels).buffers()[1].to_pybytes()
    at = data.find(original[:2])
    assert at >= 0
    data[at:at + 2] = flipped[:2]
    arrow_file.write_bytes(bytes(data))
    with pa.memory_map(str(arrow_file)) as source:
        assert pa.ipc.open_stream(source).read_all().column("label").to_pylist() != labels  # it reads, wrongly


@pytest.mark.parametrize("damage", ["flip two label bytes", "cut the file short", "delete the rows' file"])
def test_prepared_rows_changed_on_disk_are_prepared_again_never_trained_on(tmp_path, tiny_model, plugin_messages,
                                                                          damage):
    data = write_jsonl(tmp_path / "feedback.jsonl", ROWS)
    first = load(tmp_path, data, plugin_messages).train_dataset.to_list()
    (folder,) = prepared_folders(tmp_path)
    (arrow_file,) = (tmp_path / "prepared" / folder / "train").glob("data-*.arrow")
    if damage == "flip two label bytes":
        flip_labels_on_disk(arrow_file)
    elif damage == "cut the file short":
        arrow_file.write_bytes(arrow_file.read_bytes()[:-200])
    else:
        arrow_file.unlink()
    plugin_messages.clear()
    again = load(tmp_path, data, plugin_messages).train_dataset.to_list()
    assert any("are not the ones saved there" in message and "preparing them again" in message
               for message in plugin_messages), plugin_messages
    assert not any("loaded the prepared rows" in message for message in plugin_messages)
    assert again == first
    plugin_messages.clear()
    assert load(tmp_path, data, plugin_messages).train_dataset.to_list() == first  # the folder is whole again
    assert any("loaded the prepared rows" in message for message in plugin_messages)


def test_preprocess_rebuilds_and_skip_prepare_dataset_saves_nothing(tmp_path, tiny_model, plugin_messages):
    data = write_jsonl(tmp_path / "feedback.jsonl", ROWS)
    load(tmp_path, data, plugin_messages)
    plugin_messages.clear()
    load(tmp_path, data, plugin_messages, preprocess=True)
    assert any("saved the prepared rows" in message for message in plugin_messages)
    assert not any("loaded the prepared rows" in message for message in plugin_messages)
    assert len(prepared_folders(tmp_path)) == 1

    other = tmp_path / "other"
    other.mkdir()
    meta = load(other, data, skip_prepare_dataset=True)
    assert len(meta.train_dataset) == 12
    assert prepared_folders(other) == []


def test_axolotl_preprocess_then_train_loads_the_prepared_rows(axolotl, tmp_path, tiny_model):
    import yaml

    data = write_jsonl(tmp_path / "feedback.jsonl", ROWS)
    config = base_config(tmp_path, [{"path": str(data), "type": "kto_plugin.query_response"}],
                         max_steps=1, save_strategy="no", kto_ref_cache="off")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    preprocess = run_axolotl("preprocess", "config.yaml", cwd=tmp_path)
    assert preprocess.returncode == 0, preprocess.stdout[-3000:] + preprocess.stderr[-3000:]
    assert "saved the prepared rows" in preprocess.stdout + preprocess.stderr
    [folder] = prepared_folders(tmp_path)

    train = run_axolotl("train", "config.yaml", cwd=tmp_path)
    log = train.stdout + train.stderr
    assert train.returncode == 0, log[-3000:]
    assert f"loaded the prepared rows from {tmp_path / 'prepared' / folder}" in log
    # TRL's tokenization of the loaded rows is cached by `datasets` in the prepared folder
    assert list((tmp_path / "prepared" / folder / "train").glob("cache-*.arrow"))


def test_rows_are_written_a_batch_at_a_time_and_memory_mapped(tmp_path, tiny_model, monkeypatch):
    """The data stage never holds a split as Python lists: batches go to an Arrow file, the dataset maps it."""
    from kto_plugin.data import arrow_rows, loading

    monkeypatch.setattr(loading, "ROW_BATCH", 5)
    written = []
    write = arrow_rows.ArrowRowsWriter.write
    monkeypatch.setattr(arrow_rows.ArrowRowsWriter, "write",
                        lambda self, prompts, *rest: written.append(len(prompts)) or write(self, prompts, *rest))
    rows = [{**row, "response": "" if i == 4 else row["response"]} for i, row in enumerate(ROWS)]  # one row removed
    data = write_jsonl(tmp_path / "feedback.jsonl", rows)
    meta = load(tmp_path, data, skip_prepare_dataset=True, shuffle_merged_datasets=False)
    assert written == [4, 5, 2]  # 12 rows in batches of 5, the empty response removed from the first
    assert meta.train_dataset.cache_files, "the rows should be memory-mapped from a file, not held in memory"
    kept = [row for row in rows if row["response"]]
    assert [completion.removesuffix("<|im_end|>") for completion in meta.train_dataset["completion"]] == \
        [row["response"] for row in kept]
    assert list(meta.train_dataset["label"]) == [row["label"] for row in kept]
