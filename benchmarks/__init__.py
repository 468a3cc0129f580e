"""benchmarks: every performance figure of the harness as a ratio measured in one run.

``run_all.py`` is the driver (``python benchmarks/run_all.py [--quick] [--only ...]``); one
module per section (``bench_*.py``), the shared :class:`~benchmarks.section.Section` and
child-process plumbing (``section.py``) and the benchmark worlds and arms (``worlds.py``).
``engine_batching.py`` is also a script of its own.

Top layer of ``core → simulator → models → abtest → benchmarks``: may import all of them,
never the test suite.
"""
