"""abtest.offline: off-policy evaluation of recall models on logged traffic (``replay``).

- ``run``: :func:`run_offline`, the entry point, scenario by scenario
- ``logged``: the logs and their evaluation window; one scenario's slots
- ``scorers``, ``targets``: a model's top-K per request and its eps-uniform target policy
- ``reward``: the cross-fitted reward model of DR; ``truth``: the exact truth (synthetic logs)
- ``ope``: the estimators' maths; ``estimators``: one class per estimator and their registry
- ``evaluation``: one scenario and metric, and the day walker
- ``results``: the typed results and their JSON form; ``render``: replay.json/md/png

May import ``core``, ``simulator``, ``models`` and ``abtest``'s top-level modules (serving,
pipeline, stats); never ``abtest.online``, ``abtest.report`` or ``abtest.cli``.
"""
