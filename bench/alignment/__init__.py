"""The alignment bench: KTO from binary labels beside DPO from pairs, with few desirable rows, with noisy labels, and SFT.

    python -m bench.alignment            # 5 variants x 3 seeds, each a real `axolotl train`; table, JSON, PNG

Modules: `task` (the generated refund-desk task and its grader), `data` (the rows each variant
trains on), `runs` (the Axolotl configs and processes), `scoring` (held-out measures),
`report` (table and plot), `__main__` (the command).
"""
