"""abtest: the experiment platform on top of the simulator and the models.

Split by job: the serving glue (:mod:`abtest.serving`: recaller → faiss → shared ranker →
slate) and the train-if-missing pipeline (:mod:`abtest.pipeline`), the statistics engine
(:mod:`abtest.stats`), the online experiment (:mod:`abtest.online`), off-policy evaluation
(:mod:`abtest.offline`), the report (:mod:`abtest.report`) and the command line
(:mod:`abtest.cli`).

Layer 4 of ``core → simulator → models → abtest → benchmarks``: may import ``core``,
``simulator`` and ``models``. Inside it, ``cli`` sits on top of ``report``, ``online`` and
``offline``; ``report`` renders what ``online`` returns.
"""

__version__ = "0.1.0"
