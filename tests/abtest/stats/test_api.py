"""abtest.stats: the package names exactly the statistics API of its modules."""

from __future__ import annotations

import importlib

from abtest import stats

MODULES = (
    "bootstrap",
    "estimates",
    "lift",
    "moments",
    "multiplicity",
    "preference",
    "sensitivity",
    "power",
    "sequential",
    "srm",
)


def test_every_public_name_is_the_object_defined_in_its_module():
    defined = {}
    for name in MODULES:
        module = importlib.import_module(f"abtest.stats.{name}")
        for attr, value in vars(module).items():
            if getattr(value, "__module__", module.__name__) == module.__name__:
                defined.setdefault(attr, value)
    for name in stats.__all__:
        assert getattr(stats, name) is defined[name], name
    assert sorted(stats.__all__) == sorted(set(stats.__all__))
    assert {"Moments", "LiftResult", "mean_test", "ratio_test", "srm_test"} <= set(stats.__all__)
