"""The feedback-loop bench: `axolotl kto iterate` on the refund desk against offline KTO and SFT on one label budget.

    python -m bench.iterate            # 3 rounds x 3 seeds, offline KTO and SFT beside them; table, JSON, PNG

Modules: `__main__` (the command: runs and scores), `report` (table and plot). The task, its
grader (the judge) and the held-out scoring are the alignment bench's (`bench.alignment.scoring`).
"""
