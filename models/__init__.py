"""models: the recall models and their offline evaluation.

Features from the logs, small named parts, the model zoo (SASS and baselines), the floors,
training wrappers and losses, verified checkpoints, faiss indexes, ranking metrics and the
offline table.

Layer 3 of ``core → simulator → models → abtest → benchmarks``: may import ``core`` and
``simulator``.
"""
