"""abtest.offline: off-policy evaluation of recall models on logged traffic.

Logged data, target policies and their scorers, one class per estimator, the day walker
and the rendering of ``replay.json``/``replay.md``. May import ``core``, ``simulator``,
``models`` and ``abtest``'s top-level modules; never ``abtest.online``, ``abtest.report``
or ``abtest.cli``.
"""
