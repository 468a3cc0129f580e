"""models: the recall models and their offline evaluation.

Features from the logs (data, features), small named parts (parts), the model names and
configs (zoo), the towers' bodies (bodies) and torch models (towers), their serving view
(recaller) and the floors (floors), losses and training wrappers (losses, train), verified
checkpoints (checkpoint), faiss indexes (index), ranking metrics and the offline table
(ranking_metrics, evaluate).

Layer 3 of ``core → simulator → models → abtest → benchmarks``: may import ``core`` and
``simulator``.
"""
