"""abtest.online: the simulated online A/B test.

Assignment of users to arms, the per-user statistics sink, the experiment and its truth
twin, the analysis into typed results, the validity studies by re-randomisation and the
Ray shards. May import ``core``, ``simulator``, ``models`` and ``abtest``'s top-level
modules (serving, pipeline, stats); never ``abtest.report``, ``abtest.cli`` or
``abtest.offline``.
"""
