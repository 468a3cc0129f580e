"""abtest.report: the report folder of a run (markdown, HTML, CSV, plots).

Renders the typed results of :mod:`abtest.online`. May import ``core`` and
``abtest.online``; never ``abtest.cli``.
"""
