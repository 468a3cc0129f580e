"""Offline studies of the model zoo across worlds: the SASS map (where SASS beats the
baselines, over systematic shift × traffic share of one scenario) and the paper's ablations.

Each study trains (or loads cached) models on generated logs and scores them offline with
:mod:`models.evaluate`; the results are typed (:mod:`abtest.zoo_studies.estimates`) and
rendered by :mod:`abtest.report.sass_map` and :mod:`abtest.report.ablation`.

May import ``core``, ``simulator``, ``models`` and ``abtest.pipeline``; never ``report`` or
``cli``.
"""
