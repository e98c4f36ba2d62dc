"""`kto_group_by_length`: the same rows, in micro-batches of similar length, read in that order."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import bare_trainer, base_config, train_with_axolotl, with_lora

from kto_plugin.training.length_grouping import GROUP_BATCHES, length_grouped_order, padded_positions


@pytest.mark.parametrize(("rows", "micro_batch"), [(1, 1), (3, 2), (17, 4), (1000, 4), (1001, 3), (5000, 1)])
def test_every_row_once_and_only_the_last_batch_short(rows, micro_batch):
    lengths = np.random.default_rng(rows).integers(143, 517, size=rows)
    order = length_grouped_order(lengths, micro_batch, seed=0)
    assert sorted(order.tolist()) == list(range(rows))
    # batches are cut every `micro_batch` rows: each full batch comes from one group
    group = micro_batch * GROUP_BATCHES
    full = rows - rows % micro_batch
    for start in range(0, full, micro_batch):
        assert len({index // group for index in order[start:start + micro_batch]}) == 1


def test_padding_falls_and_the_order_follows_the_seed():
    lengths = np.random.default_rng(1).integers(143, 517, size=4096)
    order = length_grouped_order(lengths, 4, seed=3)
    before, after = padded_positions(lengths, 4), padded_positions(lengths[order], 4)
    assert after < 0.8 * before  # about 25% of a random batch of 4 is padding at these lengths
    assert after >= lengths.sum()  # padding can only be added
    assert np.array_equal(order, length_grouped_order(lengths, 4, seed=3))
    assert not np.array_equal(order, length_grouped_order(lengths, 4, seed=4))
    # the batches of a group are shuffled: the first steps do not all hold the longest rows
    batch_max = lengths[order].reshape(-1, 4).max(axis=1)
    assert not np.all(np.diff(batch_max[:GROUP_BATCHES]) <= 0)


def test_the_trainer_reads_rows_in_dataset_order():
    """TRL 1.9 samples at random from transformers 5.2 on; the KL pairing needs the order it was made on."""
    import torch
    from datasets import Dataset
    from torch.utils.data import SequentialSampler

    trainer = bare_trainer(torch.nn.Linear(2, 2), train_dataset=Dataset.from_dict({"a": list(range(10))}))
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, SequentialSampler)
    assert list(sampler) == list(range(10))


def test_axolotl_train_groups_the_batches_and_says_how_much_padding_went(axolotl, tmp_path, tiny_model):
    config = with_lora(base_config(
        tmp_path, [{"path": "kto_plugin://kto-sample-en", "type": "kto_plugin.query_response"}],
        micro_batch_size=4, gradient_accumulation_steps=1, max_steps=2, kto_ref_cache="off",
    ))
    result = train_with_axolotl(tmp_path, "grouped", config)
    found = re.search(r"kto_group_by_length\): ([\d,]+) token positions per epoch instead of ([\d,]+)",
                      result.stdout + result.stderr)
    assert found, (result.stdout + result.stderr)[-3000:]
    after, before = (int(value.replace(",", "")) for value in found.groups())
    assert after < before
