"""Speed and memory benchmarks: the plugin's KTO beside Axolotl's built-in KTO and SFT (`python -m bench.speed`).

Not tests: nothing here asserts a time. Each run is a real `axolotl train` process.
"""
