"""abtest.report: what the user reads of a run or a study.

The report folder of a run (``folder``: results.json, lift.csv, report.md/html, plots;
``outdir``: output folders replaced as a whole, never left half old, half new),
built from the typed results of :mod:`abtest.online.results` (``document``, ``tables``,
``plots``, with ``format`` and ``layout`` for numbers and order), the text, JSON and
plot of the A/A, coverage and power studies (``studies``), and those of the model-zoo
studies: the SASS map (``sass_map``) and the SASS ablations (``ablation``). May import
``core``, ``abtest.online`` and ``abtest.zoo_studies``; never ``abtest.cli``.
"""
