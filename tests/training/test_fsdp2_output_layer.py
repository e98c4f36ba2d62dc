"""FSDP2 (`fully_shard`, as accelerate applies it: each decoder layer and the root, resharded after forward).

Read outside its forward, a sharded output layer's weight is a DTensor shard, and the chunked path
crashed ("aten.mm.default got mixed torch.Tensor and DTensor"). It now runs inside the model's own
call of the head, where FSDP2 has gathered the weight, and its result is the root's output, so FSDP2
gathers it again before the backward. Two gloo processes on the CPU, tied and untied, full
fine-tuning, two steps with backward and an update: each rank's log-probs equal one unsharded
process's, and the head's weight gradient reaches the sharded parameter.
"""

from __future__ import annotations

import pytest

import textwrap

SCRIPT = textwrap.dedent('''
    import os, sys, torch, torch.distributed as dist, torch.multiprocessing as mp

    def model_and_batch(tied):
        from transformers import Qwen2Config, Qwen2ForCausalLM
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(Qwen2Config(vocab_size=97, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                             num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=tied))
        ids = torch.randint(0, 97, (2, 9), generator=torch.Generator().manual_seed(1))
        mask = torch.zeros_like(ids)
        mask[:, 4:] = 1
        return model, ids, mask

    def run(rank, world, port, expected):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
        for tied in (True, False):
            run_one(rank, tied, expected[tied])
        print(f"rank {rank}: matched", flush=True)
        dist.destroy_process_group()

    def run_one(rank, tied, expected):
        from torch.distributed.fsdp import fully_shard
        sys.path.insert(0, "tests")
        from helpers import bare_trainer
        from kto_plugin.training.chunked_logps import chunkable_output_layer
        model, ids, mask = model_and_batch(tied)
        trainer = bare_trainer(model, chunked_logps=True)
        for layer in model.model.layers:
            fully_shard(layer)
        fully_shard(model, reshard_after_forward=True)
        for step in range(2):
            assert chunkable_output_layer(model) is not None  # the chunked path runs
            logps, _ = trainer._sequence_logps(model, {"input_ids": ids}, {"input_ids": ids, "completion_mask": mask})
            torch.testing.assert_close(logps.detach(), expected[step], atol=1e-5, rtol=1e-5)
            logps.sum().backward()
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter -= 0.1 * parameter.grad
                    parameter.grad = None
        assert "forward" not in model.lm_head.__dict__

    if __name__ == "__main__":
        from kto_plugin.training.trainer import completion_logps
        expected = {}
        for tied in (True, False):
            model, ids, mask = model_and_batch(tied)
            expected[tied] = []
            for step in range(2):  # one unsharded process, the same two steps
                logps = completion_logps(model(input_ids=ids).logits, ids, mask)
                expected[tied].append(logps.detach())
                logps.sum().backward()
                with torch.no_grad():
                    for parameter in model.parameters():
                        parameter -= 0.1 * parameter.grad
                        parameter.grad = None
        mp.spawn(run, args=(2, int(sys.argv[1]), expected), nprocs=2)
''')


@pytest.mark.stack("py312")  # torch's FSDP2 alone; py311 trains full FSDP2 through Axolotl on two ranks: CI time
def test_two_fsdp2_ranks_compute_what_one_unsharded_process_does(tmp_path):
    from helpers import run_rank_script

    output = run_rank_script(tmp_path, "fsdp2_ranks", SCRIPT)
    assert "rank 0: matched" in output and "rank 1: matched" in output
